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

/// Waits until `node`'s feed reports what `done` looks for (a bound on the test's patience).
async fn until_status(
    feed: &tessera_server::changes::Feed,
    what: &str,
    done: impl Fn(&tessera_server::changes::FeedStatus) -> bool,
) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let status = feed.status();
        if done(&status) {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{what}: feed status {status:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn logout(a: &Harness, cookie: &str, csrf: &str) {
    let r = a
        .send(with_csrf(Method::POST, "/logout", cookie, csrf))
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.body);
}

/// Runs one SQL statement on the shared database, beside the nodes.
#[derive(Clone)]
enum Db {
    Sqlite(std::path::PathBuf),
    Postgres { schema: String },
}

impl Db {
    /// A bytes literal in this database's SQL.
    fn bytes(&self, hex: &str) -> String {
        match self {
            Db::Sqlite(_) => format!("x'{hex}'"),
            Db::Postgres { .. } => format!("'\\x{hex}'::bytea"),
        }
    }

    async fn execute(&self, sql: &str) -> u64 {
        use sqlx::Connection as _;
        match self {
            Db::Sqlite(path) => {
                let mut conn =
                    sqlx::SqliteConnection::connect(&format!("sqlite://{}", path.display()))
                        .await
                        .unwrap();
                let done = sqlx::raw_sql(sqlx::AssertSqlSafe(sql.to_owned()))
                    .execute(&mut conn)
                    .await
                    .unwrap();
                conn.close().await.unwrap();
                done.rows_affected()
            }
            Db::Postgres { schema } => {
                let mut conn = sqlx::PgConnection::connect(&crate::postgres::url())
                    .await
                    .unwrap();
                let sql = format!("SET search_path TO \"{schema}\"; {sql}");
                let done = sqlx::raw_sql(sqlx::AssertSqlSafe(sql))
                    .execute(&mut conn)
                    .await
                    .unwrap();
                conn.close().await.unwrap();
                done.rows_affected()
            }
        }
    }
}

/// B's feed cannot be read (a malformed row stops every read at it), a session it cached is
/// revoked through A meanwhile: B keeps honouring it (the TTL fallback; the clock is frozen, so
/// only the feed can make B refuse), then, once the row is repaired, catches up from its last
/// position and refuses it. A reader that resumed from the newest position after a failure
/// would never refuse it.
async fn a_feed_that_fails_catches_up_from_its_last_position(a: &Harness, b: &Harness, db: Db) {
    let feed = tessera_server::changes::follow(b.state.clone()).await;
    let (cookie, csrf) = cached_on_b(a, b, "ada").await;
    // A session revoked and heard before the failure: the feed works.
    let (before, before_csrf) = cached_on_b(a, b, "ada").await;
    logout(a, &before, &before_csrf).await;
    until_refused(b, &before, "before the failure").await;

    // A row no reader can decode: a session_revoked whose subject is not a 32-byte hash.
    let poison = format!(
        "INSERT INTO changes (kind, subject) VALUES ('session_revoked', {})",
        db.bytes("0102")
    );
    assert_eq!(db.execute(&poison).await, 1);
    until_status(&feed, "the feed fails", |s| {
        s.read_failures > 0 && !s.readable
    })
    .await;
    logout(a, &cookie, &csrf).await;
    // Still failing, still honoured from the cache (its TTL has not run out).
    let failures = feed.status().read_failures;
    until_status(&feed, "the feed keeps failing", |s| {
        s.read_failures > failures
    })
    .await;
    assert_eq!(
        b.get("/auth/verify", Some(&cookie)).await.status,
        StatusCode::OK,
        "while its feed fails, B relies on its cache"
    );

    // Repaired: the row now revokes a session nobody has.
    let repaired = format!(
        "UPDATE changes SET subject = {} WHERE kind = 'session_revoked' AND length(subject) = 2",
        db.bytes(&"00".repeat(32))
    );
    assert_eq!(db.execute(&repaired).await, 1);
    until_refused(b, &cookie, "revoked while the feed failed").await;
    until_status(&feed, "readable again", |s| s.readable).await;

    // And it keeps following.
    let (after, after_csrf) = cached_on_b(a, b, "ada").await;
    logout(a, &after, &after_csrf).await;
    until_refused(b, &after, "after recovery").await;
    feed.abort();
}

#[tokio::test]
async fn a_failed_feed_catches_up_from_its_last_position_on_sqlite() {
    let a = harness().await;
    let path = a.dir_path().join("t.db");
    let other = SqliteStore::open(&path).await.unwrap();
    let b = node(Arc::new(other), &a).await;
    a_feed_that_fails_catches_up_from_its_last_position(&a, &b, Db::Sqlite(path)).await;
}

#[tokio::test]
async fn a_failed_feed_catches_up_from_its_last_position_on_postgres() {
    let Some((pg, schema)) = crate::postgres::store().await else {
        return;
    };
    let a = harness_on(pg.clone(), |_| {}).await;
    let other = PgStore::connect_with_schema(&crate::postgres::url(), &schema)
        .await
        .unwrap();
    let b = node(Arc::new(other), &a).await;
    let db = Db::Postgres {
        schema: schema.clone(),
    };
    a_feed_that_fails_catches_up_from_its_last_position(&a, &b, db).await;
    drop(a);
    drop(b);
    crate::postgres::drop_schema(&pg, &schema).await;
}

/// The backend pids of the LISTEN connections named `name` (`pg_stat_activity`).
async fn listeners(name: &str) -> Vec<i32> {
    use sqlx::Connection as _;
    let mut conn = sqlx::PgConnection::connect(&crate::postgres::url())
        .await
        .unwrap();
    let pids = sqlx::query_scalar(
        "SELECT pid FROM pg_stat_activity WHERE application_name = $1 AND query LIKE 'LISTEN%'",
    )
    .bind(name)
    .fetch_all(&mut conn)
    .await
    .unwrap();
    conn.close().await.unwrap();
    pids
}

/// Node B's LISTEN connection is killed (`pg_terminate_backend`) while it runs: sessions
/// revoked through A at once after (while B is not listening) and after it listens again are
/// all refused by B. B logs the loss, reads on its poll meanwhile, listens again on a new
/// connection and re-reads from its last position. Fails without a listener (there is no
/// connection to kill) and if a change made during the outage were skipped.
#[tokio::test]
async fn a_killed_listen_connection_loses_no_change_on_postgres() {
    let Some((pg, schema)) = crate::postgres::store().await else {
        return;
    };
    let a = harness_on(pg.clone(), |_| {}).await;
    // B's connections carry the schema's name, so this test finds its listener and no other.
    let url = crate::postgres::url();
    let sep = if url.contains('?') { '&' } else { '?' };
    let other =
        PgStore::connect_with_schema(&format!("{url}{sep}application_name={schema}"), &schema)
            .await
            .unwrap();
    let b = node(Arc::new(other), &a).await;
    let feed = tessera_server::changes::follow(b.state.clone()).await;
    until_status(&feed, "listening", |s| s.listening).await;
    let name = format!("{schema} listen");
    let first = listeners(&name).await;
    assert_eq!(first.len(), 1, "one LISTEN connection for node B");

    let mut outage = Vec::new();
    for _ in 0..3 {
        outage.push(cached_on_b(&a, &b, "ada").await);
    }
    let later = cached_on_b(&a, &b, "ada").await;
    {
        use sqlx::Connection as _;
        let mut conn = sqlx::PgConnection::connect(&url).await.unwrap();
        let killed: bool = sqlx::query_scalar("SELECT pg_terminate_backend($1)")
            .bind(first[0])
            .fetch_one(&mut conn)
            .await
            .unwrap();
        assert!(killed);
        conn.close().await.unwrap();
    }
    // Revoked while the listener is down or being made again: nothing signals these.
    for (cookie, csrf) in &outage {
        logout(&a, cookie, csrf).await;
    }
    until_status(&feed, "the loss is noticed", |s| s.listen_failures > 0).await;
    for (cookie, _) in &outage {
        until_refused(&b, cookie, "revoked during the outage").await;
    }
    until_status(&feed, "listening again", |s| s.listening).await;
    let again = listeners(&name).await;
    assert_eq!(again.len(), 1, "one new LISTEN connection");
    assert_ne!(again[0], first[0]);
    logout(&a, &later.0, &later.1).await;
    until_refused(&b, &later.0, "revoked after recovery").await;
    feed.abort();
    drop(a);
    drop(b);
    crate::postgres::drop_schema(&pg, &schema).await;
}
