//! `tessera user factors …`, `tessera user hotp import`, `tessera keys generate-master` and
//! `tessera keys rotate-master`, run as processes against a SQLite data directory.

use std::path::Path;
use std::process::{Command, Stdio};

struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

/// Runs `tessera` with `TESSERA_MASTER_KEY` set to `key` (or unset).
fn tessera(args: &[&str], key: Option<&str>) -> Run {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_tessera"));
    cmd.args(args)
        .env_remove("TESSERA_MASTER_KEY")
        .stdin(Stdio::null());
    if let Some(key) = key {
        cmd.env("TESSERA_MASTER_KEY", key);
    }
    let out = cmd.output().expect("run tessera");
    Run {
        code: out.status.code().expect("exited normally"),
        stdout: String::from_utf8(out.stdout).expect("utf-8"),
        stderr: String::from_utf8(out.stderr).expect("utf-8"),
    }
}

fn ok(run: &Run) -> &str {
    assert_eq!(
        run.code, 0,
        "stdout: {}\nstderr: {}",
        run.stdout, run.stderr
    );
    &run.stdout
}

fn new_key() -> String {
    let run = tessera(&["keys", "generate-master"], None);
    let key = ok(&run).trim().to_owned();
    assert_eq!(key.len(), 64);
    assert!(key.bytes().all(|b| b.is_ascii_hexdigit()));
    key
}

/// The RFC 4226 Appendix D seed ("12345678901234567890"), as a fob vendor ships it.
const RFC4226_HEX: &str = "3132333435363738393031323334353637383930";

fn setup(dir: &Path) -> String {
    let data = dir.join("data").to_str().expect("utf-8").to_owned();
    ok(&tessera(&["migrate", "--data-dir", &data], None));
    let mut child = Command::new(env!("CARGO_BIN_EXE_tessera"))
        .args([
            "user",
            "add",
            "ada",
            "--password-stdin",
            "--data-dir",
            &data,
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    use std::io::Write;
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(b"correct horse battery staple\n")
        .expect("write");
    assert!(child.wait().expect("wait").success());
    data
}

#[test]
fn hotp_import_list_unlock_remove_and_reset() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = setup(dir.path());
    let key = new_key();
    // Without a master key: refused, naming the settings.
    let run = tessera(
        &[
            "user",
            "hotp",
            "import",
            "ada",
            "--secret",
            RFC4226_HEX,
            "--data-dir",
            &data,
        ],
        None,
    );
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(
        run.stderr.contains("master_key_file") && run.stderr.contains("TESSERA_MASTER_KEY"),
        "{}",
        run.stderr
    );

    let run = tessera(
        &[
            "user",
            "hotp",
            "import",
            "ada",
            "--secret",
            RFC4226_HEX,
            "--counter",
            "5",
            "--label",
            "YubiKey",
            "--data-dir",
            &data,
        ],
        Some(&key),
    );
    let factor: serde_json::Value = serde_json::from_str(ok(&run)).expect("json");
    assert_eq!(factor["kind"], "hotp");
    assert_eq!(factor["label"], "YubiKey");
    assert_eq!(factor["status"], "active");
    let id = factor["id"].as_str().expect("id").to_owned();
    // The seed is never printed.
    assert!(!run.stdout.contains(RFC4226_HEX) && !run.stderr.contains(RFC4226_HEX));

    // A base32 seed (guessed) and a Key URI.
    ok(&tessera(
        &[
            "user",
            "hotp",
            "import",
            "ada",
            "--secret",
            "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ",
            "--label",
            "b32",
            "--data-dir",
            &data,
        ],
        Some(&key),
    ));
    ok(&tessera(
        &[
            "user",
            "hotp",
            "import",
            "ada",
            "--uri",
            "otpauth://hotp/x:ada?secret=GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ&counter=7&digits=8",
            "--label",
            "uri",
            "--data-dir",
            &data,
        ],
        Some(&key),
    ));
    let bad = tessera(
        &[
            "user",
            "hotp",
            "import",
            "ada",
            "--secret",
            "not base32!",
            "--data-dir",
            &data,
        ],
        Some(&key),
    );
    assert_eq!(bad.code, 2);
    assert!(!bad.stderr.contains("panicked"), "{}", bad.stderr);

    let run = tessera(
        &["user", "factors", "list", "ada", "--data-dir", &data],
        None,
    );
    let listed: serde_json::Value = serde_json::from_str(ok(&run)).expect("json");
    assert_eq!(listed["username"], "ada");
    assert_eq!(listed["factors"].as_array().expect("array").len(), 3);
    let first = listed["factors"]
        .as_array()
        .expect("array")
        .iter()
        .find(|f| f["id"] == id.as_str())
        .expect("the imported fob is listed");
    assert_eq!(first["label"], "YubiKey");
    assert_eq!(listed["mfa_required"], false);

    ok(&tessera(
        &["user", "factors", "require", "ada", "--data-dir", &data],
        None,
    ));
    let run = tessera(
        &["user", "factors", "list", "ada", "--data-dir", &data],
        None,
    );
    let listed: serde_json::Value = serde_json::from_str(ok(&run)).expect("json");
    assert_eq!(listed["mfa_required"], true);

    ok(&tessera(
        &["user", "factors", "unlock", "ada", &id, "--data-dir", &data],
        None,
    ));
    let run = tessera(
        &[
            "user",
            "factors",
            "remove",
            "ada",
            "nope",
            "--data-dir",
            &data,
        ],
        None,
    );
    assert_eq!(run.code, 2);
    assert!(run.stderr.contains("not a factor id"), "{}", run.stderr);
    let run = tessera(
        &["user", "factors", "list", "nobody", "--data-dir", &data],
        None,
    );
    assert_eq!(run.code, 2);
    assert!(run.stderr.contains("no user called"), "{}", run.stderr);
    let run = tessera(
        &["user", "factors", "remove", "ada", &id, "--data-dir", &data],
        None,
    );
    assert!(ok(&run).contains("removed factor"));
    let run = tessera(
        &["user", "factors", "remove", "ada", &id, "--data-dir", &data],
        None,
    );
    assert_eq!(run.code, 2, "a second removal finds nothing");
    let run = tessera(
        &["user", "factors", "reset", "ada", "--data-dir", &data],
        None,
    );
    assert!(ok(&run).contains("removed 2 factor(s)"), "{}", run.stdout);
}

#[test]
fn master_keys_rotate_in_one_command() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = setup(dir.path());
    let old_file = dir.path().join("old.key");
    let run = tessera(
        &[
            "keys",
            "generate-master",
            "--out",
            old_file.to_str().expect("utf-8"),
        ],
        None,
    );
    ok(&run);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&old_file)
            .expect("file")
            .permissions()
            .mode();
        assert_eq!(mode & 0o077, 0, "{mode:o}");
    }
    let old = std::fs::read_to_string(&old_file).expect("read");
    ok(&tessera(
        &[
            "user",
            "hotp",
            "import",
            "ada",
            "--secret",
            RFC4226_HEX,
            "--data-dir",
            &data,
        ],
        Some(old.trim()),
    ));
    // Rotation: the new key current, the old one previous.
    let new = new_key();
    let config = dir.path().join("tessera.toml");
    std::fs::write(
        &config,
        format!(
            "data_dir = {:?}\n[secrets]\nprevious_master_key_files = [{:?}]\n",
            data,
            old_file.to_str().expect("utf-8")
        ),
    )
    .expect("config");
    let cfg = config.to_str().expect("utf-8");
    let run = tessera(&["keys", "rotate-master", "--config", cfg], Some(&new));
    assert!(ok(&run).contains("re-sealed 1 secret(s)"), "{}", run.stdout);
    // Everything is under the new key now: nothing left to do, and the old key alone no
    // longer opens the seed.
    let run = tessera(&["keys", "rotate-master", "--data-dir", &data], Some(&new));
    assert!(ok(&run).contains("re-sealed 0 secret(s)"), "{}", run.stdout);
    let run = tessera(
        &["keys", "rotate-master", "--data-dir", &data],
        Some(old.trim()),
    );
    assert_eq!(run.code, 2);
    assert!(run.stderr.contains("not loaded"), "{}", run.stderr);
    // A key file others can read is refused.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&old_file, std::fs::Permissions::from_mode(0o644)).expect("chmod");
        let run = tessera(&["keys", "rotate-master", "--config", cfg], Some(&new));
        assert_eq!(run.code, 2);
        assert!(run.stderr.contains("chmod 600"), "{}", run.stderr);
    }
    // Both the variable and a file: ambiguous, refused.
    std::fs::write(
        &config,
        format!(
            "data_dir = {data:?}\n[secrets]\nmaster_key_file = {:?}\n",
            old_file.to_str().expect("utf-8")
        ),
    )
    .expect("config");
    let run = tessera(&["keys", "rotate-master", "--config", cfg], Some(&new));
    assert_eq!(run.code, 2);
    assert!(run.stderr.contains("set one"), "{}", run.stderr);
}

/// `serve` checks the master key before anything starts: a malformed TESSERA_MASTER_KEY stops
/// it with exit 2, naming the variable and never echoing the value.
#[test]
fn serve_refuses_a_bad_master_key_by_name() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    let bad = "not-a-master-key-0123456789";
    let run = tessera(
        &[
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--data-dir",
            data.to_str().expect("utf-8"),
        ],
        Some(bad),
    );
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(run.stderr.contains("TESSERA_MASTER_KEY"), "{}", run.stderr);
    assert!(!run.stderr.contains(bad) && !run.stdout.contains(bad));
    assert!(
        !data.join("tessera.db").exists(),
        "no database made by a refused start"
    );
}
