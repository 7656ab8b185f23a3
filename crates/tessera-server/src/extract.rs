//! Typed extractors: a handler that takes `CurrentSession` or `Admin` cannot forget to
//! authenticate, and JSON/form wrappers turn rejections into the public error format.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use axum::extract::rejection::{FormRejection, JsonRejection};
use axum::extract::{ConnectInfo, FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{HeaderMap, Method, header};
use serde::de::DeserializeOwned;
use tessera_domain::account::Role;
use tessera_domain::admin::Presented;
use tessera_domain::session::TokenHash;

use crate::app::AppState;
use crate::config::Transport;
use crate::cookie;
use crate::error::{ApiError, Code};
use crate::sessions::Resolved;

/// The client's address: the socket peer, or, behind a TLS proxy whose socket address is in
/// `trusted_proxies`, the right-most `X-Forwarded-For` entry (over all header lines) that is not
/// a trusted proxy (see [`crate::client_addr`]).
#[derive(Clone, Debug)]
pub(crate) struct ClientIp(pub(crate) Option<String>);

impl ClientIp {
    /// The address of a request's client, from its parts.
    pub(crate) fn of(parts: &Parts, state: &AppState) -> Option<IpAddr> {
        let peer = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|c| c.0.ip())?;
        if state.config().transport != Transport::BehindTlsProxy {
            return Some(peer.to_canonical());
        }
        let lines = parts
            .headers
            .get_all("x-forwarded-for")
            .iter()
            .map(|v| v.as_bytes());
        Some(crate::client_addr::client_address(
            peer,
            lines,
            &state.config().trusted_proxies,
        ))
    }
}

impl FromRequestParts<AppState> for ClientIp {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        Ok(ClientIp(
            ClientIp::of(parts, state).map(|ip| ip.to_string()),
        ))
    }
}

/// The session presented in the cookie, active and resolved, or 401.
#[derive(Clone, Debug)]
pub(crate) struct CurrentSession {
    pub(crate) resolved: Arc<Resolved>,
    pub(crate) hash: TokenHash,
}

impl CurrentSession {
    /// Checks the synchronizer CSRF token from a form field or the `X-CSRF-Token` header.
    pub(crate) fn check_csrf(&self, presented: Option<&str>) -> Result<(), ApiError> {
        match presented {
            Some(token) if self.resolved.session.csrf_matches(token) => Ok(()),
            _ => Err(ApiError::new(
                Code::Forbidden,
                "missing or wrong CSRF token",
            )),
        }
    }
}

/// Resolves the session cookie of a request, if any.
pub(crate) async fn session_of(
    headers: &HeaderMap,
    state: &AppState,
) -> Result<Option<CurrentSession>, ApiError> {
    let Some(value) = cookie::get(
        headers,
        cookie::Kind::Session,
        state.config().secure_cookies(),
    ) else {
        return Ok(None);
    };
    // The sealed tag turns away forged and random cookies before any lookup.
    let Some(token) = state.seal().open(&value) else {
        return Ok(None);
    };
    let hash = token.hash();
    let now = state.now();
    match state.sessions().resolve(state.store(), hash, now).await? {
        Some(resolved) => Ok(Some(CurrentSession { resolved, hash })),
        None => Ok(None),
    }
}

impl FromRequestParts<AppState> for CurrentSession {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        session_of(&parts.headers, state)
            .await?
            .ok_or_else(|| ApiError::new(Code::InvalidToken, "no valid session cookie"))
    }
}

/// A caller allowed to use the admin API: a bearer admin token, or the session of an account
/// with the admin role (which must also present its CSRF token on state-changing requests).
#[derive(Clone, Debug)]
pub(crate) struct Admin {
    /// Who, for the audit log.
    pub(crate) label: String,
}

impl FromRequestParts<AppState> for Admin {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        if let Some(auth) = parts.headers.get(header::AUTHORIZATION) {
            let presented = auth
                .to_str()
                .ok()
                .and_then(|v| v.strip_prefix("Bearer "))
                .and_then(|t| state.admin_seal().open(t))
                .ok_or_else(|| ApiError::new(Code::InvalidToken, "malformed admin bearer token"))?;
            // Well-formed guesses reach the store only while their address has failed fewer
            // than a few lookups this minute (OWASP ASVS 5.0 V6.3.1: anti-automation).
            let ip = ClientIp::of(parts, state).map(|ip| ip.to_string());
            if let Err(wait) = state.throttle().admin_lookup_allowed(ip.as_deref()) {
                return Err(ApiError::rate_limited(
                    wait.as_secs().max(1),
                    "too many unknown admin tokens from this address",
                ));
            }
            let (token, untagged) = match presented {
                Presented::Sealed(token) => (Some(token), false),
                Presented::Untagged(token) => (Some(token), true),
                // A wrong tag is refused before any lookup, as forged cookies are, and
                // answered and counted exactly like an unknown token.
                Presented::BadTag => (None, false),
            };
            if let Some(token) = token
                && state.store().admin_token_exists(&token.hash()).await?
            {
                if untagged && state.first_untagged_admin_token() {
                    tracing::warn!(
                        id = %token.id(),
                        "an admin token of the first, untagged format was used; it keeps \
                         working, but re-creating it (`tessera admin-token create`) gives one \
                         that the server can refuse unlooked-up when forged"
                    );
                }
                return Ok(Admin {
                    label: "admin-token".into(),
                });
            }
            state.throttle().admin_lookup_failed(ip.as_deref());
            return Err(ApiError::new(Code::InvalidToken, "unknown admin token"));
        }
        let session = CurrentSession::from_request_parts(parts, state).await?;
        if session.resolved.account.role != Role::Admin {
            return Err(ApiError::new(
                Code::Forbidden,
                "account is not an administrator",
            ));
        }
        if !matches!(parts.method, Method::GET | Method::HEAD) {
            let csrf = parts
                .headers
                .get("x-csrf-token")
                .and_then(|v| v.to_str().ok());
            session.check_csrf(csrf)?;
        }
        Ok(Admin {
            label: session.resolved.account.username.to_string(),
        })
    }
}

/// `axum::Json` whose rejections use the public error format.
pub(crate) struct Json<T>(pub(crate) T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for Json<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        match axum::Json::<T>::from_request(req, state).await {
            Ok(axum::Json(v)) => Ok(Json(v)),
            Err(e) => Err(json_rejection(e)),
        }
    }
}

fn json_rejection(e: JsonRejection) -> ApiError {
    if e.status() == axum::http::StatusCode::PAYLOAD_TOO_LARGE {
        return ApiError::new(Code::TooLarge, "request body exceeds max_body");
    }
    // The body text of serde errors can quote input; keep only the category.
    let what = match e {
        JsonRejection::JsonDataError(_) => {
            "JSON does not match the expected shape (unknown or missing fields, wrong types)"
        }
        JsonRejection::JsonSyntaxError(_) => "malformed JSON",
        JsonRejection::MissingJsonContentType(_) => "expected Content-Type: application/json",
        JsonRejection::BytesRejection(_) => "could not read the body (too large?)",
        _ => "unreadable JSON body",
    };
    ApiError::new(Code::InvalidRequest, what)
}

/// Whether a request body is an HTML form (`application/x-www-form-urlencoded`), as opposed to
/// JSON: routes that serve both pick their CSRF carrier and answer format by it.
pub(crate) fn is_form(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/x-www-form-urlencoded"))
}

/// `axum::Form` whose rejections use the public error format.
pub(crate) struct Form<T>(pub(crate) T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for Form<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        match axum::Form::<T>::from_request(req, state).await {
            Ok(axum::Form(v)) => Ok(Form(v)),
            Err(e) => Err(form_rejection(e)),
        }
    }
}

fn form_rejection(e: FormRejection) -> ApiError {
    if e.status() == axum::http::StatusCode::PAYLOAD_TOO_LARGE {
        return ApiError::new(Code::TooLarge, "request body exceeds max_body");
    }
    let what = match e {
        FormRejection::FailedToDeserializeForm(_)
        | FormRejection::FailedToDeserializeFormBody(_) => {
            "form fields do not match (unknown or missing fields, invalid UTF-8)"
        }
        FormRejection::InvalidFormContentType(_) => {
            "expected Content-Type: application/x-www-form-urlencoded"
        }
        _ => "unreadable form body (too large?)",
    };
    ApiError::new(Code::InvalidRequest, what)
}
