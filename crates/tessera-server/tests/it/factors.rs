//! Second factors over HTTP on both stores: TOTP enrolled through the API, the two-step
//! sign-in with a code computed here with `tessera_token::otp`, replay refused, the pending
//! state opening nothing, recovery codes single use, the wrong-code limit, and a phone factor
//! whose codes go through a real SMS webhook to an in-process receiver.

use std::path::Path;
use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use axum::http::{Method, StatusCode};
use tessera_domain::factor::PendingToken;
use tessera_domain::store::Store;
use tessera_server::SecondFactors;
use tessera_token::otp::{KeyUri, OtpKind, Totp};
use tessera_token::seal::{KeyRing, MasterKey};

use crate::harness::{Harness, PASSWORD, harness_factors, harness_on_with};

fn ring() -> Option<Arc<KeyRing>> {
    let (key, _) = MasterKey::generate().unwrap();
    Some(Arc::new(KeyRing::new(key, vec![])))
}

fn with_key() -> SecondFactors {
    SecondFactors {
        master_keys: ring(),
        ..SecondFactors::default()
    }
}

/// The pending cookie's `name=value` (dev mode: `tessera-mfa`).
const PENDING: &str = "tessera-mfa";

fn totp_of(uri: &str) -> Totp {
    let parsed = KeyUri::parse(uri).unwrap();
    let OtpKind::Totp { period } = parsed.kind else {
        panic!("not a TOTP URI: {uri}")
    };
    Totp::new(parsed.secret, parsed.params, period).unwrap()
}

impl Harness {
    fn now_secs(&self) -> i64 {
        use crate::harness::ClockExt;
        self.clock.now_time().0
    }

    async fn post_json(
        &self,
        path: &str,
        body: serde_json::Value,
        cookie: &str,
        csrf: Option<&str>,
    ) -> crate::harness::Reply {
        let mut headers = vec![("cookie", cookie)];
        if let Some(c) = csrf {
            headers.push(("x-csrf-token", c));
        }
        self.json(Method::POST, path, body, &headers).await
    }

    /// Enrols a TOTP factor for the signed-in user; returns its id and generator.
    async fn enrol_totp(&self, cookie: &str, csrf: &str) -> (String, Totp) {
        let r = self
            .post_json(
                "/api/factors/totp",
                serde_json::json!({"label": "phone app"}),
                cookie,
                Some(csrf),
            )
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
        let v = r.json();
        let uri = v["uri"].as_str().unwrap();
        assert!(uri.starts_with("otpauth://totp/"), "{uri}");
        assert!(v["qr_svg"].as_str().unwrap().starts_with("<svg"));
        assert_eq!(r.header("cache-control"), Some("no-store"));
        let totp = totp_of(uri);
        // The base32 key for manual entry is the URI's secret.
        assert_eq!(
            v["secret"].as_str().unwrap(),
            totp.secret().to_base32().as_str()
        );
        let id = v["factor"]["id"].as_str().unwrap().to_owned();
        assert_eq!(v["factor"]["status"], "pending");
        let code = totp.code_at(self.now_secs()).unwrap();
        let r = self
            .post_json(
                &format!("/api/factors/{id}/confirm"),
                serde_json::json!({"code": code}),
                cookie,
                Some(csrf),
            )
            .await;
        assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.body);
        (id, totp)
    }

    async fn logout(&self, cookie: &str, csrf: &str) {
        let r = self
            .post_json("/logout", serde_json::json!({}), cookie, Some(csrf))
            .await;
        assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.body);
    }

    /// The password step of a two-step sign-in: returns the pending cookie pair.
    async fn password_step(&self) -> (String, serde_json::Value) {
        let r = self.login("ada", PASSWORD).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.body);
        let v = r.json();
        assert_eq!(v["status"], "second_factor_required", "{v}");
        assert!(
            r.cookie("tessera").is_none(),
            "no session before the second step"
        );
        let line = r.set_cookie_line(PENDING).unwrap();
        assert!(
            line.contains("HttpOnly") && line.contains("SameSite=Lax"),
            "{line}"
        );
        (r.cookie(PENDING).unwrap(), v)
    }

    async fn second_step(&self, pending: &str, body: serde_json::Value) -> crate::harness::Reply {
        self.post_json("/login/second-factor", body, pending, None)
            .await
    }
}

/// The whole flow, run on SQLite and on PostgreSQL.
async fn totp_flow(h: &Harness) {
    let (cookie, csrf) = h.session("ada").await;
    // The account page offers the factors; the session is password-only.
    let page = h.get("/account", Some(&cookie)).await;
    assert!(
        page.body.contains("id=\"session-amr\">password<"),
        "{}",
        page.body
    );
    let (id, totp) = h.enrol_totp(&cookie, &csrf).await;
    let listed = h.get("/api/factors", Some(&cookie)).await.json();
    assert_eq!(listed["factors"][0]["id"], id.as_str());
    assert_eq!(listed["factors"][0]["status"], "active");
    h.logout(&cookie, &csrf).await;

    let (pending, offered) = h.password_step().await;
    assert_eq!(offered["factors"][0]["id"], id.as_str());
    assert_eq!(offered["factors"][0]["kind"], "totp");
    // The pending state opens nothing.
    assert_eq!(
        h.get("/auth/verify", Some(&pending)).await.status,
        StatusCode::UNAUTHORIZED
    );
    let account = h.get("/account", Some(&pending)).await;
    assert_eq!(account.status, StatusCode::SEE_OTHER, "{}", account.body);
    assert_eq!(
        h.get("/api/session", Some(&pending)).await.status,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        h.get("/api/factors", Some(&pending)).await.status,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        h.get("/admin/api/users", Some(&pending)).await.status,
        StatusCode::UNAUTHORIZED
    );
    // The same cookie value under the session cookie's name is no session either.
    let value = pending.split_once('=').unwrap().1;
    let as_session = format!("tessera={value}");
    assert_eq!(
        h.get("/auth/verify", Some(&as_session)).await.status,
        StatusCode::UNAUTHORIZED
    );

    // The code of the enrolment's step was used: refused now (RFC 6238 §5.2).
    let used = totp.code_at(h.now_secs()).unwrap();
    let r = h
        .second_step(&pending, serde_json::json!({"factor": id, "code": used}))
        .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{}", r.body);
    assert_eq!(r.json()["error"], "invalid_credentials");

    h.clock.advance(30);
    let code = totp.code_at(h.now_secs()).unwrap();
    let r = h
        .second_step(&pending, serde_json::json!({"factor": id, "code": code}))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let amr = r.json()["session"]["amr"].clone();
    assert_eq!(amr, serde_json::json!(["pwd", "otp", "mfa"]));
    let session = r.cookie("tessera").unwrap();
    assert_eq!(
        r.cookie(PENDING).as_deref(),
        Some("tessera-mfa="),
        "pending cookie cleared"
    );
    let verify = h.get("/auth/verify?mfa=1", Some(&session)).await;
    assert_eq!(verify.status, StatusCode::OK);
    assert_eq!(verify.header("x-tessera-amr"), Some("pwd,otp,mfa"));
    let page = h.get("/account", Some(&session)).await;
    assert!(
        page.body.contains("password, one-time code, two factors"),
        "{}",
        page.body
    );
    // The used pending state is gone.
    let r = h
        .second_step(&pending, serde_json::json!({"factor": id, "code": code}))
        .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert_eq!(r.json()["error"], "invalid_token");

    // A new sign-in: the code just used is refused a second time.
    let (pending, _) = h.password_step().await;
    let r = h
        .second_step(&pending, serde_json::json!({"factor": id, "code": code}))
        .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{}", r.body);
}

#[tokio::test]
async fn totp_enrolment_and_two_step_sign_in_on_sqlite() {
    let h = harness_factors(with_key(), |_| {}).await;
    totp_flow(&h).await;
}

#[tokio::test]
async fn totp_enrolment_and_two_step_sign_in_on_postgres() {
    let Some((pg, schema)) = crate::postgres::store().await else {
        return;
    };
    let h = harness_on_with(pg.clone(), with_key(), |_| {}).await;
    totp_flow(&h).await;
    crate::postgres::drop_schema(&pg, &schema).await;
}

async fn recovery_flow(h: &Harness) {
    let (cookie, csrf) = h.session("ada").await;
    let (_, _) = h.enrol_totp(&cookie, &csrf).await;
    let r = h
        .post_json(
            "/api/factors/recovery-codes",
            serde_json::json!({}),
            &cookie,
            Some(&csrf),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let codes: Vec<String> = r.json()["codes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap().to_owned())
        .collect();
    assert_eq!(codes.len(), 10);
    assert_eq!(
        h.get("/api/factors", Some(&cookie)).await.json()["recovery_codes_left"],
        10
    );
    h.logout(&cookie, &csrf).await;

    let (pending, _) = h.password_step().await;
    // Typed in upper case with spaces: still the code.
    let typed = codes[0].to_uppercase().replace('-', " - ");
    let r = h
        .second_step(&pending, serde_json::json!({"recovery_code": typed}))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let session = r.cookie("tessera").unwrap();
    let csrf = r.json()["csrf"].as_str().unwrap().to_owned();
    let page = h.get("/account", Some(&session)).await;
    assert!(
        page.body
            .contains("9 unused recovery codes. One was last used just now."),
        "{}",
        page.body
    );
    h.logout(&session, &csrf).await;

    // Single use.
    let (pending, _) = h.password_step().await;
    let r = h
        .second_step(&pending, serde_json::json!({"recovery_code": codes[0]}))
        .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{}", r.body);
    let r = h
        .second_step(&pending, serde_json::json!({"recovery_code": codes[1]}))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
}

/// The minute's housekeeping deletes a pending sign-in once it has expired (it was only
/// refused before: the row stayed for ever).
#[tokio::test]
async fn housekeeping_deletes_expired_pending_sign_ins() {
    let h = harness_factors(with_key(), |_| {}).await;
    let (cookie, csrf) = h.session("ada").await;
    h.enrol_totp(&cookie, &csrf).await;
    h.logout(&cookie, &csrf).await;
    let (pending, _) = h.password_step().await;
    let value = pending.split_once('=').unwrap().1;
    let token = PendingToken::parse(value.split_once('.').unwrap().0).expect("a pending token");
    h.state.housekeep().await;
    assert!(
        h.store
            .pending_login(&token.hash(), tessera_domain::clock::UnixTime(h.now_secs()))
            .await
            .unwrap()
            .is_some(),
        "a live pending sign-in is kept"
    );
    h.clock.advance(301);
    h.state.housekeep().await;
    assert!(
        !h.store.delete_pending_login(&token.hash()).await.unwrap(),
        "the expired pending sign-in is still stored"
    );
}

#[tokio::test]
async fn recovery_codes_are_single_use_on_sqlite() {
    let h = harness_factors(with_key(), |_| {}).await;
    recovery_flow(&h).await;
}

#[tokio::test]
async fn recovery_codes_are_single_use_on_postgres() {
    let Some((pg, schema)) = crate::postgres::store().await else {
        return;
    };
    let h = harness_on_with(pg.clone(), with_key(), |_| {}).await;
    recovery_flow(&h).await;
    crate::postgres::drop_schema(&pg, &schema).await;
}

/// Wrong codes: the pending state survives `pending_tries` of them, then the sign-in starts
/// over; across sign-ins the factor locks after `lock_after` consecutive failures and then
/// refuses even the right code.
#[tokio::test]
async fn wrong_codes_end_the_pending_state_and_lock_the_factor() {
    let h = harness_factors(with_key(), |c| {
        c.factors.pending_tries = 2;
        c.factors.lock_after = 3;
    })
    .await;
    let (cookie, csrf) = h.session("ada").await;
    let (id, totp) = h.enrol_totp(&cookie, &csrf).await;
    h.logout(&cookie, &csrf).await;
    let wrong = |t: &Totp, now: i64| {
        let right = t.code_at(now).unwrap();
        let n: u32 = right.parse().unwrap();
        format!("{:06}", (n + 1) % 1_000_000)
    };
    let (pending, _) = h.password_step().await;
    for _ in 0..2 {
        let r = h
            .second_step(
                &pending,
                serde_json::json!({"factor": id, "code": wrong(&totp, h.now_secs())}),
            )
            .await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    }
    // Two tries used: the pending state is gone, even for the right code.
    h.clock.advance(30);
    let right = totp.code_at(h.now_secs()).unwrap();
    let r = h
        .second_step(&pending, serde_json::json!({"factor": id, "code": right}))
        .await;
    assert_eq!(r.json()["error"], "invalid_token", "{}", r.body);
    // A third failure (in a new sign-in) locks the factor (3 consecutive).
    let (pending, _) = h.password_step().await;
    let r = h
        .second_step(
            &pending,
            serde_json::json!({"factor": id, "code": wrong(&totp, h.now_secs())}),
        )
        .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    let r = h
        .second_step(&pending, serde_json::json!({"factor": id, "code": right}))
        .await;
    assert_eq!(
        r.status,
        StatusCode::UNAUTHORIZED,
        "a locked factor refuses the right code"
    );
    // Still two-step (never password-only), but the locked factor is not offered.
    let (_, offered) = h.password_step().await;
    assert_eq!(
        offered["factors"],
        serde_json::json!([]),
        "a locked factor is not offered"
    );
    assert_eq!(
        offered["enrol_only"], false,
        "no enrolment of a new factor either"
    );
}

/// Without a master key, TOTP enrolment is refused with a 503 (dev mode: email, SMS and
/// recovery codes need none); behind a TLS proxy every enrolment is refused.
#[tokio::test]
async fn no_master_key_refuses_enrolment() {
    let h = crate::harness::harness().await;
    let (cookie, csrf) = h.session("ada").await;
    let r = h
        .post_json(
            "/api/factors/totp",
            serde_json::json!({}),
            &cookie,
            Some(&csrf),
        )
        .await;
    assert_eq!(r.status, StatusCode::SERVICE_UNAVAILABLE, "{}", r.body);
    assert_eq!(r.json()["error"], "temporarily_unavailable");
    let r = h
        .post_json(
            "/api/factors/recovery-codes",
            serde_json::json!({}),
            &cookie,
            Some(&csrf),
        )
        .await;
    assert_eq!(
        r.status,
        StatusCode::CREATED,
        "dev mode: recovery codes need no master key"
    );
}

/// What the SMS receiver saw.
#[derive(Clone, Default)]
struct Inbox(Arc<Mutex<Vec<serde_json::Value>>>);

impl Inbox {
    async fn start() -> (Inbox, String) {
        let inbox = Inbox::default();
        let seen = inbox.clone();
        let app = axum::Router::new().route(
            "/sms",
            axum::routing::post(move |headers: axum::http::HeaderMap, body: Bytes| {
                let seen = seen.clone();
                async move {
                    assert!(headers.get("tessera-signature").is_some());
                    seen.0
                        .lock()
                        .unwrap()
                        .push(serde_json::from_slice(&body).unwrap());
                    "{\"ok\":true}"
                }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await });
        (inbox, format!("http://{addr}/sms"))
    }

    /// The code of the last message (sent before the call returned: the webhook answered).
    fn last_code(&self) -> String {
        let all = self.0.lock().unwrap();
        all.last().expect("a message")["code"]
            .as_str()
            .unwrap()
            .to_owned()
    }

    fn count(&self) -> usize {
        self.0.lock().unwrap().len()
    }
}

struct Env;

impl tessera_delivery::Environment for Env {
    fn var(&self, name: &str) -> Option<String> {
        (name == "SMS_SECRET").then(|| "0123456789abcdef0123456789abcdef-test".to_owned())
    }
    fn read_file(&self, _: &Path) -> std::io::Result<Vec<u8>> {
        Err(std::io::ErrorKind::NotFound.into())
    }
}

#[tokio::test]
async fn a_phone_factor_gets_its_codes_through_the_sms_webhook() {
    let (inbox, url) = Inbox::start().await;
    let config: tessera_delivery::DeliveryConfig = serde_json::from_value(serde_json::json!({
        "sms": {
            "url": url,
            "signing_secret_env": "SMS_SECRET",
            "json_body": "{\"to\":\"{to}\",\"code\":\"{code}\",\"purpose\":\"{purpose}\"}",
        }
    }))
    .unwrap();
    let clock = tessera_testkit::FakeClock::new(tessera_domain::clock::UnixTime(1_800_000_000));
    let senders = config.build(&Env, Arc::new(clock)).unwrap();
    let h = harness_factors(
        SecondFactors {
            master_keys: ring(),
            senders,
        },
        |_| {},
    )
    .await;
    let (cookie, csrf) = h.session("ada").await;
    let r = h
        .post_json(
            "/api/factors/sms",
            serde_json::json!({"phone": "+44 7700 900123"}),
            &cookie,
            Some(&csrf),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let id = r.json()["factor"]["id"].as_str().unwrap().to_owned();
    assert_eq!(inbox.count(), 1);
    {
        let all = inbox.0.lock().unwrap();
        assert_eq!(all[0]["to"], "+447700900123");
        assert_eq!(all[0]["purpose"], "verify_address");
    }
    let r = h
        .post_json(
            &format!("/api/factors/{id}/confirm"),
            serde_json::json!({"code": inbox.last_code()}),
            &cookie,
            Some(&csrf),
        )
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.body);
    h.logout(&cookie, &csrf).await;

    let (pending, offered) = h.password_step().await;
    assert_eq!(offered["factors"][0]["kind"], "sms");
    // The resend throttle: one code per factor every 30 s (the confirmation code was one).
    let r = h
        .post_json(
            "/login/second-factor/send",
            serde_json::json!({"factor": id}),
            &pending,
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS, "{}", r.body);
    h.clock.advance(31);
    let r = h
        .post_json(
            "/login/second-factor/send",
            serde_json::json!({"factor": id}),
            &pending,
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.body);
    assert_eq!(inbox.count(), 2);
    let code = inbox.last_code();
    // Asking again at once is throttled.
    let r = h
        .post_json(
            "/login/second-factor/send",
            serde_json::json!({"factor": id}),
            &pending,
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS, "{}", r.body);
    assert!(r.header("retry-after").is_some());
    let r = h
        .second_step(&pending, serde_json::json!({"factor": id, "code": code}))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(
        r.json()["session"]["amr"],
        serde_json::json!(["pwd", "sms", "mfa"])
    );

    // Removing the factor needs the password again.
    let session = r.cookie("tessera").unwrap();
    let csrf = r.json()["csrf"].as_str().unwrap().to_owned();
    let r = h
        .json(
            Method::DELETE,
            &format!("/api/factors/{id}"),
            serde_json::json!({"password": "wrong password"}),
            &[("cookie", &session), ("x-csrf-token", &csrf)],
        )
        .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{}", r.body);
    let r = h
        .json(
            Method::DELETE,
            &format!("/api/factors/{id}"),
            serde_json::json!({"password": PASSWORD}),
            &[("cookie", &session), ("x-csrf-token", &csrf)],
        )
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.body);
    let store: &dyn Store = h.store.as_ref();
    let account = tessera_domain::accounts::find(store, "ada").await.unwrap();
    assert!(store.factors_of(&account.id).await.unwrap().is_empty());
}

/// The pages: the browser's form post of a password is sent to the second-step page, which
/// lists the factor; a code typed there signs in and redirects.
#[tokio::test]
async fn the_second_step_page_signs_a_browser_in() {
    let h = harness_factors(with_key(), |_| {}).await;
    let (cookie, csrf) = h.session("ada").await;
    let (id, totp) = h.enrol_totp(&cookie, &csrf).await;
    h.logout(&cookie, &csrf).await;
    let page = h.get("/login", None).await;
    let login_cookie = page.cookie("tessera-login").unwrap();
    let login_csrf = login_cookie.split_once('=').unwrap().1.to_owned();
    let form = format!(
        "username=ada&password={}&csrf={login_csrf}&rd=",
        PASSWORD.replace(' ', "+")
    );
    let r = h
        .send(
            axum::http::Request::builder()
                .method(Method::POST)
                .uri("/login")
                .header("content-type", "application/x-www-form-urlencoded")
                .header("cookie", &login_cookie)
                .header("origin", crate::harness::ORIGIN)
                .body(axum::body::Body::from(form))
                .unwrap(),
        )
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
    assert_eq!(r.header("location"), Some("/login/second-factor"));
    let pending = r.cookie(PENDING).unwrap();
    let page = h.get("/login/second-factor", Some(&pending)).await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(
        page.body.contains(&format!("value=\"{id}\"")),
        "{}",
        page.body
    );
    let step_csrf = page
        .body
        .split("name=\"csrf\" value=\"")
        .nth(1)
        .unwrap()
        .split('"')
        .next()
        .unwrap()
        .to_owned();
    h.clock.advance(30);
    let code = totp.code_at(h.now_secs()).unwrap();
    let post = |csrf: String| {
        let body = format!("csrf={csrf}&rd=&factor={id}&code={code}");
        axum::http::Request::builder()
            .method(Method::POST)
            .uri("/login/second-factor")
            .header("content-type", "application/x-www-form-urlencoded")
            .header("cookie", &pending)
            .header("origin", crate::harness::ORIGIN)
            .body(axum::body::Body::from(body))
            .unwrap()
    };
    let r = h.send(post("A".repeat(22))).await;
    assert_eq!(
        r.status,
        StatusCode::FORBIDDEN,
        "a forged CSRF token: {}",
        r.body
    );
    let r = h.send(post(step_csrf)).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
    assert_eq!(r.header("location"), Some("/account"));
    assert!(r.cookie("tessera").is_some());
}

/// The admin API: an HOTP fob imported (hex seed, counter 5), listed without its secret, its
/// codes accepted at sign-in in counter order and never twice, then the account reset.
#[tokio::test]
async fn admins_import_list_and_reset_factors_through_the_api() {
    use tessera_token::otp::{Hotp, OtpParams, OtpSecret};
    const SEED: &str = "3132333435363738393031323334353637383930";
    let h = harness_factors(with_key(), |_| {}).await;
    let auth = h.admin();
    let h = &h;
    let admin = |m: Method, path: &'static str, body: serde_json::Value| {
        let auth = auth.clone();
        async move {
            h.json(m, path, body, &[("authorization", auth.as_str())])
                .await
        }
    };
    let r = admin(
        Method::POST,
        "/admin/api/users/ada/hotp",
        serde_json::json!({"secret": SEED, "counter": 5, "label": "fob"}),
    )
    .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let id = r.json()["id"].as_str().unwrap().to_owned();
    let r = admin(
        Method::POST,
        "/admin/api/users/ada/hotp",
        serde_json::json!({"secret": SEED, "uri": "otpauth://hotp/x?secret=AA"}),
    )
    .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.body);
    let r = admin(
        Method::GET,
        "/admin/api/users/ada/factors",
        serde_json::json!(null),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.json()["factors"][0]["kind"], "hotp");
    assert!(!r.body.contains(SEED));

    let fob = Hotp::new(OtpSecret::from_hex(SEED).unwrap(), OtpParams::DEFAULT);
    // RFC 4226 Appendix D: counter 5 is 254676.
    assert_eq!(fob.code(5), "254676");
    let (pending, _) = h.password_step().await;
    let r = h
        .second_step(
            &pending,
            serde_json::json!({"factor": id, "code": fob.code(6)}),
        )
        .await;
    assert_eq!(
        r.status,
        StatusCode::OK,
        "within the look-ahead: {}",
        r.body
    );
    let (pending, _) = h.password_step().await;
    let r = h
        .second_step(
            &pending,
            serde_json::json!({"factor": id, "code": fob.code(5)}),
        )
        .await;
    assert_eq!(
        r.status,
        StatusCode::UNAUTHORIZED,
        "a counter behind the last used one"
    );
    let r = h
        .second_step(
            &pending,
            serde_json::json!({"factor": id, "code": fob.code(7)}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);

    let r = admin(
        Method::POST,
        "/admin/api/users/ada/factors/reset",
        serde_json::json!({}),
    )
    .await;
    assert_eq!(r.json()["removed"], 1, "{}", r.body);
    let r = h.login("ada", PASSWORD).await;
    assert!(
        r.cookie("tessera").is_some(),
        "password-only again after the reset"
    );
    // Required: the next sign-in may only enrol an authenticator.
    let r = admin(
        Method::PUT,
        "/admin/api/users/ada/mfa-required",
        serde_json::json!({"required": true}),
    )
    .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.body);
    let (pending, v) = h.password_step().await;
    assert_eq!(v["enrol_only"], true);
    let r = h
        .post_json(
            "/login/second-factor/totp",
            serde_json::json!({}),
            &pending,
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let v = r.json();
    let totp = totp_of(v["uri"].as_str().unwrap());
    let code = totp.code_at(h.now_secs()).unwrap();
    let r = h
        .second_step(
            &pending,
            serde_json::json!({"factor": v["factor"]["id"], "code": code}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(
        r.json()["session"]["amr"],
        serde_json::json!(["pwd", "otp", "mfa"])
    );
}

/// A server with a master key and the development log channel (codes go to the log), for the
/// CSRF table (`csrf.rs`), whose every row must also succeed with the right token.
pub(crate) async fn harness_for_csrf() -> Harness {
    let config = tessera_delivery::DeliveryConfig {
        log: serde_json::from_value(serde_json::json!({"enabled": true})).unwrap(),
        ..Default::default()
    };
    let clock = tessera_testkit::FakeClock::new(tessera_domain::clock::UnixTime(1_800_000_000));
    let senders = config.build(&Env, Arc::new(clock)).unwrap();
    harness_factors(
        SecondFactors {
            master_keys: ring(),
            senders,
        },
        |_| {},
    )
    .await
}

/// An active email factor stored directly (its address needs no confirmation code here).
async fn active_email_factor(h: &Harness, username: &str) -> String {
    use tessera_domain::factor::{Factor, FactorData, FactorId, FactorLabel, FactorStatus};
    let account = tessera_domain::accounts::find(h.store.as_ref(), username)
        .await
        .unwrap();
    let factor = Factor {
        id: FactorId::generate(),
        account_id: account.id.clone(),
        label: FactorLabel::parse("mail").unwrap(),
        status: FactorStatus::Active,
        created_at: tessera_domain::clock::UnixTime(h.now_secs()),
        last_used_at: None,
        failures: 0,
        locked_at: None,
        last_sent_at: None,
        data: FactorData::Email {
            address: tessera_domain::account::Email::parse("ada@example.org").unwrap(),
        },
    };
    h.store.create_factor(&factor, None).await.unwrap();
    factor.id.to_string()
}

/// The password step, then the second-step page's CSRF token.
async fn pending_with_csrf(h: &Harness) -> (String, String) {
    let r = h.login("ada", PASSWORD).await;
    let pending = r.cookie(PENDING).expect("a pending sign-in");
    let page = h.get("/login/second-factor", Some(&pending)).await;
    let csrf = page
        .body
        .split("name=\"csrf\" value=\"")
        .nth(1)
        .expect("a csrf field")
        .split('"')
        .next()
        .unwrap()
        .to_owned();
    (pending, csrf)
}

/// Prepares a CSRF-table row (see `csrf::Setup`): returns the cookie and token to use instead
/// of the row's own (if any) and the `{placeholder}` values.
pub(crate) async fn csrf_setup(
    h: &Harness,
    setup: crate::csrf::Setup,
    cookie: Option<&str>,
    token: &str,
) -> (Option<String>, Option<String>, Vec<(&'static str, String)>) {
    use crate::csrf::Setup;
    match setup {
        Setup::Nothing => (None, None, Vec::new()),
        Setup::PendingTotp => {
            let r = h
                .post_json(
                    "/api/factors/totp",
                    serde_json::json!({}),
                    cookie.unwrap(),
                    Some(token),
                )
                .await;
            let v = r.json();
            let totp = totp_of(v["uri"].as_str().unwrap());
            let code = totp.code_at(h.now_secs()).unwrap();
            let id = v["factor"]["id"].as_str().unwrap().to_owned();
            (None, None, vec![("{id}", id), ("{code}", code)])
        }
        Setup::EmailFactor => {
            let r = h
                .post_json(
                    "/api/factors/email",
                    serde_json::json!({"address": "ada@example.org"}),
                    cookie.unwrap(),
                    Some(token),
                )
                .await;
            assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
            h.clock.advance(31);
            let id = r.json()["factor"]["id"].as_str().unwrap().to_owned();
            (None, None, vec![("{id}", id)])
        }
        Setup::BobFactor => {
            let id = active_email_factor(h, "bob").await;
            (None, None, vec![("{id}", id)])
        }
        Setup::SecondStep => {
            let (session, csrf) = h.session("ada").await;
            let (id, totp) = h.enrol_totp(&session, &csrf).await;
            let (pending, step_csrf) = pending_with_csrf(h).await;
            h.clock.advance(30);
            let code = totp.code_at(h.now_secs()).unwrap();
            (
                Some(pending),
                Some(step_csrf),
                vec![("{factor}", id), ("{code}", code)],
            )
        }
        Setup::SecondStepEmail => {
            let id = active_email_factor(h, "ada").await;
            let (pending, step_csrf) = pending_with_csrf(h).await;
            (Some(pending), Some(step_csrf), vec![("{factor}", id)])
        }
        Setup::EnrolOnly => {
            let account = tessera_domain::accounts::find(h.store.as_ref(), "ada")
                .await
                .unwrap();
            tessera_domain::factors::set_required(
                h.store.as_ref(),
                &account.id,
                true,
                &tessera_domain::accounts::Actor::default(),
                tessera_domain::clock::UnixTime(h.now_secs()),
            )
            .await
            .unwrap();
            let (pending, step_csrf) = pending_with_csrf(h).await;
            (Some(pending), Some(step_csrf), Vec::new())
        }
    }
}

/// Enrolments and sent codes share the sign-in throttle: a session cannot create factors (or
/// send codes) without bound.
#[tokio::test]
async fn enrolments_are_throttled() {
    let h = harness_factors(with_key(), |_| {}).await;
    let (cookie, csrf) = h.session("ada").await;
    let mut statuses = Vec::new();
    for i in 0..15 {
        let r = h
            .post_json(
                "/api/factors/totp",
                serde_json::json!({"label": format!("app {i}")}),
                &cookie,
                Some(&csrf),
            )
            .await;
        statuses.push(r.status);
        if r.status == StatusCode::TOO_MANY_REQUESTS {
            assert!(r.header("retry-after").is_some());
            break;
        }
    }
    assert!(
        statuses[..5].iter().all(|s| *s == StatusCode::CREATED),
        "{statuses:?}"
    );
    assert_eq!(
        statuses.last(),
        Some(&StatusCode::TOO_MANY_REQUESTS),
        "{statuses:?}"
    );
}

/// Behind a TLS proxy (production) without a master key, every enrolment is refused, recovery
/// codes and sent codes included; with one, the pending cookie is `__Host-tessera-mfa`,
/// `Secure`.
#[tokio::test]
async fn production_refuses_every_enrolment_without_a_master_key() {
    let production = |c: &mut tessera_server::ServerConfig| {
        c.transport = tessera_server::Transport::BehindTlsProxy;
        c.public_origin = "https://auth.example.com".into();
    };
    let h = crate::harness::harness_with(production).await;
    let r = h.login("ada", PASSWORD).await;
    let cookie = r.cookie("__Host-tessera").unwrap();
    let csrf = r.json()["csrf"].as_str().unwrap().to_owned();
    for (path, body) in [
        ("/api/factors/recovery-codes", serde_json::json!({})),
        (
            "/api/factors/email",
            serde_json::json!({"address": "ada@example.org"}),
        ),
        ("/api/factors/totp", serde_json::json!({})),
    ] {
        let r = h.post_json(path, body, &cookie, Some(&csrf)).await;
        assert_eq!(
            r.status,
            StatusCode::SERVICE_UNAVAILABLE,
            "{path}: {}",
            r.body
        );
    }

    let h = harness_factors(with_key(), production).await;
    let r = h.login("ada", PASSWORD).await;
    let cookie = r.cookie("__Host-tessera").unwrap();
    let csrf = r.json()["csrf"].as_str().unwrap().to_owned();
    h.enrol_totp(&cookie, &csrf).await;
    let r = h.login("ada", PASSWORD).await;
    assert_eq!(r.json()["status"], "second_factor_required");
    let line = r.set_cookie_line("__Host-tessera-mfa").unwrap();
    assert!(
        line.contains("; Secure") && line.contains("HttpOnly") && line.contains("Path=/"),
        "{line}"
    );
    assert!(r.cookie("__Host-tessera").is_none());
}
