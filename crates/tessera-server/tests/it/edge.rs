//! The network edge: the client address behind trusted proxies, the per-address throttles over
//! HTTP, the public-origin rules, the metrics listener and slow clients over real TCP.

use std::io::{Read, Write};
use std::net::SocketAddr;
use std::time::Duration;

use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{Method, Request, StatusCode, header};
use tessera_domain::admin::{self, AdminTokenRecord, AdminTokenSeal};
use tessera_server::{Cidr, ServerConfig, Transport};
use tower::ServiceExt;

use crate::harness::{ClockExt, Harness, PASSWORD, Reply, harness, harness_with};

/// A JSON sign-in as it arrives from `peer`, with the given `X-Forwarded-For` lines.
fn login_request(peer: &str, xff: &[&str], username: &str, password: &str) -> Request<Body> {
    let mut r = Request::builder()
        .method(Method::POST)
        .uri("/login")
        .header(header::CONTENT_TYPE, "application/json");
    for line in xff {
        r = r.header("x-forwarded-for", *line);
    }
    let mut r = r
        .body(Body::from(
            serde_json::json!({"username": username, "password": password}).to_string(),
        ))
        .unwrap();
    let peer: SocketAddr = peer.parse().unwrap();
    r.extensions_mut().insert(ConnectInfo(peer));
    r
}

fn behind_proxy(c: &mut ServerConfig) {
    c.transport = Transport::BehindTlsProxy;
    c.public_origin = "https://auth.example.com".into();
    // One attempt per client address, then 429; the per-account limit stays out of the way.
    c.throttle.per_ip_per_minute = 1;
    c.throttle.per_ip_burst = 1;
    c.throttle.per_account_per_minute = 1000;
    c.throttle.per_account_burst = 1000;
}

async fn status(h: &Harness, request: Request<Body>) -> StatusCode {
    h.send(request).await.status
}

#[tokio::test]
async fn the_per_address_login_throttle_holds_over_http() {
    let h = harness_with(|c| {
        c.throttle.per_ip_per_minute = 1;
        c.throttle.per_ip_burst = 2;
        c.throttle.per_account_per_minute = 1000;
        c.throttle.per_account_burst = 1000;
    })
    .await;
    // Dev mode: the socket peer is the client; different usernames do not help.
    for name in ["x1", "x2"] {
        let r = login_request("127.0.0.1:40000", &[], name, "wrong");
        assert_eq!(status(&h, r).await, StatusCode::UNAUTHORIZED);
    }
    let r = h
        .send(login_request("127.0.0.1:40001", &[], "ada", PASSWORD))
        .await;
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS, "{}", r.body);
    assert!(r.header("retry-after").is_some());
    // Another address still signs in; so does the first once the injected clock moves a minute.
    let r = login_request("127.0.0.2:40000", &[], "ada", PASSWORD);
    assert_eq!(status(&h, r).await, StatusCode::OK);
    h.clock.advance(60);
    let r = login_request("127.0.0.1:40002", &[], "ada", PASSWORD);
    assert_eq!(status(&h, r).await, StatusCode::OK);
}

#[tokio::test]
async fn a_client_cannot_choose_its_address_with_a_forwarded_for_line() {
    let h = harness_with(behind_proxy).await;
    // nginx (on loopback, trusted by default) appends its own line with the real peer after
    // whatever the client sent.
    let first = login_request("127.0.0.1:5000", &["203.0.113.9"], "x", "wrong");
    assert_eq!(status(&h, first).await, StatusCode::UNAUTHORIZED);
    // The same client, now claiming fresh addresses in a first line of its own: still throttled.
    for spoof in ["6.6.6.6", "7.7.7.7, 8.8.8.8"] {
        let r = login_request("127.0.0.1:5000", &[spoof, "203.0.113.9"], "ada", PASSWORD);
        assert_eq!(
            status(&h, r).await,
            StatusCode::TOO_MANY_REQUESTS,
            "{spoof}"
        );
    }
    // In one line (Caddy, `$proxy_add_x_forwarded_for`) the right-most entry counts too.
    let r = login_request("127.0.0.1:5000", &["6.6.6.6, 203.0.113.9"], "ada", PASSWORD);
    assert_eq!(status(&h, r).await, StatusCode::TOO_MANY_REQUESTS);
    // A genuinely different client behind the same proxy is not affected.
    let r = login_request(
        "127.0.0.1:5000",
        &["6.6.6.6", "198.51.100.4"],
        "ada",
        PASSWORD,
    );
    assert_eq!(status(&h, r).await, StatusCode::OK);
    // The session records the address the proxy saw, not the claimed one.
    let (ada, _) = h
        .store
        .account_by_username(&tessera_domain::account::Username::parse("ada").unwrap())
        .await
        .unwrap()
        .unwrap();
    let sessions = h.store.sessions_of(&ada.id).await.unwrap();
    assert_eq!(sessions.len(), 1);
    assert_eq!(sessions[0].ip.as_deref(), Some("198.51.100.4"));
}

#[tokio::test]
async fn forwarded_for_from_an_untrusted_peer_is_ignored() {
    let h = harness_with(behind_proxy).await;
    // A client reaching tessera directly (not through the proxy) is its own address.
    let r = login_request("198.51.100.7:5000", &["203.0.113.1"], "x", "wrong");
    assert_eq!(status(&h, r).await, StatusCode::UNAUTHORIZED);
    let r = login_request("198.51.100.7:5000", &["203.0.113.2"], "ada", PASSWORD);
    assert_eq!(status(&h, r).await, StatusCode::TOO_MANY_REQUESTS);
    // A proxy chain: trust the load balancer's network as well.
    let h = harness_with(|c| {
        behind_proxy(c);
        c.trusted_proxies = vec![
            Cidr::parse("127.0.0.0/8").unwrap(),
            Cidr::parse("10.0.0.0/8").unwrap(),
        ];
    })
    .await;
    let r = login_request(
        "127.0.0.1:5000",
        &["6.6.6.6", "203.0.113.9, 10.1.2.3"],
        "x",
        "?",
    );
    assert_eq!(status(&h, r).await, StatusCode::UNAUTHORIZED);
    let r = login_request(
        "127.0.0.1:5000",
        &["203.0.113.9", "10.9.9.9"],
        "ada",
        PASSWORD,
    );
    assert_eq!(status(&h, r).await, StatusCode::TOO_MANY_REQUESTS);
}

#[tokio::test]
async fn ipv6_clients_are_throttled_per_64() {
    let h = harness_with(|c| {
        behind_proxy(c);
        c.throttle.per_ip_burst = 2;
    })
    .await;
    let r = login_request("[::1]:5000", &["2001:db8:1:2::1"], "x", "wrong");
    assert_eq!(status(&h, r).await, StatusCode::UNAUTHORIZED);
    let r = login_request("[::1]:5000", &["2001:db8:1:2::2"], "y", "wrong");
    assert_eq!(status(&h, r).await, StatusCode::UNAUTHORIZED);
    // A third address of the same /64 (one subscriber) is over the limit; another /64 is not.
    let r = login_request("[::1]:5000", &["2001:db8:1:2:abcd::3"], "ada", PASSWORD);
    assert_eq!(status(&h, r).await, StatusCode::TOO_MANY_REQUESTS);
    let r = login_request("[::1]:5000", &["2001:db8:1:3::1"], "ada", PASSWORD);
    assert_eq!(status(&h, r).await, StatusCode::OK);
}

#[tokio::test]
async fn unknown_admin_tokens_are_cut_off_before_the_store() {
    let h = harness().await;
    let guess = |peer: &str, token: &str| {
        let mut r = Request::builder()
            .uri("/admin/api/users")
            .header(header::AUTHORIZATION, format!("Bearer {token}"))
            .body(Body::empty())
            .unwrap();
        r.extensions_mut()
            .insert(ConnectInfo(peer.parse::<SocketAddr>().unwrap()));
        r
    };
    let wrong = format!("tsa_{}", "A".repeat(43));
    for _ in 0..10 {
        let r = h.send(guess("192.0.2.1:1", &wrong)).await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{}", r.body);
    }
    // The 11th guess is refused without a lookup: with the store closed it still gets 429,
    // where a lookup would fail with 503.
    h.close_store().await;
    let r = h.send(guess("192.0.2.1:1", &wrong)).await;
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS, "{}", r.body);
    assert!(r.header("retry-after").is_some());
    // Even with the real token: that address waits out its minute.
    let r = h.send(guess("192.0.2.1:1", &h.admin_token)).await;
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS);
    // Another address reaches the store (closed here, hence 503).
    let r = h.send(guess("192.0.2.2:1", &wrong)).await;
    assert_eq!(r.status, StatusCode::SERVICE_UNAVAILABLE, "{}", r.body);
}

#[tokio::test]
async fn the_real_admin_token_works_after_failures_from_elsewhere() {
    let h = harness().await;
    let wrong = format!("tsa_{}", "B".repeat(43));
    for _ in 0..12 {
        let mut r = Request::builder()
            .uri("/admin/api/users")
            .header(header::AUTHORIZATION, format!("Bearer {wrong}"))
            .body(Body::empty())
            .unwrap();
        r.extensions_mut()
            .insert(ConnectInfo("192.0.2.9:1".parse::<SocketAddr>().unwrap()));
        h.send(r).await;
    }
    let mut r = Request::builder()
        .uri("/admin/api/users")
        .header(header::AUTHORIZATION, h.admin())
        .body(Body::empty())
        .unwrap();
    r.extensions_mut()
        .insert(ConnectInfo("192.0.2.10:1".parse::<SocketAddr>().unwrap()));
    assert_eq!(h.send(r).await.status, StatusCode::OK);
}

#[test]
fn public_origin_must_be_https_behind_a_proxy_and_http_in_dev_mode() {
    let mut c = ServerConfig::dev("127.0.0.1:8080".parse().unwrap());
    c.transport = Transport::BehindTlsProxy;
    c.public_origin = "http://auth.example.com".into();
    let err = c.validate().unwrap_err();
    assert!(err.contains("public_origin"), "{err}");
    c.public_origin = "https://auth.example.com".into();
    assert_eq!(c.validate(), Ok(()));
    for bad in [
        "https://auth.example.com/",
        "https://auth.example.com/login",
        "https://",
        "auth.example.com",
    ] {
        c.public_origin = bad.into();
        assert!(c.validate().is_err(), "{bad}");
    }
    // Dev mode serves plain-HTTP cookies: an https:// origin would make the browser use HTTPS
    // with cookies that lack Secure and __Host-.
    let mut c = ServerConfig::dev("127.0.0.1:8080".parse().unwrap());
    c.public_origin = "https://auth.example.com".into();
    let err = c.validate().unwrap_err();
    assert!(
        err.contains("https://") && err.contains("behind_tls_proxy"),
        "{err}"
    );
    c.public_origin = "http://127.0.0.1:8080".into();
    assert_eq!(c.validate(), Ok(()));
}

#[tokio::test]
async fn metrics_are_not_on_the_public_listener() {
    let h = harness().await;
    h.login("ada", "a wrong password").await;
    h.login("nobody", "a wrong password").await;
    let public = h.get("/metrics", None).await;
    assert_eq!(public.status, StatusCode::NOT_FOUND);
    assert!(!public.body.contains("tessera_logins_total"));
    let m = metrics(&h).await;
    for needle in [
        r#"tessera_logins_total{outcome="wrong_password"}"#,
        r#"tessera_logins_total{outcome="unknown_account"}"#,
    ] {
        assert!(m.body.contains(needle), "{needle} missing from\n{}", m.body);
    }
}

/// `GET /metrics` on the metrics router (what `metrics.listen` serves).
pub(crate) async fn metrics(h: &Harness) -> Reply {
    let response = tessera_server::metrics_router(h.state.clone())
        .oneshot(
            Request::builder()
                .uri("/metrics")
                .body(Body::empty())
                .unwrap(),
        )
        .await
        .unwrap();
    let status = response.status();
    let headers = response.headers().clone();
    let bytes = http_body_util::BodyExt::collect(response.into_body())
        .await
        .unwrap()
        .to_bytes();
    Reply {
        status,
        headers,
        body: String::from_utf8_lossy(&bytes).into_owned(),
    }
}

// --- slow clients over real TCP ---------------------------------------------------------------

/// A real server over the harness's state, with 1-s limits; returns its address and the
/// sender that stops it.
async fn tcp_server(h: &Harness) -> (SocketAddr, tokio::sync::oneshot::Sender<()>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let state = h.state.clone();
    tokio::spawn(async move {
        tessera_server::serve(listener, state, async move {
            let _ = rx.await;
        })
        .await
        .unwrap();
    });
    (addr, tx)
}

fn one_second(c: &mut ServerConfig) {
    c.timeouts.header = Duration::from_secs(1);
    c.timeouts.body = Duration::from_secs(1);
    c.timeouts.idle = Duration::from_secs(1);
}

/// Sends `raw`, then reads until the server closes the connection; returns what it answered.
/// The 30-s read timeout only guards against a hang (then the test fails): with 1-s limits the
/// server closes long before.
fn closed_after(addr: SocketAddr, raw: &[u8]) -> String {
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    s.write_all(raw).unwrap();
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match s.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => out.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => break,
            Err(e) => panic!("the server did not close the connection: {e}"),
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_half_sent_request_head_is_closed() {
    let h = harness_with(one_second).await;
    let (addr, _stop) = tcp_server(&h).await;
    let answer = tokio::task::spawn_blocking(move || {
        closed_after(addr, b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: ")
    })
    .await
    .unwrap();
    assert!(!answer.contains("200 OK"), "{answer}");
    // A connection that sends nothing at all is closed too.
    let answer = tokio::task::spawn_blocking(move || closed_after(addr, b""))
        .await
        .unwrap();
    assert_eq!(answer, "");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_half_sent_body_is_closed() {
    let h = harness_with(one_second).await;
    let (addr, _stop) = tcp_server(&h).await;
    let answer = tokio::task::spawn_blocking(move || {
        closed_after(
            addr,
            b"POST /login HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n\
              Content-Length: 100\r\n\r\n{\"username\":",
        )
    })
    .await
    .unwrap();
    assert!(!answer.contains("200 OK"), "{answer}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idle_keep_alive_connection_is_closed() {
    let h = harness_with(one_second).await;
    let (addr, _stop) = tcp_server(&h).await;
    let answer = tokio::task::spawn_blocking(move || {
        closed_after(addr, b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
    })
    .await
    .unwrap();
    // The request was answered, and the kept-alive connection closed once idle.
    assert!(answer.starts_with("HTTP/1.1 200 OK"), "{answer}");
    assert!(answer.ends_with("ok"), "{answer}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_within_the_limits_are_served_with_the_peer_address() {
    let h = harness_with(|c| {
        one_second(c);
        c.throttle.per_ip_per_minute = 1;
        c.throttle.per_ip_burst = 1;
        c.throttle.per_account_per_minute = 1000;
        c.throttle.per_account_burst = 1000;
    })
    .await;
    let (addr, stop) = tcp_server(&h).await;
    let login = |password: &'static str| {
        let body = format!(r#"{{"username":"ada","password":"{password}"}}"#);
        format!(
            "POST /login HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n\
             Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        )
    };
    let first = tokio::task::spawn_blocking(move || closed_after(addr, login("nope").as_bytes()))
        .await
        .unwrap();
    assert!(first.starts_with("HTTP/1.1 401"), "{first}");
    // The socket peer (127.0.0.1) is the throttled client over real TCP.
    let second =
        tokio::task::spawn_blocking(move || closed_after(addr, login(PASSWORD).as_bytes()))
            .await
            .unwrap();
    assert!(second.starts_with("HTTP/1.1 429"), "{second}");
    stop.send(()).unwrap();
}

/// A bearer request to the admin API from `peer`.
fn admin_request(peer: &str, token: &str) -> Request<Body> {
    let mut r = Request::builder()
        .uri("/admin/api/users")
        .header(header::AUTHORIZATION, format!("Bearer {token}"))
        .body(Body::empty())
        .unwrap();
    r.extensions_mut()
        .insert(ConnectInfo(peer.parse::<SocketAddr>().unwrap()));
    r
}

/// A well-formed tagged admin token with a wrong tag (issue 7, item 8) is refused before any
/// store lookup, answered exactly like an unknown token and counted by the per-address gate.
#[tokio::test]
async fn forged_tagged_admin_tokens_never_reach_the_store() {
    let h = harness().await;
    let seal = AdminTokenSeal::load(h.store.as_ref()).await.unwrap();
    // Well-formed, with the right tag, but never stored: only a lookup can refuse it.
    let unstored = seal.generate().expose().to_owned();
    let unknown = h.send(admin_request("192.0.2.1:1", &unstored)).await;
    assert_eq!(unknown.status, StatusCode::UNAUTHORIZED, "{}", unknown.body);
    // The same shape under another deployment's key, and a random tag.
    let other = AdminTokenSeal::new(&[1u8; 32])
        .generate()
        .expose()
        .to_owned();
    let random = format!(
        "tsa_v2.{}.{}",
        tessera_token::b64::encode([5u8; 32]),
        tessera_token::b64::encode([6u8; 16])
    );
    let mut forged = vec![other, random];
    // And the real bootstrap token with each tag character changed.
    let real = h.admin_token.clone();
    assert!(real.starts_with("tsa_v2."), "{real}");
    let tag_at = real.rfind('.').unwrap() + 1;
    for i in tag_at..real.len() {
        let mut bytes = real.clone().into_bytes();
        // 'A' and 'Q' keep the last character canonical (its low four bits are zero).
        bytes[i] = if bytes[i] == b'A' { b'Q' } else { b'A' };
        forged.push(String::from_utf8(bytes).unwrap());
    }

    // Every connection closed: a lookup would now answer 503.
    h.close_store().await;
    let r = h.send(admin_request("192.0.2.2:1", &unstored)).await;
    assert_eq!(r.status, StatusCode::SERVICE_UNAVAILABLE, "{}", r.body);
    for (i, token) in forged.iter().enumerate() {
        // A fresh address each, so that the gate does not answer for the tag check.
        let peer = format!("198.51.100.{}:1", i + 1);
        let r = h.send(admin_request(&peer, token)).await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{token}: {}", r.body);
        assert_eq!(r.body, unknown.body, "refused like an unknown token");
        assert_eq!(
            r.header("www-authenticate"),
            unknown.header("www-authenticate")
        );
    }
    // Counted by the gate like unknown tokens: the 11th forgery from one address waits.
    let forgery = &forged[0];
    for _ in 0..10 {
        let r = h.send(admin_request("203.0.113.7:1", forgery)).await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{}", r.body);
    }
    let r = h.send(admin_request("203.0.113.7:1", forgery)).await;
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS, "{}", r.body);
}

/// Admin tokens made now carry the tag (`tsa_v2.<secret>.<tag>`) and work through the API;
/// tokens of the first, untagged format (`tsa_` and 43 characters, in users' scripts) keep
/// working, looked up behind the per-address gate.
#[tokio::test]
async fn tagged_and_untagged_admin_tokens_both_work() {
    let h = harness().await;
    assert!(h.admin_token.starts_with("tsa_v2."), "{}", h.admin_token);
    assert_eq!(h.admin_token.len(), 73);
    let r = h.send(admin_request("192.0.2.1:1", &h.admin_token)).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let seal = AdminTokenSeal::load(h.store.as_ref()).await.unwrap();
    let (made, _) = admin::create_token(h.store.as_ref(), &seal, "ci", h.clock.now_time())
        .await
        .unwrap();
    let r = h.send(admin_request("192.0.2.1:1", made.expose())).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);

    // A token of the first format, stored as it was: SHA-256 of the whole text.
    let old = format!("tsa_{}", tessera_token::b64::encode([42u8; 32]));
    let mut hash = [0u8; 32];
    hash.copy_from_slice(
        aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, old.as_bytes()).as_ref(),
    );
    h.store
        .create_admin_token(&AdminTokenRecord {
            hash,
            label: "old script".into(),
            created_at: h.clock.now_time(),
        })
        .await
        .unwrap();
    let r = h.send(admin_request("192.0.2.1:1", &old)).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    // It is what the gate is for: after failed guesses from its address, it waits too.
    let guess = format!("tsa_{}", tessera_token::b64::encode([43u8; 32]));
    for _ in 0..10 {
        let r = h.send(admin_request("192.0.2.9:1", &guess)).await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{}", r.body);
    }
    let r = h.send(admin_request("192.0.2.9:1", &old)).await;
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS, "{}", r.body);
    // Revoked, it is refused at once.
    let id = AdminTokenRecord {
        hash,
        label: String::new(),
        created_at: h.clock.now_time(),
    }
    .id();
    admin::revoke_token(h.store.as_ref(), &id, h.clock.now_time())
        .await
        .unwrap();
    let r = h.send(admin_request("192.0.2.1:1", &old)).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{}", r.body);
}
