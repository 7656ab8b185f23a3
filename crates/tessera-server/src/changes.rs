//! The change feed consumer: one task per node that reads what other nodes and the CLI changed
//! (`tessera_domain::change`, appended by the stores in the same transaction as each write)
//! and applies it to this node's caches through the one invalidation point
//! ([`SessionCache::forget`](crate::sessions::SessionCache::forget) and
//! [`forget_account`](crate::sessions::SessionCache::forget_account)).
//!
//! It starts at the newest position when the node boots (the cache is empty then), and reads
//! what follows the last position it applied whenever it may have changed: at once when the
//! store signals a commit (PostgreSQL: `LISTEN tessera_changes`, through
//! `ChangeStore::wait_for_change`), and in any case every [`SAFETY_NET`], so that a lost
//! notification costs at most that. On SQLite, where other processes write the file and
//! nothing is signalled, it reads every [`POLL_EVERY`]; a read that finds nothing is one indexed
//! range query on either database. Positions are strictly increasing in commit order (see
//! `ChangeStore`), so nothing is skipped, and the table is durable, so nothing is lost while the
//! listener is down: it reads every [`POLL_EVERY`] then, logs once when listening breaks and
//! once when it works again, and re-reads from its last position after every reconnection.
//!
//! When the feed cannot be read, the task logs once, retries with backoff up to
//! [`MAX_BACKOFF`], and the node relies on `session.cache_ttl` meanwhile (as before the feed
//! existed); when reading works again it logs once and catches up from the last position it
//! applied. It also prunes changes older than [`RETENTION`].

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use tessera_domain::change::Change;
use tessera_domain::store::{ChangeWait, Store};

use crate::app::AppState;

/// How often the feed is read when nothing signals changes: always on SQLite, and on
/// PostgreSQL while the `LISTEN` connection is down.
pub const POLL_EVERY: Duration = Duration::from_millis(200);

/// The longest wait for a notification before the feed is read anyway (PostgreSQL): the bound
/// on what a lost notification costs.
pub const SAFETY_NET: Duration = Duration::from_secs(1);

/// How long the task lets `wait_for_change` make a new listening connection before it reads
/// anyway and counts the listener as broken (an unreachable host is only given up after the
/// pool's acquire time-out).
const CONNECT_CAP: Duration = Duration::from_secs(5);

/// Changes read per query; a longer backlog is read in pages without waiting.
const PAGE: u32 = 500;

/// The longest wait between retries while the feed cannot be read.
const MAX_BACKOFF: Duration = Duration::from_secs(5);

/// How long a change is kept in the table: far beyond any reader's lag while the database is
/// reachable (a node that cannot read for longer falls back on the TTL, which bounds anything it
/// cached meanwhile).
pub const RETENTION: Duration = Duration::from_secs(3600);

/// How often the feed notes its position for pruning and prunes.
const PRUNE_EVERY: Duration = Duration::from_secs(300);

/// What a node's feed task has done so far (for tests and diagnostics).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FeedStatus {
    /// The position of the last change applied (or the start position), once known.
    pub position: Option<u64>,
    /// Reads of the feed that failed.
    pub read_failures: u64,
    /// Whether the last read succeeded.
    pub readable: bool,
    /// Waits for a notification that failed (the `LISTEN` connection was lost or could not be
    /// made).
    pub listen_failures: u64,
    /// Whether the last wait was on a working listener (never on SQLite).
    pub listening: bool,
}

/// A running feed task ([`follow`]).
#[derive(Debug)]
pub struct Feed {
    task: tokio::task::JoinHandle<()>,
    status: Arc<Mutex<FeedStatus>>,
}

impl Feed {
    /// What the task has done so far.
    pub fn status(&self) -> FeedStatus {
        *self.status.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Stops the task.
    pub fn abort(&self) {
        self.task.abort();
    }

    /// The task, to be aborted at shutdown.
    pub fn into_task(self) -> tokio::task::JoinHandle<()> {
        self.task
    }
}

/// Starts this node's change-feed task (done by [`crate::serve`]; tests call it directly).
/// The starting position is read before this returns when the store answers, so a change
/// committed after it returns is applied.
pub async fn follow(state: AppState) -> Feed {
    let start = state.store().latest_change_position().await.ok();
    let status = Arc::new(Mutex::new(FeedStatus {
        position: start,
        ..FeedStatus::default()
    }));
    let task = tokio::spawn(run(state, start, Arc::clone(&status)));
    Feed { task, status }
}

async fn run(state: AppState, mut position: Option<u64>, status: Arc<Mutex<FeedStatus>>) {
    let update = |f: &dyn Fn(&mut FeedStatus)| {
        f(&mut status.lock().unwrap_or_else(PoisonError::into_inner));
    };
    let mut failing = false;
    let mut deaf = false;
    let mut listening = false;
    let mut backoff = POLL_EVERY;
    let mut marks: VecDeque<(Instant, u64)> = VecDeque::new();
    let mut next_prune = Instant::now();
    loop {
        match step(&state, &mut position).await {
            Ok(more) => {
                if failing {
                    failing = false;
                    tracing::info!("change feed readable again; caught up");
                }
                update(&|s| {
                    s.position = position;
                    s.readable = true;
                });
                backoff = POLL_EVERY;
                if let Some(at) = position
                    && Instant::now() >= next_prune
                {
                    next_prune = Instant::now() + PRUNE_EVERY;
                    prune(state.store(), &mut marks, at, Instant::now(), RETENTION).await;
                }
                if more {
                    continue;
                }
            }
            Err(e) => {
                if !failing {
                    failing = true;
                    tracing::warn!(
                        error = %e,
                        "cannot read the change feed; relying on session.cache_ttl until it works again"
                    );
                }
                update(&|s| {
                    s.read_failures += 1;
                    s.readable = false;
                });
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(MAX_BACKOFF);
                continue;
            }
        }
        // Bounded here: the store has no timer of its own (nor a runtime).
        let cap = if listening { SAFETY_NET } else { CONNECT_CAP };
        let waited = tokio::time::timeout(cap, state.store().wait_for_change()).await;
        let broken = match waited {
            Ok(Ok(ChangeWait::NotSupported)) => {
                tokio::time::sleep(POLL_EVERY).await;
                continue;
            }
            Ok(Ok(ChangeWait::Woken)) => None,
            // Nothing signalled for SAFETY_NET: the safety-net read.
            Err(_elapsed) if listening => None,
            Err(_elapsed) => Some("no LISTEN connection within 5 s".to_owned()),
            Ok(Err(e)) => Some(e.to_string()),
        };
        match broken {
            None => {
                if deaf {
                    deaf = false;
                    tracing::info!(
                        "listening for changes again; re-reading from the last applied position"
                    );
                }
                listening = true;
                update(&|s| s.listening = true);
            }
            Some(error) => {
                if !deaf {
                    deaf = true;
                    tracing::warn!(
                        %error,
                        "lost the change notifications; reading the change feed every 200 ms until listening works again"
                    );
                }
                listening = false;
                update(&|s| {
                    s.listen_failures += 1;
                    s.listening = false;
                });
                tokio::time::sleep(POLL_EVERY).await;
            }
        }
    }
}

/// Reads and applies one page; true when a full page came back (more may wait).
async fn step(
    state: &AppState,
    position: &mut Option<u64>,
) -> Result<bool, tessera_domain::StoreError> {
    let from = match *position {
        Some(p) => p,
        None => {
            let p = state.store().latest_change_position().await?;
            *position = Some(p);
            p
        }
    };
    let page = state.store().changes_since(from, PAGE).await?;
    let full = page.len() == PAGE as usize;
    for record in page {
        apply(state, &record.change).await;
        *position = Some(record.position);
    }
    Ok(full)
}

/// Applies one change to this node's caches.
pub(crate) async fn apply(state: &AppState, change: &Change) {
    match change {
        Change::SessionRevoked(hash) => state.sessions().forget(&[*hash]).await,
        Change::AccountSessionsRevoked(account) | Change::AccountChanged(account) => {
            state.sessions().forget_account(account).await;
        }
        // Admin tokens are checked against the store on every request: nothing is cached.
        Change::AdminTokenRevoked(_) => {}
        _ => {}
    }
}

/// Notes `at` as the position at `now` and deletes the changes older than `retention`: those
/// before the newest position noted at least `retention` before `now`. A change noted later
/// than that, and every change after it, is kept, so a reader lagging less than `retention`
/// finds all it has not read.
async fn prune(
    store: &dyn Store,
    marks: &mut VecDeque<(Instant, u64)>,
    at: u64,
    now: Instant,
    retention: Duration,
) {
    marks.push_back((now, at));
    let mut before = None;
    while let Some(&(noted, p)) = marks.front() {
        if now.duration_since(noted) < retention {
            break;
        }
        before = Some(p);
        marks.pop_front();
    }
    if let Some(before) = before {
        match store.prune_changes(before).await {
            Ok(n) if n > 0 => tracing::info!(deleted = n, "old changes removed"),
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "could not remove old changes; will retry"),
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use tessera_domain::account::{AccountId, NewAccount, Role, Username};
    use tessera_domain::clock::UnixTime;
    use tessera_domain::store::AccountStore as _;
    use tessera_store_sqlite::SqliteStore;

    use super::*;

    /// The positions left in the table.
    async fn left(store: &dyn Store) -> Vec<u64> {
        let rows = store.changes_since(0, 100).await.unwrap();
        rows.iter().map(|r| r.position).collect()
    }

    /// Pruning deletes only the changes before the newest position noted at least the
    /// retention ago: a reader lagging less than that finds everything it has not read. Times
    /// are given, not waited for.
    #[tokio::test]
    async fn pruning_keeps_what_a_reader_within_retention_still_needs() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(&dir.path().join("t.db")).await.unwrap();
        let id = AccountId::generate();
        let new = NewAccount {
            username: Username::parse("pruned").unwrap(),
            email: None,
            groups: Vec::new(),
            role: Role::User,
        };
        store
            .create_account(&new, &id, None, UnixTime(1))
            .await
            .unwrap();
        for i in 0..8 {
            assert!(
                store
                    .set_disabled(&id, i % 2 == 0, UnixTime(2))
                    .await
                    .unwrap()
            );
        }
        let all = left(&store).await;
        assert_eq!(all.len(), 8);
        let at = |i: usize| all[i];
        let hour = Duration::from_secs(3600);
        let minutes = |m: u64| Duration::from_secs(60 * m);
        let t0 = Instant::now();
        let mut marks = VecDeque::new();

        // Noted at 0, 30 and 59 minutes: nothing is an hour old yet.
        prune(&store, &mut marks, at(2), t0, hour).await;
        prune(&store, &mut marks, at(4), t0 + minutes(30), hour).await;
        prune(&store, &mut marks, at(5), t0 + minutes(59), hour).await;
        assert_eq!(left(&store).await, all);
        // At 60 minutes, what came before the position noted at 0 goes; that position stays.
        prune(&store, &mut marks, at(6), t0 + minutes(60), hour).await;
        assert_eq!(left(&store).await, all[2..]);
        // At 100 minutes, the position noted at 30 is the newest one an hour old: what came
        // before it goes, and a reader that was at the position noted at 59 minutes (41 minutes
        // ago) still finds everything after it.
        prune(&store, &mut marks, at(7), t0 + minutes(100), hour).await;
        assert_eq!(left(&store).await, all[4..]);
        // A reader's own latest position is never the bound: what follows it stays.
        assert!(left(&store).await.contains(&at(7)));
        store.close().await;
    }
}
