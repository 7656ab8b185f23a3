//! Integration tests of the PostgreSQL store: the shared conformance suite, each test in a fresh
//! schema of the database at `TESSERA_TEST_DATABASE_URL`, plus what only PostgreSQL can show
//! (schema isolation, several stores on one database as several nodes would have).
//!
//! When no server listens (connection refused) the tests are skipped with a `SKIPPED` line,
//! except under CI (any `CI` value), where that fails; any other connection or migration error
//! fails everywhere (see `tessera_testkit::skip`).

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod nodes;

use std::sync::Arc;
use std::time::Duration;

use sqlx::Connection as _;
use sqlx::postgres::PgConnection;
use tessera_store_postgres::PgStore;
use tessera_testkit::TestStore;

const DEFAULT_URL: &str = "postgres://postgres@127.0.0.1:5432/test";

/// The database the tests use.
pub fn database_url() -> String {
    std::env::var("TESSERA_TEST_DATABASE_URL").unwrap_or_else(|_| DEFAULT_URL.to_owned())
}

/// A fresh schema name, `t_` and 16 hex digits.
pub fn fresh_schema() -> String {
    let bytes = tessera_domain::random::bytes::<8>();
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    format!("t_{hex}")
}

/// Whether the server answers. One plain connection, no pool retries, so a missing server
/// costs milliseconds. Only a refused connection (nothing listening) is "absent", and is
/// skipped outside CI only ([`tessera_testkit::skip`]); any other failure panics.
pub async fn server_available() -> bool {
    let url = database_url();
    let shown = tessera_store_postgres::redact_url(&url);
    let attempt = tokio::time::timeout(Duration::from_secs(5), PgConnection::connect(&url)).await;
    match attempt {
        Ok(Ok(conn)) => {
            let _ = conn.close().await;
            true
        }
        Ok(Err(e)) if tessera_testkit::skip::is_connection_refused(&e) => {
            tessera_testkit::skip::absent("PostgreSQL", &format!("{shown}: {e}"));
            false
        }
        Ok(Err(e)) => panic!("PostgreSQL at {shown} does not work ({e}): failing, not skipping"),
        Err(_) => panic!("PostgreSQL at {shown} gave no answer within 5 s: failing, not skipping"),
    }
}

/// Drops a test schema with everything in it.
pub async fn drop_schema(schema: &str) {
    let Ok(mut conn) = PgConnection::connect(&database_url()).await else {
        return;
    };
    let _ = sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
        "DROP SCHEMA IF EXISTS \"{schema}\" CASCADE"
    )))
    .execute(&mut conn)
    .await;
    let _ = conn.close().await;
}

/// A fresh store in a fresh schema, dropped when the test is over; `None` if the server is
/// absent (and not in CI).
pub async fn fresh_store() -> Option<TestStore> {
    if !server_available().await {
        return None;
    }
    let schema = fresh_schema();
    let store = PgStore::connect_with_schema(&database_url(), &schema)
        .await
        .expect("connect and migrate a fresh schema");
    let handle = store.clone();
    Some(TestStore::new(Arc::new(store)).with_cleanup(async move {
        handle.close().await;
        drop_schema(&schema).await;
    }))
}

/// Runs `body` with `count` fresh schema names (in its own task, so that a panic still lets the
/// schemas be dropped afterwards). Does nothing when the server is absent (outside CI).
pub async fn in_fresh_schemas<F, Fut>(count: usize, body: F)
where
    F: FnOnce(Vec<String>) -> Fut,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    if !server_available().await {
        return;
    }
    let schemas: Vec<String> = (0..count).map(|_| fresh_schema()).collect();
    let outcome = tokio::spawn(body(schemas.clone())).await;
    for schema in &schemas {
        drop_schema(schema).await;
    }
    if let Err(e) = outcome {
        std::panic::resume_unwind(e.into_panic());
    }
}

mod conformance {
    tessera_testkit::store_conformance_tests!(crate::fresh_store);
}

/// The function the CLI logs the database URL with (`tessera serve`, `tessera migrate`), not a
/// copy of it.
#[test]
fn redaction_hides_every_password_form() {
    use tessera_store_postgres::redact_url;
    for (url, shown) in [
        ("postgres://u:pw@h:5432/db", "postgres://u:***@h:5432/db"),
        ("postgres://u@h/db", "postgres://u@h/db"),
        ("postgres:///db", "postgres:///db"),
        (
            "postgres://u@h/db?password=pw&sslmode=require",
            "postgres://u@h/db?password=***&sslmode=require",
        ),
        (
            "postgresql://h/db?sslmode=verify-full&PassWord=pw&sslpassword=pw",
            "postgresql://h/db?sslmode=verify-full&PassWord=***&sslpassword=***",
        ),
        ("postgres://u:p@w/x?y@h/db", "postgres://u:***@h/db"),
        ("postgres://h/db?user=a@b/c", "postgres://***@b/c"),
        ("postgres://u:p:w@h/db", "postgres://u:***@h/db"),
        ("not a url with pw", "*** (not a URL)"),
    ] {
        let got = redact_url(url);
        assert_eq!(got, shown, "{url}");
        assert!(!got.contains("pw") && !got.contains("p@w"), "{got}");
    }
}
