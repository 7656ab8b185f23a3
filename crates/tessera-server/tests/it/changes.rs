//! The change feed across nodes: a session revoked through node A (logout, sign out
//! everywhere, an admin disabling the account) is refused by node B, which had it cached, once
//! B's feed task has read the change; on one SQLite file and on one PostgreSQL schema. The
//! nodes share a frozen clock, so B's cache never ages out: only the feed can make B refuse.

use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::http::{Method, Request, StatusCode, header};
use tessera_domain::account::Role;
use tessera_store_postgres::PgStore;
use tessera_store_sqlite::SqliteStore;

use crate::harness::{Harness, harness, harness_on, node};

fn with_csrf(method: Method, uri: &str, cookie: &str, csrf: &str) -> Request<Body> {
    Request::builder()
        .method(method)
        .uri(uri)
        .header(header::COOKIE, cookie)
        .header("x-csrf-token", csrf)
        .body(Body::empty())
        .unwrap()
}

/// Polls `/auth/verify` on `node` until it refuses `cookie`; fails after a generous bound (a
/// bound on the test's patience, not an assertion on latency).
async fn until_refused(node: &Harness, cookie: &str, what: &str) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let status = node.get("/auth/verify", Some(cookie)).await.status;
        if status == StatusCode::UNAUTHORIZED {
            return;
        }
        assert_eq!(status, StatusCode::OK, "{what}");
        assert!(
            tokio::time::Instant::now() < deadline,
            "{what}: node B still accepts the revoked session"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Logs in on `a`, and has `b` cache the session.
async fn cached_on_b(a: &Harness, b: &Harness, user: &str) -> (String, String) {
    let (cookie, csrf) = a.session(user).await;
    let r = b.get("/auth/verify", Some(&cookie)).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    (cookie, csrf)
}

async fn revocations_through_a_reach_b(a: &Harness, b: &Harness) {
    a.add_user("bob", None, &[], Role::User).await;
    let feed = tessera_server::changes::follow(b.state.clone()).await;

    // Logout.
    let (cookie, csrf) = cached_on_b(a, b, "ada").await;
    let r = a
        .send(with_csrf(Method::POST, "/logout", &cookie, &csrf))
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.body);
    until_refused(b, &cookie, "logout").await;

    // Sign out everywhere: every session of the account, cached on B.
    let (first, csrf) = cached_on_b(a, b, "ada").await;
    let (second, _) = cached_on_b(a, b, "ada").await;
    let (bob, _) = cached_on_b(a, b, "bob").await;
    let r = a
        .send(with_csrf(Method::DELETE, "/api/sessions", &first, &csrf))
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.body);
    until_refused(b, &first, "sign out everywhere").await;
    until_refused(b, &second, "sign out everywhere").await;
    // Another account's session is untouched.
    assert_eq!(
        b.get("/auth/verify", Some(&bob)).await.status,
        StatusCode::OK
    );

    // An admin disables the account.
    let admin = a.admin();
    let r = a
        .json(
            Method::POST,
            "/admin/api/users/bob/disable",
            serde_json::json!({}),
            &[("authorization", admin.as_str())],
        )
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.body);
    until_refused(b, &bob, "admin disable").await;
    feed.abort();
}

#[tokio::test]
async fn a_revocation_on_one_node_reaches_another_on_one_sqlite_file() {
    let a = harness().await;
    let other = SqliteStore::open(&a.dir_path().join("t.db")).await.unwrap();
    let b = node(Arc::new(other), &a).await;
    revocations_through_a_reach_b(&a, &b).await;
}

#[tokio::test]
async fn a_revocation_on_one_node_reaches_another_on_one_postgres_schema() {
    let Some((pg, schema)) = crate::postgres::store().await else {
        return;
    };
    let a = harness_on(pg.clone(), |_| {}).await;
    let other = PgStore::connect_with_schema(&crate::postgres::url(), &schema)
        .await
        .unwrap();
    let b = node(Arc::new(other), &a).await;
    revocations_through_a_reach_b(&a, &b).await;
    drop(a);
    drop(b);
    crate::postgres::drop_schema(&pg, &schema).await;
}
