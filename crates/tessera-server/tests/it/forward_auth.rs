//! GET /auth/verify: headers for valid sessions, 401 or a browser redirect otherwise, and no
//! trust in forged cookies.

use axum::body::Body;
use axum::http::{Method, Request, StatusCode, header};

use crate::harness::{PASSWORD, harness};

#[tokio::test]
async fn valid_session_gets_identity_headers() {
    let h = harness().await;
    let (cookie, _) = h.session("ada").await;
    let r = h.get("/auth/verify", Some(&cookie)).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.header("x-tessera-user"), Some("ada"));
    assert_eq!(r.header("x-tessera-email"), Some("ada@example.com"));
    assert_eq!(r.header("x-tessera-groups"), Some("eng,ops"));
    assert_eq!(r.header("cache-control"), Some("no-store"));
    assert!(r.header("x-request-id").is_some());
    // A grant is read by the proxy only: no browser-rendering headers on the hot path.
    assert!(r.header("content-security-policy").is_none());
    // A refusal may reach the browser (Traefik passes it on) and carries them.
    let r = h.get("/auth/verify", None).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert_eq!(r.header("x-frame-options"), Some("DENY"));
    assert!(r.header("content-security-policy").is_some());
    assert_eq!(r.header("content-type"), Some("application/json"));
}

/// Every identity header is present on a grant, the email empty for an account without one:
/// Caddy 2.6 (Debian 12) copies them by placeholder and forwards the placeholder's text for a
/// header the answer lacks.
#[tokio::test]
async fn an_account_without_email_gets_an_empty_email_header() {
    let h = harness().await;
    h.add_user("noemail", None, &[], tessera_domain::account::Role::User)
        .await;
    let (cookie, _) = h.session("noemail").await;
    let r = h.get("/auth/verify", Some(&cookie)).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.header("x-tessera-user"), Some("noemail"));
    assert_eq!(r.header("x-tessera-email"), Some(""));
    assert_eq!(r.header("x-tessera-groups"), Some(""));
}

#[tokio::test]
async fn a_malformed_query_is_a_clear_400() {
    let h = harness().await;
    let r = h.get("/auth/verify?rd=1&rd=2", None).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert_eq!(r.json()["error"], "invalid_request");
}

#[tokio::test]
async fn missing_forged_and_tampered_cookies_are_refused() {
    let h = harness().await;
    let (cookie, _) = h.session("ada").await;
    let value = cookie.split_once('=').unwrap().1.to_owned();
    let (token, tag) = value.split_once('.').unwrap();
    let mut flipped: Vec<char> = token.chars().collect();
    flipped[5] = if flipped[5] == 'A' { 'B' } else { 'A' };
    let flipped: String = flipped.into_iter().collect();
    for bad in [
        None,
        Some("tessera=".to_owned()),
        Some(format!("tessera={token}")),
        Some(format!("tessera={flipped}.{tag}")),
        Some(format!("tessera={token}.{}", "A".repeat(22))),
        Some(format!("tessera={value}x")),
        Some("tessera=%%%".to_owned()),
        Some(format!("other={value}")),
    ] {
        let r = h.get("/auth/verify", bad.as_deref()).await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{bad:?}");
        assert_eq!(r.json()["error"], "invalid_token");
        assert!(r.header("x-tessera-user").is_none());
    }
}

#[tokio::test]
async fn browsers_are_redirected_to_sign_in_when_asked() {
    let h = harness().await;
    let send = |uri: &'static str, headers: Vec<(&'static str, &'static str)>| {
        let mut r = Request::builder().method(Method::GET).uri(uri);
        for (k, v) in headers {
            r = r.header(k, v);
        }
        h.send(r.body(Body::empty()).unwrap())
    };
    // Traefik style: X-Forwarded-*; the target host is the public host, so it is allowed.
    let r = send(
        "/auth/verify?rd=1",
        vec![
            ("x-forwarded-proto", "http"),
            ("x-forwarded-host", "127.0.0.1:8080"),
            ("x-forwarded-uri", "/app?x=1"),
        ],
    )
    .await;
    assert_eq!(r.status, StatusCode::FOUND);
    assert_eq!(
        r.header("location"),
        Some("http://127.0.0.1:8080/login?rd=http%3A%2F%2F127.0.0.1%3A8080%2Fapp%3Fx%3D1")
    );
    // nginx style: X-Original-URL.
    let r = send(
        "/auth/verify?rd=1",
        vec![("x-original-url", "http://127.0.0.1:8080/wiki")],
    )
    .await;
    assert_eq!(r.status, StatusCode::FOUND);
    // A host that is not allowed gets no redirect (no open redirect through forward-auth).
    let r = send("/auth/verify?rd=https://evil.example/", vec![]).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    // Without rd: plain 401 for API clients.
    assert_eq!(
        send("/auth/verify", vec![]).await.status,
        StatusCode::UNAUTHORIZED
    );
}

#[tokio::test]
async fn logout_and_disable_take_effect_at_once_despite_the_cache() {
    let h = harness().await;
    let (cookie, csrf) = h.session("ada").await;
    assert_eq!(
        h.get("/auth/verify", Some(&cookie)).await.status,
        StatusCode::OK
    );
    let r = h
        .send(
            Request::builder()
                .method(Method::POST)
                .uri("/logout")
                .header(header::COOKIE, &cookie)
                .header("x-csrf-token", &csrf)
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.body);
    assert!(r.set_cookie_line("tessera").unwrap().contains("Max-Age=0"));
    assert_eq!(
        h.get("/auth/verify", Some(&cookie)).await.status,
        StatusCode::UNAUTHORIZED
    );

    let (cookie, _) = h.session("ada").await;
    assert_eq!(
        h.get("/auth/verify", Some(&cookie)).await.status,
        StatusCode::OK
    );
    let admin = h.admin();
    let r = h
        .json(
            Method::POST,
            "/admin/api/users/ada/disable",
            serde_json::json!({}),
            &[("authorization", &admin)],
        )
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    assert_eq!(
        h.get("/auth/verify", Some(&cookie)).await.status,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        h.login("ada", PASSWORD).await.status,
        StatusCode::UNAUTHORIZED
    );
}

#[tokio::test]
async fn logout_requires_the_csrf_token() {
    let h = harness().await;
    let (cookie, _) = h.session("ada").await;
    for token in [None, Some("wrong")] {
        let mut r = Request::builder()
            .method(Method::POST)
            .uri("/logout")
            .header(header::COOKIE, &cookie);
        if let Some(t) = token {
            r = r.header("x-csrf-token", t);
        }
        assert_eq!(
            h.send(r.body(Body::empty()).unwrap()).await.status,
            StatusCode::FORBIDDEN
        );
    }
    assert_eq!(
        h.get("/auth/verify", Some(&cookie)).await.status,
        StatusCode::OK
    );
}

#[tokio::test]
async fn changes_made_elsewhere_are_seen_within_the_cache_ttl() {
    let h = crate::harness::harness_with(|c| c.session_cache_ttl = 1).await;
    let (cookie, _) = h.session("ada").await;
    assert_eq!(
        h.get("/auth/verify", Some(&cookie)).await.status,
        StatusCode::OK
    );
    // What `tessera user disable` does from another process: straight to the store, no
    // notice to this server. (Domain call, so that its sessions are deleted as the CLI does.)
    use crate::harness::ClockExt as _;
    let actor = tessera_domain::accounts::Actor {
        ip: None,
        label: "cli".into(),
    };
    tessera_domain::accounts::set_disabled(
        h.store.as_ref(),
        "ada",
        true,
        &actor,
        h.clock.now_time(),
    )
    .await
    .unwrap();
    // Within the TTL the cached copy still answers (this server was not told)…
    assert_eq!(
        h.get("/auth/verify", Some(&cookie)).await.status,
        StatusCode::OK
    );
    // …and once the server's (injected) clock says the TTL is over, the store's word counts:
    // the test drives the cache's time, no wall-clock wait.
    h.clock.advance(1);
    assert_eq!(
        h.get("/auth/verify", Some(&cookie)).await.status,
        StatusCode::UNAUTHORIZED
    );
}

#[tokio::test]
async fn the_cache_ttl_is_validated() {
    let mut c = tessera_server::ServerConfig::dev("127.0.0.1:8080".parse().unwrap());
    for bad in [0, 301] {
        c.session_cache_ttl = bad;
        assert!(c.validate().unwrap_err().contains("cache_ttl"), "{bad}");
    }
    c.session_cache_ttl = 300;
    assert!(c.validate().is_ok());
}

/// The session's RFC 8176 methods go to the proxy in `X-Tessera-Amr`; a proxy that asks for a
/// second factor (`mfa=1` or `X-Tessera-Require-Mfa: 1`) gets `403` for a password-only
/// session, and the plain check still passes it.
#[tokio::test]
async fn amr_is_passed_on_and_mfa_can_be_required() {
    let h = harness().await;
    let (cookie, _) = h.session("ada").await;
    let r = h.get("/auth/verify", Some(&cookie)).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.header("x-tessera-amr"), Some("pwd"));
    for path in [
        "/auth/verify?mfa=1",
        "/auth/verify?mfa=true&rd=1",
        "/auth/verify?mfa",
    ] {
        let r = h.get(path, Some(&cookie)).await;
        assert_eq!(r.status, StatusCode::FORBIDDEN, "{path}");
        assert_eq!(r.json()["error"], "forbidden");
        assert!(r.header("x-tessera-user").is_none());
    }
    let r = h
        .send(
            Request::builder()
                .uri("/auth/verify")
                .header(header::COOKIE, &cookie)
                .header("x-tessera-require-mfa", "1")
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    let r = h.get("/auth/verify?mfa=0", Some(&cookie)).await;
    assert_eq!(r.status, StatusCode::OK);
}
