//! sqlx errors mapped onto `StoreError`, for both backends. Messages name the failure, never a
//! value. What only a backend knows (its error codes, how it names a broken uniqueness rule)
//! comes from its [`Backend`] impl.

use sqlx::error::{DatabaseError, ErrorKind};
use sqlx::migrate::MigrateError;
use tessera_domain::StoreError;

use crate::Backend;

/// What the failing call was doing, to name the conflict precisely.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Op {
    /// Opening or connecting.
    Open,
    /// A read.
    Read,
    /// A write other than the creations below.
    Write,
    /// Creating an account.
    CreateAccount,
    /// Creating a session.
    CreateSession,
    /// Creating an admin token.
    CreateAdminToken,
    /// Creating a factor.
    CreateFactor,
}

/// The uniqueness rules of the schema, as `table.column`, and what breaking one means.
pub const UNIQUE_RULES: &[(&str, &str)] = &[
    ("accounts.username", "username taken"),
    ("accounts.id", "account id exists"),
    ("sessions.token_hash", "session token exists"),
    ("sessions.id", "session id exists"),
    ("admin_tokens.hash", "admin token exists"),
    ("factors.label", "factor label taken"),
    ("factors.id", "factor id exists"),
];

/// Maps a sqlx error from a call doing `op` on backend `B`.
pub fn map_err<B: Backend>(op: Op, e: sqlx::Error) -> StoreError {
    match e {
        sqlx::Error::Database(db) => map_database::<B>(op, db.as_ref()),
        sqlx::Error::Io(io) => StoreError::Unavailable(format!("database i/o: {}", io.kind())),
        sqlx::Error::Tls(_) => StoreError::Unavailable("database TLS handshake failed".into()),
        sqlx::Error::Protocol(_) => {
            StoreError::Unavailable("unexpected reply from the database server".into())
        }
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
        sqlx::Error::Migrate(m) => map_migrate_err::<B>(*m),
        other => StoreError::Other(format!("database error: {}", kind_name(&other))),
    }
}

fn map_database<B: Backend>(op: Op, db: &dyn DatabaseError) -> StoreError {
    match db.kind() {
        ErrorKind::UniqueViolation => {
            let column = B::unique_column(db);
            let known = UNIQUE_RULES
                .iter()
                .find(|(rule, _)| Some(*rule) == column)
                .map(|&(_, what)| what);
            StoreError::Conflict(known.unwrap_or(match op {
                Op::CreateAccount => "account exists",
                Op::CreateSession => "session exists",
                Op::CreateAdminToken => "admin token exists",
                Op::CreateFactor => "factor exists",
                Op::Open | Op::Read | Op::Write => "duplicate value",
            }))
        }
        ErrorKind::ForeignKeyViolation => StoreError::Conflict(match op {
            Op::CreateSession | Op::CreateFactor => "no such account",
            _ => "the row is referenced or refers to a missing row",
        }),
        _ => B::database_error(db),
    }
}

/// Maps a migration failure. A database changed by a newer tessera is refused, not touched.
pub fn map_migrate_err<B: Backend>(e: MigrateError) -> StoreError {
    match e {
        MigrateError::Execute(inner) => map_err::<B>(Op::Write, inner),
        MigrateError::ExecuteMigration(inner, version) => match map_err::<B>(Op::Write, inner) {
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
        sqlx::Error::TypeNotFound { .. } => "type not found",
        sqlx::Error::Encode(_) => "encode",
        sqlx::Error::InvalidArgument(_) => "invalid argument",
        _ => "unexpected",
    }
}
