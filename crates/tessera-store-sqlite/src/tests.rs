use std::path::Path;
use std::time::Duration;

use sqlx::Connection as _;
use sqlx::sqlite::{SqliteConnectOptions, SqliteConnection};
use tessera_domain::StoreError;

use tessera_domain::store::{AccountStore as _, Store as _};

use super::*;

#[tokio::test]
async fn connections_are_durable_wal_with_foreign_keys() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(&dir.path().join("t.db")).await.unwrap();
    for pool in [&store.writer, &store.reader] {
        let mode: String = sqlx::query_scalar("PRAGMA journal_mode")
            .fetch_one(pool)
            .await
            .unwrap();
        assert_eq!(mode, "wal");
        let sync: i64 = sqlx::query_scalar("PRAGMA synchronous")
            .fetch_one(pool)
            .await
            .unwrap();
        assert_eq!(sync, 2, "synchronous=FULL");
        let fk: i64 = sqlx::query_scalar("PRAGMA foreign_keys")
            .fetch_one(pool)
            .await
            .unwrap();
        assert_eq!(fk, 1);
        let busy: i64 = sqlx::query_scalar("PRAGMA busy_timeout")
            .fetch_one(pool)
            .await
            .unwrap();
        assert_eq!(busy, 5000);
    }
    store.close().await;
}

#[cfg(unix)]
#[tokio::test]
async fn new_directory_and_file_are_private() {
    use std::os::unix::fs::PermissionsExt as _;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state/nested/tessera.db");
    let store = SqliteStore::open(&path).await.unwrap();
    let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&path), 0o600);
    assert_eq!(mode(&dir.path().join("state")), 0o700);
    assert_eq!(mode(&dir.path().join("state/nested")), 0o700);
    assert_eq!(store.path(), path);
    // SQLite gives its WAL the main file's mode.
    assert_eq!(mode(&dir.path().join("state/nested/tessera.db-wal")), 0o600);
    store.close().await;
}

#[tokio::test]
async fn migrating_twice_is_harmless() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(&dir.path().join("t.db")).await.unwrap();
    store.migrate().await.unwrap();
    let versions: Vec<i64> = sqlx::query_scalar("SELECT version FROM _sqlx_migrations")
        .fetch_all(&store.reader)
        .await
        .unwrap();
    let expected: Vec<i64> = MIGRATIONS.iter().map(|m| m.0).collect();
    assert_eq!(versions, expected);
    store.close().await;
}

/// Every file in `migrations/` is embedded, under the version and description its name gives.
#[test]
fn every_migration_file_is_embedded() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("migrations");
    tessera_store_sql::migrations::check_embedded(&dir, MIGRATIONS).unwrap();
}

#[tokio::test]
async fn a_busy_database_is_unavailable() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t.db");
    let store = SqliteStore::open(&path).await.unwrap();
    let options = SqliteConnectOptions::new()
        .filename(&path)
        .busy_timeout(Duration::ZERO);
    let mut holder = SqliteConnection::connect_with(&options).await.unwrap();
    sqlx::query("BEGIN IMMEDIATE")
        .execute(&mut holder)
        .await
        .unwrap();
    let mut other = SqliteConnection::connect_with(&options).await.unwrap();
    let err = sqlx::query("INSERT INTO admin_tokens VALUES (zeroblob(32), 'x', 0)")
        .execute(&mut other)
        .await
        .unwrap_err();
    let mapped = map_err(Op::Write)(err);
    assert!(
        matches!(&mapped, StoreError::Unavailable(m) if m.contains("busy")),
        "{mapped:?}"
    );
    sqlx::query("ROLLBACK").execute(&mut holder).await.unwrap();
    store.close().await;
}

#[tokio::test]
async fn a_file_that_is_not_a_database_is_corrupt() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t.db");
    std::fs::write(&path, vec![0x5a_u8; 8192]).unwrap();
    let err = SqliteStore::open(&path).await.unwrap_err();
    assert!(matches!(err, StoreError::Corrupt(_)), "{err:?}");
}

#[tokio::test]
async fn an_unreachable_directory_is_unavailable() {
    let dir = tempfile::tempdir().unwrap();
    let blocker = dir.path().join("file");
    std::fs::write(&blocker, b"").unwrap();
    let err = SqliteStore::open(&blocker.join("t.db")).await.unwrap_err();
    assert!(matches!(err, StoreError::Unavailable(_)), "{err:?}");
}

#[tokio::test]
async fn bad_rows_are_corrupt_not_panics() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(&dir.path().join("t.db")).await.unwrap();
    sqlx::query(
        "INSERT INTO accounts (id, username, groups, role, created_at, updated_at) \
         VALUES ('not-a-uuid', 'x', '[]', 'user', 0, 0)",
    )
    .execute(&store.writer)
    .await
    .unwrap();
    let err = store.list_accounts().await.unwrap_err();
    assert!(matches!(err, StoreError::Corrupt(_)), "{err:?}");
    sqlx::query("UPDATE accounts SET id = '6f1c1d36-3c1e-4d59-8a4e-4c2c9b1f0e11', groups = 'nope'")
        .execute(&store.writer)
        .await
        .unwrap();
    let err = store.list_accounts().await.unwrap_err();
    assert!(matches!(err, StoreError::Corrupt(_)), "{err:?}");
    store.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stores_opening_a_new_file_at_once_both_succeed() {
    // Three at once, 20 times: with more than one migration, a loser can fail once per
    // migration the winner commits under it (seen with two, once in ~15 runs of 5 rounds).
    for _ in 0..20 {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.db");
        let (a, b, c) = tokio::join!(
            SqliteStore::open(&path),
            SqliteStore::open(&path),
            SqliteStore::open(&path)
        );
        for store in [a.unwrap(), b.unwrap(), c.unwrap()] {
            store.ping().await.unwrap();
            store.close().await;
        }
    }
}
