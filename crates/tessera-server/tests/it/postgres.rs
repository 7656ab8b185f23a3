//! The main flows end to end on PostgreSQL (a fresh schema per test). Skipped with a `SKIPPED`
//! line only when no server listens, and never under CI (`tessera_testkit::skip`).

use std::sync::Arc;
use std::time::Duration;

use axum::http::{Method, StatusCode};
use tessera_store_postgres::PgStore;

use crate::harness::{PASSWORD, harness_on};

pub(crate) fn url() -> String {
    std::env::var("TESSERA_TEST_DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into())
}

pub(crate) async fn store() -> Option<(Arc<PgStore>, String)> {
    use sqlx::Connection as _;
    // A refused connection (no server listening) is the only skip, outside CI only; any other
    // failure, and any error creating or migrating the schema, fails the test.
    match tokio::time::timeout(Duration::from_secs(10), sqlx::PgConnection::connect(&url())).await {
        Ok(Ok(conn)) => {
            let _ = conn.close().await;
        }
        Ok(Err(e)) if tessera_testkit::skip::is_connection_refused(&e) => {
            tessera_testkit::skip::absent("PostgreSQL", &e.to_string());
            return None;
        }
        Ok(Err(e)) => panic!("PostgreSQL does not work ({e}): failing, not skipping"),
        Err(_) => panic!("PostgreSQL gave no answer within 10 s: failing, not skipping"),
    }
    let schema = format!(
        "srv_{}",
        tessera_token::b64::encode(tessera_domain::random::bytes::<6>())
            .to_lowercase()
            .replace(['-', '_'], "x")
    );
    let store = PgStore::connect_with_schema(&url(), &schema)
        .await
        .unwrap_or_else(|e| panic!("PostgreSQL: creating and migrating schema {schema}: {e}"));
    Some((Arc::new(store), schema))
}

pub(crate) async fn drop_schema(store: &PgStore, schema: &str) {
    use sqlx::Connection as _;
    store.close().await;
    if let Ok(mut conn) = sqlx::PgConnection::connect(&url()).await {
        let sql = format!("DROP SCHEMA IF EXISTS \"{schema}\" CASCADE");
        let _ = sqlx::raw_sql(sqlx::AssertSqlSafe(sql))
            .execute(&mut conn)
            .await;
        let _ = conn.close().await;
    }
}

#[tokio::test]
async fn login_forward_auth_logout_and_revocation_on_postgres() {
    let Some((pg, schema)) = store().await else {
        return;
    };
    let h = harness_on(pg.clone(), |_| {}).await;
    let (cookie, csrf) = h.session("ada").await;
    let r = h.get("/auth/verify", Some(&cookie)).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.header("x-tessera-user"), Some("ada"));
    assert_eq!(
        h.login("ada", "wrong wrong wrong").await.status,
        StatusCode::UNAUTHORIZED
    );
    h.clock.advance(120);
    h.get("/auth/verify", Some(&cookie)).await;
    assert_eq!(h.state.flush_touches().await.unwrap(), 1);
    let (second, _) = h.session("ada").await;
    let r = h
        .json(
            Method::DELETE,
            "/api/sessions",
            serde_json::Value::Null,
            &[("cookie", &cookie), ("x-csrf-token", &csrf)],
        )
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.body);
    assert_eq!(
        h.get("/auth/verify", Some(&second)).await.status,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(h.get("/readyz", None).await.status, StatusCode::OK);
    assert_eq!(h.login("ada", PASSWORD).await.status, StatusCode::OK);
    drop(h);
    drop_schema(&pg, &schema).await;
}

#[tokio::test]
async fn two_nodes_share_sessions_and_the_cookie_seal() {
    let Some((pg, schema)) = store().await else {
        return;
    };
    let a = harness_on(pg.clone(), |_| {}).await;
    let node_b = PgStore::connect_with_schema(&url(), &schema).await.unwrap();
    let b = crate::harness::node(Arc::new(node_b), &a).await;
    let (cookie, _) = a.session("ada").await;
    // A cookie issued by node A is accepted by node B (same seal key, same store).
    let r = b.get("/auth/verify", Some(&cookie)).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    drop(a);
    drop(b);
    drop_schema(&pg, &schema).await;
}

#[tokio::test]
async fn cached_sessions_outlive_a_lost_database_and_others_get_503() {
    let Some((pg, schema)) = store().await else {
        return;
    };
    let h = harness_on(pg.clone(), |_| {}).await;
    let (cached, _) = h.session("ada").await;
    let (uncached, _) = h.session("ada").await;
    assert_eq!(
        h.get("/auth/verify", Some(&cached)).await.status,
        StatusCode::OK
    );
    // Every connection of this node closed: nothing reaches PostgreSQL any more.
    pg.close().await;
    assert_eq!(
        h.get("/readyz", None).await.status,
        StatusCode::SERVICE_UNAVAILABLE
    );
    let r = h.get("/auth/verify", Some(&cached)).await;
    assert_eq!(r.status, StatusCode::OK, "a cached session keeps working");
    assert_eq!(r.header("x-tessera-user"), Some("ada"));
    let r = h.get("/auth/verify", Some(&uncached)).await;
    assert_eq!(r.status, StatusCode::SERVICE_UNAVAILABLE, "{}", r.body);
    assert_eq!(r.body, r#"{"error":"temporarily_unavailable"}"#);
    drop(h);
    drop_schema(&pg, &schema).await;
}
