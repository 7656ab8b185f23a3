//! The change feed consumer: one task per node that reads what other nodes and the CLI changed
//! (`tessera_domain::change`, appended by the stores in the same transaction as each write)
//! and applies it to this node's caches through the one invalidation point
//! ([`SessionCache::forget`](crate::sessions::SessionCache::forget) and
//! [`forget_account`](crate::sessions::SessionCache::forget_account)).
//!
//! It starts at the newest position when the node boots (the cache is empty then), and asks
//! for what follows the last position it applied every [`POLL_EVERY`]: a query that returns
//! nothing is one indexed range read, cheap on SQLite and PostgreSQL alike. Positions are
//! strictly increasing in commit order (see `ChangeStore`), so nothing is skipped.
//!
//! When the feed cannot be read, the task logs once, retries with backoff up to
//! [`MAX_BACKOFF`], and the node relies on `session.cache_ttl` meanwhile (as before the feed
//! existed); when reading works again it logs once and catches up from the last position it
//! applied. It also prunes changes older than [`RETENTION`].

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use tessera_domain::change::Change;
use tessera_domain::store::Store;

use crate::app::AppState;

/// How often the feed is read when it was empty.
pub const POLL_EVERY: Duration = Duration::from_millis(200);

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

/// Starts this node's change-feed task (done by [`crate::serve`]; tests call it directly).
/// The starting position is read before this returns when the store answers, so a change
/// committed after it returns is applied.
pub async fn follow(state: AppState) -> tokio::task::JoinHandle<()> {
    let start = state.store().latest_change_position().await.ok();
    tokio::spawn(run(state, start))
}

async fn run(state: AppState, mut position: Option<u64>) {
    let mut failing = false;
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
                backoff = POLL_EVERY;
                if let Some(at) = position
                    && Instant::now() >= next_prune
                {
                    next_prune = Instant::now() + PRUNE_EVERY;
                    prune(state.store(), &mut marks, at).await;
                }
                if more {
                    continue;
                }
                tokio::time::sleep(POLL_EVERY).await;
            }
            Err(e) => {
                if !failing {
                    failing = true;
                    tracing::warn!(
                        error = %e,
                        "cannot read the change feed; relying on session.cache_ttl until it works again"
                    );
                }
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(MAX_BACKOFF);
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

/// Notes `at` now and deletes the changes older than [`RETENTION`] (those before the newest
/// position noted at least that long ago).
async fn prune(store: &dyn Store, marks: &mut VecDeque<(Instant, u64)>, at: u64) {
    let now = Instant::now();
    marks.push_back((now, at));
    let mut before = None;
    while let Some(&(noted, p)) = marks.front() {
        if now.duration_since(noted) < RETENTION {
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
