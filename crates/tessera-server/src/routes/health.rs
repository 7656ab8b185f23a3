//! Liveness and readiness on the public listener; the metrics handler for the private one.

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;

use crate::app::AppState;

pub(super) fn router() -> Router<AppState> {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
}

/// Liveness: the process answers. No authentication.
async fn healthz() -> &'static str {
    "ok"
}

/// Readiness: the store answers. No authentication; says nothing about why it fails.
async fn readyz(State(state): State<AppState>) -> impl IntoResponse {
    match state.store().ping().await {
        Ok(()) => (StatusCode::OK, "ready"),
        Err(e) => {
            tracing::warn!(error = %e, backend = state.store().backend(), "readiness check failed");
            (StatusCode::SERVICE_UNAVAILABLE, "not ready")
        }
    }
}

/// Prometheus metrics in text format, served on the metrics listener only (see
/// [`crate::metrics_router`]). No authentication: that listener must stay private.
pub(crate) async fn metrics(State(state): State<AppState>) -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        crate::metrics::render(&state).await,
    )
}
