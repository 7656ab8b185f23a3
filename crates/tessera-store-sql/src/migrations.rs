//! The migrator for a backend's `migrations/`, embedded at compile time by the backend crate
//! (`include_str!`). Each file is registered with the version and description its name gives (`0001_init.sql` is version 1, "init"),
//! which is what `sqlx::migrate!` would produce, so the checksums match sqlx's own tooling.
//! Building the list by hand keeps sqlx's proc-macro crate (and a second build of the database
//! drivers for the host) out of the build.

use std::borrow::Cow;

use sqlx::SqlSafeStr as _;
use sqlx::migrate::{Migration, MigrationType, Migrator};

/// `(version, description, sql)` of every migration of a backend, in order.
pub type Migrations = &'static [(i64, &'static str, &'static str)];

/// The migrator for `migrations`.
pub fn migrator(migrations: Migrations) -> Migrator {
    Migrator::with_migrations(
        migrations
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

/// Checks that `dir` holds exactly the files of `migrations`, each under the version and
/// description its name gives (`0001_init.sql`: 1, "init") and with the same text; for the
/// backends' unit tests. Says which file disagrees.
pub fn check_embedded(dir: &std::path::Path, migrations: Migrations) -> Result<(), String> {
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .map_err(|e| format!("{}: {e}", dir.display()))?
        .map(|e| e.map(|e| e.path()).map_err(|e| e.to_string()))
        .collect::<Result<_, _>>()?;
    files.sort();
    if files.len() != migrations.len() {
        return Err(format!(
            "{} files in {}, {} embedded",
            files.len(),
            dir.display(),
            migrations.len()
        ));
    }
    for (file, &(version, description, sql)) in files.iter().zip(migrations) {
        let stem = file
            .file_stem()
            .and_then(|s| s.to_str())
            .unwrap_or_default();
        let named = stem
            .split_once('_')
            .map(|(v, d)| (v.parse::<i64>().ok(), d.replace('_', " ")));
        let text = std::fs::read_to_string(file).map_err(|e| format!("{stem}: {e}"))?;
        if named != Some((Some(version), description.to_owned())) || text != sql {
            return Err(format!(
                "{stem} differs from the embedded migration {version}"
            ));
        }
    }
    Ok(())
}
