//! A database that is down or locked: clients get a generic 503, never a 500 with internals or
//! a panic, and the log gets the cause.

use std::time::Duration;

use axum::http::StatusCode;
use sqlx::Connection as _;

use crate::harness::{PASSWORD, harness};

#[tokio::test]
async fn a_locked_database_gives_503_and_recovers() {
    let h = harness().await;
    let (cookie, _) = h.session("ada").await;
    // Another process holds the write lock longer than the busy timeout.
    let path = h.dir_path().join("t.db");
    let mut blocker = sqlx::SqliteConnection::connect(&format!("sqlite://{}", path.display()))
        .await
        .unwrap();
    sqlx::raw_sql("BEGIN EXCLUSIVE")
        .execute(&mut blocker)
        .await
        .unwrap();
    let r = h.login("ada", PASSWORD).await;
    assert_eq!(r.status, StatusCode::SERVICE_UNAVAILABLE, "{}", r.body);
    assert_eq!(r.body, r#"{"error":"temporarily_unavailable"}"#);
    // Sessions already in memory keep working while the database is busy.
    assert_eq!(
        h.get("/auth/verify", Some(&cookie)).await.status,
        StatusCode::OK
    );
    sqlx::raw_sql("ROLLBACK")
        .execute(&mut blocker)
        .await
        .unwrap();
    drop(blocker);
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert_eq!(h.login("ada", PASSWORD).await.status, StatusCode::OK);
}

#[tokio::test]
async fn a_closed_database_gives_503_and_readyz_says_so() {
    let h = harness().await;
    let (cookie, _) = h.session("ada").await;
    assert_eq!(h.get("/readyz", None).await.status, StatusCode::OK);
    h.close_store().await;
    assert_eq!(
        h.get("/readyz", None).await.status,
        StatusCode::SERVICE_UNAVAILABLE
    );
    assert_eq!(h.get("/healthz", None).await.status, StatusCode::OK);
    let r = h.login("ada", PASSWORD).await;
    assert_eq!(r.status, StatusCode::SERVICE_UNAVAILABLE, "{}", r.body);
    assert!(
        !r.body.contains("sqlx") && !r.body.contains("pool"),
        "{}",
        r.body
    );
    // A cookie that is not cached needs the store: 503, not a false "signed out".
    let other = format!("tessera={}.{}", "A".repeat(43), "B".repeat(22));
    assert_eq!(
        h.get("/auth/verify", Some(&other)).await.status,
        StatusCode::UNAUTHORIZED,
        "forged cookies never reach the store"
    );
    let r = h.get("/auth/verify", Some(&cookie)).await;
    assert_eq!(r.status, StatusCode::SERVICE_UNAVAILABLE, "{}", r.body);
}
