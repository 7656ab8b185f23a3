//! What only SQLite's errors say: its result codes and how it names a broken uniqueness rule.
//! The rest of the mapping is `tessera_store_sql::error`. SQLite's messages name constraints,
//! tables and columns, never bound values.

use sqlx::error::DatabaseError;
use tessera_domain::StoreError;

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

/// The `table.column` of `UNIQUE constraint failed: table.column[, …]`.
pub(crate) fn unique_column(message: &str) -> Option<&str> {
    let columns = message.strip_prefix("UNIQUE constraint failed: ")?;
    columns.split(',').next().map(str::trim)
}

/// A database error by SQLite's result code.
pub(crate) fn database_error(db: &dyn DatabaseError) -> StoreError {
    let code: i32 = db.code().and_then(|c| c.parse().ok()).unwrap_or(0);
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
