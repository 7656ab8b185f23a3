//! The rules of the tessera auth server, with no HTTP and no SQL.
//!
//! It owns accounts ([`account`]), password credentials and policy ([`credential`]), cookie
//! sessions ([`session`]), the login flow ([`login`]), administrator tokens ([`admin`]), audit
//! events ([`audit`]), second factors ([`factor`] types, [`factors`] services, the two-step
//! sign-in), and the storage traits every backend implements ([`store`]). Time comes
//! from an injected [`clock::Clock`]; randomness from aws-lc-rs.
//!
//! Never depends on axum/http/hyper or on an SQL driver; the server and the stores depend on it.

pub mod account;
pub mod accounts;
pub mod admin;
pub mod audit;
pub mod change;
pub mod clock;
pub mod credential;
pub mod delivery;
pub mod error;
pub mod factor;
pub mod factors;
pub mod login;
pub mod random;
pub mod session;
pub mod store;

pub use error::{DomainError, StoreError};
