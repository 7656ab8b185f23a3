//! Credentials over HTTP: changing one's own password, the storage of secrets as hashes only,
//! re-hashing at sign-in, and the password size cap.

use axum::body::Body;
use axum::http::{Method, Request, StatusCode, header};
use tessera_domain::account::{AccountId, NewAccount, Role, Username};
use tessera_domain::credential::password::{
    HashParams, Hasher, MAX_PASSWORD_BYTES, Password, PasswordHash,
};
use tessera_domain::login::{self, Denial, LockoutPolicy, LoginAttempt, LoginContext};
use tessera_domain::session::SessionPolicy;
use tessera_testkit::passwords::InlinePasswords;

use crate::harness::{ClockExt, Harness, ORIGIN, PASSWORD, harness, harness_with};

const NEW_PASSWORD: &str = "a brand new passphrase";

fn form(path: &str, body: &str, cookie: &str) -> Request<Body> {
    Request::builder()
        .method(Method::POST)
        .uri(path)
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .header(header::ORIGIN, ORIGIN)
        .header("sec-fetch-site", "same-origin")
        .header(header::COOKIE, cookie)
        .body(Body::from(body.to_owned()))
        .unwrap()
}

fn urlencode(text: &str) -> String {
    serde_urlencoded::to_string([("v", text)]).unwrap()[2..].to_owned()
}

async fn stored_hash(h: &Harness, name: &str) -> PasswordHash {
    h.store
        .account_by_username(&Username::parse(name).unwrap())
        .await
        .unwrap()
        .unwrap()
        .1
        .unwrap()
}

async fn change_json(h: &Harness, cookie: &str, csrf: &str, current: &str, new: &str) -> u16 {
    h.json(
        Method::POST,
        "/account/password",
        serde_json::json!({"current_password": current, "new_password": new}),
        &[
            ("cookie", cookie),
            ("x-csrf-token", csrf),
            ("origin", ORIGIN),
        ],
    )
    .await
    .status
    .as_u16()
}

/// A user changes their own password over the JSON API: the current one is required, the new
/// one must pass the policy, the other sessions end and this one stays.
#[tokio::test]
async fn users_change_their_own_password_and_their_other_sessions_end() {
    let h = harness().await;
    let (mine, csrf) = h.session("ada").await;
    let (other, _) = h.session("ada").await;
    let before = stored_hash(&h, "ada").await;

    // No CSRF token, a wrong current password, a refused new one: nothing changes.
    let no_csrf = h
        .json(
            Method::POST,
            "/account/password",
            serde_json::json!({"current_password": PASSWORD, "new_password": NEW_PASSWORD}),
            &[("cookie", &mine), ("origin", ORIGIN)],
        )
        .await;
    assert_eq!(no_csrf.status, StatusCode::FORBIDDEN, "{}", no_csrf.body);
    assert_eq!(
        change_json(&h, &mine, &csrf, "not the password", NEW_PASSWORD).await,
        401
    );
    let weak = h
        .json(
            Method::POST,
            "/account/password",
            serde_json::json!({"current_password": PASSWORD, "new_password": "password1"}),
            &[
                ("cookie", &mine),
                ("x-csrf-token", &csrf),
                ("origin", ORIGIN),
            ],
        )
        .await;
    assert_eq!(weak.status, StatusCode::BAD_REQUEST);
    assert!(weak.body.contains("common"), "{}", weak.body);
    assert_eq!(stored_hash(&h, "ada").await, before);
    assert_eq!(
        h.get("/api/session", Some(&other)).await.status,
        StatusCode::OK
    );
    // The wrong current password counted toward the lockout, like a failed sign-in.
    let (account, _) = h
        .store
        .account_by_username(&Username::parse("ada").unwrap())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(account.failed_logins, 1);

    assert_eq!(
        change_json(&h, &mine, &csrf, PASSWORD, NEW_PASSWORD).await,
        204
    );
    assert_eq!(
        h.get("/api/session", Some(&mine)).await.status,
        StatusCode::OK
    );
    assert_eq!(
        h.get("/api/session", Some(&other)).await.status,
        StatusCode::UNAUTHORIZED,
        "the other session ended, also in the session cache"
    );
    assert_eq!(
        h.login("ada", PASSWORD).await.status,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(h.login("ada", NEW_PASSWORD).await.status, StatusCode::OK);
    let audit = h.store.recent_audit(20).await.unwrap();
    assert!(
        audit.iter().any(
            |e| e.kind == tessera_domain::audit::AuditKind::PasswordChanged
                && e.detail.as_deref() == Some("by self")
        ),
        "{audit:?}"
    );
}

/// The same through the form on the account page, with its CSRF field.
#[tokio::test]
async fn the_account_page_form_changes_the_password() {
    let h = harness().await;
    let (mine, csrf) = h.session("ada").await;
    let page = h.get("/account", Some(&mine)).await;
    assert!(
        page.body.contains(r#"action="/account/password""#),
        "{}",
        page.body
    );
    assert!(page.body.contains(r#"autocomplete="current-password""#));

    let body = |csrf: &str, current: &str, new: &str, again: &str| {
        format!(
            "csrf={}&current_password={}&new_password={}&new_password_confirm={}",
            urlencode(csrf),
            urlencode(current),
            urlencode(new),
            urlencode(again)
        )
    };
    // Without the right CSRF token: refused.
    let r = h
        .send(form(
            "/account/password",
            &body("wrong", PASSWORD, NEW_PASSWORD, NEW_PASSWORD),
            &mine,
        ))
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    // The two new passwords differ: the page again, with the reason.
    let r = h
        .send(form(
            "/account/password",
            &body(&csrf, PASSWORD, NEW_PASSWORD, "something else entirely"),
            &mine,
        ))
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert!(r.body.contains("differ"), "{}", r.body);
    // A wrong current password: the page again, with a message.
    let r = h
        .send(form(
            "/account/password",
            &body(&csrf, "wrong current", NEW_PASSWORD, NEW_PASSWORD),
            &mine,
        ))
        .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert!(r.body.contains("current password is wrong"), "{}", r.body);

    let r = h
        .send(form(
            "/account/password",
            &body(&csrf, PASSWORD, NEW_PASSWORD, NEW_PASSWORD),
            &mine,
        ))
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
    assert_eq!(r.header("location"), Some("/account?password=changed"));
    let page = h.get("/account?password=changed", Some(&mine)).await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(
        page.body.contains("Your password was changed"),
        "{}",
        page.body
    );
    assert_eq!(h.login("ada", NEW_PASSWORD).await.status, StatusCode::OK);
}

/// Every encoding of a secret worth searching for: the text itself and, when it is base64url,
/// its bytes raw, in hex (both cases) and in standard base64.
fn encodings(secret: &str) -> Vec<Vec<u8>> {
    let mut out = vec![secret.as_bytes().to_vec()];
    let hex = |raw: &[u8]| raw.iter().map(|b| format!("{b:02x}")).collect::<String>();
    out.push(hex(secret.as_bytes()).into_bytes());
    if let Some(raw) = tessera_token::b64::decode(secret) {
        out.push(hex(&raw).to_uppercase().into_bytes());
        out.push(hex(&raw).into_bytes());
        // Standard base64 is base64url with two other characters (RFC 4648 §4, §5).
        let standard: String = secret
            .chars()
            .map(|c| match c {
                '-' => '+',
                '_' => '/',
                c => c,
            })
            .collect();
        out.push(standard.clone().into_bytes());
        out.push(format!("{standard}=").into_bytes());
        out.push(raw);
    }
    out
}

/// After a real sign-in and two admin-token creations, no table of the SQLite database (the
/// file and its write-ahead log, read as raw bytes, so every table and every page) holds the
/// password, the session token or cookie, or an admin token, in any of these encodings; the
/// SHA-256 of the session token is there, as the promise says.
#[tokio::test]
async fn secrets_are_stored_only_as_hashes() {
    let h = harness().await;
    let r = h.login("ada", PASSWORD).await;
    assert_eq!(r.status, StatusCode::OK);
    let cookie = r.cookie("tessera").unwrap();
    let value = cookie.split_once('=').unwrap().1.to_owned();
    let (token, tag) = value.split_once('.').unwrap();
    let seal = tessera_domain::admin::AdminTokenSeal::load(h.store.as_ref())
        .await
        .unwrap();
    let (admin, _) =
        tessera_domain::admin::create_token(h.store.as_ref(), &seal, "ci", h.clock.now_time())
            .await
            .unwrap();
    assert!(!h.admin_token.is_empty(), "the bootstrap token was created");
    // Touch the session so that its row is written again.
    h.clock.advance(120);
    assert_eq!(
        h.get("/auth/verify", Some(&cookie)).await.status,
        StatusCode::OK
    );
    h.state.flush_touches().await.unwrap();

    let mut bytes = Vec::new();
    for name in ["t.db", "t.db-wal"] {
        if let Ok(b) = std::fs::read(h.dir_path().join(name)) {
            bytes.extend_from_slice(&b);
        }
    }
    assert!(bytes.len() > 4096, "read the database");
    let found = |needle: &[u8]| bytes.windows(needle.len()).any(|w| w == needle);
    let hash = tessera_domain::session::SessionToken::parse(token)
        .unwrap()
        .hash();
    assert!(
        found(&hash.0),
        "the token's hash is stored (the test reads the right file)"
    );
    let secrets = [
        ("password", PASSWORD.to_owned()),
        ("session cookie", value.clone()),
        ("session token", token.to_owned()),
        ("cookie tag", tag.to_owned()),
        ("bootstrap admin token", h.admin_token.clone()),
        ("admin token", admin.expose().to_owned()),
    ];
    for (what, secret) in &secrets {
        for (i, needle) in encodings(secret).iter().enumerate() {
            assert!(!found(needle), "the {what} is stored (encoding #{i})");
        }
    }
    // The admin tokens' secret part too (`tsa_v2.<secret>.<tag>`), whatever prefix they carry.
    for t in [&h.admin_token, &admin.expose().to_owned()] {
        let secret = t
            .strip_prefix("tsa_v2.")
            .unwrap()
            .split('.')
            .next()
            .unwrap();
        assert_eq!(secret.len(), 43, "{t}");
        for needle in encodings(secret) {
            assert!(!found(&needle), "an admin token's secret part is stored");
        }
    }
}

/// A hash made with other argon2 parameters is upgraded at the next successful sign-in, and
/// the password keeps working.
#[tokio::test]
async fn an_outdated_hash_is_upgraded_at_the_next_sign_in() {
    let h = harness().await;
    let legacy = HashParams {
        memory_kib: 96,
        iterations: 2,
        parallelism: 1,
    };
    let old = Hasher::insecure_with_params_for_tests(legacy)
        .hash(&Password::new(PASSWORD))
        .unwrap();
    let new = NewAccount {
        username: Username::parse("legacy").unwrap(),
        email: None,
        groups: vec![],
        role: Role::User,
    };
    h.store
        .create_account(&new, &AccountId::generate(), Some(&old), h.clock.now_time())
        .await
        .unwrap();
    assert_eq!(
        HashParams::of(&stored_hash(&h, "legacy").await),
        Some(legacy)
    );
    // A failed sign-in changes nothing.
    assert_eq!(
        h.login("legacy", "wrong password").await.status,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(stored_hash(&h, "legacy").await, old);

    assert_eq!(h.login("legacy", PASSWORD).await.status, StatusCode::OK);
    let upgraded = stored_hash(&h, "legacy").await;
    let current = Hasher::insecure_fast_for_tests().params();
    assert_ne!(upgraded, old);
    assert_eq!(HashParams::of(&upgraded), Some(current));
    assert!(Hasher::insecure_fast_for_tests().verify(&Password::new(PASSWORD), Some(&upgraded)));
    assert_eq!(h.login("legacy", PASSWORD).await.status, StatusCode::OK);
    assert_eq!(stored_hash(&h, "legacy").await, upgraded, "upgraded once");
}

/// Defect 6 through the server: at start-up the dummy hash takes the cost of the stored
/// hashes, not the configured one.
#[tokio::test]
async fn the_dummy_hash_takes_the_stored_cost_at_start_up() {
    let legacy = HashParams {
        memory_kib: 96,
        iterations: 2,
        parallelism: 1,
    };
    let first = harness().await;
    let old = Hasher::insecure_with_params_for_tests(legacy);
    for name in ["old1", "old2"] {
        let new = NewAccount {
            username: Username::parse(name).unwrap(),
            email: None,
            groups: vec![],
            role: Role::User,
        };
        let hash = old.hash(&Password::new(PASSWORD)).unwrap();
        first
            .store
            .create_account(
                &new,
                &AccountId::generate(),
                Some(&hash),
                first.clock.now_time(),
            )
            .await
            .unwrap();
    }
    // Two legacy hashes against one current one (ada's): a new node mirrors the legacy cost.
    let second = crate::harness::node(first.store.clone(), &first).await;
    let dummy = second.state.password_hasher().dummy_params();
    assert_eq!(dummy, Some(legacy));
    assert_eq!(dummy, HashParams::of(&stored_hash(&first, "old1").await));
    // Re-hashing at sign-in moves the majority back; the upkeep follows.
    for name in ["old1", "old2"] {
        assert_eq!(second.login(name, PASSWORD).await.status, StatusCode::OK);
    }
    second.state.credential_upkeep().await.unwrap();
    assert_eq!(
        second.state.password_hasher().dummy_params(),
        Some(Hasher::insecure_fast_for_tests().params())
    );
}

/// Sign-in takes passwords up to 4096 bytes, and refuses longer ones before hashing (the
/// refusal is not even counted as a failure).
#[tokio::test]
async fn the_password_cap_is_4096_bytes_over_http() {
    let h = harness_with(|c| c.passwords.max_len = 1024).await;
    // 1024 four-byte characters: exactly 4096 bytes, within the policy.
    let longest = "𝄞".repeat(1024);
    assert_eq!(longest.len(), MAX_PASSWORD_BYTES);
    let new = NewAccount {
        username: Username::parse("long").unwrap(),
        email: None,
        groups: vec![],
        role: Role::User,
    };
    let hash = Hasher::insecure_fast_for_tests()
        .hash(&Password::new(longest.clone()))
        .unwrap();
    h.store
        .create_account(
            &new,
            &AccountId::generate(),
            Some(&hash),
            h.clock.now_time(),
        )
        .await
        .unwrap();
    assert_eq!(h.login("long", &longest).await.status, StatusCode::OK);
    let over = format!("{longest}x");
    let r = h.login("long", &over).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert_eq!(r.json()["error"], "invalid_credentials");
    let (account, _) = h
        .store
        .account_by_username(&Username::parse("long").unwrap())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(account.failed_logins, 0);
}

/// The domain refuses a password over 4096 bytes without hashing, even when it is the stored
/// one (a hash made around the policy), and audits the refusal.
#[tokio::test]
async fn the_domain_caps_passwords_at_4096_bytes() {
    let h = harness().await;
    let over = "a".repeat(MAX_PASSWORD_BYTES + 1);
    let hash = Hasher::insecure_fast_for_tests()
        .hash(&Password::new(over.clone()))
        .unwrap();
    let new = NewAccount {
        username: Username::parse("huge").unwrap(),
        email: None,
        groups: vec![],
        role: Role::User,
    };
    h.store
        .create_account(
            &new,
            &AccountId::generate(),
            Some(&hash),
            h.clock.now_time(),
        )
        .await
        .unwrap();
    let passwords = InlinePasswords::new();
    let ctx = LoginContext {
        store: h.store.as_ref(),
        passwords: &passwords,
        lockout: LockoutPolicy::default(),
        sessions: SessionPolicy::default(),
        factors: Default::default(),
        now: h.clock.now_time(),
    };
    let attempt = |password: &str| LoginAttempt {
        username: "huge".into(),
        password: Password::new(password),
        ip: None,
        user_agent: None,
    };
    let outcome = login::login(&ctx, attempt(&over)).await.unwrap();
    assert!(matches!(outcome, Err(Denial::WrongPassword)), "{outcome:?}");
    let last = &h.store.recent_audit(1).await.unwrap()[0];
    assert_eq!(last.detail.as_deref(), Some("oversized_password"));
    // Exactly at the cap, the password is checked as usual.
    let at_cap = "b".repeat(MAX_PASSWORD_BYTES);
    let outcome = login::login(&ctx, attempt(&at_cap)).await.unwrap();
    assert!(matches!(outcome, Err(Denial::WrongPassword)));
    assert_eq!(
        h.store.recent_audit(1).await.unwrap()[0].detail.as_deref(),
        Some("wrong_password")
    );
}

/// The configuration refuses argon2 parameters below OWASP's weakest argon2id setting, naming
/// the values; OWASP's settings themselves pass.
#[test]
fn the_configured_argon2_floor_is_owasps() {
    let mut config = tessera_server::ServerConfig::dev("127.0.0.1:8080".parse().unwrap());
    config.validate().unwrap();
    for (m, t) in [(8192, 1), (7168, 4), (19455, 2)] {
        config.hash_params = HashParams {
            memory_kib: m,
            iterations: t,
            parallelism: 1,
        };
        let err = config.validate().expect_err("below the floor");
        assert!(
            err.contains("OWASP") && err.contains(&format!("m={m}")),
            "{err}"
        );
    }
    for (m, t) in [(7168, 5), (9216, 4), (12288, 3), (19456, 2), (47104, 1)] {
        config.hash_params = HashParams {
            memory_kib: m,
            iterations: t,
            parallelism: 1,
        };
        config.validate().unwrap();
    }
}

/// The upkeep deletes audit events older than `audit_retention`, and none when it is 0.
#[tokio::test]
async fn old_audit_events_are_pruned_by_the_upkeep() {
    use tessera_domain::audit::{AuditEvent, AuditKind};
    let h = harness_with(|c| c.audit_retention = 86_400).await;
    let now = h.clock.now_time();
    let old = AuditEvent::new(AuditKind::Logout, now.plus(-86_401)).detail("old");
    let edge = AuditEvent::new(AuditKind::Logout, now.plus(-86_400)).detail("edge");
    h.store.append_audit(&old).await.unwrap();
    h.store.append_audit(&edge).await.unwrap();
    let before = h.store.recent_audit(100).await.unwrap().len();
    assert_eq!(h.state.credential_upkeep().await.unwrap(), 1);
    let after = h.store.recent_audit(100).await.unwrap();
    assert_eq!(after.len(), before - 1);
    assert!(!after.contains(&old) && after.contains(&edge));

    let keep = harness_with(|c| c.audit_retention = 0).await;
    keep.store
        .append_audit(&AuditEvent::new(
            AuditKind::Logout,
            tessera_domain::clock::UnixTime(0),
        ))
        .await
        .unwrap();
    assert_eq!(keep.state.credential_upkeep().await.unwrap(), 0);
}
