//! The `tessera` command-line contract, run against the real binary: `token verify` exits 0
//! with the claims, 1 with a one-line reason for a rejected token, 2 for usage or configuration
//! errors, and never panics.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use tessera_token::{Jwk, SigningKey, b64};

const ISS: &str = "https://id.example";

struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

fn tessera(args: &[&str]) -> Run {
    tessera_stdin(args, "")
}

fn tessera_stdin(args: &[&str], stdin: &str) -> Run {
    let mut child = Command::new(env!("CARGO_BIN_EXE_tessera"))
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn tessera");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(stdin.as_bytes())
        .expect("write stdin");
    let Output {
        status,
        stdout,
        stderr,
    } = child.wait_with_output().expect("wait");
    Run {
        code: status.code().expect("exited normally, not by a signal"),
        stdout: String::from_utf8(stdout).expect("utf-8 stdout"),
        stderr: String::from_utf8(stderr).expect("utf-8 stderr"),
    }
}

/// A temporary directory with one key per family and the public JWK Set.
struct Setup {
    dir: tempfile::TempDir,
}

impl Setup {
    fn new() -> Setup {
        let dir = tempfile::tempdir().expect("tempdir");
        let setup = Setup { dir };
        for (alg, kid) in [("ES256", "ec"), ("HS256", "hs"), ("EdDSA", "ed")] {
            let out = setup.path(&format!("{kid}.jwk"));
            let run = tessera(&[
                "keys",
                "generate",
                "--alg",
                alg,
                "--kid",
                kid,
                "--out",
                out.to_str().expect("utf-8"),
            ]);
            assert_eq!(run.code, 0, "{}", run.stderr);
        }
        let run = tessera(&[
            "keys",
            "public",
            setup.arg("ec.jwk").as_str(),
            setup.arg("ed.jwk").as_str(),
        ]);
        assert_eq!(run.code, 0, "{}", run.stderr);
        // The verifier's set: the public keys plus the shared HMAC secret.
        let mut set: serde_json::Value = serde_json::from_str(&run.stdout).expect("jwks");
        let hs: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(setup.path("hs.jwk")).expect("read"))
                .expect("json");
        set["keys"].as_array_mut().expect("keys").push(hs);
        std::fs::write(setup.path("jwks.json"), set.to_string()).expect("write");
        setup
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn arg(&self, name: &str) -> String {
        self.path(name).to_str().expect("utf-8").to_owned()
    }

    fn write(&self, name: &str, contents: &str) -> String {
        std::fs::write(self.path(name), contents).expect("write");
        self.arg(name)
    }

    fn sign(&self, key: &str, extra: &[&str]) -> String {
        let key = self.arg(key);
        let mut args = vec![
            "token",
            "sign",
            "--key",
            key.as_str(),
            "--iss",
            ISS,
            "--sub",
            "ada",
            "--aud",
            "api",
        ];
        args.extend_from_slice(extra);
        let run = tessera(&args);
        assert_eq!(run.code, 0, "{}", run.stderr);
        run.stdout.trim().to_owned()
    }

    fn verify(&self, token: &str, extra: &[&str]) -> Run {
        let jwks = self.arg("jwks.json");
        let mut args = vec![
            "token",
            "verify",
            "--jwks",
            jwks.as_str(),
            "--issuer",
            ISS,
            "--audience",
            "api",
        ];
        args.extend_from_slice(extra);
        args.push(token);
        tessera(&args)
    }

    /// Signs arbitrary header and payload text with a key file, bypassing the CLI's own rules.
    fn forge(&self, key: &str, header: &str, payload: &str) -> String {
        let jwk = Jwk::from_json(&std::fs::read(self.path(key)).expect("read")).expect("jwk");
        let signer = SigningKey::from_jwk(&jwk).expect("signer");
        let input = format!("{}.{}", b64::encode(header), b64::encode(payload));
        let sig = signer.sign(input.as_bytes()).expect("sign");
        format!("{input}.{}", b64::encode(sig))
    }
}

fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs()
}

/// A rejection: exit 1, nothing on stdout, exactly one line on stderr containing `reason`.
fn assert_rejected(run: &Run, reason: &str) {
    assert_eq!(run.code, 1, "stdout: {} stderr: {}", run.stdout, run.stderr);
    assert!(run.stdout.is_empty(), "{}", run.stdout);
    assert_eq!(run.stderr.lines().count(), 1, "{}", run.stderr);
    assert!(
        run.stderr.contains(reason),
        "expected {reason:?} in {}",
        run.stderr
    );
}

#[test]
fn sign_then_verify_prints_the_claims() {
    let s = Setup::new();
    for key in ["ec.jwk", "hs.jwk", "ed.jwk"] {
        let token = s.sign(
            key,
            &[
                "--claims",
                r#"{"role":["admin"],"name":"Ada Lovelace ✓"}"#,
                "--ttl",
                "5m",
            ],
        );
        let run = s.verify(&token, &[]);
        assert_eq!(run.code, 0, "{key}: {}", run.stderr);
        let claims: serde_json::Value = serde_json::from_str(&run.stdout).expect("claims JSON");
        assert_eq!(claims["sub"], "ada");
        assert_eq!(claims["iss"], ISS);
        assert_eq!(claims["aud"], "api");
        assert_eq!(claims["role"][0], "admin");
        assert_eq!(claims["name"], "Ada Lovelace ✓");
        let ttl = claims["exp"].as_u64().expect("exp") - claims["iat"].as_u64().expect("iat");
        assert_eq!(ttl, 300);
    }
}

#[test]
fn token_may_come_from_stdin_and_claims_from_a_file() {
    let s = Setup::new();
    let claims = s.write("claims.json", r#"{"scope":"read"}"#);
    let token = s.sign("ec.jwk", &["--claims", &format!("@{claims}")]);
    let jwks = s.arg("jwks.json");
    let run = tessera_stdin(
        &[
            "token",
            "verify",
            "--jwks",
            &jwks,
            "--issuer",
            ISS,
            "--audience",
            "api",
            "-",
        ],
        &format!("{token}\n"),
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(run.stdout.contains(r#""scope":"read""#));
}

#[test]
fn every_policy_rule_rejects_with_exit_1_and_one_line() {
    let s = Setup::new();
    let t = now();
    let good = s.sign("ec.jwk", &[]);
    let (input, sig) = good.rsplit_once('.').expect("dot");
    let mut flipped = b64::decode(sig).expect("sig");
    flipped[3] ^= 0x40;
    let claims = |extra: &str| format!(r#"{{"iss":"{ISS}","aud":"api","exp":{}{extra}}}"#, t + 600);
    let ec = r#"{"alg":"ES256","kid":"ec"}"#;
    let cases: Vec<(String, &str)> = vec![
        (
            format!("{input}.{}", b64::encode(&flipped)),
            "signature verification failed",
        ),
        (
            format!(
                "{}.{}.",
                b64::encode(r#"{"alg":"none","kid":"ec"}"#),
                b64::encode(claims(""))
            ),
            "alg `none`",
        ),
        (
            format!(
                "{}.{}.",
                b64::encode(r#"{"alg":"NoNe","kid":"ec"}"#),
                b64::encode(claims(""))
            ),
            "alg `none`",
        ),
        (
            s.forge("hs.jwk", r#"{"alg":"HS256","kid":"ec"}"#, &claims("")),
            "does not match the key's algorithm",
        ),
        (
            s.forge("ec.jwk", r#"{"alg":"ES256"}"#, &claims("")),
            "`kid` is missing",
        ),
        (
            s.forge("ec.jwk", r#"{"alg":"ES256","kid":"EC"}"#, &claims("")),
            "no key with the token's kid",
        ),
        (
            s.forge(
                "ec.jwk",
                r#"{"alg":"ES256","kid":"ec","crit":["b64"],"b64":false}"#,
                &claims(""),
            ),
            "unsupported extension",
        ),
        (
            s.forge(
                "ec.jwk",
                r#"{"alg":"ES256","kid":"ec","alg":"ES256"}"#,
                &claims(""),
            ),
            "duplicate member",
        ),
        (
            s.forge("ec.jwk", ec, &format!(r#"{{"iss":"{ISS}","aud":"api"}}"#)),
            "`exp` is missing",
        ),
        (
            s.forge(
                "ec.jwk",
                ec,
                &format!(r#"{{"iss":"{ISS}","aud":"api","exp":"{}"}}"#, t + 600),
            ),
            "`exp` has the wrong JSON type",
        ),
        (
            s.forge(
                "ec.jwk",
                ec,
                &format!(r#"{{"iss":"{ISS}","aud":"api","exp":{}}}"#, t - 61),
            ),
            "expired",
        ),
        (
            s.forge("ec.jwk", ec, &claims(&format!(r#","nbf":{}"#, t + 3600))),
            "not valid yet",
        ),
        (
            s.forge(
                "ec.jwk",
                ec,
                &format!(
                    r#"{{"iss":"https://evil.example","aud":"api","exp":{}}}"#,
                    t + 600
                ),
            ),
            "issuer",
        ),
        (
            s.forge(
                "ec.jwk",
                ec,
                &format!(r#"{{"iss":"{ISS}","aud":["web"],"exp":{}}}"#, t + 600),
            ),
            "audience",
        ),
        (
            s.forge("ec.jwk", ec, &claims(r#","exp":1"#)),
            "duplicate member",
        ),
        (format!("{good}.x"), "three dot-separated segments"),
        (good.replacen('.', "=.", 1), "base64url"),
        (
            format!("{input}.{}", b64::encode([0u8; 70])),
            "signature is 70 bytes",
        ),
        ("A".repeat(17 * 1024), "size limit"),
        ("not a token".to_owned(), "three dot-separated segments"),
    ];
    for (token, reason) in &cases {
        assert_rejected(&s.verify(token, &[]), reason);
    }
    // Leeway is configurable: 61 s late passes with --leeway 120.
    let late = s.forge(
        "ec.jwk",
        ec,
        &format!(r#"{{"iss":"{ISS}","aud":"api","exp":{}}}"#, t - 61),
    );
    assert_eq!(s.verify(&late, &["--leeway", "120"]).code, 0);
}

#[test]
fn configuration_errors_exit_2() {
    let s = Setup::new();
    let token = s.sign("ec.jwk", &[]);
    let bad_files = [
        ("garbage.json", "not json"),
        ("dup.json", r#"{"keys":[],"keys":[]}"#),
        (
            "short.json",
            r#"{"keys":[{"kty":"oct","kid":"hs","alg":"HS256","k":"c2hvcnQ"}]}"#,
        ),
        (
            "noalg.json",
            r#"{"keys":[{"kty":"oct","kid":"hs","k":"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"}]}"#,
        ),
        (
            "nokid.json",
            r#"{"keys":[{"kty":"OKP","crv":"Ed25519","x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"}]}"#,
        ),
    ];
    for (name, contents) in bad_files {
        let jwks = s.write(name, contents);
        let run = tessera(&[
            "token",
            "verify",
            "--jwks",
            &jwks,
            "--issuer",
            ISS,
            "--audience",
            "api",
            &token,
        ]);
        assert_eq!(run.code, 2, "{name}: {}", run.stderr);
        assert_eq!(run.stderr.lines().count(), 1, "{name}: {}", run.stderr);
    }
    let missing = s.arg("missing.json");
    assert_eq!(
        tessera(&[
            "token",
            "verify",
            "--jwks",
            &missing,
            "--issuer",
            ISS,
            "--audience",
            "api",
            &token
        ])
        .code,
        2
    );
    assert_eq!(s.verify(&token, &["--leeway", "301"]).code, 2);
    // Usage errors: a required flag missing, an unknown flag.
    let jwks = s.arg("jwks.json");
    assert_eq!(
        tessera(&[
            "token",
            "verify",
            "--jwks",
            &jwks,
            "--audience",
            "api",
            &token
        ])
        .code,
        2
    );
    assert_eq!(
        tessera(&["token", "verify", "--jwks", &jwks, "--issuer", ISS, &token]).code,
        2
    );
    assert_eq!(tessera(&["token", "verify", "--bogus"]).code, 2);
    assert_eq!(tessera(&["keys", "generate", "--alg", "none"]).code, 2);
}

#[test]
fn hostile_tokens_never_crash_the_binary() {
    let s = Setup::new();
    let hostile = [
        String::new(),
        ".".repeat(10_000),
        "\u{1}\u{2}.\u{7f}.\u{fffd}".to_owned(),
        format!(
            "{}.{}.{}",
            b64::encode("{".repeat(5000)),
            b64::encode("[]"),
            "AA"
        ),
        format!(
            "{}.e30.",
            b64::encode(format!(
                r#"{{"alg":"ES256","kid":"ec","x":{}1{}}}"#,
                "[".repeat(3000),
                "]".repeat(3000)
            ))
        ),
        "e30.e30.e30".to_owned(),
        "-".to_owned(),
    ];
    for token in &hostile {
        let run = s.verify(token, &[]);
        assert_eq!(run.code, 1, "{token:.40}: {}", run.stderr);
        assert!(!run.stderr.contains("panicked"));
    }
    // Arguments cannot carry NUL or invalid UTF-8; standard input can.
    let jwks = s.arg("jwks.json");
    for stdin in ["a\u{0}b.c.d", "\u{0}", "x.y.z\n\n\n"] {
        let run = tessera_stdin(
            &[
                "token",
                "verify",
                "--jwks",
                &jwks,
                "--issuer",
                ISS,
                "--audience",
                "api",
                "-",
            ],
            stdin,
        );
        assert_eq!(run.code, 1, "{stdin:?}: {}", run.stderr);
    }
}

#[test]
fn decode_is_labelled_not_verified() {
    let s = Setup::new();
    let token = s.sign("ed.jwk", &[]);
    let run = tessera(&["token", "decode", &token]);
    assert_eq!(run.code, 0);
    assert!(run.stderr.contains("NOT VERIFIED"));
    let out: serde_json::Value = serde_json::from_str(&run.stdout).expect("json");
    assert_eq!(out["verified"], false);
    assert_eq!(out["header"]["kid"], "ed");
    assert_eq!(out["claims"]["sub"], "ada");
    assert_eq!(tessera(&["token", "decode", "garbage"]).code, 1);
}

#[test]
fn generated_key_files_are_private_and_never_overwritten() {
    let s = Setup::new();
    let path = s.path("ec.jwk");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&path).expect("stat").permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    let before = std::fs::read(&path).expect("read");
    let run = tessera(&[
        "keys",
        "generate",
        "--alg",
        "ES256",
        "--out",
        path.to_str().expect("utf-8"),
    ]);
    assert_eq!(run.code, 2);
    assert_eq!(std::fs::read(&path).expect("read"), before);
    // Printed keys carry kid and alg.
    let run = tessera(&["keys", "generate", "--alg", "PS256"]);
    let jwk: serde_json::Value = serde_json::from_str(&run.stdout).expect("jwk");
    assert_eq!(jwk["alg"], "PS256");
    assert!(
        jwk["kid"].as_str().is_some_and(|k| k.len() == 43),
        "kid defaults to the thumbprint"
    );
    assert!(jwk["d"].is_string());
}

#[test]
fn keys_public_never_publishes_secrets() {
    let s = Setup::new();
    let run = tessera(&["keys", "public", &s.arg("ec.jwk"), &s.arg("ed.jwk")]);
    let set: serde_json::Value = serde_json::from_str(&run.stdout).expect("jwks");
    for key in set["keys"].as_array().expect("keys") {
        assert!(key.get("d").is_none(), "{key}");
    }
    let run = tessera(&["keys", "public", &s.arg("hs.jwk")]);
    assert_eq!(run.code, 2);
    assert!(run.stdout.is_empty());
    assert!(
        !run.stderr
            .contains(&std::fs::read_to_string(s.path("hs.jwk")).expect("read")[10..30])
    );
}

#[test]
fn pem_conversion_round_trips_through_the_cli() {
    let s = Setup::new();
    let pem = tessera(&["keys", "to-pem", &s.arg("ec.jwk")]);
    assert_eq!(pem.code, 0, "{}", pem.stderr);
    assert!(pem.stdout.starts_with("-----BEGIN PRIVATE KEY-----"));
    let file = s.write("ec.pem", &pem.stdout);
    let back = tessera(&["keys", "from-pem", &file, "--kid", "ec"]);
    assert_eq!(back.code, 0, "{}", back.stderr);
    let original: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(s.path("ec.jwk")).expect("read"))
            .expect("json");
    let converted: serde_json::Value = serde_json::from_str(&back.stdout).expect("json");
    assert_eq!(original, converted);
    // A PEM where a JWK is expected gets a hint, not a crash.
    let run = tessera(&["token", "sign", "--key", &file]);
    assert_eq!(run.code, 2);
    assert!(run.stderr.contains("from-pem"), "{}", run.stderr);
    let thumb = tessera(&["keys", "thumbprint", &s.arg("ec.jwk")]);
    assert_eq!(thumb.stdout.trim().len(), 43);
}

#[test]
fn readme_documents_the_verify_contract() {
    let readme =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../../README.md"))
            .expect("README");
    assert!(
        readme.contains("tessera token verify"),
        "README must document the CLI contract"
    );
}

#[test]
fn sign_keeps_claim_values_exact_and_refuses_what_verify_would() {
    let s = Setup::new();
    let token = s.sign(
        "ec.jwk",
        &[
            "--claims",
            r#"{"id":123456789012345678901234567890,"x":1e2,"neg":-9223372036854775809}"#,
        ],
    );
    let payload = b64::decode(token.split('.').nth(1).expect("payload")).expect("b64");
    let text = String::from_utf8(payload).expect("utf-8");
    assert!(
        text.contains(r#""id":123456789012345678901234567890"#),
        "{text}"
    );
    assert!(text.contains(r#""x":1e2"#), "{text}");
    assert!(text.contains(r#""neg":-9223372036854775809"#), "{text}");
    let key = s.arg("ec.jwk");
    for claims in [
        r#"{"sub":42}"#,
        r#"{"exp":"tomorrow"}"#,
        r#"{"iat":"now"}"#,
        r#"{"aud":5}"#,
        r#"{"x":1,"x":2}"#,
        "[]",
    ] {
        let run = tessera(&["token", "sign", "--key", &key, "--claims", claims]);
        assert_eq!(run.code, 2, "{claims}: {}", run.stderr);
    }
}

#[test]
fn keys_public_refuses_sets_verifiers_would_reject() {
    let s = Setup::new();
    let a = s.arg("a.jwk");
    let b = s.arg("b.jwk");
    for out in [&a, &b] {
        assert_eq!(
            tessera(&[
                "keys", "generate", "--alg", "ES256", "--kid", "same", "--out", out
            ])
            .code,
            0
        );
    }
    let run = tessera(&["keys", "public", &a, &b]);
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(run.stdout.is_empty());
}

#[test]
fn user_commands_manage_accounts_in_the_servers_store() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    let data = data.to_str().expect("utf-8");
    let run = tessera(&["migrate", "--data-dir", data]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let run = tessera_stdin(
        &[
            "user",
            "add",
            "Ada",
            "--email",
            "ada@example.com",
            "--group",
            "ops",
            "--password-stdin",
            "--data-dir",
            data,
        ],
        "correct horse battery\n",
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    // The database file and its directory are private.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(Path::new(data).join("tessera.db"))
            .expect("db")
            .permissions()
            .mode();
        assert_eq!(mode & 0o077, 0, "{mode:o}");
    }
    let weak = tessera_stdin(
        &["user", "add", "bob", "--password-stdin", "--data-dir", data],
        "password123\n",
    );
    assert_eq!(weak.code, 2);
    assert!(weak.stderr.contains("commonly used"), "{}", weak.stderr);
    let dup = tessera_stdin(
        &["user", "add", "ada", "--password-stdin", "--data-dir", data],
        "another good passphrase\n",
    );
    assert_eq!(dup.code, 2);
    let ada = || {
        let list = tessera(&["user", "list", "--json", "--data-dir", data]);
        assert_eq!(list.code, 0, "{}", list.stderr);
        assert!(!list.stdout.contains("argon2"));
        let all: serde_json::Value = serde_json::from_str(&list.stdout).expect("json");
        all[0].clone()
    };
    assert_eq!(ada()["username"], "ada");
    assert_eq!(ada()["groups"][0], "ops");
    assert_eq!(ada()["disabled"], false);
    // Each command's effect, read back from the store (the effect on sign-in is checked
    // against a running server in serve.rs).
    for (command, disabled) in [("disable", true), ("enable", false)] {
        let run = tessera(&["user", command, "ada", "--data-dir", data]);
        assert_eq!(run.code, 0, "{command}: {}", run.stderr);
        assert_eq!(ada()["disabled"], disabled, "after {command}");
    }
    let run = tessera(&["user", "unlock", "ada", "--data-dir", data]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(ada()["failed_logins"], 0);
    assert!(ada()["locked_until"].is_null());
    // An unknown name is named.
    let run = tessera(&["user", "disable", "nobody", "--data-dir", data]);
    assert_eq!(run.code, 2);
    assert!(
        run.stderr.contains("no user called \"nobody\""),
        "{}",
        run.stderr
    );
    let set = tessera_stdin(
        &[
            "user",
            "set-password",
            "ada",
            "--password-stdin",
            "--data-dir",
            data,
        ],
        "a whole new passphrase\n",
    );
    assert_eq!(set.code, 0, "{}", set.stderr);
    // Without a terminal and without --password-stdin, no silent empty password.
    assert_eq!(
        tessera(&["user", "set-password", "ada", "--data-dir", data]).code,
        2
    );
    assert_eq!(
        tessera(&["user", "delete", "ada", "--data-dir", data]).code,
        0
    );
    assert_eq!(
        tessera(&["user", "delete", "ada", "--data-dir", data]).code,
        2
    );
}

#[test]
fn serve_refuses_unsafe_or_invalid_configuration() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    let data = data.to_str().expect("utf-8");
    let run = tessera(&["serve", "--listen", "0.0.0.0:0", "--data-dir", data]);
    assert_eq!(run.code, 2);
    assert!(run.stderr.contains("behind_tls_proxy"), "{}", run.stderr);
    let config = dir.path().join("bad.toml");
    std::fs::write(&config, "listen = \"127.0.0.1:0\"\nno_such_key = 1\n").expect("write");
    let run = tessera(&[
        "serve",
        "--config",
        config.to_str().expect("utf-8"),
        "--data-dir",
        data,
    ]);
    assert_eq!(run.code, 2);
    assert!(run.stderr.contains("no_such_key"), "{}", run.stderr);
    std::fs::write(&config, "[lockout]\nlock_after = 500\n").expect("write");
    let run = tessera(&[
        "serve",
        "--config",
        config.to_str().expect("utf-8"),
        "--data-dir",
        data,
    ]);
    assert_eq!(run.code, 2);
    assert!(run.stderr.contains("lock_after"), "{}", run.stderr);
    let run = tessera(&["serve", "--database", "mysql://x", "--data-dir", data]);
    assert_eq!(run.code, 2);
}

#[test]
fn user_commands_apply_the_configured_password_rules() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    let run = tessera(&["migrate", "--data-dir", data.to_str().expect("utf-8")]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let config = dir.path().join("c.toml");
    // A listen address `serve` would refuse must not make `user` fall back to default rules.
    std::fs::write(
        &config,
        "listen = \"0.0.0.0:8080\"\n[password]\nmin_length = 20\n",
    )
    .expect("write");
    let args = [
        "user",
        "add",
        "ada",
        "--password-stdin",
        "--config",
        config.to_str().expect("utf-8"),
        "--data-dir",
        data.to_str().expect("utf-8"),
    ];
    let short = tessera_stdin(&args, "Short-but-fine-1\n");
    assert_eq!(short.code, 2);
    assert!(short.stderr.contains("shorter than 20"), "{}", short.stderr);
    let long = tessera_stdin(&args, "a passphrase of twenty-plus characters\n");
    assert_eq!(long.code, 0, "{}", long.stderr);
}

#[test]
fn tessera_log_sets_the_filter_and_is_not_a_config_key() {
    let dir = tempfile::tempdir().expect("tempdir");
    let child = Command::new(env!("CARGO_BIN_EXE_tessera"))
        .args([
            "serve",
            "--listen",
            "0.0.0.0:1",
            "--data-dir",
            dir.path().to_str().expect("utf-8"),
        ])
        .env("TESSERA_LOG", "debug")
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    let out = child.wait_with_output().expect("wait");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("unknown field"), "{stderr}");
    assert!(stderr.contains("behind_tls_proxy"), "{stderr}");
}

/// A token argument is used exactly as given: the compact serialization contains no
/// whitespace (RFC 7515 §7.1), so whitespace around it is a rejection, not something trimmed.
/// On standard input one line ending (`\n` or `\r\n`) is allowed, nothing more.
#[test]
fn token_whitespace_is_refused_except_one_line_ending_on_stdin() {
    let s = Setup::new();
    let token = s.sign("ec.jwk", &[]);
    assert_eq!(s.verify(&token, &[]).code, 0);
    for bad in [
        format!(" {token}"),
        format!("{token} "),
        format!("{token}\n"),
        format!("\t{token}"),
        format!("{token}\r\n"),
    ] {
        assert_rejected(&s.verify(&bad, &[]), "whitespace around the token");
        let run = tessera(&["token", "decode", &bad]);
        assert_eq!(run.code, 1, "{bad:?}: {}", run.stderr);
        assert!(run.stderr.contains("whitespace"), "{}", run.stderr);
    }
    let jwks = s.arg("jwks.json");
    let verify_stdin = |stdin: &str| {
        tessera_stdin(
            &[
                "token",
                "verify",
                "--jwks",
                &jwks,
                "--issuer",
                ISS,
                "--audience",
                "api",
                "-",
            ],
            stdin,
        )
    };
    for good in [token.clone(), format!("{token}\n"), format!("{token}\r\n")] {
        let run = verify_stdin(&good);
        assert_eq!(run.code, 0, "{good:?}: {}", run.stderr);
    }
    for bad in [
        format!("{token}\n\n"),
        format!("{token} \n"),
        format!(" {token}\n"),
        format!("{token}\r"),
        format!("{token}\n\r\n"),
        format!("\n{token}"),
    ] {
        assert_rejected(&verify_stdin(&bad), "whitespace around the token");
    }
}

#[test]
fn help_says_what_tessera_is() {
    let run = tessera(&["--help"]);
    assert_eq!(run.code, 0);
    assert!(
        run.stdout.contains("authentication server"),
        "{}",
        run.stdout
    );
    assert!(run.stdout.contains("tessera migrate"), "{}", run.stdout);
}

/// Commands other than `serve` and `migrate` never create a database: a mistyped --data-dir
/// is an error naming the path, not a new empty database.
#[test]
fn commands_refuse_a_missing_database() {
    let dir = tempfile::tempdir().expect("tempdir");
    let typo = dir.path().join("typo");
    let typo_arg = typo.to_str().expect("utf-8");
    for args in [
        vec!["user", "list"],
        vec!["user", "disable", "ada"],
        vec!["user", "add", "ada", "--no-password"],
        vec!["admin-token", "list"],
        vec!["admin-token", "create", "--label", "x"],
    ] {
        let mut full = args.clone();
        full.extend(["--data-dir", typo_arg]);
        let run = tessera(&full);
        assert_eq!(run.code, 2, "{args:?}");
        assert!(
            run.stderr
                .contains(&typo.join("tessera.db").display().to_string())
                && run.stderr.contains("tessera migrate"),
            "{args:?}: {}",
            run.stderr
        );
        assert!(!typo.exists(), "{args:?} created {}", typo.display());
    }
    // sqlite://PATH too.
    let url = format!("sqlite://{}", typo.join("x.db").display());
    let run = tessera(&["user", "list", "--database", &url]);
    assert_eq!(run.code, 2);
    assert!(run.stderr.contains("no database at"), "{}", run.stderr);
    // `migrate` creates it, after which the commands work.
    let run = tessera(&["migrate", "--data-dir", typo_arg]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let run = tessera(&["user", "list", "--data-dir", typo_arg]);
    assert_eq!(run.code, 0, "{}", run.stderr);
}

#[test]
fn a_data_dir_that_is_a_file_is_named_as_such() {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("file");
    std::fs::write(&file, "not a directory").expect("write");
    let file_arg = file.to_str().expect("utf-8");
    for args in [
        vec!["migrate"],
        vec!["serve", "--listen", "127.0.0.1:0"],
        vec!["user", "list"],
    ] {
        let mut full = args.clone();
        full.extend(["--data-dir", file_arg]);
        let run = tessera(&full);
        assert_eq!(run.code, 2, "{args:?}");
        assert!(
            run.stderr
                .contains(&format!("{file_arg} is not a directory")),
            "{args:?}: {}",
            run.stderr
        );
    }
    assert_eq!(
        std::fs::read_to_string(&file).expect("read"),
        "not a directory"
    );
}

/// `user add` with a taken name says so before asking for a password (here: before failing
/// for the lack of one, as it would without a terminal).
#[test]
fn user_add_names_a_taken_name_before_asking_for_a_password() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().to_str().expect("utf-8");
    assert_eq!(tessera(&["migrate", "--data-dir", data]).code, 0);
    let run = tessera(&["user", "add", "ada", "--no-password", "--data-dir", data]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    for args in [
        vec!["user", "add", "ada"],
        vec!["user", "add", "ADA", "--password-stdin"],
    ] {
        let mut full = args.clone();
        full.extend(["--data-dir", data]);
        let run = tessera(&full);
        assert_eq!(run.code, 2, "{args:?}");
        assert!(
            run.stderr.contains("the user name ada is taken"),
            "{args:?}: {}",
            run.stderr
        );
    }
    // And set-password names an unknown account before asking.
    let run = tessera(&["user", "set-password", "bob", "--data-dir", data]);
    assert_eq!(run.code, 2);
    assert!(run.stderr.contains("no user called"), "{}", run.stderr);
}

#[test]
fn user_list_columns_align() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().to_str().expect("utf-8");
    assert_eq!(tessera(&["migrate", "--data-dir", data]).code, 0);
    let long = "a-rather-long-user-name-of-40-characters";
    for (name, extra) in [
        ("al", vec!["--email", "al@example.com"]),
        (long, vec!["--admin"]),
    ] {
        let mut args = vec!["user", "add", name, "--no-password", "--data-dir", data];
        args.extend(extra);
        let run = tessera(&args);
        assert_eq!(run.code, 0, "{}", run.stderr);
    }
    let run = tessera(&["user", "list", "--data-dir", data]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let lines: Vec<&str> = run.stdout.lines().collect();
    assert_eq!(lines.len(), 3, "{}", run.stdout);
    // Every cell starts at its heading's offset, right after a space.
    let header = lines[0];
    for column in ["ROLE", "STATE", "FAILED", "EMAIL"] {
        let at = header.find(column).expect("heading");
        for line in &lines[1..] {
            if column == "EMAIL" && line.len() <= at {
                continue; // no email: the line ends before the column
            }
            let bytes = line.as_bytes();
            assert!(
                bytes.get(at - 1) == Some(&b' ') && bytes.get(at).is_some_and(|b| *b != b' '),
                "{column} misaligned:\n{}",
                run.stdout
            );
        }
    }
    let email_at = header.find("EMAIL").expect("EMAIL");
    assert!(
        lines[1..]
            .iter()
            .any(|l| l.get(email_at..) == Some("al@example.com"))
    );
}

/// An unreachable PostgreSQL is named (host, port, cause) at once, and no line shows the
/// password, whichever way the URL carries it, even with every log enabled.
#[test]
fn an_unreachable_postgres_is_named_without_its_password() {
    // Port 1 on loopback: nothing listens, the connection is refused at once.
    let url = "postgres://postgres:s3cretpw@127.0.0.1:1/test?password=s3cretpw";
    for args in [
        vec!["user", "list"],
        vec!["migrate"],
        vec!["serve", "--listen", "127.0.0.1:0"],
    ] {
        let mut full = args.clone();
        full.extend(["--database", url]);
        let out = Command::new(env!("CARGO_BIN_EXE_tessera"))
            .args(&full)
            .env("TESSERA_LOG", "trace")
            .output()
            .expect("run");
        let stderr = String::from_utf8_lossy(&out.stderr);
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(
            stderr.contains("127.0.0.1:1") && stderr.contains("Connection refused"),
            "{args:?}: {stderr}"
        );
        assert!(
            !stderr.contains("s3cretpw") && !stdout.contains("s3cretpw"),
            "{args:?}: {stderr}"
        );
    }
}

#[test]
fn serve_refuses_a_logo_that_is_missing_or_not_an_image() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    let data = data.to_str().expect("utf-8");
    let config = dir.path().join("c.toml");
    let fake = dir.path().join("logo.png");
    std::fs::write(&fake, "not a png").expect("write");
    for (logo, needle) in [
        (fake.to_str().expect("utf-8"), "not a image/png"),
        ("/nonexistent/logo.svg", "cannot read"),
    ] {
        std::fs::write(&config, format!("[branding]\nlogo = {logo:?}\n")).expect("write");
        let run = tessera(&[
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--config",
            config.to_str().expect("utf-8"),
            "--data-dir",
            data,
        ]);
        assert_eq!(run.code, 2, "{}", run.stderr);
        assert!(run.stderr.contains("branding.logo"), "{}", run.stderr);
        assert!(run.stderr.contains(needle), "{}", run.stderr);
    }
    std::fs::write(&config, "[branding]\nproduct_name = \"\"\n").expect("write");
    let run = tessera(&[
        "serve",
        "--listen",
        "127.0.0.1:0",
        "--config",
        config.to_str().expect("utf-8"),
        "--data-dir",
        data,
    ]);
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(
        run.stderr.contains("branding.product_name"),
        "{}",
        run.stderr
    );
}
