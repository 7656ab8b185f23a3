//! A committed write survives a restart and a SIGKILL of the writing process.

use std::io::{BufRead as _, BufReader, Write as _};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use sqlx::Connection as _;
use sqlx::sqlite::{SqliteConnectOptions, SqliteConnection};
use tessera_domain::account::{AccountId, Role};
use tessera_domain::clock::UnixTime;
use tessera_domain::store::AccountStore as _;
use tessera_store_sqlite::SqliteStore;
use tessera_testkit::conformance::new_account;

/// Set (to a database path) when this test binary is re-run as the crashing writer.
const CHILD_ENV: &str = "TESSERA_SQLITE_CRASH_CHILD_DB";
/// The line prefix the child prints after each committed account.
const COMMITTED: &str = "committed ";

async fn integrity_check(path: &Path) -> String {
    let mut conn = SqliteConnection::connect_with(&SqliteConnectOptions::new().filename(path))
        .await
        .unwrap();
    let result: String = sqlx::query_scalar("PRAGMA integrity_check")
        .fetch_one(&mut conn)
        .await
        .unwrap();
    conn.close().await.unwrap();
    result
}

#[tokio::test]
async fn a_second_store_on_the_same_file_sees_committed_accounts() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("tessera.db");
    let first = SqliteStore::open(&path).await.unwrap();
    let id = AccountId::generate();
    let created = first
        .create_account(
            &new_account("persisted", Role::User),
            &id,
            None,
            UnixTime(1),
        )
        .await
        .unwrap();
    // While the first is still open (another process, say) ...
    let second = SqliteStore::open(&path).await.unwrap();
    assert_eq!(
        second.account_by_id(&id).await.unwrap(),
        Some(created.clone())
    );
    second.close().await;
    // ... and after it is gone (a restart).
    first.close().await;
    let third = SqliteStore::open(&path).await.unwrap();
    assert_eq!(third.account_by_id(&id).await.unwrap(), Some(created));
    third.close().await;
    assert_eq!(integrity_check(&path).await, "ok");
}

/// The writer run in a child process: creates accounts until killed, reporting each on stdout
/// once `create_account` has returned. A no-op unless `CHILD_ENV` is set.
#[tokio::test]
async fn crash_child_writer() {
    let Ok(path) = std::env::var(CHILD_ENV) else {
        return;
    };
    let store = SqliteStore::open(Path::new(&path)).await.unwrap();
    let mut out = std::io::stdout();
    for i in 0.. {
        let name = format!("crash{i}");
        store
            .create_account(
                &new_account(&name, Role::User),
                &AccountId::generate(),
                None,
                UnixTime(i),
            )
            .await
            .unwrap();
        // Unbuffered, past the test harness's capture: the parent reads it as it happens.
        writeln!(out, "{COMMITTED}{name}").unwrap();
        out.flush().unwrap();
    }
}

#[tokio::test]
async fn sigkill_loses_no_committed_account() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("tessera.db");
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "durability::crash_child_writer", "--nocapture"])
        .env(CHILD_ENV, &path)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    // Read on a thread: the pipe blocks, and it must be drained after the kill too.
    let (tx, rx) = std::sync::mpsc::channel::<String>();
    let reader = std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if let Some(name) = line.strip_prefix(COMMITTED)
                && tx.send(name.to_owned()).is_err()
            {
                break;
            }
        }
    });
    let mut committed = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    while committed.len() < 100 && Instant::now() < deadline {
        match rx.recv_timeout(Duration::from_secs(1)) {
            Ok(name) => committed.push(name),
            Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {}
            Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => break,
        }
    }
    // SIGKILL at a random moment of the child's loop, most likely inside a write.
    let pause = u64::from(tessera_domain::random::bytes::<1>()[0] % 32);
    std::thread::sleep(Duration::from_millis(pause));
    child.kill().unwrap();
    child.wait().unwrap();
    reader.join().unwrap();
    committed.extend(rx.try_iter());
    assert!(
        committed.len() >= 50,
        "the child committed too little to test anything: {}",
        committed.len()
    );

    assert_eq!(integrity_check(&path).await, "ok");
    let store = SqliteStore::open(&path).await.unwrap();
    let stored: std::collections::BTreeSet<String> = store
        .list_accounts()
        .await
        .unwrap()
        .into_iter()
        .map(|a| a.username.as_str().to_owned())
        .collect();
    for name in &committed {
        assert!(stored.contains(name), "{name} was committed but is gone");
    }
    eprintln!(
        "{} reported committed, {} stored",
        committed.len(),
        stored.len()
    );
    // At most the one write in flight at the kill may have landed unreported.
    assert!(
        stored.len() <= committed.len() + 1,
        "{} > {} + 1",
        stored.len(),
        committed.len()
    );
    store.close().await;
    assert_eq!(integrity_check(&path).await, "ok");
}
