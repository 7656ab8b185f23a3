//! CSRF defence (OWASP CSRF Prevention Cheat Sheet): every state-changing request from a
//! browser must come from our own origin (`Sec-Fetch-Site`, then `Origin`), and every
//! cookie-authenticated form or API call also carries the session's synchronizer token.

use axum::extract::Request;
use axum::http::{Method, header};
use axum::response::{IntoResponse, Response};

use crate::app::AppState;
use crate::error::{ApiError, Code};

/// The edge's CSRF check: a refusal for a cross-site state-changing request, `None` to let it
/// through. A browser that sends `Sec-Fetch-Site` is judged on it (browsers may send
/// `Origin: null` on same-origin posts under some referrer policies); older browsers are judged
/// by `Origin`. Requests with neither header come from non-browser clients, which cannot carry
/// a victim's cookies, and pass.
pub(crate) fn refuse(request: &Request, state: &AppState) -> Option<Response> {
    let safe = matches!(
        *request.method(),
        Method::GET | Method::HEAD | Method::OPTIONS
    );
    if safe {
        return None;
    }
    let headers = request.headers();
    if let Some(site) = headers.get("sec-fetch-site") {
        let ok = matches!(site.to_str(), Ok("same-origin") | Ok("none"));
        if !ok {
            return Some(
                ApiError::new(
                    Code::Forbidden,
                    "cross-site request refused (Sec-Fetch-Site)",
                )
                .into_response(),
            );
        }
    } else if let Some(origin) = headers.get(header::ORIGIN)
        && origin.as_bytes() != state.config().public_origin.as_bytes()
    {
        return Some(
            ApiError::new(Code::Forbidden, "cross-origin request refused (Origin)").into_response(),
        );
    }
    None
}
