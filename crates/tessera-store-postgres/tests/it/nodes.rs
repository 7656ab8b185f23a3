//! Several `PgStore`s on one database behave as several server nodes: what one writes, the
//! others see at once, and concurrent decisions agree. Schemas keep stores apart.

use std::sync::Arc;

use tessera_domain::account::{AccountId, Role};
use tessera_domain::change::Change;
use tessera_domain::clock::UnixTime;
use tessera_domain::store::{AccountStore as _, ChangeStore as _, SecretStore as _};
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
