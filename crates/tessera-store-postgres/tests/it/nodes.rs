//! Several `PgStore`s on one database behave as several server nodes: what one writes, the
//! others see at once, and concurrent decisions agree. Schemas keep stores apart.

use std::sync::Arc;

use sqlx::Connection as _;
use sqlx::postgres::PgConnection;
use tessera_domain::account::{AccountId, Role};
use tessera_domain::change::Change;
use tessera_domain::clock::UnixTime;
use tessera_domain::store::{AccountStore as _, ChangeStore as _, ChangeWait, SecretStore as _};
use tessera_store_postgres::PgStore;
use tessera_testkit::conformance::new_account;

use crate::{database_url, in_fresh_schemas};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nodes_share_state_and_count_failures_together() {
    in_fresh_schemas(1, |schemas| async move { three_nodes(&schemas[0]).await }).await;
}

async fn three_nodes(schema: &str) {
    let url = database_url();
    // Three nodes starting at once: migrations run once, under the advisory lock.
    let (a, b, c) = tokio::join!(
        PgStore::connect_with_schema(&url, schema),
        PgStore::connect_with_schema(&url, schema),
        PgStore::connect_with_schema(&url, schema),
    );
    let nodes = [
        Arc::new(a.unwrap()),
        Arc::new(b.unwrap()),
        Arc::new(c.unwrap()),
    ];
    let id = AccountId::generate();
    nodes[0]
        .create_account(&new_account("shared", Role::User), &id, None, UnixTime(1))
        .await
        .unwrap();
    let mut tasks = Vec::new();
    for i in 0..30 {
        let node = Arc::clone(&nodes[i % 3]);
        let id = id.clone();
        tasks.push(tokio::spawn(async move {
            node.record_login_failure(&id, 1000, UnixTime(900), UnixTime(2))
                .await
                .unwrap()
                .unwrap()
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    for node in &nodes {
        let seen = node.account_by_id(&id).await.unwrap().unwrap();
        assert_eq!(seen.failed_logins, 30);
    }
    // First start on every node at once: one secret wins everywhere.
    let (x, y, z) = tokio::join!(
        nodes[0].server_secret("k", &[1; 32]),
        nodes[1].server_secret("k", &[2; 32]),
        nodes[2].server_secret("k", &[3; 32]),
    );
    let (x, y, z) = (x.unwrap(), y.unwrap(), z.unwrap());
    assert!(x == y && y == z, "{x:?} {y:?} {z:?}");
    for node in &nodes {
        node.close().await;
    }
}

#[tokio::test]
async fn schemas_isolate_stores() {
    in_fresh_schemas(2, |schemas| async move {
        two_schemas(&schemas[0], &schemas[1]).await
    })
    .await;
}

async fn two_schemas(s1: &str, s2: &str) {
    let one = PgStore::connect_with_schema(&database_url(), s1)
        .await
        .unwrap();
    let two = PgStore::connect_with_schema(&database_url(), s2)
        .await
        .unwrap();
    assert_eq!(one.schema(), Some(s1));
    one.create_account(
        &new_account("only-in-one", Role::User),
        &AccountId::generate(),
        None,
        UnixTime(1),
    )
    .await
    .unwrap();
    assert_eq!(one.list_accounts().await.unwrap().len(), 1);
    assert!(two.list_accounts().await.unwrap().is_empty());
    // Reconnecting to the same schema finds the data and migrates nothing twice.
    let again = PgStore::connect_with_schema(&database_url(), s1)
        .await
        .unwrap();
    assert_eq!(again.list_accounts().await.unwrap().len(), 1);
    again.migrate().await.unwrap();
    for s in [&one, &two, &again] {
        s.close().await;
    }
}

/// A change committed on one node wakes every node LISTENing on `tessera_changes` (the
/// notification is sent in the change's own transaction, so at its commit) and is there for
/// another node to read from the change table.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_committed_change_wakes_listeners_and_reaches_other_nodes() {
    in_fresh_schemas(1, |schemas| async move {
        let url = database_url();
        let (a, b) = tokio::join!(
            PgStore::connect_with_schema(&url, &schemas[0]),
            PgStore::connect_with_schema(&url, &schemas[0]),
        );
        let (a, b) = (a.unwrap(), b.unwrap());
        let mut listener = sqlx::postgres::PgListener::connect(&url).await.unwrap();
        listener.listen("tessera_changes").await.unwrap();
        let id = AccountId::generate();
        a.create_account(&new_account("listened", Role::User), &id, None, UnixTime(1))
            .await
            .unwrap();
        let start = b.latest_change_position().await.unwrap();
        assert!(a.set_disabled(&id, true, UnixTime(2)).await.unwrap());
        // A guard against a hang, not a measurement: the notification is already sent.
        let note = tokio::time::timeout(std::time::Duration::from_secs(30), listener.recv())
            .await
            .expect("a notification")
            .unwrap();
        assert_eq!(note.channel(), "tessera_changes");
        let seen = b.changes_since(start, 10).await.unwrap();
        assert_eq!(
            seen.iter().map(|r| r.change.clone()).collect::<Vec<_>>(),
            vec![Change::AccountChanged(id.clone())]
        );
        a.close().await;
        b.close().await;
    })
    .await;
}

/// Positions become visible in increasing order: while another node's change-producing
/// transaction is open (it has drawn position N, not yet committed), a later write waits for it
/// instead of committing N+1 first, which a reader at N+1 would have taken as "nothing before".
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_later_change_never_becomes_visible_before_an_earlier_one() {
    in_fresh_schemas(1, |schemas| async move {
        let url = database_url();
        let node = PgStore::connect_with_schema(&url, &schemas[0])
            .await
            .unwrap();
        let id = AccountId::generate();
        node.create_account(&new_account("ordered", Role::User), &id, None, UnixTime(1))
            .await
            .unwrap();
        // Another node, mid-transaction: it took the change lock and appended its change.
        let mut other = PgConnection::connect(&url).await.unwrap();
        sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
            "SET search_path TO \"{}\"",
            schemas[0]
        )))
        .execute(&mut other)
        .await
        .unwrap();
        let mut open = other.begin().await.unwrap();
        sqlx::query("SELECT pg_advisory_xact_lock(32762643830108769)")
            .execute(&mut *open)
            .await
            .unwrap();
        sqlx::query("INSERT INTO changes (kind, subject) VALUES ('admin_token_revoked', $1)")
            .bind(&[7u8; 32][..])
            .execute(&mut *open)
            .await
            .unwrap();
        // This node's write now either waits for the lock (right) or commits a later position
        // at once (wrong). Wait until one of the two has visibly happened.
        let writer = {
            let node = node.clone();
            let id = id.clone();
            tokio::spawn(async move { node.set_disabled(&id, true, UnixTime(2)).await })
        };
        let mut probe = PgConnection::connect(&url).await.unwrap();
        loop {
            let waiting: bool = sqlx::query_scalar(
                // The change lock's key, 0x74657373657261, as pg_locks splits it.
                "SELECT EXISTS (SELECT 1 FROM pg_locks \
                 WHERE locktype = 'advisory' AND NOT granted \
                   AND classid = 7628147 AND objid = 1936028257 AND objsubid = 1)",
            )
            .fetch_one(&mut probe)
            .await
            .unwrap();
            if waiting || writer.is_finished() {
                break;
            }
            tokio::task::yield_now().await;
        }
        assert!(
            node.changes_since(0, 10).await.unwrap().is_empty(),
            "a later change became visible while an earlier one was uncommitted"
        );
        open.commit().await.unwrap();
        assert!(writer.await.unwrap().unwrap());
        let seen: Vec<Change> = node
            .changes_since(0, 10)
            .await
            .unwrap()
            .into_iter()
            .map(|r| r.change)
            .collect();
        assert_eq!(
            seen,
            vec![
                Change::AdminTokenRevoked([7; 32]),
                Change::AccountChanged(id)
            ]
        );
        node.close().await;
    })
    .await;
}

/// A guard against a hang, not a measurement.
const PATIENCE: std::time::Duration = std::time::Duration::from_secs(30);

/// `wait_for_change` on one store: its first call starts listening and answers `Woken` (a
/// change before that was not signalled); then a commit in another schema of the database does
/// not wake it (the payload names the schema), and a commit in its own does. A wait cancelled by
/// the caller's timer keeps the listener (no new connection).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_waiting_store_wakes_for_its_own_schema_only() {
    in_fresh_schemas(2, |schemas| async move {
        let url = database_url();
        let sep = if url.contains('?') { '&' } else { '?' };
        let named = format!("{url}{sep}application_name={}", schemas[0]);
        let waiter = PgStore::connect_with_schema(&named, &schemas[0])
            .await
            .unwrap();
        let same = PgStore::connect_with_schema(&url, &schemas[0])
            .await
            .unwrap();
        let elsewhere = PgStore::connect_with_schema(&url, &schemas[1])
            .await
            .unwrap();
        let short = std::time::Duration::from_millis(300);
        assert_eq!(waiter.wait_for_change().await.unwrap(), ChangeWait::Woken);
        let listener = listener_pid(&schemas[0]).await;
        assert!(
            tokio::time::timeout(short, waiter.wait_for_change())
                .await
                .is_err(),
            "nothing was committed"
        );

        let other = AccountId::generate();
        elsewhere
            .create_account(
                &new_account("elsewhere", Role::User),
                &other,
                None,
                UnixTime(1),
            )
            .await
            .unwrap();
        assert!(
            elsewhere
                .set_disabled(&other, true, UnixTime(2))
                .await
                .unwrap()
        );
        assert!(
            tokio::time::timeout(short, waiter.wait_for_change())
                .await
                .is_err(),
            "another schema's change woke this store"
        );

        let id = AccountId::generate();
        same.create_account(&new_account("here", Role::User), &id, None, UnixTime(1))
            .await
            .unwrap();
        let wait = tokio::spawn({
            let waiter = waiter.clone();
            async move { waiter.wait_for_change().await }
        });
        assert!(same.set_disabled(&id, true, UnixTime(2)).await.unwrap());
        let woke = tokio::time::timeout(PATIENCE, wait)
            .await
            .expect("woken by the commit")
            .unwrap()
            .unwrap();
        assert_eq!(woke, ChangeWait::Woken);
        // The cancelled waits above kept their listener.
        assert_eq!(listener_pid(&schemas[0]).await, listener);
        for s in [&waiter, &same, &elsewhere] {
            s.close().await;
        }
    })
    .await;
}

/// The backend pid of the one LISTEN connection of the store whose `application_name` is
/// `name` (its listener is named `<name> listen`).
async fn listener_pid(name: &str) -> i32 {
    let mut admin = PgConnection::connect(&database_url()).await.unwrap();
    let pids: Vec<i32> = sqlx::query_scalar(
        "SELECT pid FROM pg_stat_activity WHERE application_name = $1 AND query LIKE 'LISTEN%'",
    )
    .bind(format!("{name} listen"))
    .fetch_all(&mut admin)
    .await
    .unwrap();
    admin.close().await.unwrap();
    assert_eq!(pids.len(), 1, "{pids:?}");
    pids[0]
}

/// The LISTEN connection, named `<application_name> listen`, is killed: the waiter hears of it
/// (`Unavailable`), the next call connects again and answers `Woken` (read the table: what was
/// committed meanwhile was not signalled), and commits wake it again. A closed store's wait
/// fails at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_listen_connection_is_reported_and_made_again() {
    in_fresh_schemas(1, |schemas| async move {
        let url = database_url();
        let sep = if url.contains('?') { '&' } else { '?' };
        let named = format!("{url}{sep}application_name={}", schemas[0]);
        let waiter = PgStore::connect_with_schema(&named, &schemas[0])
            .await
            .unwrap();
        let writer = PgStore::connect_with_schema(&url, &schemas[0])
            .await
            .unwrap();
        assert_eq!(waiter.wait_for_change().await.unwrap(), ChangeWait::Woken);
        let pid = listener_pid(&schemas[0]).await;
        let wait = tokio::spawn({
            let waiter = waiter.clone();
            async move { waiter.wait_for_change().await }
        });
        let mut admin = PgConnection::connect(&url).await.unwrap();
        let killed: bool = sqlx::query_scalar("SELECT pg_terminate_backend($1)")
            .bind(pid)
            .fetch_one(&mut admin)
            .await
            .unwrap();
        assert!(killed);
        admin.close().await.unwrap();
        let lost = tokio::time::timeout(PATIENCE, wait)
            .await
            .expect("the loss is reported, not waited out")
            .unwrap();
        assert!(
            matches!(lost, Err(tessera_domain::StoreError::Unavailable(_))),
            "{lost:?}"
        );
        // Committed while nobody listens.
        let id = AccountId::generate();
        writer
            .create_account(&new_account("unheard", Role::User), &id, None, UnixTime(1))
            .await
            .unwrap();
        assert!(writer.set_disabled(&id, true, UnixTime(2)).await.unwrap());
        assert_eq!(
            waiter.wait_for_change().await.unwrap(),
            ChangeWait::Woken,
            "a new listener says: read the table"
        );
        assert_ne!(listener_pid(&schemas[0]).await, pid);
        let wait = tokio::spawn({
            let waiter = waiter.clone();
            async move { waiter.wait_for_change().await }
        });
        assert!(writer.set_disabled(&id, false, UnixTime(3)).await.unwrap());
        let woke = tokio::time::timeout(PATIENCE, wait)
            .await
            .expect("woken again")
            .unwrap()
            .unwrap();
        assert_eq!(woke, ChangeWait::Woken);

        let closing = tokio::time::timeout(PATIENCE, waiter.close()).await;
        assert!(closing.is_ok(), "close does not wait for the idle listener");
        let closed = tokio::time::timeout(PATIENCE, waiter.wait_for_change())
            .await
            .expect("a closed store does not wait");
        assert!(closed.is_err(), "{closed:?}");
        writer.close().await;
    })
    .await;
}
