//! The `tessera_domain::store` traits on one SQLite file, plus the schema migrations that shape
//! it (`migrations/`, embedded in the binary).
//!
//! The file is opened in WAL mode with `synchronous=FULL` (a commit survives a kill -9 or a power
//! cut once the call returns), foreign keys on and a 5 s busy timeout. Writes go through a pool of
//! one connection, so that writers in this process queue instead of fighting for SQLite's lock;
//! reads use a small pool of their own. Errors are mapped onto `StoreError` and never carry a
//! secret.
//!
//! Depends on `tessera-domain` and sqlx only; never on the server, the CLI, the PostgreSQL store
//! or any HTTP type.

mod error;
mod pause;

use std::fs::{DirBuilder, OpenOptions};
use std::path::{Path, PathBuf};
use std::time::Duration;

use async_trait::async_trait;
use sqlx::Sqlite;
use sqlx::error::DatabaseError;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};
use tessera_domain::StoreError;
use tessera_domain::clock::UnixTime;
use tessera_domain::session::TokenHash;
use tessera_domain::store::{ChangeWait, StoreResult};
use tessera_store_sql::migrations::{Migrations, migrator};
use tessera_store_sql::{Backend, Op};

/// `(version, description, sql)` of every migration in `migrations/`, in order.
pub(crate) const MIGRATIONS: Migrations = &[
    (1, "init", include_str!("../migrations/0001_init.sql")),
    (2, "changes", include_str!("../migrations/0002_changes.sql")),
    (3, "factors", include_str!("../migrations/0003_factors.sql")),
];

/// How long SQLite waits for a lock held by another connection or process.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);
/// How long a caller waits for a pooled connection before `Unavailable`.
const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(10);
/// Read connections (WAL lets them run beside the writer).
const READERS: u32 = 4;

/// The store on one SQLite database file. Cheap to clone (the pools are shared).
#[derive(Clone, Debug)]
pub struct SqliteStore {
    /// One connection: every write in this process queues here.
    writer: SqlitePool,
    /// Several read connections.
    reader: SqlitePool,
    path: PathBuf,
}

impl SqliteStore {
    /// Opens (creating if missing) the database at `path` and applies pending migrations.
    ///
    /// A missing parent directory is created with mode 0700 and a missing file with mode 0600
    /// (on unix); existing ones keep their modes.
    pub async fn open(path: &Path) -> Result<SqliteStore, StoreError> {
        // Two processes creating the same new file race on switching it to WAL and migrating;
        // SQLite answers the loser "locked" at once (busy handlers do not cover that step).
        // Retrying a few times, with a growing pause, settles it.
        let mut attempt = 0u32;
        loop {
            match SqliteStore::open_once(path).await {
                Err(StoreError::Unavailable(_)) if attempt < 8 => {
                    attempt += 1;
                    pause::pause(std::time::Duration::from_millis(25 * u64::from(attempt))).await;
                }
                other => return other,
            }
        }
    }

    async fn open_once(path: &Path) -> Result<SqliteStore, StoreError> {
        create_private_file(path)?;
        let options = SqliteConnectOptions::new()
            .filename(path)
            .create_if_missing(false)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full)
            .foreign_keys(true)
            .busy_timeout(BUSY_TIMEOUT);
        // The writer first: it switches a fresh file to WAL before any reader opens it.
        let writer = SqlitePoolOptions::new()
            .max_connections(1)
            .min_connections(1)
            .acquire_timeout(ACQUIRE_TIMEOUT)
            .connect_with(options.clone())
            .await
            .map_err(map_err(Op::Open))?;
        let reader = SqlitePoolOptions::new()
            .max_connections(READERS)
            .acquire_timeout(ACQUIRE_TIMEOUT)
            .connect_with(options)
            .await
            .map_err(map_err(Op::Open))?;
        let store = SqliteStore {
            writer,
            reader,
            path: path.to_owned(),
        };
        // SQLite has no migration lock: a process migrating the same new file at the same
        // moment as another fails each time the other commits a migration between its reading
        // of the applied list and its own attempt (once per migration at most), and then finds
        // the work done. A real error fails every attempt and is returned.
        let mut attempts_left = MIGRATIONS.len();
        while let Err(e) = store.migrate().await {
            if attempts_left == 0 {
                return Err(e);
            }
            attempts_left -= 1;
        }
        Ok(store)
    }

    /// Applies the embedded migrations that have not run yet. Idempotent; `open` calls it.
    pub async fn migrate(&self) -> Result<(), StoreError> {
        migrator(MIGRATIONS)
            .run(&self.writer)
            .await
            .map_err(tessera_store_sql::error::map_migrate_err::<SqliteStore>)
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Closes every connection, checkpointing the WAL; later calls fail with `Unavailable`.
    pub async fn close(&self) {
        self.reader.close().await;
        self.writer.close().await;
    }
}

/// Creates the parent directory (0700) and the file (0600) when they are missing, so that the
/// database never exists, even briefly, with the process umask's permissions.
fn create_private_file(path: &Path) -> Result<(), StoreError> {
    let io = |what: &'static str| {
        move |e: std::io::Error| {
            StoreError::Unavailable(format!("cannot {what} the database file: {}", e.kind()))
        }
    };
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        let mut builder = DirBuilder::new();
        builder.recursive(true);
        #[cfg(unix)]
        std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
        builder.create(dir).map_err(io("create the directory of"))?;
    }
    let mut open = OpenOptions::new();
    open.write(true).create(true).truncate(false);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut open, 0o600);
    open.open(path).map_err(io("create"))?;
    Ok(())
}

/// What SQLite does differently; everything else is `tessera_store_sql`'s.
#[async_trait]
impl Backend for SqliteStore {
    type Db = Sqlite;
    const NAME: &'static str = "sqlite";
    // SQLite's default collation (BINARY) already compares bytes.
    const BYTE_ORDER: &'static str = "";
    const PASSWORD_PARAMS_SQL: &'static str = "SELECT substr(password_hash, 16, instr(substr(password_hash, 16), '$') - 1) AS params, \
                COUNT(*) AS n \
         FROM accounts \
         WHERE substr(password_hash, 1, 15) = '$argon2id$v=19$' \
           AND instr(substr(password_hash, 16), '$') > 1 \
         GROUP BY params ORDER BY n DESC, params";

    // One writer per file (SQLite's write lock): transactions commit in the order their
    // positions were assigned. Readers poll; there is nothing to notify.
    const CHANGE_LOCK_SQL: Option<&'static str> = None;
    const CHANGE_NOTIFY_SQL: Option<&'static str> = None;

    fn writer(&self) -> &SqlitePool {
        &self.writer
    }

    fn reader(&self) -> &SqlitePool {
        &self.reader
    }

    fn unique_column(db: &dyn DatabaseError) -> Option<&str> {
        error::unique_column(db.message())
    }

    fn database_error(db: &dyn DatabaseError) -> StoreError {
        error::database_error(db)
    }

    async fn touch_sessions(&self, touches: &[(TokenHash, UnixTime)]) -> StoreResult<()> {
        // One transaction, so one commit (one fsync) for the whole batch; the writer is the
        // only writing connection, so nothing can deadlock.
        let mut tx = self.writer.begin().await.map_err(map_err(Op::Write))?;
        for (hash, at) in touches {
            sqlx::query(
                "UPDATE sessions SET last_seen_at = MAX(last_seen_at, $2) WHERE token_hash = $1",
            )
            .bind(&hash.0[..])
            .bind(at.0)
            .execute(&mut *tx)
            .await
            .map_err(map_err(Op::Write))?;
        }
        tx.commit().await.map_err(map_err(Op::Write))
    }

    async fn wait_for_change(&self) -> StoreResult<ChangeWait> {
        // No notification crosses processes on one file: the reader polls (an empty read is
        // one indexed query), on its own timer, so this crate needs no async runtime.
        Ok(ChangeWait::NotSupported)
    }
}

tessera_store_sql::sql_store!(SqliteStore);

/// Maps a sqlx error from a call doing `op` on SQLite.
fn map_err(op: Op) -> impl Fn(sqlx::Error) -> StoreError {
    move |e| tessera_store_sql::error::map_err::<SqliteStore>(op, e)
}

#[cfg(test)]
mod tests;
