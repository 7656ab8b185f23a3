//! The server-rendered pages: the product name and logo, device names instead of raw user
//! agents, and distinct labels for ending one session, this one, and all of them.

use axum::body::Body;
use axum::http::{Method, Request, StatusCode, header};
use tessera_server::config::{Branding, Logo};

use crate::harness::{PASSWORD, harness, harness_with};

const CHROME_LINUX: &str = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36";
const SAFARI_IPHONE: &str = "Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.1 Mobile/15E148 Safari/604.1";

async fn session_with_agent(h: &crate::harness::Harness, agent: &str) -> String {
    let r = h
        .send(
            Request::builder()
                .method(Method::POST)
                .uri("/login")
                .header(header::CONTENT_TYPE, "application/json")
                .header(header::USER_AGENT, agent)
                .body(Body::from(
                    serde_json::json!({"username": "ada", "password": PASSWORD}).to_string(),
                ))
                .unwrap(),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    r.cookie("tessera").unwrap()
}

#[tokio::test]
async fn sessions_show_device_names_and_distinct_sign_out_labels() {
    let h = harness().await;
    let mine = session_with_agent(&h, CHROME_LINUX).await;
    session_with_agent(&h, SAFARI_IPHONE).await;
    session_with_agent(&h, "<b>evil</b> agent").await;
    let page = h.get("/account", Some(&mine)).await;
    assert_eq!(page.status, StatusCode::OK);
    let body = &page.body;
    assert!(body.contains("Chrome on Linux"), "{body}");
    assert!(body.contains("Safari on iPhone"), "{body}");
    assert!(body.contains("Unknown browser"), "{body}");
    for raw in ["Mozilla/5.0", "AppleWebKit", "evil"] {
        assert!(!body.contains(raw), "raw user agent {raw:?} shown");
    }
    // One session is this one; the other two can be ended one by one.
    assert_eq!(body.matches("(this session)").count(), 1);
    assert_eq!(body.matches(">End session</button>").count(), 2);
    assert_eq!(
        body.matches(r#"<button type="submit" id="sign-out">Sign out</button>"#)
            .count(),
        1
    );
    assert_eq!(body.matches(">Sign out everywhere</button>").count(), 1);
    // The JSON list names the device too, beside the raw string.
    let list = h.get("/api/sessions", Some(&mine)).await.json();
    let mut devices: Vec<&str> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["device"].as_str().unwrap())
        .collect();
    devices.sort_unstable();
    assert_eq!(
        devices,
        ["Chrome on Linux", "Safari on iPhone", "Unknown browser"]
    );
}

#[tokio::test]
async fn the_product_name_and_logo_are_configurable() {
    let h = harness().await;
    let page = h.get("/login", None).await;
    assert!(page.body.contains("<title>Sign in · tessera</title>"));
    assert!(!page.body.contains("/static/logo"));
    assert_eq!(
        h.get("/static/logo", None).await.status,
        StatusCode::NOT_FOUND
    );

    let svg = br##"<svg xmlns="http://www.w3.org/2000/svg" width="8" height="8"><rect width="8" height="8" fill="#2350d3"/></svg>"##;
    let h = harness_with(|c| {
        c.branding = Branding {
            product_name: "Acme <Sign-in>".into(),
            logo: Some(Logo::new("acme.svg", svg.to_vec()).unwrap()),
        }
    })
    .await;
    let page = h.get("/login", None).await;
    assert!(
        page.body
            .contains("<title>Sign in · Acme &#60;Sign-in&#62;</title>")
            || page
                .body
                .contains("<title>Sign in · Acme &lt;Sign-in&gt;</title>"),
        "the name is shown, escaped: {}",
        page.body
    );
    assert!(page.body.contains(r#"<img src="/static/logo""#));
    let logo = h.get("/static/logo", None).await;
    assert_eq!(logo.status, StatusCode::OK);
    assert_eq!(logo.header("content-type"), Some("image/svg+xml"));
    assert_eq!(logo.body.as_bytes(), svg);
    // Served under the same strict policy as every page: a script in an SVG cannot run.
    assert!(
        logo.header("content-security-policy")
            .unwrap()
            .starts_with("default-src 'none'")
    );
    let (cookie, _) = h.session("ada").await;
    let account = h.get("/account", Some(&cookie)).await;
    assert!(
        account.body.contains("Your account · Acme"),
        "{}",
        account.body
    );
}

/// A browser (`Accept: text/html`) never gets a raw JSON error; API clients and the proxy's
/// forward-auth check keep JSON.
#[tokio::test]
async fn browsers_get_error_pages_and_api_clients_json() {
    let h = harness().await;
    let (cookie, _) = h.session("ada").await;
    let html = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8";
    let post = |accept: Option<&'static str>, site: &'static str| {
        let mut r = Request::builder()
            .method(Method::POST)
            .uri("/logout")
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .header(header::COOKIE, cookie.clone())
            .header("sec-fetch-site", site);
        if let Some(a) = accept {
            r = r.header(header::ACCEPT, a);
        }
        r.body(Body::from("csrf=stale")).unwrap()
    };
    // A stale form (wrong token), and a cross-site post refused by the edge.
    for site in ["same-origin", "cross-site"] {
        let r = h.send(post(Some(html), site)).await;
        assert_eq!(r.status, StatusCode::FORBIDDEN, "{site}");
        assert_eq!(
            r.header("content-type"),
            Some("text/html; charset=utf-8"),
            "{site}"
        );
        assert!(
            r.body.contains("This form has expired"),
            "{site}: {}",
            r.body
        );
        assert!(r.body.contains(r#"role="alert""#));
        assert!(r.header("content-security-policy").is_some());
        let r = h.send(post(None, site)).await;
        assert_eq!(r.status, StatusCode::FORBIDDEN);
        assert_eq!(r.json()["error"], "forbidden");
    }
    // The session survived both refusals.
    assert_eq!(
        h.get("/auth/verify", Some(&cookie)).await.status,
        StatusCode::OK
    );
    // No session: a page with a way to sign in.
    let get = |path: &'static str, accept: Option<&'static str>| {
        let mut r = Request::builder().uri(path);
        if let Some(a) = accept {
            r = r.header(header::ACCEPT, a);
        }
        r.body(Body::empty()).unwrap()
    };
    let r = h.send(get("/api/session", Some(html))).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert!(
        r.body.contains(r#"<a href="/login">Sign in</a>"#),
        "{}",
        r.body
    );
    assert_eq!(
        h.send(get("/api/session", None)).await.json()["error"],
        "invalid_token"
    );
    // The forward-auth check copies the browser's Accept; its answer stays JSON for the proxy.
    let r = h.send(get("/auth/verify", Some(html))).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert_eq!(r.json()["error"], "invalid_token");
}

#[tokio::test]
async fn unknown_paths_get_a_not_found_page_or_json() {
    let h = harness().await;
    let page = h
        .send(
            Request::builder()
                .uri("/no/such/page")
                .header(header::ACCEPT, "text/html")
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    assert_eq!(page.status, StatusCode::NOT_FOUND);
    assert!(page.body.contains("<h1>Not found</h1>"), "{}", page.body);
    let api = h.get("/no/such/page", None).await;
    assert_eq!(api.status, StatusCode::NOT_FOUND);
    assert_eq!(api.json()["error"], "not_found");
}
