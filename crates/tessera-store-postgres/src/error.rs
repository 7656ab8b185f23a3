//! sqlx and PostgreSQL errors mapped onto `StoreError` by SQLSTATE. Messages name the failure,
//! never a value: only PostgreSQL's primary message is kept (its DETAIL, which can quote a row's
//! values, is dropped), and bound values never reach it.

use sqlx::error::DatabaseError;
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

/// Maps a sqlx error from a call doing `op`.
pub(crate) fn map_err(op: Op, e: sqlx::Error) -> StoreError {
    match e {
        sqlx::Error::Database(db) => map_database(op, db.as_ref()),
        sqlx::Error::Io(io) => StoreError::Unavailable(format!("database i/o: {}", io.kind())),
        sqlx::Error::Tls(_) => StoreError::Unavailable("database TLS handshake failed".into()),
        sqlx::Error::PoolTimedOut => {
            StoreError::Unavailable("timed out waiting for a database connection".into())
        }
        sqlx::Error::PoolClosed => StoreError::Unavailable("the store is closed".into()),
        sqlx::Error::Protocol(_) => {
            StoreError::Unavailable("unexpected reply from the database server".into())
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
        _ => StoreError::Other("unexpected database client error".into()),
    }
}

fn map_database(op: Op, db: &dyn DatabaseError) -> StoreError {
    let code = db.code().map(|c| c.into_owned()).unwrap_or_default();
    let msg = db.message();
    match code.as_str() {
        "23505" => StoreError::Conflict(conflict(op, db.constraint())),
        "23503" => StoreError::Conflict(match op {
            Op::CreateSession => "no such account",
            _ => "the row is referenced or refers to a missing row",
        }),
        // Serialization failure, deadlock, lock not available, statement cancelled: retry.
        "40001" | "40P01" | "55P03" | "57014" => {
            StoreError::Unavailable(format!("database contention ({code}): {msg}"))
        }
        // Corrupted data or index.
        "XX001" | "XX002" => StoreError::Corrupt(format!("database reports damage ({code})")),
        // Connection exceptions, insufficient resources, operator intervention (shutdown,
        // restart, cannot connect now), system errors (I/O), read-only transaction (a standby),
        // and authentication failures (misconfiguration, but nothing here can fix it).
        c if c.starts_with("08")
            || c.starts_with("53")
            || c.starts_with("57P")
            || c.starts_with("58")
            || c == "25006"
            || c.starts_with("28") =>
        {
            StoreError::Unavailable(format!("database unavailable ({code}): {msg}"))
        }
        _ => StoreError::Other(format!("database error ({code}): {msg}")),
    }
}

/// Names the uniqueness rule that was broken, from the constraint names in the migrations.
fn conflict(op: Op, constraint: Option<&str>) -> &'static str {
    match constraint {
        Some("accounts_username_key") => "username taken",
        Some("accounts_pkey") => "account id exists",
        Some("sessions_token_hash_key") => "session token exists",
        Some("sessions_pkey") => "session id exists",
        Some("admin_tokens_pkey") => "admin token exists",
        _ => match op {
            Op::CreateAccount => "account exists",
            Op::CreateSession => "session exists",
            Op::CreateAdminToken => "admin token exists",
            Op::Open | Op::Read | Op::Write => "duplicate value",
        },
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
