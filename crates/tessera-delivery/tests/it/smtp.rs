//! Email against a real SMTP server: Python's aiosmtpd (`smtp_sink.py`), spawned on an
//! ephemeral port, plain on loopback, with STARTTLS required, and with implicit TLS, each with a
//! throwaway CA made by the `openssl` command.
//!
//! The Python interpreter is `$SMTP_TEST_PYTHON` (scripts/test-all.sh points it at its venv,
//! which has aiosmtpd) or `python3`. Without python, aiosmtpd or openssl the tests skip loudly,
//! and fail under CI (tessera_testkit::skip).

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use serde_json::Value;
use tessera_delivery::{DeliveryConfig, EmailConfig};
use tessera_domain::delivery::{Channel, CodeSender, DeliveryError, Purpose};
use tessera_testkit::skip;
use tokio::io::{AsyncBufReadExt, BufReader, Lines};
use tokio::process::{Child, ChildStdout, Command};

use crate::{TestEnv, clock, outgoing, write};

/// How long to wait for the sink to start or a message to arrive: a deadline, not a pause.
const DEADLINE: Duration = Duration::from_secs(30);

fn python() -> String {
    std::env::var("SMTP_TEST_PYTHON").unwrap_or_else(|_| "python3".into())
}

/// Whether python with aiosmtpd is here; reports the skip if not.
fn have_aiosmtpd() -> bool {
    let python = python();
    match std::process::Command::new(&python)
        .args(["-c", "import aiosmtpd"])
        .output()
    {
        Err(e) => {
            skip::absent("python3", &format!("cannot run {python}: {e}"));
            false
        }
        Ok(out) if !out.status.success() => {
            skip::absent(
                "aiosmtpd",
                &format!(
                    "{python} cannot import aiosmtpd (pip install aiosmtpd, or set \
                     SMTP_TEST_PYTHON to a python that has it; scripts/test-all.sh does)"
                ),
            );
            false
        }
        Ok(_) => true,
    }
}

/// A running sink and its output lines (its stderr goes to a file, shown if it fails).
struct Sink {
    _child: Child,
    lines: Lines<BufReader<ChildStdout>>,
    port: u16,
    stderr: tempfile::NamedTempFile,
}

impl Sink {
    async fn start(args: &[&str]) -> Sink {
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/it/smtp_sink.py");
        let stderr = tempfile::NamedTempFile::new().expect("temporary file");
        let mut child = Command::new(python())
            .arg("-u")
            .arg(script)
            .args(args)
            .stdout(Stdio::piped())
            .stderr(stderr.reopen().expect("reopen"))
            .kill_on_drop(true)
            .spawn()
            .expect("spawn the SMTP sink");
        let lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
        let mut sink = Sink {
            _child: child,
            lines,
            port: 0,
            stderr,
        };
        let first = sink.next_json().await;
        sink.port = u16::try_from(first["port"].as_u64().expect("port")).expect("u16");
        sink
    }

    /// The next message the sink received.
    async fn message(&mut self) -> Value {
        self.next_json().await
    }

    async fn next_json(&mut self) -> Value {
        let line = tokio::time::timeout(DEADLINE, self.lines.next_line()).await;
        match line {
            Ok(Ok(Some(line))) => serde_json::from_str(&line).expect("a JSON line"),
            other => panic!(
                "the SMTP sink did not answer ({other:?}); its stderr:\n{}",
                std::fs::read_to_string(self.stderr.path()).unwrap_or_default()
            ),
        }
    }
}

/// A throwaway CA and a leaf for 127.0.0.1 signed by it (rustls refuses a self-signed CA
/// certificate as a server certificate, so the two are distinct). `None` without openssl.
fn certificates(dir: &Path) -> Option<(PathBuf, PathBuf, PathBuf)> {
    let run = |args: &[&str]| -> Option<()> {
        match std::process::Command::new("openssl")
            .args(args)
            .current_dir(dir)
            .output()
        {
            Err(e) => {
                skip::absent("openssl", &format!("cannot run openssl: {e}"));
                None
            }
            Ok(out) => {
                assert!(
                    out.status.success(),
                    "openssl {args:?}: {}",
                    String::from_utf8_lossy(&out.stderr)
                );
                Some(())
            }
        }
    };
    let ec = [
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-nodes",
    ];
    let mut ca = vec!["req", "-x509"];
    ca.extend(ec);
    ca.extend([
        "-keyout",
        "ca.key",
        "-out",
        "ca.pem",
        "-days",
        "2",
        "-subj",
        "/CN=tessera test CA",
        "-addext",
        "basicConstraints=critical,CA:TRUE",
        "-addext",
        "keyUsage=critical,keyCertSign",
    ]);
    run(&ca)?;
    let mut csr = vec!["req"];
    csr.extend(ec);
    csr.extend([
        "-keyout",
        "leaf.key",
        "-out",
        "leaf.csr",
        "-subj",
        "/CN=127.0.0.1",
    ]);
    run(&csr)?;
    write(
        dir,
        "leaf.ext",
        b"subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\n\
          keyUsage=digitalSignature\nextendedKeyUsage=serverAuth\n",
    );
    run(&[
        "x509",
        "-req",
        "-in",
        "leaf.csr",
        "-CA",
        "ca.pem",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-out",
        "leaf.pem",
        "-days",
        "2",
        "-extfile",
        "leaf.ext",
    ])?;
    Some((
        dir.join("ca.pem"),
        dir.join("leaf.pem"),
        dir.join("leaf.key"),
    ))
}

fn email(port: u16, tls: &str) -> EmailConfig {
    serde_json::from_value(serde_json::json!({
        "host": "127.0.0.1",
        "port": port,
        "tls": tls,
        "from": "Tessera <no-reply@tessera.test>",
        "retry_delay_ms": 1,
        "timeout_secs": 10,
    }))
    .unwrap()
}

async fn send(
    config: EmailConfig,
    env: &TestEnv,
    to: &str,
    code: &str,
) -> Result<(), DeliveryError> {
    let config = DeliveryConfig {
        email: Some(config),
        ..DeliveryConfig::default()
    };
    let senders = config.build(env, clock()).expect("valid configuration");
    senders.send(&outgoing(to, code, Purpose::SignIn)).await
}

/// What every delivered sign-in message looks like.
fn check(message: &Value, code: &str) {
    assert_eq!(message["mail_from"], "no-reply@tessera.test");
    assert_eq!(message["rcpt_tos"], serde_json::json!(["ada@example.com"]));
    assert_eq!(message["to"], "ada@example.com");
    assert_eq!(message["from"], "Tessera <no-reply@tessera.test>");
    assert_eq!(message["content_type"], "text/plain");
    let subject = message["subject"].as_str().unwrap();
    assert_eq!(subject, "Your Tessera sign-in code");
    assert!(!subject.contains(code));
    let body = message["body"].as_str().unwrap();
    assert_eq!(
        body.trim_end(),
        format!("Your Tessera sign-in code is {code}. It expires in 5 minutes.")
    );
}

#[tokio::test]
async fn plain_smtp_on_loopback_delivers_the_message() {
    if !have_aiosmtpd() {
        return;
    }
    let mut sink = Sink::start(&["plain"]).await;
    send(
        email(sink.port, "none"),
        &TestEnv::default(),
        "ada@example.com",
        "482913",
    )
    .await
    .expect("delivered");
    let message = sink.message().await;
    check(&message, "482913");
    assert_eq!(message["tls"], false);
}

#[tokio::test]
async fn starttls_with_a_private_ca_and_authentication() {
    if !have_aiosmtpd() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let Some((ca, cert, key)) = certificates(dir.path()) else {
        return;
    };
    let mut sink = Sink::start(&[
        "starttls",
        cert.to_str().unwrap(),
        key.to_str().unwrap(),
        "mailer",
        "s3cret-pass",
    ])
    .await;
    let mut config = email(sink.port, "starttls");
    config.ca_file = Some(ca);
    config.username = Some("mailer".into());
    config.password_file = Some(write(dir.path(), "password", b"s3cret-pass\n"));
    send(config, &TestEnv::default(), "ada@example.com", "731550")
        .await
        .expect("delivered");
    let message = sink.message().await;
    check(&message, "731550");
    assert_eq!(message["tls"], true);
    assert_eq!(message["login"], "mailer");
}

#[tokio::test]
async fn a_wrong_password_is_a_rejection() {
    if !have_aiosmtpd() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let Some((ca, cert, key)) = certificates(dir.path()) else {
        return;
    };
    let sink = Sink::start(&[
        "starttls",
        cert.to_str().unwrap(),
        key.to_str().unwrap(),
        "mailer",
        "s3cret-pass",
    ])
    .await;
    let mut config = email(sink.port, "starttls");
    config.ca_file = Some(ca);
    config.username = Some("mailer".into());
    config.password_env = Some("SMTP_PASSWORD".into());
    let env = TestEnv::default().with("SMTP_PASSWORD", "wrong");
    let err = send(config, &env, "ada@example.com", "731550")
        .await
        .expect_err("authentication fails");
    assert!(
        matches!(&err, DeliveryError::Rejected { channel: Channel::Email, reason } if reason.contains("535")),
        "{err:?}"
    );
    assert!(!err.to_string().contains("wrong"), "{err}");
}

#[tokio::test]
async fn implicit_tls_with_a_private_ca() {
    if !have_aiosmtpd() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let Some((ca, cert, key)) = certificates(dir.path()) else {
        return;
    };
    let mut sink = Sink::start(&["tls", cert.to_str().unwrap(), key.to_str().unwrap()]).await;
    let mut config = email(sink.port, "tls");
    config.ca_file = Some(ca);
    send(config, &TestEnv::default(), "ada@example.com", "900417")
        .await
        .expect("delivered");
    let message = sink.message().await;
    check(&message, "900417");
    assert_eq!(message["tls"], true);
}

/// Without the CA file the server's certificate is not trusted: nothing is sent, and the
/// error says why without the code.
#[tokio::test]
async fn an_untrusted_certificate_is_refused() {
    if !have_aiosmtpd() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let Some((_, cert, key)) = certificates(dir.path()) else {
        return;
    };
    let sink = Sink::start(&["starttls", cert.to_str().unwrap(), key.to_str().unwrap()]).await;
    let config = email(sink.port, "starttls");
    let err = send(config, &TestEnv::default(), "ada@example.com", "246810")
        .await
        .expect_err("untrusted");
    let text = err.to_string();
    assert!(
        matches!(
            err,
            DeliveryError::Rejected {
                channel: Channel::Email,
                ..
            }
        ),
        "final, not retried: {err:?}"
    );
    assert!(text.contains("invalid peer certificate"), "{text}");
    assert!(!text.contains("246810"), "{text}");
}

/// A server that is not there: retried, then unavailable.
#[tokio::test]
async fn an_absent_server_is_unavailable_after_the_attempts() {
    let addr = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap()
    };
    let mut config = email(addr.port(), "none");
    config.attempts = 2;
    let err = send(config, &TestEnv::default(), "ada@example.com", "482913")
        .await
        .expect_err("unavailable");
    assert!(
        matches!(
            err,
            DeliveryError::Unavailable {
                channel: Channel::Email,
                attempts: 2,
                ..
            }
        ),
        "{err:?}"
    );
}
