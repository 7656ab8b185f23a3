//! The HTTP surface of tessera: password login, cookie sessions, forward-auth for reverse
//! proxies, the user's session list, the admin API, health, metrics and the server-rendered
//! pages.
//!
//! Handlers are thin: they extract typed inputs (a session, an admin, a form), call one domain
//! function and map the result through [`error::ApiError`]. The server takes `Arc<dyn Store>`
//! and never names a concrete store; the CLI wires one in.

/// The change-feed consumer (cross-node cache invalidation).
pub mod changes;
pub mod config;
pub mod error;

mod app;
mod client_addr;
mod conn;
mod cookie;
mod csrf;
mod edge;
mod error_page;
mod extract;
#[doc(hidden)]
pub mod fuzzing;
mod metrics;
mod passwords;
mod qr;
mod routes;
mod sessions;
mod throttle;
mod user_agent;

pub use app::{AppState, SecondFactors, metrics_router, router, serve, serve_metrics};
pub use client_addr::Cidr;
pub use config::{ServerConfig, Transport};
pub use passwords::BlockingPasswords;
