//! One module per endpoint group, each exposing its `router()`.

use axum::Router;

use crate::app::AppState;

mod account;
mod admin;
mod factors;
mod forward_auth;
mod health;
pub(crate) mod login;
pub(crate) mod redirect;
mod second_step;

pub(crate) use health::metrics;

/// Every route.
pub(crate) fn router() -> Router<AppState> {
    Router::new()
        .merge(health::router())
        .merge(login::router())
        .merge(account::router())
        .merge(factors::router())
        .merge(second_step::router())
        .merge(forward_auth::router())
        .merge(admin::router())
}
