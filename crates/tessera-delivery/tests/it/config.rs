//! Every `[delivery]` key refuses a bad value with an error naming the key.

use serde_json::json;
use tessera_delivery::{DeliveryConfig, Environment};
use tessera_domain::delivery::Channel;

use crate::{TestEnv, clock, write};

fn env() -> TestEnv {
    TestEnv::default()
        .with("SECRET", "0123456789abcdef0123456789abcdef")
        .with("SHORT", "too-short")
        .with("EMPTY", "")
}

fn config(value: serde_json::Value) -> DeliveryConfig {
    serde_json::from_value(value).expect("deserialises")
}

/// The error `build` gives for `value`, as `key: reason`.
async fn error(value: serde_json::Value) -> String {
    error_in(value, &env()).await
}

async fn error_in(value: serde_json::Value, env: &dyn Environment) -> String {
    match config(value.clone()).build(env, clock()) {
        Ok(_) => panic!("accepted: {value}"),
        Err(e) => e.to_string(),
    }
}

fn sms(extra: serde_json::Value) -> serde_json::Value {
    let mut sms = json!({ "url": "https://sms.example.com/send" });
    for (k, v) in extra.as_object().unwrap() {
        sms[k] = v.clone();
    }
    json!({ "sms": sms })
}

fn email(extra: serde_json::Value) -> serde_json::Value {
    let mut email = json!({ "host": "smtp.example.com", "from": "no-reply@example.com" });
    for (k, v) in extra.as_object().unwrap() {
        email[k] = v.clone();
    }
    json!({ "email": email })
}

#[tokio::test]
async fn nothing_configured_sends_nothing_and_the_log_exists_only_when_enabled() {
    let senders = DeliveryConfig::default().build(&env(), clock()).unwrap();
    assert!(!senders.can_send(Channel::Email) && !senders.can_send(Channel::Sms));
    let senders = config(json!({ "log": { "enabled": true } }))
        .build(&env(), clock())
        .unwrap();
    assert!(senders.can_send(Channel::Email) && senders.can_send(Channel::Sms));
    assert!(!senders.has_real_sender(Channel::Email));
}

#[tokio::test]
async fn good_configurations_build() {
    let both = json!({
        "email": { "host": "smtp.gmail.com", "port": 587, "tls": "starttls",
                   "username": "a@gmail.com", "password_env": "SECRET",
                   "from": "Example <a@gmail.com>" },
        "sms": { "url": "https://api.twilio.com/2010-04-01/Accounts/AC1/Messages.json",
                 "username": "AC1", "password_env": "SECRET",
                 "form": { "To": "{to}", "From": "+15005550006", "Body": "{message}" } },
    });
    let senders = config(both).build(&env(), clock()).unwrap();
    assert!(senders.has_real_sender(Channel::Email) && senders.has_real_sender(Channel::Sms));
    config(email(
        json!({ "tls": "none", "host": "localhost", "port": 25 }),
    ))
    .build(&env(), clock())
    .unwrap();
    config(email(json!({ "tls": "none", "host": "::1" })))
        .build(&env(), clock())
        .unwrap();
    config(sms(
        json!({ "url": "http://127.0.0.1:9000/sms", "signing_secret_env": "SECRET" }),
    ))
    .build(&env(), clock())
    .unwrap();
}

#[tokio::test]
async fn sms_url_errors() {
    let e = error(sms(json!({ "url": "not a url" }))).await;
    assert!(
        e.starts_with("delivery.sms.url:") && e.contains("not a URL"),
        "{e}"
    );
    let e = error(sms(json!({ "url": "http://sms.example.com/send" }))).await;
    assert!(
        e.contains("delivery.sms.url") && e.contains("https://"),
        "{e}"
    );
    let e = error(sms(json!({ "url": "ftp://sms.example.com/" }))).await;
    assert!(e.contains("ftp://"), "{e}");
    let e = error(sms(json!({ "url": "https://user:pw@sms.example.com/" }))).await;
    assert!(e.contains("sms.username"), "{e}");
    assert!(!e.contains("pw@"), "{e}");
    let e = error(sms(json!({ "method": "GET" }))).await;
    assert!(
        e.contains("delivery.sms.method") && e.contains("GET"),
        "{e}"
    );
}

#[tokio::test]
async fn sms_body_errors() {
    let e = error(sms(
        json!({ "json_body": "{\"to\":\"{to}\",\"t\":\"{text}\"}" }),
    ))
    .await;
    assert!(
        e.contains("delivery.sms.json_body") && e.contains("{text}"),
        "{e}"
    );
    let e = error(sms(json!({ "json_body": "{\"to\": {to}}" }))).await;
    assert!(e.contains("not valid JSON"), "{e}");
    let e = error(sms(json!({ "json_body": "{\"to\":\"{to}\"}" }))).await;
    assert!(e.contains("neither {message} nor {code}"), "{e}");
    let e = error(sms(json!({ "json_body": "{\"m\":\"{message}\"}" }))).await;
    assert!(e.contains("never uses {to}"), "{e}");
    let e = error(sms(json!({ "form": { "To": "{to}", "Body": "{message" } }))).await;
    assert!(
        e.contains("delivery.sms.form.Body") && e.contains("unclosed"),
        "{e}"
    );
    let e = error(sms(json!({ "form": { "To": "{to}", "Body": "{message}" },
                               "json_body": "{}" })))
    .await;
    assert!(e.contains("not both"), "{e}");
}

#[tokio::test]
async fn sms_secret_and_header_errors() {
    let e = error(sms(json!({ "signing_secret_env": "SHORT" }))).await;
    assert!(
        e.contains("delivery.sms.signing_secret") && e.contains("at least 32"),
        "{e}"
    );
    let e = error(sms(json!({ "signing_secret_env": "UNSET" }))).await;
    assert!(
        e.contains("delivery.sms.signing_secret_env") && e.contains("UNSET is not set"),
        "{e}"
    );
    let e = error(sms(json!({ "signing_secret_env": "EMPTY" }))).await;
    assert!(e.contains("EMPTY is empty"), "{e}");
    let e = error(sms(json!({ "signing_secret_env": "SECRET",
                               "signing_secret_file": "/nonexistent" })))
    .await;
    assert!(e.contains("not both"), "{e}");
    let e = error(sms(json!({ "signing_secret_file": "/nonexistent/secret" }))).await;
    assert!(
        e.contains("delivery.sms.signing_secret_file") && e.contains("cannot read"),
        "{e}"
    );
    let e = error(sms(json!({ "username": "AC1" }))).await;
    assert!(
        e.contains("delivery.sms.username") && e.contains("password"),
        "{e}"
    );
    let e = error(sms(json!({ "headers": { "Bad Header": "x" } }))).await;
    assert!(e.contains("delivery.sms.headers.Bad Header"), "{e}");
    let e = error(sms(json!({ "headers": { "X-Key": "a\nb" } }))).await;
    assert!(e.contains("delivery.sms.headers.X-Key"), "{e}");
    let e = error(sms(json!({ "headers": { "Tessera-Signature": "forged" } }))).await;
    assert!(e.contains("set by tessera"), "{e}");
    let e = error(sms(json!({ "headers_env": { "X-Api-Key": "UNSET" } }))).await;
    assert!(
        e.contains("delivery.sms.headers_env.X-Api-Key") && e.contains("UNSET"),
        "{e}"
    );
    let e = error(sms(json!({ "attempts": 0 }))).await;
    assert!(e.contains("delivery.sms.attempts"), "{e}");
    let e = error(sms(json!({ "timeout_secs": 0 }))).await;
    assert!(e.contains("delivery.sms.timeout_secs"), "{e}");
    let e = error(sms(json!({ "proxy": "::not a proxy::" }))).await;
    assert!(e.contains("delivery.sms.proxy"), "{e}");
}

#[tokio::test]
async fn email_errors() {
    let e = error(email(json!({ "tls": "none" }))).await;
    assert!(
        e.contains("delivery.email.tls")
            && e.contains("loopback")
            && e.contains("smtp.example.com"),
        "{e}"
    );
    let e = error(email(json!({ "tls": "none", "host": "10.0.0.1" }))).await;
    assert!(e.contains("delivery.email.tls"), "{e}");
    let e = error(email(json!({ "from": "not an address" }))).await;
    assert!(e.contains("delivery.email.from"), "{e}");
    let e = error(email(json!({ "host": "" }))).await;
    assert!(e.contains("delivery.email.host"), "{e}");
    let e = error(email(json!({ "username": "u" }))).await;
    assert!(
        e.contains("delivery.email.username") && e.contains("password"),
        "{e}"
    );
    let e = error(email(json!({ "password_env": "SECRET" }))).await;
    assert!(e.contains("needs email.username"), "{e}");
    let dir = tempfile::tempdir().unwrap();
    let not_pem = write(dir.path(), "ca.txt", b"hello");
    let e = error(email(json!({ "ca_file": not_pem }))).await;
    assert!(
        e.contains("delivery.email.ca_file") && e.contains("no PEM"),
        "{e}"
    );
    let empty = write(dir.path(), "password", b"\n");
    let e = error(email(json!({ "username": "u", "password_file": empty }))).await;
    assert!(
        e.contains("delivery.email.password_file") && e.contains("empty"),
        "{e}"
    );
    let e = error(email(json!({ "attempts": 11 }))).await;
    assert!(e.contains("delivery.email.attempts"), "{e}");
}

#[test]
fn serde_refuses_unknown_keys_and_missing_required_ones() {
    let e = serde_json::from_value::<DeliveryConfig>(email(json!({ "hots": "x" })))
        .expect_err("unknown key");
    assert!(e.to_string().contains("hots"), "{e}");
    let e = serde_json::from_value::<DeliveryConfig>(json!({ "email": { "host": "x" } }))
        .expect_err("no from");
    assert!(e.to_string().contains("from"), "{e}");
    let e = serde_json::from_value::<DeliveryConfig>(email(json!({ "tls": "ssl" })))
        .expect_err("bad tls");
    assert!(e.to_string().contains("starttls"), "{e}");
}

#[test]
fn outside_a_runtime_the_smtp_sender_is_an_error_not_a_panic() {
    let e = match config(email(json!({}))).build(&env(), clock()) {
        Ok(_) => panic!("built outside a runtime"),
        Err(e) => e.to_string(),
    };
    assert!(e.contains("Tokio runtime"), "{e}");
}
