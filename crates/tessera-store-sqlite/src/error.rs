//! sqlx and SQLite errors mapped onto `StoreError`. Messages name the failure, never a value:
//! SQLite's own messages name tables and columns only, and bound values are never echoed.

use sqlx::error::{DatabaseError, ErrorKind};
use sqlx::migrate::MigrateError;
use tessera_domain::StoreError;

/// What the failing call was doing, to name the conflict precisely.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Op {
    Open,
    Read,
    Write,
    CreateAccount,
    CreateSession,
    CreateAdminToken,
}

// Primary result codes (https://www.sqlite.org/rescode.html); extended codes keep them in the
// low byte.
const SQLITE_PERM: i32 = 3;
const SQLITE_BUSY: i32 = 5;
const SQLITE_LOCKED: i32 = 6;
const SQLITE_NOMEM: i32 = 7;
const SQLITE_READONLY: i32 = 8;
const SQLITE_IOERR: i32 = 10;
const SQLITE_CORRUPT: i32 = 11;
const SQLITE_FULL: i32 = 13;
const SQLITE_CANTOPEN: i32 = 14;
const SQLITE_PROTOCOL: i32 = 15;
const SQLITE_SCHEMA: i32 = 17;
const SQLITE_NOTADB: i32 = 26;

/// Maps a sqlx error from a call doing `op`.
pub(crate) fn map_err(op: Op, e: sqlx::Error) -> StoreError {
    match e {
        sqlx::Error::Database(db) => map_database(op, db.as_ref()),
        sqlx::Error::Io(io) => StoreError::Unavailable(format!("database i/o: {}", io.kind())),
        sqlx::Error::PoolTimedOut => {
            StoreError::Unavailable("timed out waiting for a database connection".into())
        }
        sqlx::Error::PoolClosed => StoreError::Unavailable("the store is closed".into()),
        sqlx::Error::WorkerCrashed => {
            StoreError::Unavailable("the database worker thread crashed".into())
        }
        sqlx::Error::RowNotFound => StoreError::Corrupt("an expected row is missing".into()),
        sqlx::Error::ColumnDecode { index, .. } => {
            StoreError::Corrupt(format!("column {index} has an unexpected type"))
        }
        sqlx::Error::ColumnNotFound(name) => {
            StoreError::Corrupt(format!("column {name} is missing (schema out of date?)"))
        }
        sqlx::Error::Decode(_) | sqlx::Error::ColumnIndexOutOfBounds { .. } => {
            StoreError::Corrupt("a stored value could not be decoded".into())
        }
        sqlx::Error::Configuration(_) => {
            StoreError::Other("the database configuration is invalid".into())
        }
        sqlx::Error::Migrate(m) => map_migrate_err(*m),
        other => StoreError::Other(format!("database error: {}", kind_name(&other))),
    }
}

fn map_database(op: Op, db: &dyn DatabaseError) -> StoreError {
    let code: i32 = db.code().and_then(|c| c.parse().ok()).unwrap_or(0);
    match db.kind() {
        ErrorKind::UniqueViolation => return StoreError::Conflict(conflict(op, db.message())),
        ErrorKind::ForeignKeyViolation => {
            return StoreError::Conflict(match op {
                Op::CreateSession => "no such account",
                _ => "the row is referenced or refers to a missing row",
            });
        }
        _ => {}
    }
    // SQLite messages name constraints, tables and columns, never bound values.
    let msg = db.message();
    match code & 0xff {
        SQLITE_BUSY => StoreError::Unavailable(format!("database is busy: {msg}")),
        SQLITE_LOCKED => StoreError::Unavailable(format!("database table is locked: {msg}")),
        SQLITE_IOERR | SQLITE_FULL | SQLITE_CANTOPEN | SQLITE_NOMEM | SQLITE_PROTOCOL
        | SQLITE_READONLY | SQLITE_PERM => {
            StoreError::Unavailable(format!("database unavailable (code {code}): {msg}"))
        }
        SQLITE_CORRUPT | SQLITE_NOTADB => {
            StoreError::Corrupt(format!("database file is damaged (code {code}): {msg}"))
        }
        SQLITE_SCHEMA => StoreError::Unavailable(format!("database schema changed: {msg}")),
        _ => StoreError::Other(format!("database error (code {code}): {msg}")),
    }
}

/// Names the uniqueness rule that was broken, from SQLite's `UNIQUE constraint failed: t.c`.
fn conflict(op: Op, message: &str) -> &'static str {
    if message.contains("accounts.username") {
        "username taken"
    } else if message.contains("accounts.id") {
        "account id exists"
    } else if message.contains("sessions.token_hash") {
        "session token exists"
    } else if message.contains("sessions.id") {
        "session id exists"
    } else if message.contains("admin_tokens.hash") {
        "admin token exists"
    } else {
        match op {
            Op::CreateAccount => "account exists",
            Op::CreateSession => "session exists",
            Op::CreateAdminToken => "admin token exists",
            Op::Open | Op::Read | Op::Write => "duplicate value",
        }
    }
}

/// Maps a migration failure. A database changed by a newer tessera is refused, not touched.
pub(crate) fn map_migrate_err(e: MigrateError) -> StoreError {
    match e {
        MigrateError::Execute(inner) => map_err(Op::Write, inner),
        MigrateError::ExecuteMigration(inner, version) => match map_err(Op::Write, inner) {
            StoreError::Other(m) => StoreError::Other(format!("migration {version} failed: {m}")),
            mapped => mapped,
        },
        MigrateError::VersionMissing(v) => StoreError::Other(format!(
            "the database has migration {v}, which this build does not know (a newer tessera?)"
        )),
        MigrateError::VersionMismatch(v) => StoreError::Corrupt(format!(
            "migration {v} in the database differs from this build's"
        )),
        MigrateError::Dirty(v) => StoreError::Corrupt(format!(
            "migration {v} failed part-way earlier; the database needs manual repair"
        )),
        other => StoreError::Other(format!("migration failed: {other}")),
    }
}

/// A short name for a sqlx error that carries nothing worth showing.
fn kind_name(e: &sqlx::Error) -> &'static str {
    match e {
        sqlx::Error::Protocol(_) => "protocol",
        sqlx::Error::Tls(_) => "tls",
        sqlx::Error::TypeNotFound { .. } => "type not found",
        sqlx::Error::Encode(_) => "encode",
        sqlx::Error::InvalidArgument(_) => "invalid argument",
        _ => "unexpected",
    }
}
