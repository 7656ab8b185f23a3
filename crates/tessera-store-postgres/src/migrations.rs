//! The schema migrations in `migrations/`, embedded at compile time. Each file is registered
//! here with the version and description its name gives (`0001_init.sql` is version 1, "init"),
//! which is what `sqlx::migrate!` would produce, so the checksums match sqlx's own tooling.
//! Building the list by hand keeps sqlx's proc-macro crate (and a second build of the database
//! drivers for the host) out of the build.

use std::borrow::Cow;

use sqlx::SqlSafeStr as _;
use sqlx::migrate::{Migration, MigrationType, Migrator};

/// `(version, description, sql)` of every migration, in order.
pub(crate) const MIGRATIONS: &[(i64, &str, &str)] =
    &[(1, "init", include_str!("../migrations/0001_init.sql"))];

/// The migrator for this store.
pub(crate) fn migrator() -> Migrator {
    Migrator::with_migrations(
        MIGRATIONS
            .iter()
            .map(|&(version, description, sql)| {
                Migration::new(
                    version,
                    Cow::Borrowed(description),
                    MigrationType::Simple,
                    sql.into_sql_str(),
                    false,
                )
            })
            .collect(),
    )
}
