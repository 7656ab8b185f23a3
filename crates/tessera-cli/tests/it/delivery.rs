//! `tessera delivery test` against a real HTTP receiver (axum on 127.0.0.1:0, on a runtime of
//! this test process): the code the command prints is the code that arrives, signed; a
//! refusal, a missing channel and a bad address exit 2 with the reason.

use std::collections::VecDeque;
use std::process::Command;
use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use axum::http::{HeaderMap, StatusCode};

const SECRET: &str = "cli-test-secret-0123456789abcdef0123";

/// Requests seen (headers, body) and the statuses to answer, then 200.
#[derive(Clone, Default)]
struct Receiver {
    seen: Arc<Mutex<Vec<(HeaderMap, Bytes)>>>,
    statuses: Arc<Mutex<VecDeque<StatusCode>>>,
}

/// Starts a receiver on its own runtime (kept alive by the returned value).
fn receiver(statuses: &[StatusCode]) -> (tokio::runtime::Runtime, Receiver, String) {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let state = Receiver {
        seen: Arc::default(),
        statuses: Arc::new(Mutex::new(statuses.iter().copied().collect())),
    };
    let shared = state.clone();
    let app = axum::Router::new().route(
        "/sms",
        axum::routing::post(move |headers: HeaderMap, body: Bytes| {
            let state = shared.clone();
            async move {
                state.seen.lock().unwrap().push((headers, body));
                let status = state.statuses.lock().unwrap().pop_front();
                (
                    status.unwrap_or(StatusCode::OK),
                    "number blocked by the gateway",
                )
            }
        }),
    );
    let listener = rt
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .unwrap();
    let url = format!("http://{}/sms", listener.local_addr().unwrap());
    rt.spawn(async move { axum::serve(listener, app).await });
    (rt, state, url)
}

struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

fn delivery_test(config: &str, to: &str) -> Run {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("tessera.toml");
    std::fs::write(&path, config).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_tessera"))
        .args(["delivery", "test", "--to", to, "--config"])
        .arg(&path)
        .env("SMS_SIGNING_SECRET", SECRET)
        .env_remove("TESSERA_LOG")
        .output()
        .unwrap();
    Run {
        code: out.status.code().expect("exited, not killed"),
        stdout: String::from_utf8(out.stdout).unwrap(),
        stderr: String::from_utf8(out.stderr).unwrap(),
    }
}

fn sms_config(url: &str) -> String {
    format!(
        "[branding]\nproduct_name = \"Acme ID\"\n\
         [delivery.sms]\nurl = \"{url}\"\nsigning_secret_env = \"SMS_SIGNING_SECRET\"\n\
         retry_delay_ms = 1\n"
    )
}

#[test]
fn the_printed_code_arrives_signed_at_the_webhook() {
    let (_rt, receiver, url) = receiver(&[]);
    let run = delivery_test(&sms_config(&url), "+447700900123");
    assert_eq!(run.code, 0, "{}", run.stderr);
    let code: String = run
        .stdout
        .strip_prefix("sent test code ")
        .expect("the code is printed")
        .chars()
        .take(6)
        .collect();
    assert!(code.bytes().all(|b| b.is_ascii_digit()), "{}", run.stdout);
    let seen = receiver.seen.lock().unwrap().clone();
    assert_eq!(seen.len(), 1);
    let (headers, body) = &seen[0];
    let body: serde_json::Value = serde_json::from_slice(body).unwrap();
    assert_eq!(body["to"], "+447700900123");
    assert_eq!(
        body["message"],
        format!("Your Acme ID sign-in code is {code}. It expires in 5 minutes.")
    );
    let signature = headers["tessera-signature"].to_str().unwrap();
    assert!(
        signature.starts_with("t=") && signature.contains(",v1="),
        "{signature}"
    );
}

#[test]
fn a_refusal_exits_2_with_the_reason() {
    let (_rt, receiver, url) = receiver(&[StatusCode::UNPROCESSABLE_ENTITY]);
    let run = delivery_test(&sms_config(&url), "+447700900123");
    assert_eq!(run.code, 2, "{}", run.stdout);
    assert!(
        run.stderr.contains("sms delivery rejected")
            && run.stderr.contains("422")
            && run.stderr.contains("number blocked"),
        "{}",
        run.stderr
    );
    assert_eq!(receiver.seen.lock().unwrap().len(), 1);
}

#[test]
fn no_channel_a_bad_address_and_a_bad_section_exit_2() {
    let (_rt, receiver, url) = receiver(&[]);
    let run = delivery_test(&sms_config(&url), "ada@example.com");
    assert_eq!(run.code, 2);
    assert!(
        run.stderr.contains("email delivery is not configured"),
        "{}",
        run.stderr
    );
    let run = delivery_test(&sms_config(&url), "+44 7700 900123");
    assert_eq!(run.code, 2);
    assert!(
        run.stderr.contains("--to") && run.stderr.contains("only digits"),
        "{}",
        run.stderr
    );
    let run = delivery_test(
        "[delivery.sms]\nurl = \"http://sms.example.com/send\"\n",
        "+447700900123",
    );
    assert_eq!(run.code, 2);
    assert!(
        run.stderr.contains("delivery.sms.url") && run.stderr.contains("https://"),
        "{}",
        run.stderr
    );
    assert!(receiver.seen.lock().unwrap().is_empty());
}

/// The development channel: off unless enabled; when on, the code goes to the log at WARN
/// with the "DEVELOPMENT ONLY" marker.
#[test]
fn the_log_channel_only_when_enabled() {
    let run = delivery_test("", "ada@example.com");
    assert_eq!(run.code, 2);
    assert!(run.stderr.contains("not configured"), "{}", run.stderr);
    let run = delivery_test("[delivery.log]\nenabled = true\n", "ada@example.com");
    assert_eq!(run.code, 0, "{}", run.stderr);
    let code: String = run
        .stdout
        .strip_prefix("sent test code ")
        .expect("printed")
        .chars()
        .take(6)
        .collect();
    assert!(run.stdout.contains("development log"), "{}", run.stdout);
    let line = run
        .stderr
        .lines()
        .find(|l| l.contains("DEVELOPMENT ONLY") && l.contains(&code))
        .unwrap_or_else(|| panic!("no log line with the code: {}", run.stderr));
    assert!(line.contains("WARN"), "{line}");
}

/// `tessera serve` checks `[delivery]` before it opens the store or listens: a bad section
/// stops it with exit 2 naming the key.
#[test]
fn serve_refuses_a_bad_delivery_section() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("tessera.toml");
    std::fs::write(
        &path,
        "[delivery.email]\nhost = \"smtp.example.com\"\ntls = \"none\"\nfrom = \"a@example.com\"\n",
    )
    .unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_tessera"))
        .args(["serve", "--listen", "127.0.0.1:0", "--config"])
        .arg(&path)
        .arg("--data-dir")
        .arg(dir.path().join("data"))
        .env_remove("TESSERA_LOG")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("delivery.email.tls") && stderr.contains("loopback"),
        "{stderr}"
    );
    assert!(!dir.path().join("data").exists(), "no database was created");
}
