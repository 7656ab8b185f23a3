//! POST /login (JSON and form), throttling, lockout, CSRF on the form, bad input.

use axum::body::Body;
use axum::http::{Method, Request, StatusCode, header};
use tessera_domain::account::Role;

use crate::harness::{ClockExt, ORIGIN, PASSWORD, harness, harness_with};

#[tokio::test]
async fn json_login_sets_a_session_cookie_with_safe_attributes() {
    let h = harness().await;
    let r = h.login("Ada", PASSWORD).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let line = r.set_cookie_line("tessera").unwrap();
    for attr in ["HttpOnly", "SameSite=Lax", "Path=/"] {
        assert!(line.contains(attr), "{line}");
    }
    let body = r.json();
    assert_eq!(body["account"]["username"], "ada");
    assert_eq!(body["account"]["groups"], serde_json::json!(["eng", "ops"]));
    assert!(body["csrf"].as_str().unwrap().len() >= 43);
    assert_eq!(r.header("cache-control"), Some("no-store"));
    assert!(r.header("x-request-id").is_some());
}

#[tokio::test]
async fn pages_carry_a_strict_content_security_policy() {
    let h = harness().await;
    let page = h.get("/login", None).await;
    let csp = page.header("content-security-policy").unwrap();
    for part in [
        "default-src 'none'",
        "frame-ancestors 'none'",
        "style-src 'self'",
    ] {
        assert!(csp.contains(part), "{csp}");
    }
    assert!(
        !csp.contains("script-src"),
        "no scripts are allowed at all: {csp}"
    );
    assert_eq!(page.header("x-frame-options"), Some("DENY"));
    assert!(!page.body.contains("<script"));
}

#[tokio::test]
async fn production_cookies_are_host_prefixed_and_secure() {
    let h = harness_with(|c| {
        c.transport = tessera_server::Transport::BehindTlsProxy;
        c.public_origin = "https://auth.example.com".into();
    })
    .await;
    let r = h.login("ada", PASSWORD).await;
    let line = r.set_cookie_line("__Host-tessera").unwrap();
    assert!(
        line.contains("; Secure") && line.contains("Path=/") && !line.contains("Domain"),
        "{line}"
    );
    let cookie = r.cookie("__Host-tessera").unwrap();
    assert_eq!(
        h.get("/auth/verify", Some(&cookie)).await.status,
        StatusCode::OK
    );
    // The dev cookie name is not accepted in production mode.
    let value = cookie.split_once('=').unwrap().1;
    assert_eq!(
        h.get("/auth/verify", Some(&format!("tessera={value}")))
            .await
            .status,
        StatusCode::UNAUTHORIZED
    );
}

#[tokio::test]
async fn every_wrong_credential_gets_the_same_answer() {
    let h = harness().await;
    h.add_user("bob", None, &[], Role::User).await;
    tessera_domain::accounts::set_disabled(
        h.store.as_ref(),
        "bob",
        true,
        &Default::default(),
        h.clock.now_time(),
    )
    .await
    .unwrap();
    let cases = [
        ("ada", "wrong password here"),
        ("nobody", PASSWORD),
        ("bob", PASSWORD),
        ("Not A Valid Name!", PASSWORD),
        ("ada", ""),
    ];
    let mut bodies = Vec::new();
    for (user, pw) in cases {
        let r = h.login(user, pw).await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{user}");
        assert!(r.cookie("tessera").is_none());
        bodies.push(r.body);
    }
    assert!(
        bodies
            .iter()
            .all(|b| b == r#"{"error":"invalid_credentials"}"#),
        "{bodies:?}"
    );
}

#[tokio::test]
async fn every_login_is_audited_without_secrets() {
    let h = harness().await;
    h.login("ada", "a wrong password").await;
    h.login("ghost", "another secret").await;
    h.login("ada", PASSWORD).await;
    let events = h.store.recent_audit(10).await.unwrap();
    let kinds: Vec<(&str, Option<&str>)> = events
        .iter()
        .map(|e| (e.kind.as_str(), e.detail.as_deref()))
        .collect();
    assert!(
        kinds.contains(&("login_failure", Some("wrong_password"))),
        "{kinds:?}"
    );
    assert!(
        kinds.contains(&("login_failure", Some("unknown_account"))),
        "{kinds:?}"
    );
    assert!(kinds.contains(&("login_success", None)), "{kinds:?}");
    let dump = format!("{events:?}");
    for secret in ["a wrong password", "another secret", PASSWORD] {
        assert!(!dump.contains(secret));
    }
}

#[tokio::test]
async fn consecutive_failures_lock_the_account_until_time_or_admin_lifts_it() {
    let h = harness_with(|c| {
        c.lockout = tessera_domain::login::LockoutPolicy::new(3, 600).unwrap();
        c.throttle.per_account_burst = 100;
        c.throttle.per_ip_burst = 100;
    })
    .await;
    for _ in 0..3 {
        assert_eq!(
            h.login("ada", "not the password").await.status,
            StatusCode::UNAUTHORIZED
        );
    }
    // Locked: even the right password is refused, with the same generic answer.
    let r = h.login("ada", PASSWORD).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert_eq!(r.body, r#"{"error":"invalid_credentials"}"#);
    let admin = h.admin();
    let shown = h
        .json(
            Method::GET,
            "/admin/api/users/ada",
            serde_json::Value::Null,
            &[("authorization", &admin)],
        )
        .await;
    assert_eq!(shown.json()["locked"], true, "{}", shown.body);
    // The audit log has the three failures and, once, the lock they caused.
    let audit = h
        .json(
            Method::GET,
            "/admin/api/audit",
            serde_json::Value::Null,
            &[("authorization", &admin)],
        )
        .await;
    let kinds: Vec<String> = audit
        .json()
        .as_array()
        .unwrap_or_else(|| panic!("{}", audit.body))
        .iter()
        .map(|e| e["kind"].as_str().unwrap_or_default().to_owned())
        .collect();
    let count = |k: &str| kinds.iter().filter(|x| *x == k).count();
    assert_eq!(
        count("login_failure"),
        4,
        "3 wrong + 1 while locked: {kinds:?}"
    );
    assert_eq!(count("account_locked"), 1, "{kinds:?}");
    // Time lifts it.
    h.clock.advance(601);
    assert_eq!(h.login("ada", PASSWORD).await.status, StatusCode::OK);
    // And the admin can lift it early.
    for _ in 0..3 {
        h.login("ada", "not the password").await;
    }
    assert_eq!(
        h.login("ada", PASSWORD).await.status,
        StatusCode::UNAUTHORIZED
    );
    let r = h
        .json(
            Method::POST,
            "/admin/api/users/ada/unlock",
            serde_json::json!({}),
            &[("authorization", &admin)],
        )
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.body);
    assert_eq!(h.login("ada", PASSWORD).await.status, StatusCode::OK);
}

#[tokio::test]
async fn throttling_answers_429_with_retry_after() {
    let h = harness_with(|c| {
        c.throttle.per_account_per_minute = 2;
        c.throttle.per_account_burst = 2;
    })
    .await;
    h.login("ada", "wrong one").await;
    h.login("ada", "wrong two").await;
    let r = h.login("ada", PASSWORD).await;
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(r.json()["error"], "rate_limited");
    let retry: u64 = r.header("retry-after").unwrap().parse().unwrap();
    assert!((1..=60).contains(&retry), "{retry}");
    // Another account is not affected.
    h.add_user("bob", None, &[], Role::User).await;
    assert_eq!(h.login("bob", PASSWORD).await.status, StatusCode::OK);
}

#[tokio::test]
async fn each_login_gets_a_fresh_session() {
    let h = harness().await;
    let (a, _) = h.session("ada").await;
    let (b, _) = h.session("ada").await;
    assert_ne!(a, b);
    assert_eq!(h.get("/auth/verify", Some(&a)).await.status, StatusCode::OK);
    assert_eq!(h.get("/auth/verify", Some(&b)).await.status, StatusCode::OK);
}

async fn login_page(h: &crate::harness::Harness) -> (String, String) {
    let page = h.get("/login", None).await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.body.contains(r#"<form method="post" action="/login""#));
    let cookie = page.cookie("tessera-login").unwrap();
    let csrf = cookie.split_once('=').unwrap().1.to_owned();
    assert!(page.body.contains(&csrf));
    (cookie, csrf)
}

fn form(path: &str, body: &str, cookie: Option<&str>) -> Request<Body> {
    let mut r = Request::builder()
        .method(Method::POST)
        .uri(path)
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .header(header::ORIGIN, ORIGIN)
        .header("sec-fetch-site", "same-origin");
    if let Some(c) = cookie {
        r = r.header(header::COOKIE, c);
    }
    r.body(Body::from(body.to_owned())).unwrap()
}

#[tokio::test]
async fn the_sign_in_form_needs_its_csrf_cookie_and_redirects_safely() {
    let h = harness().await;
    let (cookie, csrf) = login_page(&h).await;
    let body = serde_urlencoded::to_string([
        ("username", "ada"),
        ("password", PASSWORD),
        ("csrf", &csrf),
        ("rd", "/account"),
    ])
    .unwrap();
    // Without the cookie (a cross-site form post): refused.
    assert_eq!(
        h.send(form("/login", &body, None)).await.status,
        StatusCode::FORBIDDEN
    );
    let r = h.send(form("/login", &body, Some(&cookie))).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
    assert_eq!(r.header("location"), Some("/account"));
    let session = r.cookie("tessera").unwrap();
    let account = h.get("/account", Some(&session)).await;
    assert!(
        account
            .body
            .contains("Signed in as <span id=\"who\">ada</span>"),
        "{}",
        account.body
    );
    // An open redirect is dropped in favour of the account page.
    let evil = serde_urlencoded::to_string([
        ("username", "ada"),
        ("password", PASSWORD),
        ("csrf", &csrf),
        ("rd", "https://evil.example/"),
    ])
    .unwrap();
    let r = h.send(form("/login", &evil, Some(&cookie))).await;
    assert_eq!(r.header("location"), Some("/account"));
    // A wrong password shows the page again with the generic message, status 401.
    let wrong = serde_urlencoded::to_string([
        ("username", "ada"),
        ("password", "nope nope"),
        ("csrf", &csrf),
        ("rd", ""),
    ])
    .unwrap();
    let r = h.send(form("/login", &wrong, Some(&cookie))).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert!(r.body.contains("Wrong username or password."));
    assert!(!r.body.contains("nope nope"));
}

/// The sign-in cookie the browser holds after a response: the value of its `Set-Cookie`, if
/// any, else what it held before.
fn login_cookie_after(before: &str, r: &crate::harness::Reply) -> String {
    r.cookie("tessera-login")
        .unwrap_or_else(|| before.to_owned())
}

fn sign_in_body(csrf: &str, password: &str) -> String {
    serde_urlencoded::to_string([
        ("username", "ada"),
        ("password", password),
        ("csrf", csrf),
        ("rd", "/account"),
    ])
    .unwrap()
}

/// Issue 7, defect 1: the browser's own `GET /favicon.ico`, redirected to `/login` by a proxy,
/// or a second tab, loads the sign-in page again while the user looks at the first one. That
/// page must keep the sign-in cookie, or the first form is refused.
#[tokio::test]
async fn showing_the_sign_in_page_again_keeps_the_form_valid() {
    let h = harness().await;
    let (cookie, csrf) = login_page(&h).await;
    // The second load (favicon redirect, another tab), with the cookie the browser holds.
    let again = h.get("/login?rd=/favicon.ico", Some(&cookie)).await;
    assert_eq!(again.status, StatusCode::OK);
    let held = login_cookie_after(&cookie, &again);
    assert_eq!(held, cookie, "the sign-in cookie was rotated");
    assert!(
        again.body.contains(&csrf),
        "the second page has another token"
    );
    // Its lifetime is renewed, so the first form stays usable as long as the second.
    let line = again.set_cookie_line("tessera-login").unwrap();
    assert!(line.contains("Max-Age=3600"), "{line}");
    // The first form, submitted now, signs in.
    let r = h
        .send(form("/login", &sign_in_body(&csrf, PASSWORD), Some(&held)))
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
    assert!(r.cookie("tessera").is_some());
    // A cookie that is not one tessera made is replaced, not kept.
    for odd in ["tessera-login=short", "tessera-login=%%%"] {
        let page = h.get("/login", Some(odd)).await;
        let set = page.cookie("tessera-login").unwrap();
        assert_ne!(set, odd);
        assert_eq!(set.len(), "tessera-login=".len() + 43, "{set}");
    }
}

/// Issue 7, defect 1: a stale form (its cookie expired or cleared) or a mismatched one shows
/// the sign-in page again with a clear message and a fresh, working form, never a JSON body.
#[tokio::test]
async fn a_stale_sign_in_form_shows_the_page_again_not_json() {
    let h = harness().await;
    let (cookie, csrf) = login_page(&h).await;
    let other_csrf = "A".repeat(43);
    for (name, held) in [
        ("cookie expired", None),
        (
            "cookie of another form",
            Some(format!("tessera-login={other_csrf}")),
        ),
    ] {
        let r = h
            .send(form(
                "/login",
                &sign_in_body(&csrf, PASSWORD),
                held.as_deref(),
            ))
            .await;
        assert_eq!(r.status, StatusCode::FORBIDDEN, "{name}");
        assert!(
            r.header("content-type").unwrap().starts_with("text/html"),
            "{name}: {:?} {}",
            r.header("content-type"),
            r.body
        );
        assert!(!r.body.contains(r#"{"error""#), "{name}: {}", r.body);
        assert!(r.body.contains("This sign-in form had expired."), "{name}");
        assert!(r.body.contains(r#"role="alert""#), "{name}");
        assert!(
            r.body.contains(r#"value="ada""#),
            "{name}: the username is kept"
        );
        assert!(
            !r.body.contains(PASSWORD),
            "{name}: the password is not echoed"
        );
        assert!(r.cookie("tessera").is_none(), "{name}");
        // The page's own form works: its token matches the cookie the browser now holds.
        let now_held = r.cookie("tessera-login").expect("a sign-in cookie");
        if let Some(held) = &held {
            assert_eq!(&now_held, held, "{name}: the cookie other tabs use is kept");
        }
        let fresh = now_held.split_once('=').unwrap().1.to_owned();
        assert!(r.body.contains(&fresh), "{name}");
        let ok = h
            .send(form(
                "/login",
                &sign_in_body(&fresh, PASSWORD),
                Some(&now_held),
            ))
            .await;
        assert_eq!(ok.status, StatusCode::SEE_OTHER, "{name}: {}", ok.body);
    }
    // A JSON client keeps JSON errors.
    let r = h.login("ada", "wrong").await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert_eq!(r.json()["error"], "invalid_credentials");
    drop(cookie);
}

/// Every failure of a browser's sign-in form is the sign-in page: throttling included, with
/// its `Retry-After`.
#[tokio::test]
async fn a_throttled_sign_in_form_gets_the_page_with_retry_after() {
    let h = harness_with(|c| {
        c.throttle.per_account_burst = 1;
        c.throttle.per_account_per_minute = 1;
    })
    .await;
    let (cookie, csrf) = login_page(&h).await;
    let first = h
        .send(form(
            "/login",
            &sign_in_body(&csrf, "wrong one"),
            Some(&cookie),
        ))
        .await;
    assert_eq!(first.status, StatusCode::UNAUTHORIZED);
    let r = h
        .send(form(
            "/login",
            &sign_in_body(&csrf, "wrong two"),
            Some(&cookie),
        ))
        .await;
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS, "{}", r.body);
    assert!(r.header("retry-after").is_some());
    assert!(r.header("content-type").unwrap().starts_with("text/html"));
    assert!(r.body.contains("Too many sign-in attempts."), "{}", r.body);
}

#[tokio::test]
async fn cross_site_posts_are_refused() {
    let h = harness().await;
    for (name, value) in [
        ("origin", "https://evil.example"),
        ("origin", "null"),
        ("sec-fetch-site", "cross-site"),
        ("sec-fetch-site", "same-site"),
    ] {
        let r = h
            .json(
                Method::POST,
                "/login",
                serde_json::json!({"username": "ada", "password": PASSWORD}),
                &[(name, value)],
            )
            .await;
        assert_eq!(r.status, StatusCode::FORBIDDEN, "{name}: {value}");
        assert!(r.cookie("tessera").is_none());
    }
    let ok = h
        .json(
            Method::POST,
            "/login",
            serde_json::json!({"username": "ada", "password": PASSWORD}),
            &[("origin", ORIGIN), ("sec-fetch-site", "same-origin")],
        )
        .await;
    assert_eq!(ok.status, StatusCode::OK);
    // Sec-Fetch-Site decides when present: cross-site is refused even with our Origin, and
    // same-origin is believed even when a referrer policy turned Origin into "null".
    let r = h
        .json(
            Method::POST,
            "/login",
            serde_json::json!({"username": "ada", "password": PASSWORD}),
            &[("origin", ORIGIN), ("sec-fetch-site", "cross-site")],
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    let r = h
        .json(
            Method::POST,
            "/login",
            serde_json::json!({"username": "ada", "password": PASSWORD}),
            &[("origin", "null"), ("sec-fetch-site", "same-origin")],
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(
        h.get("/healthz", None).await.header("referrer-policy"),
        Some("same-origin")
    );
}

#[tokio::test]
async fn bad_input_gets_clear_client_errors_never_500() {
    let h = harness_with(|c| c.max_body = 4096).await;
    let cases: Vec<(&str, Vec<u8>, StatusCode)> = vec![
        ("application/json", b"{".to_vec(), StatusCode::BAD_REQUEST),
        (
            "application/json",
            br#"{"username":"ada"}"#.to_vec(),
            StatusCode::BAD_REQUEST,
        ),
        (
            "application/json",
            br#"{"username":"ada","password":"x","extra":1}"#.to_vec(),
            StatusCode::BAD_REQUEST,
        ),
        (
            "application/json",
            br#"{"username":5,"password":"x"}"#.to_vec(),
            StatusCode::BAD_REQUEST,
        ),
        (
            "application/json",
            b"\xff\xfe".to_vec(),
            StatusCode::BAD_REQUEST,
        ),
        (
            "application/json",
            vec![b' '; 10_000],
            StatusCode::PAYLOAD_TOO_LARGE,
        ),
        // Not UTF-8 (decoded lossily), and no sign-in cookie to match: refused.
        (
            "application/x-www-form-urlencoded",
            b"username=%FF&password=x&csrf=y".to_vec(),
            StatusCode::FORBIDDEN,
        ),
        // Well-formed, but no sign-in cookie to match: refused.
        (
            "application/x-www-form-urlencoded",
            b"username=ada&password=x&csrf=y".to_vec(),
            StatusCode::FORBIDDEN,
        ),
        (
            "application/x-www-form-urlencoded",
            b"nonsense".to_vec(),
            StatusCode::BAD_REQUEST,
        ),
        ("text/plain", b"hello".to_vec(), StatusCode::BAD_REQUEST),
    ];
    for (ctype, body, want) in cases {
        let r = h
            .send(
                Request::builder()
                    .method(Method::POST)
                    .uri("/login")
                    .header(header::CONTENT_TYPE, ctype)
                    .body(Body::from(body.clone()))
                    .unwrap(),
            )
            .await;
        assert!(
            r.status.is_client_error(),
            "{ctype} {:?}: {}",
            String::from_utf8_lossy(&body[..body.len().min(30)]),
            r.status
        );
        assert_eq!(
            r.status,
            want,
            "{ctype} {:?}",
            String::from_utf8_lossy(&body[..body.len().min(30)])
        );
        assert!(
            !r.body.contains("panicked") && !r.body.contains("sqlx"),
            "{}",
            r.body
        );
    }
    // Oversized credentials are refused like any wrong credential, without hashing megabytes.
    let long = "x".repeat(3000);
    assert_eq!(
        h.login(&long, PASSWORD).await.status,
        StatusCode::UNAUTHORIZED
    );
}

#[tokio::test]
async fn metrics_count_logins_by_reason_and_requests_by_route() {
    let h = harness().await;
    h.login("ada", PASSWORD).await;
    h.login("ada", "a wrong password").await;
    h.get("/auth/verify", None).await;
    let m = crate::edge::metrics(&h).await;
    assert_eq!(m.status, StatusCode::OK);
    for needle in [
        r#"tessera_logins_total{outcome="success"}"#,
        r#"tessera_logins_total{outcome="wrong_password"}"#,
        r#"tessera_http_requests_total{route="/auth/verify",method="GET",status="401"}"#,
        r#"tessera_http_request_duration_seconds_bucket{route="/login""#,
    ] {
        assert!(m.body.contains(needle), "{needle} missing from\n{}", m.body);
    }
    // Unmatched paths share one label value, so clients cannot create unbounded series.
    h.get("/no/such/path/1", None).await;
    h.get("/no/such/path/2", None).await;
    let m = crate::edge::metrics(&h).await;
    assert!(m.body.contains(r#"route="unmatched""#) && !m.body.contains("/no/such"));
    // So do methods: any token is a valid HTTP method, but only the standard ones are labels.
    h.send(
        Request::builder()
            .method("BREW")
            .uri("/no/such/path/3")
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    let m = crate::edge::metrics(&h).await;
    assert!(m.body.contains(r#"method="other""#) && !m.body.contains("BREW"));
}

#[tokio::test]
async fn request_ids_are_returned_and_propagated() {
    let h = harness().await;
    let r = h.get("/healthz", None).await;
    let id = r.header("x-request-id").unwrap().to_owned();
    // `<16 hex: random per process>-<12 hex: counter>`.
    assert_eq!(id.len(), 29, "{id}");
    assert!(
        id.bytes().all(|b| b.is_ascii_hexdigit() || b == b'-'),
        "{id}"
    );
    let again = h.get("/healthz", None).await;
    assert_ne!(again.header("x-request-id"), Some(id.as_str()));
    assert_eq!(again.header("x-request-id").unwrap()[..16], id[..16]);
    let r = h
        .send(
            Request::builder()
                .uri("/healthz")
                .header("x-request-id", "trace-123")
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    assert_eq!(r.header("x-request-id"), Some("trace-123"));
    // An unprintable or overlong id from the client is replaced, not echoed.
    let long = "x".repeat(129);
    let r = h
        .send(
            Request::builder()
                .uri("/healthz")
                .header("x-request-id", long.as_str())
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    assert_eq!(r.header("x-request-id").unwrap().len(), 29);
}

/// Counts hash verifications, to show unknown names cost the same work as known ones.
struct Counting {
    inner: tessera_server::BlockingPasswords,
    verifies: std::sync::atomic::AtomicUsize,
    without_hash: std::sync::atomic::AtomicUsize,
}

#[async_trait::async_trait]
impl tessera_domain::login::PasswordCheck for Counting {
    async fn verify(
        &self,
        password: tessera_domain::credential::password::Password,
        stored: Option<tessera_domain::credential::password::PasswordHash>,
    ) -> Result<bool, tessera_domain::DomainError> {
        use std::sync::atomic::Ordering::SeqCst;
        self.verifies.fetch_add(1, SeqCst);
        if stored.is_none() {
            self.without_hash.fetch_add(1, SeqCst);
        }
        self.inner.verify(password, stored).await
    }
    async fn hash(
        &self,
        password: tessera_domain::credential::password::Password,
    ) -> Result<tessera_domain::credential::password::PasswordHash, tessera_domain::DomainError>
    {
        self.inner.hash(password).await
    }
    fn needs_rehash(&self, stored: &tessera_domain::credential::password::PasswordHash) -> bool {
        self.inner.needs_rehash(stored)
    }
}

#[tokio::test]
async fn unknown_and_malformed_names_still_pay_for_a_password_hash() {
    use std::sync::atomic::Ordering::SeqCst;
    use tessera_domain::login::{LoginAttempt, LoginContext, login};
    let h = harness().await;
    let counting = Counting {
        inner: tessera_server::BlockingPasswords::new(
            tessera_domain::credential::password::Hasher::insecure_fast_for_tests(),
            1,
            4,
        )
        .unwrap(),
        verifies: Default::default(),
        without_hash: Default::default(),
    };
    let ctx = LoginContext {
        store: h.store.as_ref(),
        passwords: &counting,
        lockout: Default::default(),
        sessions: Default::default(),
        factors: Default::default(),
        now: h.clock.now_time(),
    };
    for name in ["ada", "nobody", "Not Valid!"] {
        let attempt = LoginAttempt {
            username: name.into(),
            password: tessera_domain::credential::password::Password::new("wrong password"),
            ip: None,
            user_agent: None,
        };
        assert!(login(&ctx, attempt).await.unwrap().is_err());
    }
    assert_eq!(
        counting.verifies.load(SeqCst),
        3,
        "one verification per attempt, whatever the name"
    );
    assert_eq!(
        counting.without_hash.load(SeqCst),
        2,
        "unknown and malformed names use the dummy hash"
    );
}

/// Found by the `redirect_safe` fuzz target: an `rd` beyond ASCII (here `é`, as a hand-made
/// link decodes to) was sent back as raw UTF-8 bytes in `Location`, which must be an ASCII URI
/// reference (RFC 9110 §10.2.2). It is sent percent-encoded, as a browser would request it.
#[tokio::test]
async fn an_rd_beyond_ascii_is_sent_percent_encoded() {
    let h = harness().await;
    let cookie = h.login("ada", PASSWORD).await.cookie("tessera").unwrap();
    for (rd, sent) in [
        ("/caf%C3%A9", "/caf%C3%A9"),
        (
            "http://127.0.0.1:8080/caf%C3%A9?q=%C3%A9",
            "http://127.0.0.1:8080/caf%C3%A9?q=%C3%A9",
        ),
    ] {
        let r = h.get(&format!("/login?rd={rd}"), Some(&cookie)).await;
        assert_eq!(r.status, StatusCode::SEE_OTHER, "{rd}: {}", r.body);
        assert_eq!(r.header("location"), Some(sent), "{rd}");
    }
}
