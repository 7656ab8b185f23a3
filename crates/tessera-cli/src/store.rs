//! Opening the configured store: the only place that names both implementations.

use std::sync::Arc;

use anyhow::{Context, Result};
use tessera_domain::store::Store;
use tessera_store_postgres::PgStore;
use tessera_store_sqlite::SqliteStore;

use crate::config::FileConfig;

/// Opens (and migrates) the store the configuration names.
pub(crate) async fn open(config: &FileConfig) -> Result<Arc<dyn Store>> {
    if config.is_postgres() {
        let store = PgStore::connect(&config.database_url)
            .await
            .context("connecting to PostgreSQL")?;
        Ok(Arc::new(store))
    } else {
        let path = config.sqlite_path()?;
        let store = SqliteStore::open(&path)
            .await
            .with_context(|| format!("opening the SQLite database {}", path.display()))?;
        Ok(Arc::new(store))
    }
}

/// A redacted description of where the data lives, for logs (no password in URLs).
pub(crate) fn describe(config: &FileConfig) -> String {
    if config.is_postgres() {
        let url = &config.database_url;
        match (url.find("://"), url.rfind('@')) {
            (Some(scheme), Some(at)) if at > scheme => {
                format!("{}://***@{}", &url[..scheme], &url[at + 1..])
            }
            _ => url.clone(),
        }
    } else {
        config.sqlite_path().map_or_else(
            |_| "sqlite (invalid path)".into(),
            |p| format!("sqlite {}", p.display()),
        )
    }
}
