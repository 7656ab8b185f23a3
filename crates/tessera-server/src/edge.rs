//! The edge: one middleware that every request and response crosses. It gives each request an
//! id (returned in `X-Request-Id`), refuses cross-site state-changing requests (CSRF, see
//! [`crate::csrf`]), sets the security headers, counts the request in the metrics and writes
//! its log line.
//!
//! These used to be ten separate layers; every layer applied through `Router::layer` boxes the
//! service and its future again, and `from_fn` clones its inner service on every request. Done
//! in one hand-written service, the whole edge costs one boxed future per request (see
//! `docs/benchmarks.md`, forward-auth).

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::Instant;

use axum::extract::{MatchedPath, Request};
use axum::http::{HeaderName, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use tower::{Layer, Service};

use crate::app::AppState;
use crate::error::Cause;

/// The request id header, read from the client (or the proxy in front) and always returned.
pub(crate) const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// The forward-auth route, whose grants skip the browser headers.
const FORWARD_AUTH: &str = "/auth/verify";

/// The headers every response rendered by a browser may need.
fn security_headers() -> [(HeaderName, HeaderValue); 4] {
    [
        (
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        ),
        // Nothing leaves for other sites, and same-origin posts keep a real `Origin`.
        (
            header::REFERRER_POLICY,
            HeaderValue::from_static("same-origin"),
        ),
        // Pages load only our own stylesheet; no scripts at all; never framed (clickjacking).
        (
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(
                "default-src 'none'; style-src 'self'; img-src 'self'; connect-src 'self'; form-action 'self' http: https:; frame-ancestors 'none'; base-uri 'none'",
            ),
        ),
        (header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY")),
    ]
}

/// The layer, applied once to the whole router.
#[derive(Clone)]
pub(crate) struct EdgeLayer {
    state: AppState,
}

impl EdgeLayer {
    pub(crate) fn new(state: AppState) -> EdgeLayer {
        EdgeLayer { state }
    }
}

impl<S> Layer<S> for EdgeLayer {
    type Service = Edge<S>;

    fn layer(&self, inner: S) -> Edge<S> {
        Edge {
            inner,
            state: self.state.clone(),
        }
    }
}

/// The edge service around the routes.
#[derive(Clone)]
pub(crate) struct Edge<S> {
    inner: S,
    state: AppState,
}

impl<S> Service<Request> for Edge<S>
where
    S: Service<Request, Error = Infallible> + Clone + Send + 'static,
    S::Response: IntoResponse,
    S::Future: Send + 'static,
{
    type Response = Response;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Response, Infallible>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request) -> Self::Future {
        let started = Instant::now();
        let id = request_id(&request);
        let route = request.extensions().get::<MatchedPath>().cloned();
        let method = request.method().clone();
        let uri = request.uri().clone();
        let refused = crate::csrf::refuse(&request, &self.state);
        // A browser asking for a page (not the proxy's forward-auth check) gets errors as HTML.
        let wants_html = route.as_ref().is_none_or(|r| r.as_str() != FORWARD_AUTH)
            && request
                .headers()
                .get(header::ACCEPT)
                .is_some_and(|v| v.as_bytes().windows(9).any(|w| w == b"text/html"));
        let state = self.state.clone();
        // The service that was made ready is the one called; a clone takes its place.
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        Box::pin(async move {
            let mut response = match refused {
                Some(refusal) => refusal,
                None => match inner.call(request).await {
                    Ok(response) => response.into_response(),
                    Err(never) => match never {},
                },
            };
            if wants_html && response.status().as_u16() >= 400 {
                as_html(&state, &mut response);
            }
            let status = response.status();
            let headers = response.headers_mut();
            // A forward-auth grant is read by the reverse proxy and never reaches a browser
            // (nginx `auth_request` and Traefik `forwardAuth` copy only the identity headers
            // they are told to), so the rendering headers would only cost time on the hot
            // path. Its refusals (401, 302) may be passed to the browser and get them.
            let grant = status == StatusCode::OK
                && route.as_ref().is_some_and(|r| r.as_str() == FORWARD_AUTH);
            if !grant {
                headers.reserve(5);
                for (name, value) in security_headers() {
                    headers.insert(name, value);
                }
            }
            headers.insert(REQUEST_ID, id.clone());
            let elapsed = started.elapsed();
            crate::metrics::observe(route.as_ref(), &method, status, elapsed);
            let micros = elapsed.as_micros() as u64;
            let id = id.to_str().unwrap_or("-");
            let path = uri.path();
            let status = status.as_u16();
            match response.extensions().get::<Cause>() {
                Some(Cause(cause)) if status >= 500 => {
                    tracing::error!(request_id = %id, %method, %path, status, micros, cause = %cause, "request failed")
                }
                Some(Cause(cause)) => {
                    tracing::info!(request_id = %id, %method, %path, status, micros, cause = %cause, "request refused")
                }
                None => {
                    tracing::debug!(request_id = %id, %method, %path, status, micros, "request")
                }
            }
            Ok(response)
        })
    }
}

/// Replaces a JSON error body with the HTML error page (same status and headers).
fn as_html(state: &AppState, response: &mut Response) {
    let json = response
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"application/json"));
    if !json {
        return;
    }
    if let Some(html) = crate::error_page::render(&state.config().branding, response.status()) {
        *response.body_mut() = axum::body::Body::from(html);
        let headers = response.headers_mut();
        headers.remove(header::CONTENT_LENGTH);
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/html; charset=utf-8"),
        );
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
}

/// The longest request id accepted from a client; longer ones are replaced.
const MAX_REQUEST_ID: usize = 128;

/// The client's `X-Request-Id` when it is short and printable, else a new one.
fn request_id(request: &Request) -> HeaderValue {
    if let Some(v) = request.headers().get(&REQUEST_ID)
        && !v.is_empty()
        && v.len() <= MAX_REQUEST_ID
        && v.as_bytes().iter().all(|b| b.is_ascii_graphic())
    {
        return v.clone();
    }
    new_request_id()
}

/// A process-unique id: a random prefix drawn once per process (so that ids from different
/// nodes do not collide) and a counter. Unpredictability is not needed, so no per-request
/// call to the system's random source.
fn new_request_id() -> HeaderValue {
    static PREFIX: OnceLock<u64> = OnceLock::new();
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let prefix = *PREFIX.get_or_init(|| u64::from_le_bytes(tessera_domain::random::bytes::<8>()));
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    // `{prefix:016x}-{n:012x}` without the formatting machinery (this runs on every request).
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut id = [b'-'; 16 + 1 + 12];
    for (i, slot) in id[..16].iter_mut().enumerate() {
        *slot = HEX[((prefix >> (60 - 4 * i)) & 0xf) as usize];
    }
    for (i, slot) in id[17..].iter_mut().enumerate() {
        *slot = HEX[((n >> (44 - 4 * i)) & 0xf) as usize];
    }
    HeaderValue::from_bytes(&id).unwrap_or_else(|_| HeaderValue::from_static("-"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn new_ids_are_unique_and_well_formed() {
        let a = new_request_id();
        let b = new_request_id();
        assert_ne!(a, b);
        let a = a.to_str().unwrap();
        assert_eq!(a.len(), 16 + 1 + 12);
        assert!(a.bytes().all(|c| c.is_ascii_hexdigit() || c == b'-'));
        assert_eq!(&a[16..17], "-");
        // The counter part counts.
        let (pa, na) = a.split_at(17);
        let b = b.to_str().unwrap();
        let (pb, nb) = b.split_at(17);
        assert_eq!(pa, pb);
        // (Other tests in this process draw ids too: later, not necessarily next.)
        assert!(u64::from_str_radix(nb, 16).unwrap() > u64::from_str_radix(na, 16).unwrap());
    }

    #[test]
    fn client_ids_are_kept_only_when_short_and_printable() {
        let with = |v: &[u8]| {
            let mut r = Request::new(axum::body::Body::empty());
            r.headers_mut()
                .insert(REQUEST_ID, HeaderValue::from_bytes(v).unwrap());
            request_id(&r)
        };
        assert_eq!(with(b"trace-123"), "trace-123");
        assert_ne!(with(&[b'a'; 129]).as_bytes(), &[b'a'; 129][..]);
        assert_ne!(with(b"has space"), "has space");
        assert_ne!(with(b""), "");
    }
}
