//! `GET /auth/verify`: forward authentication for reverse proxies (nginx `auth_request`,
//! Traefik `forwardAuth`, Caddy `forward_auth`). The hot path: a valid cookie is answered from
//! the in-process session cache.

use axum::Router;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde::Deserialize;

use crate::app::AppState;
use crate::error::{ApiError, Code};
use crate::extract::session_of;
use crate::routes::redirect;

const USER: HeaderName = HeaderName::from_static("x-tessera-user");
const EMAIL: HeaderName = HeaderName::from_static("x-tessera-email");
const GROUPS: HeaderName = HeaderName::from_static("x-tessera-groups");
const AMR: HeaderName = HeaderName::from_static("x-tessera-amr");
/// Set by a proxy (per protected host or path) to require a session that passed two factors.
const REQUIRE_MFA: &str = "x-tessera-require-mfa";

pub(super) fn router() -> Router<AppState> {
    Router::new().route("/auth/verify", get(verify))
}

#[derive(Deserialize)]
struct VerifyQuery {
    /// Ask for a browser redirect to the sign-in page on failure: `rd=1` (target taken from
    /// `X-Original-URL` or `X-Forwarded-Proto/Host/Uri`) or `rd=<url>`.
    rd: Option<String>,
    /// `mfa=1`: only a session that passed a second factor (its `amr` holds `mfa`) is let
    /// through; others get `403`. The `X-Tessera-Require-Mfa: 1` request header does the same.
    /// Read by [`mfa_required`].
    #[serde(default, rename = "mfa")]
    _mfa: Option<String>,
}

/// Whether the proxy asked for a two-factor session: `mfa=1` (or `true`) in the query, or the
/// `X-Tessera-Require-Mfa: 1` header.
fn mfa_required(request: &Request) -> bool {
    let yes = |v: &str| v == "1" || v.eq_ignore_ascii_case("true");
    let in_query = request.uri().query().is_some_and(|q| {
        q.split('&')
            .filter_map(|pair| pair.split_once('=').or(Some((pair, "1"))))
            .any(|(k, v)| k == "mfa" && yes(v))
    });
    in_query
        || request
            .headers()
            .get(REQUIRE_MFA)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| yes(v.trim()))
}

/// `200` with `X-Tessera-User`, `X-Tessera-Email`, `X-Tessera-Groups` and `X-Tessera-Amr` for a
/// valid session; `401` otherwise, or `302` to the sign-in page when `rd` is given. A pending
/// two-step sign-in is no session and is refused like none. With `mfa=1` (or the
/// `X-Tessera-Require-Mfa: 1` header), a session that did not pass a second factor gets `403`.
async fn verify(State(state): State<AppState>, request: Request) -> Result<Response, ApiError> {
    // The request is borrowed, not extracted piecewise: a `HeaderMap` extractor would copy
    // every header on the hot path.
    let headers = request.headers();
    if let Some(session) = session_of(headers, &state).await? {
        let ids = &session.resolved.headers;
        if !ids.mfa && mfa_required(&request) {
            return Err(ApiError::new(
                Code::Forbidden,
                "forward-auth: this resource requires a second factor; the session has none",
            ));
        }
        let mut response = StatusCode::OK.into_response();
        let h = response.headers_mut();
        h.reserve(7);
        for (name, value) in [
            (USER, &ids.user),
            (EMAIL, &ids.email),
            (GROUPS, &ids.groups),
            (AMR, &ids.amr),
        ] {
            if let Some(v) = value {
                h.insert(name, v.clone());
            }
        }
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        return Ok(response);
    }
    let q: VerifyQuery = serde_urlencoded::from_str(request.uri().query().unwrap_or(""))
        .map_err(|e| ApiError::new(Code::InvalidRequest, format!("forward-auth query: {e}")))?;
    if let Some(rd) = q.rd {
        let target = if rd.is_empty() || rd == "1" {
            original_url(headers)
        } else {
            Some(rd)
        };
        if let Some(target) = target.and_then(|t| redirect::safe(&t, state.config())) {
            let location = format!(
                "{}/login?rd={}",
                state.config().public_origin,
                serde_urlencoded::to_string([("", target.as_str())])
                    .unwrap_or_default()
                    .trim_start_matches('=')
            );
            if let Ok(v) = HeaderValue::from_str(&location) {
                let mut response = StatusCode::FOUND.into_response();
                response.headers_mut().insert(header::LOCATION, v);
                return Ok(response);
            }
        }
    }
    Err(ApiError::new(
        Code::InvalidToken,
        "forward-auth: no valid session",
    ))
}

/// The URL the user asked the proxy for: `X-Original-URL` (nginx), or the Traefik/Caddy
/// `X-Forwarded-Proto` + `X-Forwarded-Host` + `X-Forwarded-Uri`.
fn original_url(headers: &HeaderMap) -> Option<String> {
    let get = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    if let Some(url) = get("x-original-url") {
        return Some(url);
    }
    let proto = get("x-forwarded-proto").unwrap_or_else(|| "https".into());
    let host = get("x-forwarded-host")?;
    let uri = get("x-forwarded-uri").unwrap_or_else(|| "/".into());
    Some(format!("{proto}://{host}{uri}"))
}
