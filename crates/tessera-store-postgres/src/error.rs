//! What only PostgreSQL's errors say: SQLSTATE codes and its constraint names. The rest of the
//! mapping is `tessera_store_sql::error`. Only PostgreSQL's primary message is kept (its DETAIL,
//! which can quote a row's values, is dropped), and bound values never reach it.

use sqlx::error::DatabaseError;
use tessera_domain::StoreError;

/// The `table.column` of a unique violation, from the constraint names PostgreSQL gives the
/// migrations' keys.
pub(crate) fn unique_column(constraint: Option<&str>) -> Option<&'static str> {
    Some(match constraint? {
        "accounts_username_key" => "accounts.username",
        "accounts_pkey" => "accounts.id",
        "sessions_token_hash_key" => "sessions.token_hash",
        "sessions_pkey" => "sessions.id",
        "admin_tokens_pkey" => "admin_tokens.hash",
        "factors_account_label_key" => "factors.label",
        "factors_pkey" => "factors.id",
        _ => return None,
    })
}

/// A database error by SQLSTATE.
pub(crate) fn database_error(db: &dyn DatabaseError) -> StoreError {
    let code = db.code().map(|c| c.into_owned()).unwrap_or_default();
    let msg = db.message();
    match code.as_str() {
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
