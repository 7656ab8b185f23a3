//! `tessera serve` as a real process over TCP: a kill -9 loses no committed change, and
//! SIGTERM lets in-flight requests finish.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const PASSWORD: &str = "correct horse battery";

struct Server {
    child: Child,
    port: u16,
    stdout: BufReader<std::process::ChildStdout>,
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port()
}

/// Starts a server; `fast` lowers the argon2 cost (default costs make a login take long
/// enough to be reliably in flight when a signal arrives).
fn start_with(data: &Path, fast: bool) -> Server {
    let port = free_port();
    let mut command = Command::new(env!("CARGO_BIN_EXE_tessera"));
    command.args([
        "serve",
        "--listen",
        &format!("127.0.0.1:{port}"),
        "--data-dir",
        data.to_str().expect("utf-8"),
    ]);
    if fast {
        command
            .env("TESSERA_PASSWORD__ARGON2_MEMORY_KIB", "7168")
            .env("TESSERA_PASSWORD__ARGON2_ITERATIONS", "5");
    }
    let mut child = command
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn serve");
    let stdout = BufReader::new(child.stdout.take().expect("stdout"));
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        if let Ok((200, _, _)) = try_request(
            port,
            "GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
        ) {
            return Server {
                child,
                port,
                stdout,
            };
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = child.kill();
    let _ = child.wait();
    panic!("server did not become healthy");
}

fn start(data: &Path) -> Server {
    start_with(data, true)
}

fn try_request(port: u16, raw: &str) -> std::io::Result<(u16, String, String)> {
    let mut s = TcpStream::connect(("127.0.0.1", port))?;
    s.set_read_timeout(Some(Duration::from_secs(30)))?;
    s.write_all(raw.as_bytes())?;
    let mut out = String::new();
    s.read_to_string(&mut out)?;
    let status = out.get(9..12).and_then(|c| c.parse().ok()).unwrap_or(0);
    let (head, body) = out.split_once("\r\n\r\n").unwrap_or((&out, ""));
    Ok((status, head.to_owned(), body.to_owned()))
}

fn request(
    port: u16,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> (u16, String, String) {
    let mut raw = format!(
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (k, v) in headers {
        raw.push_str(&format!("{k}: {v}\r\n"));
    }
    raw.push_str("\r\n");
    raw.push_str(body);
    try_request(port, &raw).expect("request")
}

fn login(port: u16) -> String {
    let body = format!(r#"{{"username":"ada","password":"{PASSWORD}"}}"#);
    let (status, head, body) = request(
        port,
        "POST",
        "/login",
        &[("Content-Type", "application/json")],
        &body,
    );
    assert_eq!(status, 200, "{head}\n{body}");
    head.lines()
        .find_map(|l| l.strip_prefix("set-cookie: "))
        .and_then(|c| c.split(';').next())
        .expect("cookie")
        .to_owned()
}

fn add_user(data: &Path, fast: bool) {
    let mut command = Command::new(env!("CARGO_BIN_EXE_tessera"));
    command.args([
        "user",
        "add",
        "ada",
        "--password-stdin",
        "--data-dir",
        data.to_str().expect("utf-8"),
    ]);
    if fast {
        command
            .env("TESSERA_PASSWORD__ARGON2_MEMORY_KIB", "7168")
            .env("TESSERA_PASSWORD__ARGON2_ITERATIONS", "5");
    }
    let mut child = command
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .expect("spawn");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(format!("{PASSWORD}\n").as_bytes())
        .expect("write");
    assert!(child.wait().expect("wait").success());
}

#[test]
fn kill_9_loses_no_committed_session_or_account() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    add_user(&data, true);
    let mut server = start(&data);
    // The bootstrap admin token is printed once on stdout.
    let mut token = String::new();
    let mut line = String::new();
    while server.stdout.read_line(&mut line).expect("read") > 0 {
        if let Some(t) = line.trim().strip_prefix("tsa_") {
            token = format!("tsa_{t}");
            break;
        }
        line.clear();
    }
    assert!(token.len() > 40, "bootstrap token printed");
    let cookie = login(server.port);
    let auth = format!("Bearer {token}");
    let (status, _, body) = request(
        server.port,
        "POST",
        "/admin/api/users",
        &[
            ("Content-Type", "application/json"),
            ("Authorization", &auth),
        ],
        r#"{"username":"bob","password":"bob's long passphrase"}"#,
    );
    assert_eq!(status, 201, "{body}");
    // No graceful anything: SIGKILL right after the responses.
    server.child.kill().expect("kill -9");
    server.child.wait().expect("reap");

    let server = start(&data);
    let (status, head, _) = request(
        server.port,
        "GET",
        "/auth/verify",
        &[("Cookie", &cookie)],
        "",
    );
    assert_eq!(status, 200, "{head}");
    assert!(head.contains("x-tessera-user: ada"));
    let (status, _, body) = request(
        server.port,
        "GET",
        "/admin/api/users/bob",
        &[("Authorization", &auth)],
        "",
    );
    assert_eq!(status, 200, "{body}");
    // No second bootstrap token on restart.
    let mut rest = String::new();
    let mut server = server;
    server.child.kill().expect("kill");
    server.child.wait().expect("reap");
    server.stdout.read_to_string(&mut rest).expect("read");
    assert!(!rest.contains("tsa_"), "{rest}");
}

#[test]
fn sigterm_finishes_in_flight_requests() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    add_user(&data, false);
    let mut server = start_with(&data, false);
    let port = server.port;
    let in_flight = std::thread::spawn(move || {
        let body = format!(r#"{{"username":"ada","password":"{PASSWORD}"}}"#);
        request(
            port,
            "POST",
            "/login",
            &[("Content-Type", "application/json")],
            &body,
        )
    });
    // The login (argon2id at OWASP cost) is now being computed.
    std::thread::sleep(Duration::from_millis(10));
    let pid = server.child.id().to_string();
    assert!(
        Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .expect("kill")
            .success()
    );
    let (status, _, body) = in_flight.join().expect("thread");
    assert_eq!(status, 200, "{body}");
    let exit = server.child.wait().expect("wait");
    assert!(exit.success(), "{exit:?}");
    // And it no longer listens.
    assert!(TcpStream::connect(("127.0.0.1", port)).is_err());
}

/// Runs `tessera admin-token …` on the server's data directory: (exit code, stdout, stderr).
fn admin_token(data: &Path, args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_tessera"))
        .arg("admin-token")
        .args(args)
        .args(["--data-dir", data.to_str().expect("utf-8")])
        .output()
        .expect("run admin-token");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn admin_tokens_are_created_listed_and_revoked_at_once_on_a_running_server() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut server = start(dir.path());
    // The bootstrap token, printed once on the server's console.
    let mut bootstrap = None;
    for _ in 0..10 {
        let mut line = String::new();
        server.stdout.read_line(&mut line).expect("read stdout");
        if let Some(t) = line.split_whitespace().find(|w| w.starts_with("tsa_")) {
            bootstrap = Some(t.to_owned());
            break;
        }
    }
    let bootstrap = format!("Bearer {}", bootstrap.expect("bootstrap token printed"));
    let users = |auth: &str| {
        request(
            server.port,
            "GET",
            "/admin/api/users",
            &[("Authorization", auth)],
            "",
        )
        .0
    };

    let (code, out, err) = admin_token(dir.path(), &["create", "--label", "ci deploy"]);
    assert_eq!(code, 0, "{err}");
    let token = out.trim().to_owned();
    assert!(token.starts_with("tsa_") && token.len() == 47, "{out}");
    assert!(err.contains("shown only this once"), "{err}");
    let auth = format!("Bearer {token}");
    assert_eq!(users(&auth), 200);

    let (code, out, _) = admin_token(dir.path(), &["list", "--json"]);
    assert_eq!(code, 0);
    let listed: serde_json::Value = serde_json::from_str(&out).expect("json");
    let listed = listed.as_array().expect("array");
    assert_eq!(listed.len(), 2, "bootstrap and ci: {out}");
    assert!(
        !out.contains("tsa_"),
        "a listing never shows a token: {out}"
    );
    let id = listed
        .iter()
        .find(|t| t["label"] == "ci deploy")
        .and_then(|t| t["id"].as_str())
        .expect("ci token listed")
        .to_owned();
    assert_eq!(id.len(), 12);

    let (code, out, err) = admin_token(dir.path(), &["revoke", &id]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains(&id), "{out}");
    // The running server refuses it at once (admin tokens are checked in the store per request).
    assert_eq!(users(&auth), 401);
    assert_eq!(users(&bootstrap), 200);
    let (_, _, audit) = request(
        server.port,
        "GET",
        "/admin/api/audit",
        &[("Authorization", &bootstrap)],
        "",
    );
    assert!(
        audit.contains("admin_token_revoked") && audit.contains(&id),
        "{audit}"
    );

    // Bad input: a clear error and exit 2, nothing changed.
    let (code, _, err) = admin_token(dir.path(), &["revoke", &id]);
    assert_eq!(code, 2);
    assert!(err.contains("no admin token has the id"), "{err}");
    let (code, _, err) = admin_token(dir.path(), &["revoke", "not-an-id"]);
    assert_eq!(code, 2);
    assert!(err.contains("12 hexadecimal digits"), "{err}");
    let (code, _, err) = admin_token(dir.path(), &["create", "--label", "  "]);
    assert_eq!(code, 2);
    assert!(err.contains("label"), "{err}");
    let (_, out, _) = admin_token(dir.path(), &["list"]);
    assert_eq!(
        out.lines().count(),
        2,
        "header and the bootstrap token: {out}"
    );

    let _ = server.child.kill();
    let _ = server.child.wait();
}

#[test]
fn metrics_have_their_own_listener_and_piped_logs_have_no_colours() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    let (port, metrics_port) = (free_port(), free_port());
    let mut child = Command::new(env!("CARGO_BIN_EXE_tessera"))
        .args([
            "serve",
            "--listen",
            &format!("127.0.0.1:{port}"),
            "--data-dir",
            data.to_str().expect("utf-8"),
        ])
        .env(
            "TESSERA_METRICS__LISTEN",
            format!("127.0.0.1:{metrics_port}"),
        )
        .env("TESSERA_HTTP__IDLE_TIMEOUT", "2m")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn serve");
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut metrics = None;
    while Instant::now() < deadline {
        if let Ok((200, _, body)) = try_request(
            metrics_port,
            "GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
        ) {
            metrics = Some(body);
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let public = try_request(
        port,
        "GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    );
    // SIGTERM, then collect the whole log.
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let mut log = String::new();
    child
        .stderr
        .take()
        .expect("stderr")
        .read_to_string(&mut log)
        .expect("read log");
    let _ = child.wait();
    assert!(metrics.is_some(), "no metrics listener; log:\n{log}");
    assert_eq!(
        public.expect("public listener").0,
        404,
        "metrics on the public listener"
    );
    assert!(log.contains("tessera is serving"), "{log}");
    assert!(log.contains("metrics at /metrics"), "{log}");
    assert!(
        !log.contains('\u{1b}'),
        "ANSI escape codes in a piped log:\n{log:?}"
    );
}
