//! The in-process session cache in front of the store, and coalesced activity touches.
//!
//! Forward-auth is the hot path: a valid cookie is answered from memory (moka), and the idle
//! timeout slides by updating the cached copy and queueing one touch per session per
//! `touch_interval`, flushed to the store in batches. Every invalidation goes through
//! [`SessionCache::forget`], the one place a later cross-node notifier will hook into.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use moka::future::Cache;
use tessera_domain::StoreError;
use tessera_domain::account::Account;
use tessera_domain::clock::UnixTime;
use tessera_domain::session::{Session, SessionPolicy, TokenHash};
use tessera_domain::store::Store;

/// A session with its account, as forward-auth needs it.
#[derive(Clone, Debug)]
pub(crate) struct Resolved {
    pub(crate) session: Session,
    pub(crate) account: Arc<Account>,
}

/// Cached sessions plus pending touches.
#[derive(Clone)]
pub(crate) struct SessionCache {
    cache: Cache<TokenHash, Arc<Mutex<Resolved>>>,
    touches: Arc<Mutex<HashMap<TokenHash, UnixTime>>>,
    policy: SessionPolicy,
}

impl SessionCache {
    /// How long a cached entry may be used before it is re-read from the store. Bounds how late
    /// a change made by another node (or directly in the database) is seen.
    const TTL: Duration = Duration::from_secs(60);

    pub(crate) fn new(policy: SessionPolicy, capacity: u64) -> SessionCache {
        SessionCache {
            cache: Cache::builder()
                .max_capacity(capacity)
                .time_to_live(Self::TTL)
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
    ) -> Result<Option<Resolved>, StoreError> {
        let entry = match self.cache.get(&hash).await {
            Some(entry) => entry,
            None => {
                let Some(session) = store.session_by_token(&hash).await? else {
                    return Ok(None);
                };
                let Some(account) = store.account_by_id(&session.account_id).await? else {
                    return Ok(None);
                };
                let entry = Arc::new(Mutex::new(Resolved {
                    session,
                    account: Arc::new(account),
                }));
                self.cache.insert(hash, entry.clone()).await;
                entry
            }
        };
        let resolved = {
            let mut guard = entry.lock().unwrap_or_else(|e| e.into_inner());
            if !guard.session.is_active(now, &self.policy) || guard.account.disabled {
                None
            } else {
                if guard.session.needs_touch(now, &self.policy) {
                    guard.session.last_seen_at = now;
                    self.touches
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .insert(hash, now);
                }
                Some(guard.clone())
            }
        };
        if resolved.is_none() {
            self.cache.invalidate(&hash).await;
        }
        Ok(resolved)
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
