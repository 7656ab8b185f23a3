//! A database that is down or locked: clients get a generic 503, never a 500 with internals or
//! a panic, and the log gets the cause.

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
    // Only writes wait on the lock: in WAL mode readers are not blocked, so even a session
    // that is not cached yet is read and answered (what a closed database does to cached and
    // uncached sessions is the next test).
    assert_eq!(
        h.get("/auth/verify", Some(&cookie)).await.status,
        StatusCode::OK
    );
    sqlx::raw_sql("ROLLBACK")
        .execute(&mut blocker)
        .await
        .unwrap();
    blocker.close().await.unwrap();
    assert_eq!(h.login("ada", PASSWORD).await.status, StatusCode::OK);
}

#[tokio::test]
async fn a_closed_database_gives_503_and_readyz_says_so() {
    let h = harness().await;
    let (cached, _) = h.session("ada").await;
    let (uncached, _) = h.session("ada").await;
    // The first cookie is now in this server's memory; the second was never presented.
    assert_eq!(
        h.get("/auth/verify", Some(&cached)).await.status,
        StatusCode::OK
    );
    assert_eq!(h.get("/readyz", None).await.status, StatusCode::OK);
    // Every connection closed: no read and no write reaches the database any more.
    h.close_store().await;
    assert!(h.store.session_by_token(&hash_of(&cached)).await.is_err());
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
    // Sessions already in memory keep working while the database is unreachable...
    let r = h.get("/auth/verify", Some(&cached)).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.header("x-tessera-user"), Some("ada"));
    // ...a valid cookie that is not cached needs the store: 503, not a false "signed out"...
    let r = h.get("/auth/verify", Some(&uncached)).await;
    assert_eq!(r.status, StatusCode::SERVICE_UNAVAILABLE, "{}", r.body);
    assert_eq!(r.body, r#"{"error":"temporarily_unavailable"}"#);
    // ...and forged cookies never reach it.
    let forged = format!("tessera={}.{}", "A".repeat(43), "B".repeat(22));
    assert_eq!(
        h.get("/auth/verify", Some(&forged)).await.status,
        StatusCode::UNAUTHORIZED
    );
    // Once the cached copy is past session.cache_ttl (injected clock) it must be read again,
    // which the closed database cannot do: 503 too.
    h.clock
        .advance(i64::try_from(h.state.config().session_cache_ttl).unwrap());
    let r = h.get("/auth/verify", Some(&cached)).await;
    assert_eq!(r.status, StatusCode::SERVICE_UNAVAILABLE, "{}", r.body);
}

/// The store key of a `tessera=<token>.<tag>` cookie.
fn hash_of(cookie: &str) -> tessera_domain::session::TokenHash {
    let value = cookie.split_once('=').unwrap().1;
    tessera_domain::session::SessionToken::parse(value.split_once('.').unwrap().0)
        .unwrap()
        .hash()
}
