//! Integration tests of the SQLite store: the shared conformance suite on a temporary file, and
//! durability across a restart and a SIGKILL.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod durability;

use std::sync::Arc;

use tessera_store_sqlite::SqliteStore;
use tessera_testkit::TestStore;

/// A fresh store in its own temporary directory, removed when the test is over.
pub async fn fresh_store() -> Option<TestStore> {
    let dir = tempfile::tempdir().expect("temporary directory");
    let store = SqliteStore::open(&dir.path().join("tessera.db"))
        .await
        .expect("open a fresh SQLite store");
    let handle = store.clone();
    Some(TestStore::new(Arc::new(store)).with_cleanup(async move {
        handle.close().await;
        drop(dir);
    }))
}

mod conformance {
    tessera_testkit::store_conformance_tests!(crate::fresh_store);
}
