//! The in-process session cache in front of the store, and coalesced activity touches.
//!
//! Forward-auth is the hot path: a valid cookie is answered from memory (moka), and the idle
//! timeout slides by updating the cached copy and queueing one touch per session per
//! `touch_interval`, flushed to the store in batches. Every invalidation goes through
//! [`SessionCache::forget`] (one session) or [`SessionCache::forget_account`] (all of an
//! account's): the invalidation point that this node's writes and the change feed
//! (`crate::changes`, changes made by other nodes and the CLI) both call.
//!
//! **Invalidation wins every race.** A miss reads the session row, then inserts; a revocation
//! deletes the row, then calls `forget`. Without care, a miss that read the row before the
//! delete inserts it after `forget` ran, and the revoked session works again until the entry
//! ages out. So token hashes are split into shards, each with a generation behind an async
//! `RwLock`: `forget` bumps the generation and drops the entries under the write lock; a miss
//! notes the generation before it reads the store and inserts only under the read lock and
//! only if the generation is unchanged. An insert is therefore either before `forget`'s
//! critical section (and dropped by it) or after it (and then its read, which started after
//! the delete committed, found no row). A cache hit takes no lock.
//!
//! **Time is the injected clock.** An entry records when it was read (`loaded_at`, from the
//! server's `Clock`) and is served from memory only until `loaded_at + ttl`; moka's own
//! time-to-live, on the wall clock, is only a memory bound set a minute beyond that.

use std::collections::HashMap;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::http::HeaderValue;
use moka::future::Cache;
use tessera_domain::StoreError;
use tessera_domain::account::{Account, AccountId};
use tessera_domain::clock::UnixTime;
use tessera_domain::session::{Session, SessionPolicy, TokenHash};
use tessera_domain::store::Store;
use tokio::sync::RwLock;

#[cfg(test)]
mod tests;

/// Number of invalidation shards: a `forget` makes concurrent misses of the same shard skip
/// their insert (they still answer), so more shards mean fewer needless misses.
const SHARDS: usize = 64;

/// How long past the injected-clock TTL moka keeps an entry by the wall clock (memory bound only).
const MEMORY_SLACK: Duration = Duration::from_secs(60);

/// The invalidation shard of a token hash (a SHA-256 output, so its first byte is uniform).
fn shard_of(hash: &TokenHash) -> usize {
    usize::from(hash.0[0]) % SHARDS
}

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
    /// When this node read the entry from the store (injected clock).
    loaded_at: UnixTime,
}

/// `X-Tessera-User`, `X-Tessera-Email` and `X-Tessera-Groups` values for an account; cloning
/// a `HeaderValue` is a reference-count increment, so the hot path neither formats nor
/// validates them.
#[derive(Debug)]
pub(crate) struct IdentityHeaders {
    pub(crate) user: Option<HeaderValue>,
    pub(crate) email: Option<HeaderValue>,
    pub(crate) groups: Option<HeaderValue>,
    /// `X-Tessera-Amr`: the session's RFC 8176 methods, comma-separated (`pwd,otp,mfa`).
    pub(crate) amr: Option<HeaderValue>,
    /// Whether the session passed two factors (its `amr` holds `mfa`).
    pub(crate) mfa: bool,
}

impl IdentityHeaders {
    /// The values for `account`; a value that cannot be a header is left out, except the
    /// email, which is sent empty when the account has none: a proxy that copies headers from
    /// the check's answer by placeholder (Caddy 2.6's `forward_auth` `copy_headers`) would
    /// otherwise hand the app the placeholder's own text.
    pub(crate) fn of(account: &Account, amr: &[String]) -> IdentityHeaders {
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
            amr: HeaderValue::from_str(&amr.join(",")).ok(),
            mfa: amr.iter().any(|m| m == "mfa"),
        }
    }
}

/// Cached sessions plus pending touches.
#[derive(Clone)]
pub(crate) struct SessionCache {
    cache: Cache<TokenHash, Arc<Resolved>>,
    touches: Arc<Mutex<HashMap<TokenHash, UnixTime>>>,
    /// One invalidation generation per shard of token hashes (see the module documentation).
    generations: Arc<[RwLock<u64>]>,
    policy: SessionPolicy,
    /// Seconds an entry is served from memory, measured on the injected clock.
    ttl: i64,
    /// Test hook: pauses the next miss between its store read and its insert.
    #[cfg(test)]
    gate: Arc<Mutex<Option<Arc<tests::Gate>>>>,
}

impl SessionCache {
    /// A cache of up to `capacity` sessions, each used for at most `ttl` (on the injected clock)
    /// before it is read from the store again: the bound on how late a change made by another
    /// node (or directly in the database, as the CLI does) is seen.
    pub(crate) fn new(policy: SessionPolicy, capacity: u64, ttl: Duration) -> SessionCache {
        SessionCache {
            cache: Cache::builder()
                .max_capacity(capacity)
                .time_to_live(ttl.saturating_add(MEMORY_SLACK))
                .build(),
            touches: Arc::new(Mutex::new(HashMap::new())),
            generations: (0..SHARDS).map(|_| RwLock::new(0)).collect(),
            policy,
            ttl: i64::try_from(ttl.as_secs()).unwrap_or(i64::MAX),
            #[cfg(test)]
            gate: Arc::new(Mutex::new(None)),
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
            Some(entry) if now < entry.loaded_at.plus(self.ttl) => entry,
            stale => match self.load(store, hash, now, stale.as_deref()).await? {
                Some(entry) => entry,
                None => return Ok(None),
            },
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

    /// A miss, or an entry past its TTL (`stale`): reads the session and its account from the
    /// store, and caches them unless an invalidation of the same shard ran meanwhile (then the
    /// answer, read before that invalidation finished, is given to this request only).
    async fn load(
        &self,
        store: &dyn Store,
        hash: TokenHash,
        now: UnixTime,
        stale: Option<&Resolved>,
    ) -> Result<Option<Arc<Resolved>>, StoreError> {
        let shard = &self.generations[shard_of(&hash)];
        // Noted before the read: an invalidation that completes after this point bumps it.
        let before = *shard.read().await;
        let Some(session) = store.session_by_token(&hash).await? else {
            if stale.is_some() {
                self.cache.invalidate(&hash).await;
            }
            return Ok(None);
        };
        let Some(account) = store.account_by_id(&session.account_id).await? else {
            if stale.is_some() {
                self.cache.invalidate(&hash).await;
            }
            return Ok(None);
        };
        // Activity this node saw but has not written yet still counts (a pending touch, or the
        // copy that aged out), so a reload never moves the idle clock backwards.
        let pending = self
            .touches
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&hash)
            .copied();
        let last_seen = [
            Some(session.last_seen_at),
            pending,
            stale.map(|e| UnixTime(e.last_seen.load(Ordering::Relaxed))),
        ]
        .into_iter()
        .flatten()
        .max()
        .unwrap_or(session.last_seen_at);
        let entry = Arc::new(Resolved {
            last_seen: AtomicI64::new(last_seen.0),
            loaded_at: now,
            headers: IdentityHeaders::of(&account, &session.amr),
            session,
            account: Arc::new(account),
        });
        #[cfg(test)]
        self.pause_if_gated().await;
        let generation = shard.read().await;
        if *generation == before {
            self.cache.insert(hash, entry.clone()).await;
        }
        drop(generation);
        Ok(Some(entry))
    }

    /// Drops sessions from the cache (logout, revoke, account change): the one place where
    /// session invalidation happens. Call it after the store no longer holds them; when it
    /// returns, no request that starts later is answered from a copy read before. Runs to the
    /// end even if the caller is cancelled (a client that hangs up mid-logout).
    pub(crate) async fn forget(&self, hashes: &[TokenHash]) {
        let this = self.clone();
        let hashes = hashes.to_vec();
        let work = tokio::spawn(async move { this.forget_now(&hashes).await });
        if let Err(e) = work.await {
            tracing::error!(error = %e, "session cache invalidation did not finish");
        }
    }

    async fn forget_now(&self, hashes: &[TokenHash]) {
        {
            let mut touches = self.touches.lock().unwrap_or_else(|e| e.into_inner());
            for hash in hashes {
                touches.remove(hash);
            }
        }
        let mut shards: Vec<usize> = hashes.iter().map(shard_of).collect();
        shards.sort_unstable();
        shards.dedup();
        for shard in shards {
            // Bump and drop under the write lock: a miss of this shard inserts either before
            // (and is dropped here) or after, seeing the new generation (and skips its insert).
            let mut generation = self.generations[shard].write().await;
            *generation = generation.wrapping_add(1);
            for hash in hashes.iter().filter(|h| shard_of(h) == shard) {
                self.cache.invalidate(hash).await;
            }
        }
    }

    /// Drops every cached session of `account` (sign out everywhere, account disabled, deleted
    /// or changed on another node): the account-wide sibling of [`SessionCache::forget`], with
    /// the same guarantee. It takes every shard's write lock (in shard order, as `forget`
    /// does), bumps every generation, then drops the account's entries: a miss that read the
    /// store before this finished skips its insert. Walks the whole cache, which is fine for a
    /// rare, account-wide event and leaves the hit path untouched.
    pub(crate) async fn forget_account(&self, account: &AccountId) {
        let this = self.clone();
        let account = account.clone();
        let work = tokio::spawn(async move { this.forget_account_now(&account).await });
        if let Err(e) = work.await {
            tracing::error!(error = %e, "session cache invalidation did not finish");
        }
    }

    async fn forget_account_now(&self, account: &AccountId) {
        let mut guards = Vec::with_capacity(SHARDS);
        for shard in self.generations.iter() {
            let mut generation = shard.write().await;
            *generation = generation.wrapping_add(1);
            guards.push(generation);
        }
        let hashes: Vec<TokenHash> = self
            .cache
            .iter()
            .filter(|(_, entry)| entry.session.account_id == *account)
            .map(|(hash, _)| *hash)
            .collect();
        {
            let mut touches = self.touches.lock().unwrap_or_else(|e| e.into_inner());
            for hash in &hashes {
                touches.remove(hash);
            }
        }
        for hash in &hashes {
            self.cache.invalidate(hash).await;
        }
        drop(guards);
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

    /// Test hook: the next miss stops between its store read and its insert until released.
    #[cfg(test)]
    pub(crate) fn pause_next_miss(&self) -> Arc<tests::Gate> {
        let gate = Arc::new(tests::Gate::default());
        *self.gate.lock().unwrap_or_else(|e| e.into_inner()) = Some(gate.clone());
        gate
    }

    #[cfg(test)]
    async fn pause_if_gated(&self) {
        let gate = self.gate.lock().unwrap_or_else(|e| e.into_inner()).take();
        if let Some(gate) = gate {
            gate.reached.notify_one();
            gate.release.notified().await;
        }
    }

    /// Number of cached sessions, after moka has applied its pending bookkeeping.
    pub(crate) async fn cached(&self) -> u64 {
        self.cache.run_pending_tasks().await;
        self.cache.entry_count()
    }
}
