//! Opening the configured store: the only place that names both implementations.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use tessera_domain::store::Store;
use tessera_store_postgres::PgStore;
use tessera_store_sqlite::SqliteStore;

use crate::config::FileConfig;

/// Whether the command may create a database that does not exist yet: only `serve` and
/// `migrate` do; every other command refuses, so that a mistyped `--data-dir` is an error and
/// not a new, empty database.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Missing {
    /// Create the database (and its directory) if missing.
    Create,
    /// Refuse a missing database with a message naming the path.
    Refuse,
}

/// How long `open` waits for PostgreSQL to answer at all (a server that drops packets).
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// Opens (and migrates) the store the configuration names.
pub(crate) async fn open(config: &FileConfig, missing: Missing) -> Result<Arc<dyn Store>> {
    if config.is_postgres() {
        let shown = describe(config);
        let store = tokio::time::timeout(CONNECT_TIMEOUT, PgStore::connect(&config.database_url))
            .await
            .map_err(|_| {
                anyhow::anyhow!(
                    "connecting to PostgreSQL at {shown}: no answer within {} s",
                    CONNECT_TIMEOUT.as_secs()
                )
            })?
            .with_context(|| format!("connecting to PostgreSQL at {shown}"))?;
        Ok(Arc::new(store))
    } else {
        let path = config.sqlite_path()?;
        check_sqlite_path(&path, missing)?;
        let store = SqliteStore::open(&path)
            .await
            .with_context(|| format!("opening the SQLite database {}", path.display()))?;
        Ok(Arc::new(store))
    }
}

/// The errors an operator meets first, said plainly before SQLite says them obscurely: a data
/// directory that is a file, a database path that is a directory, a database that is missing.
fn check_sqlite_path(path: &Path, missing: Missing) -> Result<()> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        // Every existing ancestor must be a directory (the first one that is not is named).
        if let Some(file) = dir.ancestors().find(|a| a.exists() && !a.is_dir()) {
            bail!(
                "{} is not a directory: the data directory must be one (check --data-dir, \
                 data_dir or database_url)",
                file.display()
            );
        }
    }
    if path.is_dir() {
        bail!(
            "{} is a directory, not a SQLite database file (check database_url)",
            path.display()
        );
    }
    if missing == Missing::Refuse && !path.exists() {
        bail!(
            "no database at {}: check --data-dir/--database (or data_dir/database_url), or \
             create it with `tessera migrate` (or `tessera serve`) and the same options",
            path.display()
        );
    }
    Ok(())
}

/// A redacted description of where the data lives, for logs (no password in URLs).
pub(crate) fn describe(config: &FileConfig) -> String {
    if config.is_postgres() {
        tessera_store_postgres::redact_url(&config.database_url)
    } else {
        config.sqlite_path().map_or_else(
            |_| "sqlite (invalid path)".into(),
            |p| format!("sqlite {}", p.display()),
        )
    }
}
