//! The in-process session cache in front of the store, and coalesced activity touches.
//!
//! Forward-auth is the hot path: a valid cookie is answered from memory (moka), and the idle
//! timeout slides by updating the cached copy and queueing one touch per session per
//! `touch_interval`, flushed to the store in batches. Every invalidation goes through
//! [`SessionCache::forget`], the one place a later cross-node notifier will hook into.

use std::collections::HashMap;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::http::HeaderValue;
use moka::future::Cache;
use tessera_domain::StoreError;
use tessera_domain::account::Account;
use tessera_domain::clock::UnixTime;
use tessera_domain::session::{Session, SessionPolicy, TokenHash};
use tessera_domain::store::Store;

/// A session with its account, as forward-auth needs it. Shared (`Arc`) between the cache and
/// requests, so the hot path clones a pointer, not the session's strings.
#[derive(Debug)]
pub(crate) struct Resolved {
    /// The session as loaded (its `last_seen_at` is the stored value; see `last_seen`).
    pub(crate) session: Session,
    pub(crate) account: Arc<Account>,
    /// The forward-auth identity headers, built once when the entry is loaded.
    pub(crate) headers: IdentityHeaders,
    /// Last activity seen by this node, moved forward without a lock.
    last_seen: AtomicI64,
}

/// `X-Tessera-User`, `X-Tessera-Email` and `X-Tessera-Groups` values for an account; cloning
/// a `HeaderValue` is a reference-count increment, so the hot path neither formats nor
/// validates them.
#[derive(Debug)]
pub(crate) struct IdentityHeaders {
    pub(crate) user: Option<HeaderValue>,
    pub(crate) email: Option<HeaderValue>,
    pub(crate) groups: Option<HeaderValue>,
}

impl IdentityHeaders {
    /// The values for `account`; a value that cannot be a header is left out, except the
    /// email, which is sent empty when the account has none: a proxy that copies headers from
    /// the check's answer by placeholder (Caddy 2.6's `forward_auth` `copy_headers`) would
    /// otherwise hand the app the placeholder's own text.
    pub(crate) fn of(account: &Account) -> IdentityHeaders {
        let groups: Vec<&str> = account.groups.iter().map(|g| g.as_str()).collect();
        IdentityHeaders {
            user: HeaderValue::from_str(account.username.as_str()).ok(),
            email: Some(
                account
                    .email
                    .as_ref()
                    .and_then(|e| HeaderValue::from_str(e.as_str()).ok())
                    .unwrap_or_else(|| HeaderValue::from_static("")),
            ),
            groups: HeaderValue::from_str(&groups.join(",")).ok(),
        }
    }
}

/// Cached sessions plus pending touches.
#[derive(Clone)]
pub(crate) struct SessionCache {
    cache: Cache<TokenHash, Arc<Resolved>>,
    touches: Arc<Mutex<HashMap<TokenHash, UnixTime>>>,
    policy: SessionPolicy,
}

impl SessionCache {
    /// A cache of up to `capacity` sessions, each used for at most `ttl` before it is read
    /// from the store again: the bound on how late a change made by another node (or directly
    /// in the database, as the CLI does) is seen.
    pub(crate) fn new(policy: SessionPolicy, capacity: u64, ttl: Duration) -> SessionCache {
        SessionCache {
            cache: Cache::builder()
                .max_capacity(capacity)
                .time_to_live(ttl)
                .build(),
            touches: Arc::new(Mutex::new(HashMap::new())),
            policy,
        }
    }

    /// Resolves a token hash to an active session, from memory when possible. Records activity.
    pub(crate) async fn resolve(
        &self,
        store: &dyn Store,
        hash: TokenHash,
        now: UnixTime,
    ) -> Result<Option<Arc<Resolved>>, StoreError> {
        let entry = match self.cache.get(&hash).await {
            Some(entry) => entry,
            None => {
                let Some(session) = store.session_by_token(&hash).await? else {
                    return Ok(None);
                };
                let Some(account) = store.account_by_id(&session.account_id).await? else {
                    return Ok(None);
                };
                let entry = Arc::new(Resolved {
                    last_seen: AtomicI64::new(session.last_seen_at.0),
                    headers: IdentityHeaders::of(&account),
                    session,
                    account: Arc::new(account),
                });
                self.cache.insert(hash, entry.clone()).await;
                entry
            }
        };
        let last_seen = UnixTime(entry.last_seen.load(Ordering::Relaxed));
        let active = now < entry.session.expires_at
            && now < last_seen.plus(self.policy.idle_timeout)
            && !entry.account.disabled;
        if !active {
            self.cache.invalidate(&hash).await;
            return Ok(None);
        }
        // Coalesce: at most one touch per session per interval, however many requests race.
        if now.since(last_seen) >= self.policy.touch_interval
            && entry
                .last_seen
                .compare_exchange(last_seen.0, now.0, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
        {
            self.touches
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .insert(hash, now);
        }
        Ok(Some(entry))
    }

    /// Drops sessions from the cache (logout, revoke, account change). The one place where
    /// session invalidation happens.
    pub(crate) async fn forget(&self, hashes: &[TokenHash]) {
        {
            let mut touches = self.touches.lock().unwrap_or_else(|e| e.into_inner());
            for hash in hashes {
                touches.remove(hash);
            }
        }
        for hash in hashes {
            self.cache.invalidate(hash).await;
        }
    }

    /// Writes pending touches to the store in one batch.
    pub(crate) async fn flush(&self, store: &dyn Store) -> Result<usize, StoreError> {
        let batch: Vec<(TokenHash, UnixTime)> = {
            let mut touches = self.touches.lock().unwrap_or_else(|e| e.into_inner());
            touches.drain().collect()
        };
        if batch.is_empty() {
            return Ok(0);
        }
        if let Err(e) = store.touch_sessions(&batch).await {
            self.requeue(batch);
            return Err(e);
        }
        Ok(batch.len())
    }

    /// Puts touches back so the next flush retries them; newer touches win.
    fn requeue(&self, batch: Vec<(TokenHash, UnixTime)>) {
        let mut touches = self.touches.lock().unwrap_or_else(|e| e.into_inner());
        for (hash, at) in batch {
            let slot = touches.entry(hash).or_insert(at);
            *slot = (*slot).max(at);
        }
    }

    /// Number of cached sessions (approximate).
    pub(crate) fn cached(&self) -> u64 {
        self.cache.entry_count()
    }
}
