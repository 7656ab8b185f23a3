//! The `tessera_domain::store` traits written once in SQL, for SQLite and PostgreSQL.
//!
//! Every query, every row decoding with its validation ([`decode`]), every error mapping
//! ([`error`]) and every transaction is here, once. A backend crate (`tessera-store-sqlite`,
//! `tessera-store-postgres`) owns its pool set-up, its `migrations/` and an impl of
//! [`Backend`], which reads as the list of what really differs; then `sql_store!(ItsStore)`
//! expands the one implementation below for its store type.
//!
//! Why a macro for the store traits and not a generic `impl<B: Backend>`: the trait methods are
//! `async_trait` futures that must be `Send`, and proving that for futures generic over
//! `sqlx::Database` (higher-ranked `Executor` bounds on `&mut DB::Connection`) hits known
//! compiler limits. The macro's body is ordinary code checked against each concrete database;
//! everything that is not an `async` store method (decoding, errors, migrations) is plain
//! generic code.
//!
//! SQL text is shared as written: both drivers bind `$1`-style numbered parameters, and the
//! schema keeps the types both agree on (`TEXT`, `BIGINT`/`INTEGER`, `BOOLEAN`, bytes).
//!
//! Depends on `tessera-domain` and sqlx (no driver: the backend crate enables its own) only.

pub mod decode;
pub mod error;
pub mod migrations;
#[doc(hidden)]
pub mod store;

use async_trait::async_trait;
use sqlx::error::DatabaseError;
use tessera_domain::StoreError;
use tessera_domain::clock::UnixTime;
use tessera_domain::session::TokenHash;
use tessera_domain::store::{ChangeWait, StoreResult};

pub use error::Op;

/// What differs between the databases. Implemented by each backend's store type; the rest of a
/// store comes from [`sql_store!`].
#[async_trait]
pub trait Backend: Send + Sync + Sized + 'static {
    /// The sqlx database.
    type Db: sqlx::Database;

    /// The name `Store::backend` reports (`"sqlite"`, `"postgres"`).
    const NAME: &'static str;

    /// What follows a text column in `ORDER BY` so that text sorts by bytes (the order of the
    /// conformance suite): empty where that is the default.
    const BYTE_ORDER: &'static str;

    /// `password_params_in_use`: one row per argon2id parameter string (the part between
    /// `$argon2id$v=19$` and the next `$`) as `params` (text), with its count `n` (integer),
    /// most used first, then by params in byte order.
    const PASSWORD_PARAMS_SQL: &'static str;

    /// Run in a change-producing transaction just before its change is appended, so that such
    /// transactions commit in position order (`None` where writers are serialized anyway).
    const CHANGE_LOCK_SQL: Option<&'static str>;

    /// Run after a change is appended, in the same transaction, to wake listeners at commit.
    const CHANGE_NOTIFY_SQL: Option<&'static str>;

    /// The pool that writes (on SQLite one connection, so writers in a process queue).
    fn writer(&self) -> &sqlx::Pool<Self::Db>;

    /// The pool that reads.
    fn reader(&self) -> &sqlx::Pool<Self::Db>;

    /// The `table.column` of the uniqueness rule a unique violation broke, if it can tell (see
    /// [`error::UNIQUE_RULES`]).
    fn unique_column(db: &dyn DatabaseError) -> Option<&str>;

    /// A database error other than a unique or foreign-key violation, by the backend's codes.
    fn database_error(db: &dyn DatabaseError) -> StoreError;

    /// Moves `last_seen_at` of each session forward to its time (never back), in one
    /// transaction; unknown hashes are skipped.
    async fn touch_sessions(&self, touches: &[(TokenHash, UnixTime)]) -> StoreResult<()>;

    /// `ChangeStore::wait_for_change`: how this database signals a committed change (a
    /// `LISTEN` connection on PostgreSQL; nothing on SQLite, which answers `NotSupported` at
    /// once).
    async fn wait_for_change(&self) -> StoreResult<ChangeWait>;
}

/// What the expansion of [`sql_store!`] names; not part of the API.
#[doc(hidden)]
pub mod __private {
    pub use async_trait::async_trait;
    pub use sqlx;
    pub use tessera_domain;
}
