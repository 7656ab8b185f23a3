//! Router assembly, shared state, background tasks, and the serve loop with graceful shutdown.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use tessera_domain::admin::{AdminToken, AdminTokenSeal};
use tessera_domain::clock::{Clock, UnixTime};
use tessera_domain::delivery::Senders;
use tessera_domain::factor::FactorKeys;
use tessera_domain::factors::FactorContext;
use tessera_domain::session::CookieSeal;
use tessera_domain::store::Store;
use tessera_token::seal::KeyRing;
use tokio::net::TcpListener;
use tower_http::limit::RequestBodyLimitLayer;

use crate::config::ServerConfig;
use crate::passwords::BlockingPasswords;
use crate::sessions::SessionCache;
use crate::throttle::Throttle;

/// Everything handlers share. Cheap to clone.
#[derive(Clone)]
pub struct AppState {
    inner: Arc<Inner>,
}

struct Inner {
    store: Arc<dyn Store>,
    clock: Arc<dyn Clock>,
    passwords: BlockingPasswords,
    config: ServerConfig,
    sessions: SessionCache,
    seal: CookieSeal,
    pending_seal: crate::cookie::PendingSeal,
    admin_seal: AdminTokenSeal,
    /// Whether an untagged (first-format) admin token was accepted yet: said once per process.
    untagged_admin_seen: std::sync::atomic::AtomicBool,
    throttle: Throttle,
    factor_keys: FactorKeys,
    senders: Senders,
}

/// What second factors need besides the configuration, given by the composition root: the
/// master key ring sealing TOTP/HOTP seeds (none when no master key is configured; see
/// [`AppState::master_keys`]) and the channels sending one-time codes.
#[derive(Clone, Debug, Default)]
pub struct SecondFactors {
    /// The master key and the previous ones (for rotation), if configured.
    pub master_keys: Option<Arc<KeyRing>>,
    /// Email, SMS and development-log senders (`[delivery]`).
    pub senders: Senders,
}

/// The name of the marker [`AppState::bootstrap_admin`] writes once per database.
const BOOTSTRAP_MARKER: &str = "bootstrap-admin-done";

/// The name of the server-wide secret keying the cookie seal.
const COOKIE_SEAL_SECRET: &str = "session-cookie-seal";

impl AppState {
    /// Builds the state without a master key or code senders (see [`AppState::with`]).
    pub async fn new(
        config: ServerConfig,
        store: Arc<dyn Store>,
        clock: Arc<dyn Clock>,
        passwords: BlockingPasswords,
    ) -> Result<AppState, tessera_domain::StoreError> {
        AppState::with(config, store, clock, passwords, SecondFactors::default()).await
    }

    /// Builds the state: fetches (or creates, once for all nodes) the cookie-seal and
    /// admin-token-seal keys, and keeps the second factors' master keys and senders.
    pub async fn with(
        config: ServerConfig,
        store: Arc<dyn Store>,
        clock: Arc<dyn Clock>,
        passwords: BlockingPasswords,
        factors: SecondFactors,
    ) -> Result<AppState, tessera_domain::StoreError> {
        // Install the metrics recorder before the first request records anything.
        let _ = crate::metrics::handle();
        let candidate = tessera_domain::random::bytes::<32>();
        let key = store.server_secret(COOKIE_SEAL_SECRET, &candidate).await?;
        let admin_seal = AdminTokenSeal::load(store.as_ref()).await?;
        let factor_keys = FactorKeys::load(store.as_ref(), factors.master_keys).await?;
        // Before the first sign-in: unknown names cost what the stored hashes cost.
        if let Err(e) = passwords.mirror_stored_cost(store.as_ref()).await {
            tracing::warn!(error = %e, "could not match the dummy hash to the stored cost");
        }
        Ok(AppState {
            inner: Arc::new(Inner {
                sessions: SessionCache::new(
                    config.sessions,
                    1_000_000,
                    Duration::from_secs(config.session_cache_ttl),
                ),
                throttle: Throttle::new(&config.throttle, clock.clone()),
                seal: CookieSeal::new(&key),
                pending_seal: crate::cookie::PendingSeal::new(&key),
                admin_seal,
                untagged_admin_seen: std::sync::atomic::AtomicBool::new(false),
                store,
                clock,
                passwords,
                config,
                factor_keys,
                senders: factors.senders,
            }),
        })
    }

    pub(crate) fn store(&self) -> &dyn Store {
        self.inner.store.as_ref()
    }

    pub(crate) fn now(&self) -> UnixTime {
        self.inner.clock.now()
    }

    pub(crate) fn passwords(&self) -> &BlockingPasswords {
        &self.inner.passwords
    }

    /// The configuration.
    pub fn config(&self) -> &ServerConfig {
        &self.inner.config
    }

    pub(crate) fn sessions(&self) -> &SessionCache {
        &self.inner.sessions
    }

    pub(crate) fn seal(&self) -> &CookieSeal {
        &self.inner.seal
    }

    pub(crate) fn pending_seal(&self) -> &crate::cookie::PendingSeal {
        &self.inner.pending_seal
    }

    pub(crate) fn admin_seal(&self) -> &AdminTokenSeal {
        &self.inner.admin_seal
    }

    /// True the first time this process accepts an untagged admin token, false afterwards.
    pub(crate) fn first_untagged_admin_token(&self) -> bool {
        !self
            .inner
            .untagged_admin_seen
            .swap(true, std::sync::atomic::Ordering::Relaxed)
    }

    pub(crate) fn throttle(&self) -> &Throttle {
        &self.inner.throttle
    }

    /// The master key ring, if one is configured.
    pub fn master_keys(&self) -> Option<&KeyRing> {
        self.inner.factor_keys.ring()
    }

    /// What the second-factor services need, at the current time.
    pub(crate) fn factor_ctx(&self) -> FactorContext<'_> {
        FactorContext {
            store: self.store(),
            keys: &self.inner.factor_keys,
            policy: self.config().factors,
            now: self.now(),
        }
    }

    /// The senders of one-time codes.
    pub(crate) fn senders(&self) -> &Senders {
        &self.inner.senders
    }

    /// Whether a factor may be enrolled, given whether its kind seals a seed (TOTP, HOTP).
    /// Without a master key, production (behind a TLS proxy) refuses every enrolment: the
    /// deployment is not finished (issue 9, "secrets at rest"); development mode refuses only
    /// the kinds that need sealing, since their seeds cannot be kept. The error is a 503 for
    /// the client and names the missing setting in the log line.
    pub(crate) fn check_enrolment(&self, seals_a_seed: bool) -> Result<(), crate::error::ApiError> {
        if self.master_keys().is_some() {
            return Ok(());
        }
        if seals_a_seed || self.config().secure_cookies() {
            return Err(crate::error::ApiError::new(
                crate::error::Code::Unavailable,
                "second-factor enrolment refused: no master key is configured \
                 (set [secrets] master_key_file or TESSERA_MASTER_KEY; see docs/factors.md)",
            ));
        }
        Ok(())
    }

    /// Writes pending session touches now (also done every few seconds and at shutdown).
    pub async fn flush_touches(&self) -> Result<usize, tessera_domain::StoreError> {
        self.inner.sessions.flush(self.store()).await
    }

    /// The password hasher: its parameters and the dummy hash's, for diagnostics and tests.
    pub fn password_hasher(&self) -> &tessera_domain::credential::password::Hasher {
        self.passwords().hasher()
    }

    /// Credential upkeep, run by a background task every few minutes and callable directly:
    /// the dummy hash follows the argon2 cost stored hashes use (re-hashing at sign-in moves
    /// it), and audit events older than `audit_retention` are deleted. Returns how many events
    /// were deleted.
    pub async fn credential_upkeep(&self) -> Result<u64, tessera_domain::DomainError> {
        self.passwords().mirror_stored_cost(self.store()).await?;
        let keep = self.config().audit_retention;
        if keep == 0 {
            return Ok(0);
        }
        let before = self.now().plus(-i64::try_from(keep).unwrap_or(i64::MAX));
        Ok(self.store().prune_audit(before).await?)
    }

    /// One round of the minute's housekeeping (run by [`serve`]): prunes the throttle, deletes
    /// expired sessions, and expired pending sign-ins and sent codes (second factors). Failures
    /// are logged and retried at the next round. The session gauges are counted at scrape time
    /// (`crate::metrics::render`), not here.
    pub async fn housekeep(&self) {
        self.throttle().prune();
        let now = self.now();
        let idle = self.config().sessions.idle_timeout;
        match self.store().delete_expired_sessions(now, idle).await {
            Ok(n) if n > 0 => tracing::info!(deleted = n, "expired sessions removed"),
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "could not remove expired sessions"),
        }
        match self.store().delete_expired_factor_state(now).await {
            Ok(n) if n > 0 => {
                tracing::info!(
                    deleted = n,
                    "expired pending sign-ins and sent codes removed"
                );
            }
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "could not remove expired second-factor state"),
        }
    }

    /// Creates the first admin token on the first call ever made on this database (by any
    /// node), if there is neither an admin token nor an admin account, and returns it so that
    /// the caller can show it once. Stored only as a hash. Every later call, after a restart
    /// too, returns `None` even when no admin is left: a process that can be restarted must
    /// not be a way to mint admin credentials; `tessera admin-token create` is the explicit one.
    pub async fn bootstrap_admin(&self) -> Result<Option<AdminToken>, tessera_domain::DomainError> {
        let store = self.store();
        // The marker is written once per database, first writer wins (the same race-free
        // primitive as the cookie-seal secret): only the call that stored its own candidate
        // is the first one. It is a marker, not a secret; its value means nothing.
        let candidate = tessera_domain::random::bytes::<16>();
        let stored = store.server_secret(BOOTSTRAP_MARKER, &candidate).await?;
        if stored != candidate {
            return Ok(None);
        }
        if store.count_admin_tokens().await? > 0 || store.count_admins().await? > 0 {
            return Ok(None);
        }
        let (token, _) =
            tessera_domain::admin::create_token(store, self.admin_seal(), "bootstrap", self.now())
                .await?;
        Ok(Some(token))
    }
}

/// The full router with every middleware: the edge (request id, CSRF, security headers,
/// metrics, log line; see [`crate::edge`]) around the body-size limit, applied once so that a
/// request crosses one boxed service, not one per concern.
pub fn router(state: AppState) -> Router {
    let max_body = state.config().max_body;
    Router::new()
        .merge(crate::routes::router())
        // Unknown paths get the public error format (an HTML page for browsers), not an empty 404.
        .fallback(|| async {
            crate::error::ApiError::new(crate::error::Code::NotFound, "no such route")
        })
        .layer(
            tower::ServiceBuilder::new()
                .layer(crate::edge::EdgeLayer::new(state.clone()))
                .layer(RequestBodyLimitLayer::new(max_body)),
        )
        .with_state(state)
}

/// Serves until `shutdown` resolves, then finishes in-flight requests and flushes touches.
pub async fn serve(
    listener: TcpListener,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let mut tasks = spawn_background(state.clone());
    tasks.push(crate::changes::follow(state.clone()).await.into_task());
    let app = router(state.clone());
    let timeouts = state.config().timeouts;
    let result = crate::conn::serve_router(listener, app, timeouts, shutdown).await;
    for task in tasks {
        task.abort();
    }
    if let Err(e) = state.flush_touches().await {
        tracing::warn!(error = %e, "could not flush session activity at shutdown");
    }
    result
}

/// The Prometheus endpoint alone: `GET /metrics`, for a listener of its own (`metrics.listen`)
/// that only the monitoring network reaches. Login outcomes by reason live there, never on
/// the public listener, where they would tell an unknown username from a wrong password.
pub fn metrics_router(state: AppState) -> Router {
    Router::new()
        .route("/metrics", axum::routing::get(crate::routes::metrics))
        .with_state(state)
}

/// Serves [`metrics_router`] on `listener` until `shutdown` resolves.
pub async fn serve_metrics(
    listener: TcpListener,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let timeouts = state.config().timeouts;
    crate::conn::serve_router(listener, metrics_router(state), timeouts, shutdown).await
}

fn spawn_background(state: AppState) -> Vec<tokio::task::JoinHandle<()>> {
    let state_for_credentials = state.clone();
    let flush = {
        let state = state.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(5));
            loop {
                tick.tick().await;
                crate::metrics::upkeep();
                if let Err(e) = state.flush_touches().await {
                    tracing::warn!(error = %e, "could not flush session activity; will retry");
                }
            }
        })
    };
    let housekeeping = tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_secs(60));
        loop {
            tick.tick().await;
            state.housekeep().await;
        }
    });
    let credentials = {
        let state = state_for_credentials;
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(CREDENTIAL_UPKEEP_EVERY);
            loop {
                tick.tick().await;
                match state.credential_upkeep().await {
                    Ok(n) if n > 0 => tracing::info!(deleted = n, "old audit events removed"),
                    Ok(_) => {}
                    Err(e) => tracing::warn!(error = %e, "credential upkeep failed; will retry"),
                }
            }
        })
    };
    vec![flush, housekeeping, credentials]
}

/// How often [`AppState::credential_upkeep`] runs.
const CREDENTIAL_UPKEEP_EVERY: Duration = Duration::from_secs(600);
