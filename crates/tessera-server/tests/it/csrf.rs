//! CSRF refusal on every state-changing route (OWASP CSRF Prevention Cheat Sheet), as one
//! table. `the_table_lists_every_state_changing_route` reads the routers' source and fails
//! when a POST, PUT, PATCH or DELETE route is missing from [`CASES`], so a new route cannot
//! forget its row.
//!
//! For each row, on a fresh server: a cross-site request (`Sec-Fetch-Site: cross-site`) and a
//! foreign `Origin` are refused even with the right token; a same-origin request with a wrong
//! or missing synchronizer token is refused; and, as the control that proves the refusals come
//! from the CSRF checks, the same request with the right token succeeds.

use std::collections::BTreeSet;

use axum::body::Body;
use axum::http::{Method, Request, StatusCode, header};
use tessera_domain::account::Role;

use crate::harness::{Harness, ORIGIN, PASSWORD};

/// How a route receives its CSRF token.
#[derive(Clone, Copy, Debug)]
enum Carrier {
    /// The session's token as the `csrf` form field.
    Form,
    /// The session's token in `X-CSRF-Token`.
    Header,
    /// The sign-in form: its `csrf` field must match the sign-in cookie (double submit).
    SignInForm,
    /// No token: the JSON sign-in (no session yet); only the Origin checks apply.
    OriginOnly,
    /// The second-step forms: the pending cookie, and the `csrf` field derived from it.
    PendingForm,
    /// The second step in JSON: the pending cookie; only the Origin checks apply.
    PendingJson,
}

/// What a route needs to exist before it can succeed; `{id}`, `{factor}` and `{code}` in the
/// path and body are filled in from it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Setup {
    Nothing,
    /// `{id}`: a pending TOTP factor of ada; `{code}`: its current code.
    PendingTotp,
    /// `{id}`: a pending email factor of ada (its resend throttle already passed).
    EmailFactor,
    /// `{id}`: an active email factor of bob.
    BobFactor,
    /// ada with an active TOTP factor, signed in with her password only so far: the pending
    /// cookie; `{factor}` and `{code}` (the next step's).
    SecondStep,
    /// As `SecondStep`, with an active email factor as `{factor}` (for "send me a code").
    SecondStepEmail,
    /// ada required to use a factor and without one: an enrol-only pending sign-in.
    EnrolOnly,
}

/// Whose session makes the request.
#[derive(Clone, Copy, Debug)]
enum Who {
    Visitor,
    User,
    Admin,
}

/// One state-changing route and how to call it.
struct Case {
    method: Method,
    /// The route pattern exactly as in the router.
    pattern: &'static str,
    carrier: Carrier,
    who: Who,
    /// A JSON body, if the route takes one; for `Carrier::Form`, more urlencoded fields sent
    /// after `csrf`.
    json: Option<&'static str>,
    setup: Setup,
}

const fn case(
    method: Method,
    pattern: &'static str,
    carrier: Carrier,
    who: Who,
    json: Option<&'static str>,
) -> Case {
    with(method, pattern, carrier, who, json, Setup::Nothing)
}

const fn with(
    method: Method,
    pattern: &'static str,
    carrier: Carrier,
    who: Who,
    json: Option<&'static str>,
    setup: Setup,
) -> Case {
    Case {
        method,
        pattern,
        carrier,
        who,
        json,
        setup,
    }
}

/// Every state-changing route (a route may appear once per way of carrying the token).
const CASES: &[Case] = &[
    case(
        Method::POST,
        "/login",
        Carrier::SignInForm,
        Who::Visitor,
        None,
    ),
    case(
        Method::POST,
        "/login",
        Carrier::OriginOnly,
        Who::Visitor,
        None,
    ),
    case(Method::POST, "/logout", Carrier::Form, Who::User, None),
    case(Method::POST, "/logout", Carrier::Header, Who::User, None),
    case(
        Method::POST,
        "/account/sessions/{id}/revoke",
        Carrier::Form,
        Who::User,
        None,
    ),
    case(
        Method::POST,
        "/account/sessions/revoke-all",
        Carrier::Form,
        Who::User,
        None,
    ),
    case(
        Method::POST,
        "/account/password",
        Carrier::Form,
        Who::User,
        Some("current_password=correct+horse+battery+staple&new_password=a+brand+new+passphrase"),
    ),
    case(
        Method::POST,
        "/account/password",
        Carrier::Header,
        Who::User,
        Some(
            r#"{"current_password":"correct horse battery staple","new_password":"a brand new passphrase"}"#,
        ),
    ),
    case(
        Method::DELETE,
        "/api/sessions",
        Carrier::Header,
        Who::User,
        None,
    ),
    case(
        Method::DELETE,
        "/api/sessions/{id}",
        Carrier::Header,
        Who::User,
        None,
    ),
    case(
        Method::POST,
        "/admin/api/users",
        Carrier::Header,
        Who::Admin,
        Some(r#"{"username":"carol","password":"a long enough passphrase for the test"}"#),
    ),
    case(
        Method::DELETE,
        "/admin/api/users/{username}",
        Carrier::Header,
        Who::Admin,
        None,
    ),
    case(
        Method::POST,
        "/admin/api/users/{username}/disable",
        Carrier::Header,
        Who::Admin,
        None,
    ),
    case(
        Method::POST,
        "/admin/api/users/{username}/enable",
        Carrier::Header,
        Who::Admin,
        None,
    ),
    case(
        Method::POST,
        "/admin/api/users/{username}/unlock",
        Carrier::Header,
        Who::Admin,
        None,
    ),
    case(
        Method::PUT,
        "/admin/api/users/{username}/password",
        Carrier::Header,
        Who::Admin,
        Some(r#"{"password":"another long enough password"}"#),
    ),
    // Second factors: the user's own (JSON and forms), the second step, the admin API.
    case(
        Method::POST,
        "/api/factors/totp",
        Carrier::Header,
        Who::User,
        Some("{}"),
    ),
    case(
        Method::POST,
        "/api/factors/email",
        Carrier::Header,
        Who::User,
        Some(r#"{"address":"ada@example.org"}"#),
    ),
    case(
        Method::POST,
        "/api/factors/sms",
        Carrier::Header,
        Who::User,
        Some(r#"{"phone":"+447700900123"}"#),
    ),
    case(
        Method::POST,
        "/api/factors/recovery-codes",
        Carrier::Header,
        Who::User,
        None,
    ),
    with(
        Method::DELETE,
        "/api/factors/{id}",
        Carrier::Header,
        Who::User,
        Some(r#"{"password":"correct horse battery staple"}"#),
        Setup::EmailFactor,
    ),
    with(
        Method::POST,
        "/api/factors/{id}/confirm",
        Carrier::Header,
        Who::User,
        Some(r#"{"code":"{code}"}"#),
        Setup::PendingTotp,
    ),
    with(
        Method::POST,
        "/api/factors/{id}/send",
        Carrier::Header,
        Who::User,
        None,
        Setup::EmailFactor,
    ),
    case(
        Method::POST,
        "/account/factors/totp",
        Carrier::Form,
        Who::User,
        Some("label=app"),
    ),
    case(
        Method::POST,
        "/account/factors/email",
        Carrier::Form,
        Who::User,
        Some("address=ada%40example.org"),
    ),
    case(
        Method::POST,
        "/account/factors/sms",
        Carrier::Form,
        Who::User,
        Some("phone=%2B447700900123"),
    ),
    case(
        Method::POST,
        "/account/factors/recovery-codes",
        Carrier::Form,
        Who::User,
        None,
    ),
    with(
        Method::POST,
        "/account/factors/{id}/confirm",
        Carrier::Form,
        Who::User,
        Some("code={code}"),
        Setup::PendingTotp,
    ),
    with(
        Method::POST,
        "/account/factors/{id}/send",
        Carrier::Form,
        Who::User,
        None,
        Setup::EmailFactor,
    ),
    with(
        Method::POST,
        "/account/factors/{id}/remove",
        Carrier::Form,
        Who::User,
        Some("password=correct+horse+battery+staple"),
        Setup::EmailFactor,
    ),
    with(
        Method::POST,
        "/login/second-factor",
        Carrier::PendingForm,
        Who::Visitor,
        Some("rd=&factor={factor}&code={code}"),
        Setup::SecondStep,
    ),
    with(
        Method::POST,
        "/login/second-factor",
        Carrier::PendingJson,
        Who::Visitor,
        Some(r#"{"factor":"{factor}","code":"{code}"}"#),
        Setup::SecondStep,
    ),
    with(
        Method::POST,
        "/login/second-factor/send",
        Carrier::PendingForm,
        Who::Visitor,
        Some("rd=&factor={factor}"),
        Setup::SecondStepEmail,
    ),
    with(
        Method::POST,
        "/login/second-factor/send",
        Carrier::PendingJson,
        Who::Visitor,
        Some(r#"{"factor":"{factor}"}"#),
        Setup::SecondStepEmail,
    ),
    with(
        Method::POST,
        "/login/second-factor/totp",
        Carrier::PendingForm,
        Who::Visitor,
        Some("rd="),
        Setup::EnrolOnly,
    ),
    with(
        Method::POST,
        "/login/second-factor/totp",
        Carrier::PendingJson,
        Who::Visitor,
        Some("{}"),
        Setup::EnrolOnly,
    ),
    case(
        Method::POST,
        "/admin/api/users/{username}/factors/reset",
        Carrier::Header,
        Who::Admin,
        None,
    ),
    with(
        Method::DELETE,
        "/admin/api/users/{username}/factors/{id}",
        Carrier::Header,
        Who::Admin,
        None,
        Setup::BobFactor,
    ),
    with(
        Method::POST,
        "/admin/api/users/{username}/factors/{id}/unlock",
        Carrier::Header,
        Who::Admin,
        None,
        Setup::BobFactor,
    ),
    case(
        Method::PUT,
        "/admin/api/users/{username}/mfa-required",
        Carrier::Header,
        Who::Admin,
        Some(r#"{"required":true}"#),
    ),
    case(
        Method::POST,
        "/admin/api/users/{username}/hotp",
        Carrier::Header,
        Who::Admin,
        Some(r#"{"secret":"3132333435363738393031323334353637383930"}"#),
    ),
];

/// `(METHOD, pattern)` of every route in `src/routes/*.rs` whose method is not safe.
fn state_changing_routes_in_source() -> BTreeSet<(String, String)> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src/routes");
    let mut found = BTreeSet::new();
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "rs"))
        .collect();
    files.sort();
    assert!(!files.is_empty());
    for file in files {
        let text = std::fs::read_to_string(&file).unwrap();
        for other in [".route_service(", ".nest(", ".nest_service(", ".fallback("] {
            assert!(
                !text.contains(other),
                "{}: {other} is not understood by this test; extend it",
                file.display()
            );
        }
        let mut rest = text.as_str();
        while let Some(at) = rest.find(".route(") {
            let call = &rest[at + ".route(".len()..];
            // The call's arguments, up to the matching parenthesis.
            let mut depth = 1;
            let mut end = 0;
            for (i, c) in call.char_indices() {
                match c {
                    '(' => depth += 1,
                    ')' => depth -= 1,
                    _ => {}
                }
                if depth == 0 {
                    end = i;
                    break;
                }
            }
            let args = &call[..end];
            let path = args
                .split('"')
                .nth(1)
                .unwrap_or_else(|| panic!("{}: a route without a literal path", file.display()));
            let mut methods = 0;
            for (token, method) in [
                ("get(", None),
                ("post(", Some("POST")),
                ("put(", Some("PUT")),
                ("patch(", Some("PATCH")),
                ("delete(", Some("DELETE")),
                ("any(", Some("ANY")),
            ] {
                let mut from = 0;
                while let Some(i) = args[from..].find(token) {
                    let i = from + i;
                    let before = args[..i].chars().last();
                    if !before.is_some_and(|c| c.is_alphanumeric() || c == '_') {
                        methods += 1;
                        if let Some(m) = method {
                            found.insert((m.to_owned(), path.to_owned()));
                        }
                    }
                    from = i + token.len();
                }
            }
            assert!(
                methods > 0,
                "{}: no method found for {path}",
                file.display()
            );
            rest = &call[end..];
        }
    }
    found
}

#[test]
fn the_table_lists_every_state_changing_route() {
    let in_source = state_changing_routes_in_source();
    let in_table: BTreeSet<(String, String)> = CASES
        .iter()
        .map(|c| (c.method.to_string(), c.pattern.to_owned()))
        .collect();
    let missing: Vec<_> = in_source.difference(&in_table).collect();
    assert!(
        missing.is_empty(),
        "state-changing routes without a row in CASES (add one): {missing:?}"
    );
    let stale: Vec<_> = in_table.difference(&in_source).collect();
    assert!(
        stale.is_empty(),
        "rows for routes that do not exist: {stale:?}"
    );
    // The scan itself works: it sees routes we know of.
    assert!(in_source.contains(&("POST".to_owned(), "/logout".to_owned())));
    assert!(in_source.len() >= 12, "{in_source:?}");
}

/// What a request is made with.
struct Ready {
    /// The cookie header (session, or the sign-in cookie).
    cookie: Option<String>,
    /// The right token for the carrier.
    token: String,
    /// The concrete path.
    path: String,
    /// `{placeholder}` → value, for the body.
    fill: Vec<(&'static str, String)>,
}

async fn prepare(h: &Harness, case: &Case) -> Ready {
    h.add_user("bob", None, &[], Role::User).await;
    h.add_user("root", None, &[], Role::Admin).await;
    let (cookie, token) = match case.who {
        Who::Visitor => {
            let page = h.get("/login", None).await;
            let cookie = page.cookie("tessera-login").unwrap();
            let token = cookie.split_once('=').unwrap().1.to_owned();
            (Some(cookie), token)
        }
        Who::User => {
            let (c, t) = h.session("ada").await;
            (Some(c), t)
        }
        Who::Admin => {
            let (c, t) = h.session("root").await;
            (Some(c), t)
        }
    };
    let mut path = case.pattern.replace("{username}", "bob");
    if case.setup != Setup::Nothing {
        let (cookie2, token2, fill) =
            crate::factors::csrf_setup(h, case.setup, cookie.as_deref(), &token).await;
        for (k, v) in &fill {
            path = path.replace(k, v);
        }
        return Ready {
            cookie: cookie2.or(cookie),
            token: token2.unwrap_or(token),
            path,
            fill,
        };
    }
    if path.contains("{id}") {
        // Another session of the same user, to end.
        let (other, _) = h.session("ada").await;
        let list = h.get("/api/sessions", cookie.as_deref()).await.json();
        let id = list
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["current"] == false)
            .unwrap()["id"]
            .as_str()
            .unwrap()
            .to_owned();
        drop(other);
        path = path.replace("{id}", &id);
    }
    Ready {
        cookie,
        token,
        path,
        fill: Vec::new(),
    }
}

/// The request of `case`, with `token` where the carrier puts it and the given fetch headers.
fn request(
    case: &Case,
    ready: &Ready,
    token: Option<&str>,
    site: &[(&str, &str)],
) -> Request<Body> {
    let mut r = Request::builder()
        .method(case.method.clone())
        .uri(&ready.path);
    for (k, v) in site {
        r = r.header(*k, *v);
    }
    if let Some(c) = &ready.cookie {
        r = r.header(header::COOKIE, c);
    }
    let fill = |text: &str| {
        let mut text = text.to_owned();
        for (k, v) in &ready.fill {
            text = text.replace(k, v);
        }
        text
    };
    let body = match case.carrier {
        Carrier::PendingForm => {
            r = r.header(header::CONTENT_TYPE, "application/x-www-form-urlencoded");
            let csrf = serde_urlencoded::to_string([("csrf", token.unwrap_or(""))]).unwrap();
            match case.json {
                Some(more) => format!("{csrf}&{}", fill(more)),
                None => csrf,
            }
        }
        Carrier::PendingJson => {
            r = r.header(header::CONTENT_TYPE, "application/json");
            fill(case.json.unwrap_or("{}"))
        }
        Carrier::Form => {
            r = r.header(header::CONTENT_TYPE, "application/x-www-form-urlencoded");
            let csrf = match token {
                Some(t) => serde_urlencoded::to_string([("csrf", t)]).unwrap(),
                None => String::new(),
            };
            match case.json {
                Some(more) if csrf.is_empty() => fill(more),
                Some(more) => format!("{csrf}&{}", fill(more)),
                None => csrf,
            }
        }
        Carrier::SignInForm => {
            r = r.header(header::CONTENT_TYPE, "application/x-www-form-urlencoded");
            serde_urlencoded::to_string([
                ("username", "ada"),
                ("password", PASSWORD),
                ("csrf", token.unwrap_or("")),
                ("rd", ""),
            ])
            .unwrap()
        }
        Carrier::Header | Carrier::OriginOnly => {
            if let Some(t) = token {
                r = r.header("x-csrf-token", t);
            }
            match (case.carrier, case.json) {
                (Carrier::OriginOnly, _) => {
                    r = r.header(header::CONTENT_TYPE, "application/json");
                    serde_json::json!({"username": "ada", "password": PASSWORD}).to_string()
                }
                (_, Some(json)) => {
                    r = r.header(header::CONTENT_TYPE, "application/json");
                    fill(json)
                }
                _ => String::new(),
            }
        }
    };
    r.body(Body::from(body)).unwrap()
}

/// A request that must be refused: what it shows, the token it carries, its fetch headers.
type Refusal<'a> = (&'a str, Option<&'a str>, &'a [(&'a str, &'a str)]);

#[tokio::test]
async fn every_state_changing_route_refuses_cross_site_requests_and_bad_tokens() {
    let same_origin: &[(&str, &str)] = &[("sec-fetch-site", "same-origin"), ("origin", ORIGIN)];
    for case in CASES {
        let name = format!("{} {} ({:?})", case.method, case.pattern, case.carrier);
        let h = crate::factors::harness_for_csrf().await;
        let ready = prepare(&h, case).await;
        let right = Some(ready.token.as_str());
        let shaped = "A".repeat(43);
        let refusals: Vec<Refusal<'_>> = {
            let mut v: Vec<Refusal<'_>> = vec![
                (
                    "cross-site",
                    right,
                    &[("sec-fetch-site", "cross-site"), ("origin", ORIGIN)],
                ),
                ("same-site", right, &[("sec-fetch-site", "same-site")]),
                (
                    "foreign Origin",
                    right,
                    &[("origin", "https://evil.example")],
                ),
                ("Origin null", right, &[("origin", "null")]),
            ];
            if !matches!(case.carrier, Carrier::OriginOnly | Carrier::PendingJson) {
                v.push(("wrong token", Some("not-the-token"), same_origin));
                v.push((
                    "a token of the right shape",
                    Some(shaped.as_str()),
                    same_origin,
                ));
            }
            if matches!(case.carrier, Carrier::Header) {
                v.push(("no token", None, same_origin));
            }
            v
        };
        for (what, token, site) in refusals {
            let r = h.send(request(case, &ready, token, site)).await;
            assert_eq!(
                r.status,
                StatusCode::FORBIDDEN,
                "{name}, {what}: {}",
                r.body
            );
            assert!(
                r.cookie("tessera").is_none_or(|c| c == "tessera="),
                "{name}, {what}"
            );
        }
        // The control: the same request, same origin, right token.
        let r = h.send(request(case, &ready, right, same_origin)).await;
        assert!(
            r.status.is_success() || r.status.is_redirection(),
            "{name}, control with the right token: {} {}",
            r.status,
            r.body
        );
    }
}
