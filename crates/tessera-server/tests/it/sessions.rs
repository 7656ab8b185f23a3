//! Session lifetimes, coalesced touches, and the user's own session list and revocation.

use axum::body::Body;
use axum::http::{Method, Request, StatusCode, header};
use tessera_domain::account::Role;
use tessera_domain::session::SessionToken;

use crate::harness::{ClockExt, harness};

async fn stored_last_seen(h: &crate::harness::Harness, cookie: &str) -> i64 {
    let value = cookie.split_once('=').unwrap().1;
    let token = SessionToken::parse(value.split_once('.').unwrap().0).unwrap();
    h.store
        .session_by_token(&token.hash())
        .await
        .unwrap()
        .unwrap()
        .last_seen_at
        .0
}

#[tokio::test]
async fn idle_timeout_ends_quiet_sessions() {
    let h = harness().await;
    let (cookie, _) = h.session("ada").await;
    h.clock.advance(29 * 60);
    assert_eq!(
        h.get("/auth/verify", Some(&cookie)).await.status,
        StatusCode::OK
    );
    h.clock.advance(30 * 60);
    assert_eq!(
        h.get("/auth/verify", Some(&cookie)).await.status,
        StatusCode::UNAUTHORIZED
    );
}

#[tokio::test]
async fn activity_slides_the_idle_timeout_but_not_the_absolute_one() {
    let h = harness().await;
    let (cookie, _) = h.session("ada").await;
    // A request every 20 minutes keeps the session alive for the 12 h absolute lifetime...
    for _ in 0..35 {
        h.clock.advance(20 * 60);
        assert_eq!(
            h.get("/auth/verify", Some(&cookie)).await.status,
            StatusCode::OK
        );
    }
    h.clock.advance(20 * 60 + 1);
    // ...and not a second longer.
    assert_eq!(
        h.get("/auth/verify", Some(&cookie)).await.status,
        StatusCode::UNAUTHORIZED
    );
}

#[tokio::test]
async fn touches_are_coalesced_and_flushed_in_batches() {
    let h = harness().await;
    let (cookie, _) = h.session("ada").await;
    let start = stored_last_seen(&h, &cookie).await;
    // Many requests within the touch interval: nothing to write.
    for _ in 0..50 {
        h.clock.advance(1);
        h.get("/auth/verify", Some(&cookie)).await;
    }
    assert_eq!(h.state.flush_touches().await.unwrap(), 0);
    assert_eq!(stored_last_seen(&h, &cookie).await, start);
    // Past the interval: one touch, written by the next flush, not by the request.
    h.clock.advance(30);
    h.get("/auth/verify", Some(&cookie)).await;
    h.get("/auth/verify", Some(&cookie)).await;
    assert_eq!(
        stored_last_seen(&h, &cookie).await,
        start,
        "no write on the request path"
    );
    assert_eq!(h.state.flush_touches().await.unwrap(), 1);
    assert_eq!(stored_last_seen(&h, &cookie).await, h.clock.now_time().0);
}

fn with_csrf(method: Method, uri: &str, cookie: &str, csrf: &str) -> Request<Body> {
    Request::builder()
        .method(method)
        .uri(uri)
        .header(header::COOKIE, cookie)
        .header("x-csrf-token", csrf)
        .body(Body::empty())
        .unwrap()
}

#[tokio::test]
async fn users_list_and_revoke_their_own_sessions_only() {
    let h = harness().await;
    h.add_user("bob", None, &[], Role::User).await;
    let (a1, csrf1) = h.session("ada").await;
    let (a2, _) = h.session("ada").await;
    let (b1, _) = h.session("bob").await;
    let list = h.get("/api/sessions", Some(&a1)).await;
    assert_eq!(list.status, StatusCode::OK);
    let sessions = list.json();
    let sessions = sessions.as_array().unwrap();
    assert_eq!(sessions.len(), 2);
    assert_eq!(sessions.iter().filter(|s| s["current"] == true).count(), 1);
    let other = sessions.iter().find(|s| s["current"] == false).unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    // Bob's session id is not Ada's to revoke.
    let bob_id = h.get("/api/sessions", Some(&b1)).await.json()[0]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let r = h
        .send(with_csrf(
            Method::DELETE,
            &format!("/api/sessions/{bob_id}"),
            &a1,
            &csrf1,
        ))
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert_eq!(
        h.get("/auth/verify", Some(&b1)).await.status,
        StatusCode::OK
    );
    // Without the CSRF token: refused.
    let r = h
        .send(with_csrf(
            Method::DELETE,
            &format!("/api/sessions/{other}"),
            &a1,
            "nope",
        ))
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    let r = h
        .send(with_csrf(
            Method::DELETE,
            &format!("/api/sessions/{other}"),
            &a1,
            &csrf1,
        ))
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    assert_eq!(
        h.get("/auth/verify", Some(&a2)).await.status,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        h.get("/auth/verify", Some(&a1)).await.status,
        StatusCode::OK
    );
    // Malformed ids are a plain 404.
    let r = h
        .send(with_csrf(
            Method::DELETE,
            "/api/sessions/..%2F..",
            &a1,
            &csrf1,
        ))
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn sign_out_everywhere_ends_every_session_of_the_user() {
    let h = harness().await;
    h.add_user("bob", None, &[], Role::User).await;
    let sessions: Vec<(String, String)> = [
        h.session("ada").await,
        h.session("ada").await,
        h.session("ada").await,
    ]
    .into();
    let (bob, _) = h.session("bob").await;
    let (cookie, csrf) = &sessions[0];
    let r = h
        .send(with_csrf(Method::DELETE, "/api/sessions", cookie, csrf))
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    for (c, _) in &sessions {
        assert_eq!(
            h.get("/auth/verify", Some(c)).await.status,
            StatusCode::UNAUTHORIZED
        );
    }
    assert_eq!(
        h.get("/auth/verify", Some(&bob)).await.status,
        StatusCode::OK
    );
}

#[tokio::test]
async fn a_password_change_ends_old_sessions() {
    let h = harness().await;
    let (cookie, _) = h.session("ada").await;
    let admin = h.admin();
    let r = h
        .json(
            Method::PUT,
            "/admin/api/users/ada/password",
            serde_json::json!({"password": "a brand new passphrase"}),
            &[("authorization", &admin)],
        )
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.body);
    assert_eq!(
        h.get("/auth/verify", Some(&cookie)).await.status,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        h.login("ada", "a brand new passphrase").await.status,
        StatusCode::OK
    );
}

#[tokio::test]
async fn the_account_page_lists_sessions_and_its_forms_work() {
    let h = harness().await;
    let (cookie, csrf) = h.session("ada").await;
    let (other, _) = h.session("ada").await;
    let page = h.get("/account", Some(&cookie)).await;
    assert_eq!(page.status, StatusCode::OK);
    // The other session can be ended from its row; this one by "Sign out".
    assert_eq!(page.body.matches("/revoke\"").count(), 1, "{}", page.body);
    assert!(page.body.contains("(this session)"));
    // Without a session the page sends the browser to sign in.
    let r = h.get("/account", None).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    assert_eq!(r.header("location"), Some("/login?rd=/account"));
    // Sign out everywhere through the form.
    let r = h
        .send(
            Request::builder()
                .method(Method::POST)
                .uri("/account/sessions/revoke-all")
                .header(header::COOKIE, &cookie)
                .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
                .body(Body::from(format!("csrf={csrf}")))
                .unwrap(),
        )
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    assert_eq!(
        h.get("/auth/verify", Some(&other)).await.status,
        StatusCode::UNAUTHORIZED
    );
}

/// The value of `tessera_active_sessions` in a scrape, if present.
fn active_sessions(scrape: &str) -> Option<u64> {
    scrape
        .lines()
        .find_map(|l| l.strip_prefix("tessera_active_sessions "))
        .map(|v| v.parse().unwrap())
}

#[tokio::test]
async fn the_active_sessions_gauge_is_current_at_every_scrape() {
    let h = harness().await;
    let scrape = || async { active_sessions(&crate::edge::metrics(&h).await.body) };
    assert_eq!(scrape().await, Some(0));
    let (first, csrf) = h.session("ada").await;
    assert_eq!(scrape().await, Some(1), "a sign-in counts at once");
    h.session("ada").await;
    assert_eq!(scrape().await, Some(2));
    let r = h
        .json(
            Method::DELETE,
            "/api/sessions",
            serde_json::Value::Null,
            &[("cookie", &first), ("x-csrf-token", &csrf)],
        )
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.body);
    assert_eq!(
        scrape().await,
        Some(0),
        "a sign-out everywhere counts at once"
    );
    h.session("ada").await;
    assert_eq!(scrape().await, Some(1));
    // Idle past the timeout (injected clock): no longer active, without any write.
    h.clock.advance(30 * 60);
    assert_eq!(scrape().await, Some(0), "an idle session stops counting");
}
