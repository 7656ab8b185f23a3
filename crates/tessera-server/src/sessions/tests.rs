//! The session cache over a real SQLite store: a revocation beats a miss that read the row
//! before it (a paused miss, deterministic; then many threads at once), and entries age on the
//! injected clock.

use std::sync::atomic::{AtomicBool, AtomicUsize};

use tessera_domain::account::{AccountId, NewAccount, Role, Username};
use tessera_domain::store::{AccountStore as _, SessionStore as _};
use tessera_store_sqlite::SqliteStore;
use tokio::sync::Notify;

use super::*;

/// Where a paused miss waits: `reached` once it has read the store, then `release`.
#[derive(Default)]
pub(crate) struct Gate {
    pub(crate) reached: Notify,
    pub(crate) release: Notify,
}

const T0: UnixTime = UnixTime(1_800_000_000);

struct Fixture {
    store: Arc<SqliteStore>,
    _dir: tempfile::TempDir,
}

async fn fixture() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(SqliteStore::open(&dir.path().join("t.db")).await.unwrap());
    Fixture { store, _dir: dir }
}

impl Fixture {
    async fn account(&self, name: &str) -> AccountId {
        let id = AccountId::generate();
        let new = NewAccount {
            username: Username::parse(name).unwrap(),
            email: None,
            groups: Vec::new(),
            role: Role::User,
        };
        self.store
            .create_account(&new, &id, None, T0)
            .await
            .unwrap();
        id
    }

    async fn session(&self, account: &AccountId, now: UnixTime) -> TokenHash {
        let (session, token) = Session::open(
            account.clone(),
            vec!["pwd".into()],
            None,
            None,
            now,
            &SessionPolicy::default(),
        );
        self.store.create_session(&session).await.unwrap();
        token.hash()
    }

    /// What the handlers do: change the store, then `forget` what it returned.
    async fn revoke(&self, cache: &SessionCache, how: Revoke, account: &AccountId, one: TokenHash) {
        let hashes = match how {
            Revoke::Logout => {
                assert!(self.store.delete_session_by_token(&one).await.unwrap());
                vec![one]
            }
            Revoke::Everywhere => self.store.delete_sessions_of(account).await.unwrap(),
            Revoke::Disable => {
                self.store.set_disabled(account, true, T0).await.unwrap();
                self.store.delete_sessions_of(account).await.unwrap()
            }
        };
        assert!(hashes.contains(&one));
        cache.forget(&hashes).await;
    }
}

/// The ways a session ends early: one session, all of an account's, an account change.
#[derive(Clone, Copy, Debug)]
enum Revoke {
    Logout,
    Everywhere,
    Disable,
}

fn cache(ttl: u64) -> SessionCache {
    SessionCache::new(SessionPolicy::default(), 10_000, Duration::from_secs(ttl))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_miss_that_read_the_row_before_a_revocation_does_not_bring_it_back() {
    for how in [Revoke::Logout, Revoke::Everywhere, Revoke::Disable] {
        // A first miss, and a cached entry past its TTL being read again.
        for reload in [false, true] {
            let f = fixture().await;
            let ada = f.account("ada").await;
            let hash = f.session(&ada, T0).await;
            let cache = cache(10);
            let mut now = T0;
            if reload {
                assert!(cache.resolve(&*f.store, hash, now).await.unwrap().is_some());
                now = now.plus(10);
            }
            let gate = cache.pause_next_miss();
            let racing = {
                let (cache, store) = (cache.clone(), f.store.clone());
                tokio::spawn(async move { cache.resolve(&*store, hash, now).await.unwrap() })
            };
            // The racing miss has read the live row; now the revocation runs to the end.
            // (The time-out only turns a miss that never arrives into a failure, not a hang.)
            tokio::time::timeout(Duration::from_secs(60), gate.reached.notified())
                .await
                .expect("the miss reaches the gate");
            f.revoke(&cache, how, &ada, hash).await;
            gate.release.notify_one();
            // It began before the revocation ended, so its own answer may be the old one...
            assert!(
                racing.await.unwrap().is_some(),
                "the miss read the live row"
            );
            // ...but nothing that starts after the revocation may see the session.
            assert!(
                cache.resolve(&*f.store, hash, now).await.unwrap().is_none(),
                "{how:?} (reload: {reload}): a revoked session is answered from the cache"
            );
        }
    }
}

/// The account-wide path the change feed takes for another node's change (it knows the
/// account, not the hashes): same guarantee as `forget`, and other accounts stay cached.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_miss_that_read_the_row_before_an_account_wide_forget_does_not_bring_it_back() {
    for disable in [false, true] {
        for reload in [false, true] {
            let f = fixture().await;
            let ada = f.account("ada").await;
            let bob = f.account("bob").await;
            let hash = f.session(&ada, T0).await;
            let other = f.session(&ada, T0).await;
            let bobs = f.session(&bob, T0).await;
            let cache = cache(10);
            let mut now = T0;
            assert!(cache.resolve(&*f.store, bobs, now).await.unwrap().is_some());
            assert!(
                cache
                    .resolve(&*f.store, other, now)
                    .await
                    .unwrap()
                    .is_some()
            );
            if reload {
                assert!(cache.resolve(&*f.store, hash, now).await.unwrap().is_some());
                now = now.plus(5);
                // Entries loaded at T0 stay fresh; this one is made stale by hand below.
                cache.cache.invalidate(&hash).await;
            }
            let gate = cache.pause_next_miss();
            let racing = {
                let (cache, store) = (cache.clone(), f.store.clone());
                tokio::spawn(async move { cache.resolve(&*store, hash, now).await.unwrap() })
            };
            tokio::time::timeout(Duration::from_secs(60), gate.reached.notified())
                .await
                .expect("the miss reaches the gate");
            if disable {
                f.store.set_disabled(&ada, true, T0).await.unwrap();
            }
            f.store.delete_sessions_of(&ada).await.unwrap();
            cache.forget_account(&ada).await;
            gate.release.notify_one();
            assert!(
                racing.await.unwrap().is_some(),
                "the miss read the live row"
            );
            for h in [hash, other] {
                assert!(
                    cache.resolve(&*f.store, h, now).await.unwrap().is_none(),
                    "disable: {disable}, reload: {reload}: a revoked session is answered from the cache"
                );
            }
            assert_eq!(cache.cached().await, 1, "bob's entry stays cached");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn revocations_win_against_many_concurrent_resolves() {
    const ROUNDS: usize = 90;
    const RESOLVERS: usize = 4;
    const SESSIONS: usize = 3;
    let f = Arc::new(fixture().await);
    let cache = cache(1);
    let violations = Arc::new(AtomicUsize::new(0));
    for round in 0..ROUNDS {
        let how = [Revoke::Logout, Revoke::Everywhere, Revoke::Disable][round % 3];
        let account = f.account(&format!("u{round}")).await;
        let mut hashes = Vec::new();
        for _ in 0..SESSIONS {
            hashes.push(f.session(&account, T0).await);
        }
        let hashes = Arc::new(hashes);
        let revoked: Arc<Vec<AtomicBool>> =
            Arc::new((0..SESSIONS).map(|_| AtomicBool::new(false)).collect());
        let calls = Arc::new(AtomicUsize::new(0));
        let mut resolvers = Vec::new();
        for r in 0..RESOLVERS {
            let (f, cache, hashes, revoked, calls, violations) = (
                f.clone(),
                cache.clone(),
                hashes.clone(),
                revoked.clone(),
                calls.clone(),
                violations.clone(),
            );
            resolvers.push(tokio::spawn(async move {
                let mut after = 0;
                for i in 0usize.. {
                    let k = (i + r) % SESSIONS;
                    // The clock moves one second every other call: with a 1 s TTL, half the
                    // calls are hits and half reload from the store.
                    let now = T0.plus(i64::try_from(i / 2).unwrap());
                    let ended = revoked[k].load(Ordering::SeqCst);
                    let found = cache.resolve(&*f.store, hashes[k], now).await.unwrap();
                    calls.fetch_add(1, Ordering::SeqCst);
                    if ended && found.is_some() {
                        violations.fetch_add(1, Ordering::SeqCst);
                    }
                    if revoked.iter().all(|b| b.load(Ordering::SeqCst)) {
                        after += 1;
                        if after > 2 * SESSIONS {
                            break;
                        }
                    }
                }
            }));
        }
        // Start revoking after a varying number of resolves, while they keep coming.
        let start = usize::from(tessera_domain::random::bytes::<1>()[0] % 24);
        while calls.load(Ordering::SeqCst) < start {
            tokio::task::yield_now().await;
        }
        match how {
            Revoke::Logout => {
                for (k, hash) in hashes.iter().enumerate() {
                    f.revoke(&cache, how, &account, *hash).await;
                    revoked[k].store(true, Ordering::SeqCst);
                }
            }
            Revoke::Everywhere | Revoke::Disable => {
                f.revoke(&cache, how, &account, hashes[0]).await;
                for flag in revoked.iter() {
                    flag.store(true, Ordering::SeqCst);
                }
            }
        }
        for resolver in resolvers {
            resolver.await.unwrap();
        }
    }
    assert_eq!(
        violations.load(Ordering::SeqCst),
        0,
        "revoked sessions were answered after their revocation had returned"
    );
}

#[tokio::test]
async fn entries_age_on_the_injected_clock_and_keep_unwritten_activity() {
    let f = fixture().await;
    let ada = f.account("ada").await;
    let hash = f.session(&ada, T0).await;
    let cache = cache(5);
    assert!(cache.resolve(&*f.store, hash, T0).await.unwrap().is_some());
    // Changed behind the cache's back (another node, the CLI): unseen within the TTL...
    f.store.set_disabled(&ada, true, T0).await.unwrap();
    assert!(
        cache
            .resolve(&*f.store, hash, T0.plus(4))
            .await
            .unwrap()
            .is_some()
    );
    // ...seen once the injected clock says the TTL is over, whatever the wall clock says.
    assert!(
        cache
            .resolve(&*f.store, hash, T0.plus(5))
            .await
            .unwrap()
            .is_none()
    );

    // Activity seen but not yet flushed survives a reload: 20 min of quiet, a request, and
    // 20 min more is not idle (the stored last-seen is still the login time).
    f.store.set_disabled(&ada, false, T0).await.unwrap();
    let now = T0.plus(20 * 60);
    assert!(cache.resolve(&*f.store, hash, now).await.unwrap().is_some());
    let later = now.plus(20 * 60);
    let entry = cache.resolve(&*f.store, hash, later).await.unwrap();
    assert!(
        entry.is_some(),
        "a reload lost this node's unwritten activity"
    );
    assert_eq!(cache.flush(&*f.store).await.unwrap(), 1);
    assert_eq!(
        f.store
            .session_by_token(&hash)
            .await
            .unwrap()
            .unwrap()
            .last_seen_at,
        later
    );
}
