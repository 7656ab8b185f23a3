//! The SMS webhook against a real HTTP receiver on 127.0.0.1:0 (axum, in-process): what
//! arrives, the signature, and the retry rules.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use aws_lc_rs::hmac;
use axum::body::Bytes;
use axum::http::{HeaderMap, Method, StatusCode};
use serde_json::Value;
use tessera_delivery::{DeliveryConfig, SmsConfig};
use tessera_domain::delivery::{Channel, CodeSender, DeliveryError, Purpose};

use crate::{NOW, TestEnv, clock, outgoing};

const SECRET: &str = "0123456789abcdef0123456789abcdef-test-secret";

/// One request the receiver saw.
#[derive(Clone, Debug)]
struct Seen {
    method: Method,
    headers: HeaderMap,
    body: Bytes,
    at: Instant,
}

/// What the receiver answers next: status, headers, body (then 200 once the script is done).
type Reply = (StatusCode, Vec<(&'static str, &'static str)>, &'static str);

#[derive(Clone, Default)]
struct Receiver {
    seen: Arc<Mutex<Vec<Seen>>>,
    script: Arc<Mutex<VecDeque<Reply>>>,
}

impl Receiver {
    /// Starts a receiver answering `script` in order, then 200s; returns it and its URL.
    async fn start(script: Vec<Reply>) -> (Receiver, String) {
        let receiver = Receiver {
            seen: Arc::default(),
            script: Arc::new(Mutex::new(script.into())),
        };
        let state = receiver.clone();
        let app = axum::Router::new().route(
            "/sms",
            axum::routing::any(move |method: Method, headers: HeaderMap, body: Bytes| {
                let state = state.clone();
                async move {
                    state.seen.lock().unwrap().push(Seen {
                        method,
                        headers,
                        body,
                        at: Instant::now(),
                    });
                    let (status, headers, body) = state
                        .script
                        .lock()
                        .unwrap()
                        .pop_front()
                        .unwrap_or((StatusCode::OK, vec![], "{\"ok\":true}"));
                    let mut response = axum::response::Response::new(axum::body::Body::from(body));
                    *response.status_mut() = status;
                    for (name, value) in headers {
                        response.headers_mut().insert(name, value.parse().unwrap());
                    }
                    response
                }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await });
        (receiver, format!("http://{addr}/sms"))
    }

    fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }
}

/// An SMS section for `url` with the test secret and tiny retry delays.
fn sms(url: &str) -> SmsConfig {
    serde_json::from_value(serde_json::json!({
        "url": url,
        "signing_secret_env": "SMS_SECRET",
        "retry_delay_ms": 1,
        "retry_after_max_secs": 0,
    }))
    .unwrap()
}

fn env() -> TestEnv {
    TestEnv::default()
        .with("SMS_SECRET", SECRET)
        .with("GATEWAY_KEY", "key-from-env")
}

fn sender(config: SmsConfig) -> Arc<dyn CodeSender> {
    let config = DeliveryConfig {
        sms: Some(config),
        ..DeliveryConfig::default()
    };
    Arc::new(config.build(&env(), clock()).expect("valid configuration"))
}

/// Checks the `Tessera-Signature` header the way docs/delivery.md tells a receiver to.
fn verify_signature(seen: &Seen) {
    let header = seen
        .headers
        .get("tessera-signature")
        .expect("signature header")
        .to_str()
        .unwrap();
    let (t, v1) = header
        .strip_prefix("t=")
        .and_then(|rest| rest.split_once(",v1="))
        .expect("t=…,v1=… format");
    assert_eq!(t, NOW.to_string(), "t is the injected clock's time");
    let tag: Vec<u8> = (0..v1.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&v1[i..i + 2], 16).unwrap())
        .collect();
    let key = hmac::Key::new(hmac::HMAC_SHA256, SECRET.as_bytes());
    let mut signed = format!("{t}.").into_bytes();
    signed.extend_from_slice(&seen.body);
    hmac::verify(&key, &signed, &tag).expect("the signature verifies");
    // And a changed body does not.
    signed.push(b' ');
    assert!(hmac::verify(&key, &signed, &tag).is_err());
}

#[tokio::test]
async fn a_json_webhook_receives_a_signed_body_with_every_placeholder() {
    let (receiver, url) = Receiver::start(vec![]).await;
    let mut config = sms(&url);
    config.json_body = Some(
        r#"{"recipient":"{to}","text":"{message}","otp":"{code}","kind":"{purpose}","n":1}"#.into(),
    );
    config
        .headers
        .insert("X-Static".into(), "static value".into());
    config
        .headers_env
        .insert("X-Api-Key".into(), "GATEWAY_KEY".into());
    let sender = sender(config);
    sender
        .send(&outgoing("+447700900123", "482913", Purpose::SignIn))
        .await
        .expect("delivered");

    let seen = receiver.seen();
    assert_eq!(seen.len(), 1);
    let request = &seen[0];
    assert_eq!(request.method, Method::POST);
    assert_eq!(request.headers["content-type"], "application/json");
    assert_eq!(request.headers["x-static"], "static value");
    assert_eq!(request.headers["x-api-key"], "key-from-env");
    verify_signature(request);
    let body: Value = serde_json::from_slice(&request.body).unwrap();
    assert_eq!(body["recipient"], "+447700900123");
    assert_eq!(
        body["text"],
        "Your Tessera sign-in code is 482913. It expires in 5 minutes."
    );
    assert_eq!(body["otp"], "482913");
    assert_eq!(body["kind"], "sign_in");
    assert_eq!(body["n"], 1);
}

#[tokio::test]
async fn the_default_body_and_a_verify_address_message() {
    let (receiver, url) = Receiver::start(vec![]).await;
    sender(sms(&url))
        .send(&outgoing(
            "+15005550006",
            "12345678",
            Purpose::VerifyAddress,
        ))
        .await
        .expect("delivered");
    let seen = receiver.seen();
    verify_signature(&seen[0]);
    let body: Value = serde_json::from_slice(&seen[0].body).unwrap();
    assert_eq!(
        body,
        serde_json::json!({
            "to": "+15005550006",
            "message": "Your Tessera verification code is 12345678. Enter it to confirm this \
                        address. It expires in 5 minutes.",
            "purpose": "verify_address",
        })
    );
}

#[tokio::test]
async fn a_twilio_style_form_with_basic_auth() {
    let (receiver, url) = Receiver::start(vec![]).await;
    let config: SmsConfig = serde_json::from_value(serde_json::json!({
        "url": url,
        "username": "AC0123456789abcdef",
        "password_env": "TWILIO_AUTH_TOKEN",
        "form": { "To": "{to}", "From": "+15005550006", "Body": "{message}" },
    }))
    .unwrap();
    let config = DeliveryConfig {
        sms: Some(config),
        ..DeliveryConfig::default()
    };
    let env = TestEnv::default().with("TWILIO_AUTH_TOKEN", "auth-token-xyz");
    config
        .build(&env, clock())
        .unwrap()
        .send(&outgoing("+447700900123", "555123", Purpose::SignIn))
        .await
        .expect("delivered");
    let seen = receiver.seen();
    let request = &seen[0];
    assert_eq!(
        request.headers["content-type"],
        "application/x-www-form-urlencoded"
    );
    // base64("AC0123456789abcdef:auth-token-xyz")
    assert_eq!(
        request.headers["authorization"],
        "Basic QUMwMTIzNDU2Nzg5YWJjZGVmOmF1dGgtdG9rZW4teHl6"
    );
    assert!(
        request.headers.get("tessera-signature").is_none(),
        "no secret, no signature"
    );
    let form: Vec<(String, String)> = serde_urlencoded::from_bytes(&request.body).unwrap();
    assert_eq!(
        form,
        [
            (
                "Body".to_owned(),
                "Your Tessera sign-in code is 555123. It expires in 5 minutes.".to_owned()
            ),
            ("From".to_owned(), "+15005550006".to_owned()),
            ("To".to_owned(), "+447700900123".to_owned()),
        ]
    );
}

#[tokio::test]
async fn a_503_is_retried_and_every_attempt_is_signed() {
    let (receiver, url) = Receiver::start(vec![
        (StatusCode::SERVICE_UNAVAILABLE, vec![], "busy"),
        (StatusCode::BAD_GATEWAY, vec![], ""),
    ])
    .await;
    sender(sms(&url))
        .send(&outgoing("+447700900123", "482913", Purpose::SignIn))
        .await
        .expect("delivered on the third attempt");
    let seen = receiver.seen();
    assert_eq!(seen.len(), 3);
    for request in &seen {
        verify_signature(request);
        assert_eq!(request.body, seen[0].body);
    }
}

#[tokio::test]
async fn a_400_is_not_retried_and_its_echo_of_the_code_is_removed() {
    let (receiver, url) = Receiver::start(vec![(
        StatusCode::BAD_REQUEST,
        vec![],
        "invalid number in {\"to\":\"+447700900123\",\"message\":\"… 482913 …\"}",
    )])
    .await;
    let err = sender(sms(&url))
        .send(&outgoing("+447700900123", "482913", Purpose::SignIn))
        .await
        .expect_err("rejected");
    let DeliveryError::Rejected { channel, reason } = &err else {
        panic!("not a rejection: {err:?}");
    };
    assert_eq!(*channel, Channel::Sms);
    assert!(
        reason.contains("400") && reason.contains("invalid number"),
        "{reason}"
    );
    assert!(!err.to_string().contains("482913"), "{err}");
    assert_eq!(receiver.seen().len(), 1, "a 400 is final");
}

#[tokio::test]
async fn failures_on_every_attempt_are_unavailable() {
    let (receiver, url) = Receiver::start(vec![
        (StatusCode::INTERNAL_SERVER_ERROR, vec![], "down"),
        (StatusCode::INTERNAL_SERVER_ERROR, vec![], "still down"),
        (StatusCode::OK, vec![], "never reached"),
    ])
    .await;
    let mut config = sms(&url);
    config.attempts = 2;
    let err = sender(config)
        .send(&outgoing("+447700900123", "482913", Purpose::SignIn))
        .await
        .expect_err("unavailable");
    assert_eq!(
        err,
        DeliveryError::Unavailable {
            channel: Channel::Sms,
            attempts: 2,
            reason: "HTTP 500 Internal Server Error: still down".into(),
        }
    );
    assert_eq!(receiver.seen().len(), 2);
}

#[tokio::test]
async fn a_refused_connection_is_retried_then_unavailable() {
    // A port nothing listens on: bind one, note it, close it.
    let addr = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap()
    };
    let err = sender(sms(&format!("http://{addr}/sms")))
        .send(&outgoing("+447700900123", "482913", Purpose::SignIn))
        .await
        .expect_err("unavailable");
    let DeliveryError::Unavailable {
        attempts, reason, ..
    } = &err
    else {
        panic!("not unavailable: {err:?}");
    };
    assert_eq!(*attempts, 3);
    assert!(reason.to_lowercase().contains("connect"), "{reason}");
}

/// A 429 asking for an hour is obeyed only up to `retry_after_max_secs` (0 here): were the
/// cap ignored, the test would wait an hour and time out.
#[tokio::test]
async fn retry_after_is_capped() {
    let (receiver, url) = Receiver::start(vec![(
        StatusCode::TOO_MANY_REQUESTS,
        vec![("retry-after", "3600")],
        "slow down",
    )])
    .await;
    let sender = sender(sms(&url));
    let msg = outgoing("+447700900123", "482913", Purpose::SignIn);
    tokio::time::timeout(Duration::from_secs(60), sender.send(&msg))
        .await
        .expect("the cap applies: no hour-long wait")
        .expect("delivered on the second attempt");
    assert_eq!(receiver.seen().len(), 2);
}

/// A `Retry-After: 1` is waited out even though the backoff would be 1 ms. Only a lower bound
/// is checked (a sleep never ends early), so this cannot flake on a slow machine.
#[tokio::test]
async fn retry_after_is_honoured() {
    let (receiver, url) = Receiver::start(vec![(
        StatusCode::SERVICE_UNAVAILABLE,
        vec![("retry-after", "1")],
        "",
    )])
    .await;
    let mut config = sms(&url);
    config.retry_after_max_secs = 30;
    sender(config)
        .send(&outgoing("+447700900123", "482913", Purpose::SignIn))
        .await
        .expect("delivered");
    let seen = receiver.seen();
    assert_eq!(seen.len(), 2);
    let gap = seen[1].at.duration_since(seen[0].at);
    assert!(gap >= Duration::from_millis(990), "waited only {gap:?}");
}

#[tokio::test]
async fn a_redirect_is_not_followed() {
    let (receiver, url) = Receiver::start(vec![(
        StatusCode::TEMPORARY_REDIRECT,
        vec![("location", "http://127.0.0.1:9/elsewhere")],
        "",
    )])
    .await;
    let err = sender(sms(&url))
        .send(&outgoing("+447700900123", "482913", Purpose::SignIn))
        .await
        .expect_err("rejected");
    assert!(
        err.to_string().contains("307") && err.to_string().contains("redirect"),
        "{err}"
    );
    assert_eq!(receiver.seen().len(), 1);
}

#[tokio::test]
async fn the_webhook_refuses_an_email_address_and_email_without_a_sender_is_not_configured() {
    let (receiver, url) = Receiver::start(vec![]).await;
    let config = DeliveryConfig {
        sms: Some(sms(&url)),
        ..DeliveryConfig::default()
    };
    let senders = config.build(&env(), clock()).unwrap();
    let err = senders
        .send(&outgoing("ada@example.com", "482913", Purpose::SignIn))
        .await
        .expect_err("no email channel");
    assert_eq!(err, DeliveryError::NotConfigured(Channel::Email));
    let webhook =
        tessera_delivery::webhook::WebhookSender::new(&sms(&url), &env(), clock()).unwrap();
    let err = webhook
        .send(&outgoing("ada@example.com", "482913", Purpose::SignIn))
        .await
        .expect_err("not a phone number");
    assert!(matches!(err, DeliveryError::Rejected { .. }), "{err:?}");
    assert!(receiver.seen().is_empty());
}

/// The Python verification recipe of docs/delivery.md, run as written on a real signed request:
/// it accepts it, and refuses a changed body and a stale timestamp.
#[tokio::test]
async fn the_documented_python_recipe_verifies_a_real_request() {
    let doc = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../docs/delivery.md"
    ))
    .expect("docs/delivery.md");
    let start = doc.find("```python\n").expect("a python block") + "```python\n".len();
    let recipe = &doc[start..start + doc[start..].find("```").expect("closed")];
    assert!(recipe.contains("def verify_tessera_signature"), "{recipe}");

    let (receiver, url) = Receiver::start(vec![]).await;
    sender(sms(&url))
        .send(&outgoing("+447700900123", "482913", Purpose::SignIn))
        .await
        .expect("delivered");
    let seen = receiver.seen().remove(0);
    let header = seen.headers["tessera-signature"]
        .to_str()
        .unwrap()
        .to_owned();

    let harness = format!(
        "{recipe}\nimport sys\nsecret, header = sys.argv[1].encode(), sys.argv[2]\n\
         body = sys.stdin.buffer.read()\n\
         print(verify_tessera_signature(secret, header, body, now={NOW} + 10),\n\
               verify_tessera_signature(secret, header, body + b' ', now={NOW}),\n\
               verify_tessera_signature(secret, header, body, now={NOW} + 301))\n"
    );
    let python = std::env::var("SMTP_TEST_PYTHON").unwrap_or_else(|_| "python3".into());
    let child = std::process::Command::new(&python)
        .args(["-c", &harness, SECRET, &header])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn();
    let mut child = match child {
        Ok(c) => c,
        Err(e) => {
            tessera_testkit::skip::absent("python3", &format!("cannot run {python}: {e}"));
            return;
        }
    };
    {
        use std::io::Write as _;
        child.stdin.take().unwrap().write_all(&seen.body).unwrap();
    }
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "True False False"
    );
}
