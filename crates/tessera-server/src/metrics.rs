//! Prometheus metrics: per-route request counts and latency histograms (middleware), login
//! outcomes by reason (one global recorder per process), and the session gauges, which are
//! counted for the scraped server at scrape time ([`render`]), so they are never stale.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::sync::{OnceLock, RwLock};
use std::time::Duration;

use axum::extract::MatchedPath;
use axum::http::{Method, StatusCode};
use metrics::{Counter, Histogram};
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};

use crate::app::AppState;

/// The process-wide Prometheus handle (installed on first use).
pub(crate) fn handle() -> PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE
        .get_or_init(|| {
            let builder = PrometheusBuilder::new();
            let builder = builder
                .set_buckets(&[
                    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25,
                    0.5, 1.0, 2.5,
                ])
                .unwrap_or_else(|_| PrometheusBuilder::new());
            let recorder = builder.build_recorder();
            let handle = recorder.handle();
            // Another recorder may already be installed (several servers in one test
            // process); the handle still renders this one's registry.
            let _ = metrics::set_global_recorder(recorder);
            handle
        })
        .clone()
}

/// The per-route handles, registered once: looking a metric up by name and labels hashes and
/// allocates the key, which is too slow for every request on the forward-auth path.
struct RouteMetrics {
    duration: Histogram,
    /// One counter per (method label, status) seen on this route; a handful per route.
    counters: Vec<(&'static str, u16, Counter)>,
}

/// Handles by route label.
static ROUTES: OnceLock<RwLock<HashMap<Box<str>, RouteMetrics>>> = OnceLock::new();

/// The method as a label: the standard methods, else `other` (a client may send any token as
/// a method, and label values must stay few).
fn method_label(method: &Method) -> &'static str {
    match *method {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::DELETE => "DELETE",
        Method::PATCH => "PATCH",
        Method::HEAD => "HEAD",
        Method::OPTIONS => "OPTIONS",
        _ => "other",
    }
}

/// Counts a request and observes its latency, per matched route (never the raw path, which
/// would let clients create unbounded label values).
pub(crate) fn observe(
    route: Option<&MatchedPath>,
    method: &Method,
    status: StatusCode,
    elapsed: Duration,
) {
    let route = route.map_or("unmatched", |p| p.as_str());
    let method = method_label(method);
    let status = status.as_u16();
    let routes = ROUTES.get_or_init(Default::default);
    {
        let map = routes.read().unwrap_or_else(|e| e.into_inner());
        if let Some(m) = map.get(route)
            && m.observe(method, status, elapsed)
        {
            return;
        }
    }
    // First time for this route, method and status: register its handles once.
    let mut map = routes.write().unwrap_or_else(|e| e.into_inner());
    let m = map.entry(route.into()).or_insert_with(|| RouteMetrics {
        duration: metrics::histogram!("tessera_http_request_duration_seconds", "route" => route.to_owned()),
        counters: Vec::new(),
    });
    if !m.observe(method, status, elapsed) {
        let counter = metrics::counter!("tessera_http_requests_total", "route" => route.to_owned(), "method" => method, "status" => status.to_string());
        m.counters.push((method, status, counter));
        m.observe(method, status, elapsed);
    }
}

impl RouteMetrics {
    /// Counts the request and records its latency, if this (method, status) has a counter.
    fn observe(&self, method: &'static str, status: u16, elapsed: Duration) -> bool {
        let Some((_, _, counter)) = self
            .counters
            .iter()
            .find(|(me, st, _)| *me == method && *st == status)
        else {
            return false;
        };
        counter.increment(1);
        self.duration.record(elapsed.as_secs_f64());
        true
    }
}

/// Drains recorded histogram samples into their buckets. Without it, samples pile up in
/// memory until the next scrape of `/metrics`; the server calls it every few seconds.
pub(crate) fn upkeep() {
    handle().run_upkeep();
}

/// The text for a scrape of `state`'s server: the process-wide registry, then the gauges that
/// must be current, counted now: `tessera_active_sessions` (sessions in the store neither
/// expired nor idle, on the injected clock) and `tessera_session_cache_entries` (this node's
/// cache). The count is one query; scrapes take turns, so however many arrive at once, at most
/// one such query runs (an unauthenticated endpoint must not fan out database scans). When the
/// store fails, the active-sessions gauge is left out (absent, not a wrong number) and the
/// cause logged.
pub(crate) async fn render(state: &AppState) -> String {
    static ONE_COUNT_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());
    let mut text = handle().render();
    let active = {
        let _turn = ONE_COUNT_AT_A_TIME.lock().await;
        let idle = state.config().sessions.idle_timeout;
        state.store().count_active_sessions(state.now(), idle).await
    };
    match active {
        Ok(n) => {
            let _ = write!(
                text,
                "# HELP tessera_active_sessions Sessions neither expired nor idle, counted at scrape time.\n\
                 # TYPE tessera_active_sessions gauge\n\
                 tessera_active_sessions {n}\n"
            );
        }
        Err(e) => tracing::warn!(error = %e, "could not count active sessions for /metrics"),
    }
    let cached = state.sessions().cached().await;
    let _ = write!(
        text,
        "# HELP tessera_session_cache_entries Sessions cached in memory by this server.\n\
         # TYPE tessera_session_cache_entries gauge\n\
         tessera_session_cache_entries {cached}\n"
    );
    text
}

/// Counts a login outcome (`success`, or the denial reason).
pub(crate) fn login(outcome: &'static str) {
    metrics::counter!("tessera_logins_total", "outcome" => outcome).increment(1);
}
