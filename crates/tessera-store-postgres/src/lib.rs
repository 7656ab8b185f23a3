//! The `tessera_domain::store` traits on PostgreSQL, for one or many server nodes, plus the
//! schema migrations that shape it (`migrations/`, embedded in the binary).
//!
//! Nothing is kept per node: every decision that must agree across nodes is made by one SQL
//! statement on the shared rows (`record_login_failure` is one `UPDATE … RETURNING`, touches only
//! move `last_seen_at` forward with `GREATEST`, secrets are written once with `ON CONFLICT DO
//! NOTHING`). Migrations take PostgreSQL's advisory lock, so nodes starting together migrate once.
//! An optional schema isolates one store from others in the same database (each test run gets
//! its own). Errors are mapped onto `StoreError` and never carry a secret or the database URL.
//!
//! Depends on `tessera-domain` and sqlx only; never on the server, the CLI, the SQLite store or
//! any HTTP type.

mod error;

use std::str::FromStr as _;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use async_trait::async_trait;
use sqlx::Connection as _;
use sqlx::Postgres;
use sqlx::error::DatabaseError;
use sqlx::postgres::{PgConnectOptions, PgConnection, PgListener, PgPool, PgPoolOptions};
use tessera_domain::StoreError;
use tessera_domain::clock::UnixTime;
use tessera_domain::session::TokenHash;
use tessera_domain::store::{ChangeWait, StoreResult};
use tessera_store_sql::migrations::{Migrations, migrator};
use tessera_store_sql::{Backend, Op};

/// `(version, description, sql)` of every migration in `migrations/`, in order.
pub(crate) const MIGRATIONS: Migrations = &[
    (1, "init", include_str!("../migrations/0001_init.sql")),
    (2, "changes", include_str!("../migrations/0002_changes.sql")),
    (3, "factors", include_str!("../migrations/0003_factors.sql")),
];

/// Connections per node.
const MAX_CONNECTIONS: u32 = 10;
/// How long a caller waits for a pooled connection before `Unavailable`.
const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(10);

/// The channel every change-producing transaction notifies (`Backend::CHANGE_NOTIFY_SQL`), with
/// the writer's schema as payload: the channel is per database, the tables per schema.
const CHANNEL: &str = "tessera_changes";

/// The store on a PostgreSQL database (optionally one schema of it). Cheap to clone (the pools
/// and the change listener are shared).
#[derive(Clone, Debug)]
pub struct PgStore {
    pool: PgPool,
    schema: Option<String>,
    listen: Arc<Listen>,
}

/// The `LISTEN` side of the change feed: a pool of its own (so the long-held connection never
/// takes one of the store's, and is named `<application_name> listen` in `pg_stat_activity`),
/// connected on the first `ChangeStore::wait_for_change` and made again after it breaks.
/// Between waits the listener rests in `idle`; a wait takes it out ([`Lease`]).
#[derive(Debug)]
struct Listen {
    pool: PgPool,
    idle: Mutex<Option<Listening>>,
    /// Set by `close`: a listener is then dropped, never put back.
    closed: AtomicBool,
}

/// A live `LISTEN` connection and the schema whose notifications concern this store.
#[derive(Debug)]
struct Listening {
    listener: PgListener,
    schema: String,
}

impl Listen {
    fn new(options: &PgConnectOptions) -> Arc<Listen> {
        let name = format!(
            "{} listen",
            options.get_application_name().unwrap_or("tessera")
        );
        // Lazy: no connection until the change feed first waits (the CLI never does). Two
        // slots, so that a broken connection still being returned never blocks its successor.
        let pool = PgPoolOptions::new()
            .max_connections(2)
            .acquire_timeout(ACQUIRE_TIMEOUT)
            .connect_lazy_with(options.clone().application_name(&name));
        Arc::new(Listen {
            pool,
            idle: Mutex::new(None),
            closed: AtomicBool::new(false),
        })
    }

    /// Puts `listening` back for the next wait, unless the store is closing or another waiter
    /// already put one back (then it is dropped: its connection goes back to the pool).
    fn put_back(&self, listening: Listening) {
        let spare = {
            let mut idle = self.idle.lock().unwrap_or_else(PoisonError::into_inner);
            if idle.is_none() && !self.closed.load(Ordering::Acquire) {
                *idle = Some(listening);
                None
            } else {
                Some(listening)
            }
        };
        drop(spare);
    }
}

/// The listener while a wait has it. Put back when the wait ends, also when the caller's timer
/// cancels it (reading a notification is cancel-safe in sqlx); emptied when it broke.
struct Lease<'a> {
    listen: &'a Listen,
    listening: Option<Listening>,
}

impl Drop for Lease<'_> {
    fn drop(&mut self) {
        if let Some(listening) = self.listening.take() {
            self.listen.put_back(listening);
        }
    }
}

impl PgStore {
    /// Connects to `url` (`postgres://user:password@host:port/database?...`) and applies pending
    /// migrations. Tables live in the schema the URL's user defaults to (normally `public`).
    pub async fn connect(url: &str) -> Result<PgStore, StoreError> {
        let options = parse_url(url)?;
        // One direct connection first: an unreachable server or a refused login is reported
        // at once with its real cause, not as a pool time-out after ACQUIRE_TIMEOUT.
        PgConnection::connect_with(&options)
            .await
            .map_err(|e| connect_error(&options, e))?
            .close()
            .await
            .map_err(map_err(Op::Open))?;
        let listen = Listen::new(&options);
        let pool = pool_options()
            .connect_with(options)
            .await
            .map_err(map_err(Op::Open))?;
        let store = PgStore {
            pool,
            schema: None,
            listen,
        };
        store.migrate().await?;
        Ok(store)
    }

    /// Like [`PgStore::connect`], but every table lives in `schema`, which is created if missing
    /// and set as the `search_path` of every pooled connection. The name must be 1 to 63
    /// characters of `a-z`, `0-9` and `_`, not starting with a digit or `pg_`.
    pub async fn connect_with_schema(url: &str, schema: &str) -> Result<PgStore, StoreError> {
        if !valid_schema_name(schema) {
            return Err(StoreError::Other(
                "schema name must be 1-63 characters of a-z, 0-9, '_', \
                 not starting with a digit or pg_"
                    .into(),
            ));
        }
        let options = parse_url(url)?;
        let mut conn = PgConnection::connect_with(&options)
            .await
            .map_err(|e| connect_error(&options, e))?;
        let created = sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
            "CREATE SCHEMA IF NOT EXISTS \"{schema}\""
        )))
        .execute(&mut conn)
        .await;
        match created {
            Ok(_) => {}
            // `IF NOT EXISTS` is not atomic: a node creating the same schema at the same moment
            // makes this one fail with a duplicate, and then the schema exists.
            Err(sqlx::Error::Database(db))
                if matches!(db.code().as_deref(), Some("23505" | "42P06")) => {}
            Err(e) => return Err(map_err(Op::Open)(e)),
        }
        conn.close().await.map_err(map_err(Op::Open))?;
        let set_path = format!("SET search_path TO \"{schema}\"");
        let listen = Listen::new(&options);
        let pool = pool_options()
            .after_connect(move |conn, _meta| {
                let set_path = set_path.clone();
                Box::pin(async move {
                    sqlx::raw_sql(sqlx::AssertSqlSafe(set_path))
                        .execute(conn)
                        .await
                        .map(|_| ())
                })
            })
            .connect_with(options)
            .await
            .map_err(map_err(Op::Open))?;
        let store = PgStore {
            pool,
            schema: Some(schema.to_owned()),
            listen,
        };
        store.migrate().await?;
        Ok(store)
    }

    /// Applies the embedded migrations that have not run yet, under PostgreSQL's advisory lock
    /// (nodes starting together wait for one another). Idempotent; the constructors call it.
    pub async fn migrate(&self) -> Result<(), StoreError> {
        migrator(MIGRATIONS)
            .run(&self.pool)
            .await
            .map_err(tessera_store_sql::error::map_migrate_err::<PgStore>)
    }

    /// The schema given to [`PgStore::connect_with_schema`], if any.
    pub fn schema(&self) -> Option<&str> {
        self.schema.as_deref()
    }

    /// Closes every connection; later calls fail with `Unavailable`.
    pub async fn close(&self) {
        // Closing waits for every connection to come back, the listener's included: an idle
        // listener is dropped here, one a waiter holds fails with `PoolClosed` at once and is
        // dropped too (`closed` keeps it from being put back).
        self.listen.closed.store(true, Ordering::Release);
        let idle = self
            .listen
            .idle
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        drop(idle);
        self.listen.pool.close().await;
        self.pool.close().await;
    }

    /// Connects the listener: learns which schema this store's writers notify for, then
    /// `LISTEN`s.
    async fn start_listening(&self) -> StoreResult<Listening> {
        let schema: String = sqlx::query_scalar("SELECT COALESCE(current_schema(), '')")
            .fetch_one(&self.pool)
            .await
            .map_err(map_err(Op::Read))?;
        let mut listener = PgListener::connect_with(&self.listen.pool)
            .await
            .map_err(map_err(Op::Open))?;
        // A lost connection is reported (`Ok(None)`) and this store makes the next one, so that
        // the caller hears of the gap and re-reads the table.
        listener.eager_reconnect(false);
        listener.listen(CHANNEL).await.map_err(map_err(Op::Open))?;
        Ok(Listening { listener, schema })
    }
}

/// The URL parameters sqlx understands. sqlx logs any other one with its value (a warning
/// "ignoring unrecognized connect parameter"), which would put an `sslpassword=…` or a
/// mistyped `pasword=…` in clear in the log: those are refused instead.
const KNOWN_PARAMETERS: &[&str] = &[
    "sslmode",
    "ssl-mode",
    "sslrootcert",
    "ssl-root-cert",
    "ssl-ca",
    "sslcert",
    "ssl-cert",
    "sslkey",
    "ssl-key",
    "statement-cache-capacity",
    "host",
    "hostaddr",
    "port",
    "dbname",
    "user",
    "password",
    "application_name",
    "options",
];

fn parse_url(url: &str) -> Result<PgConnectOptions, StoreError> {
    // The query starts at the first `?` after the user part (whose password may hold one).
    let after_userinfo = url.rfind('@').map_or(url, |at| &url[at + 1..]);
    if let Some((_, query)) = after_userinfo.split_once('?') {
        let query = query.split_once('#').map_or(query, |(q, _)| q);
        for param in query.split('&').filter(|p| !p.is_empty()) {
            let name = param.split_once('=').map_or(param, |(name, _)| name);
            let known = KNOWN_PARAMETERS.contains(&name)
                || (name.starts_with("options[") && name.ends_with(']'));
            if !known {
                // The name is not repeated either: a malformed URL can make it part of a secret.
                return Err(StoreError::Other(format!(
                    "the PostgreSQL URL has a parameter tessera does not know (known: {})",
                    KNOWN_PARAMETERS.join(", ")
                )));
            }
        }
    }
    // The URL may hold a password: the error never repeats it.
    PgConnectOptions::from_str(url)
        .map(|o| {
            // Named in pg_stat_activity, unless the URL or PGAPPNAME already names it.
            if o.get_application_name().is_none() {
                o.application_name("tessera")
            } else {
                o
            }
        })
        .map_err(|_| StoreError::Other("the PostgreSQL URL is malformed".into()))
}

/// A failed first connection, naming the server (host and port, or the socket) and the cause:
/// "cannot connect to PostgreSQL at 127.0.0.1:5432: Connection refused (os error 111)". The
/// password and the URL's parameters are never part of it.
fn connect_error(options: &PgConnectOptions, e: sqlx::Error) -> StoreError {
    let at = match options.get_socket() {
        Some(socket) => socket.display().to_string(),
        None => format!("{}:{}", options.get_host(), options.get_port()),
    };
    match e {
        sqlx::Error::Io(io) => {
            StoreError::Unavailable(format!("cannot connect to PostgreSQL at {at}: {io}"))
        }
        other => match map_err(Op::Open)(other) {
            StoreError::Unavailable(why) => {
                StoreError::Unavailable(format!("PostgreSQL at {at}: {why}"))
            }
            StoreError::Other(why) => StoreError::Other(format!("PostgreSQL at {at}: {why}")),
            mapped => mapped,
        },
    }
}

/// A PostgreSQL URL fit for a log line or an error message: the password of the user part and
/// the value of every query parameter whose name contains "pass" (`password`, `sslpassword`)
/// become `***`. When the URL is ambiguous (an `@` that may belong to a password containing
/// `/` or `?`), more is hidden rather than less. Everything else is kept, so that the operator
/// sees which server and database are meant.
pub fn redact_url(url: &str) -> String {
    const HIDDEN: &str = "***";
    let Some(scheme_end) = url.find("://") else {
        return format!("{HIDDEN} (not a URL)");
    };
    let (scheme, rest) = (&url[..scheme_end + 3], &url[scheme_end + 3..]);
    let mut out = String::from(scheme);
    let after_userinfo = match rest.rfind('@') {
        Some(at) => {
            let userinfo = &rest[..at];
            let (user, has_password) = match userinfo.split_once(':') {
                Some((user, _)) => (user, true),
                None => (userinfo, false),
            };
            if user.contains(['/', '?', '#']) {
                // The `@` is not where a user part ends: hide all of it.
                out.push_str(HIDDEN);
            } else {
                out.push_str(user);
                if has_password {
                    out.push(':');
                    out.push_str(HIDDEN);
                }
            }
            out.push('@');
            &rest[at + 1..]
        }
        None => rest,
    };
    let (path, query) = match after_userinfo.split_once('?') {
        Some((path, query)) => (path, Some(query)),
        None => (after_userinfo, None),
    };
    out.push_str(path);
    if let Some(query) = query {
        out.push('?');
        let params: Vec<String> = query
            .split('&')
            .map(|param| match param.split_once('=') {
                Some((name, _)) if name.to_ascii_lowercase().contains("pass") => {
                    format!("{name}={HIDDEN}")
                }
                _ => param.to_owned(),
            })
            .collect();
        out.push_str(&params.join("&"));
    }
    out
}

fn pool_options() -> PgPoolOptions {
    PgPoolOptions::new()
        .max_connections(MAX_CONNECTIONS)
        .acquire_timeout(ACQUIRE_TIMEOUT)
}

/// A schema name that needs no escaping and is not reserved by PostgreSQL.
fn valid_schema_name(name: &str) -> bool {
    (1..=63).contains(&name.len())
        && !name.starts_with("pg_")
        && !name.starts_with(|c: char| c.is_ascii_digit())
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
}

/// What PostgreSQL does differently; everything else is `tessera_store_sql`'s.
#[async_trait]
impl Backend for PgStore {
    type Db = Postgres;
    const NAME: &'static str = "postgres";
    // Text sorts by the database's collation unless told otherwise; "C" is byte order.
    const BYTE_ORDER: &'static str = " COLLATE \"C\"";
    // The fourth `$`-separated field of `$argon2id$v=19$<params>$<salt>$<hash>`.
    const PASSWORD_PARAMS_SQL: &'static str = "SELECT split_part(password_hash, '$', 4) AS params, COUNT(*) AS n \
         FROM accounts \
         WHERE left(password_hash, 15) = '$argon2id$v=19$' \
           AND split_part(password_hash, '$', 4) <> '' \
         GROUP BY split_part(password_hash, '$', 4) \
         ORDER BY n DESC, split_part(password_hash, '$', 4) COLLATE \"C\"";

    // Identity values are handed out at insert, but transactions commit in any order: a reader
    // at position N could miss a lower position committed after it read. Every change-producing
    // transaction therefore takes one transaction-scoped advisory lock right before appending
    // its change and holds it to its commit; the next one draws its position only after that
    // commit is visible, so positions become visible in increasing order. The key is an
    // arbitrary constant ("tessera" in ASCII) that nothing else uses.
    const CHANGE_LOCK_SQL: Option<&'static str> =
        Some("SELECT pg_advisory_xact_lock(32762643830108769)");
    // Delivered at commit, to every node LISTENing on the channel (never for a rollback).
    // The payload is the writer's schema: stores in other schemas of the database ignore it.
    const CHANGE_NOTIFY_SQL: Option<&'static str> =
        Some("SELECT pg_notify('tessera_changes', COALESCE(current_schema(), ''))");

    fn writer(&self) -> &PgPool {
        &self.pool
    }

    fn reader(&self) -> &PgPool {
        &self.pool
    }

    fn unique_column(db: &dyn DatabaseError) -> Option<&str> {
        error::unique_column(db.constraint())
    }

    fn database_error(db: &dyn DatabaseError) -> StoreError {
        error::database_error(db)
    }

    async fn touch_sessions(&self, touches: &[(TokenHash, UnixTime)]) -> StoreResult<()> {
        let hashes: Vec<&[u8]> = touches.iter().map(|(h, _)| &h.0[..]).collect();
        let times: Vec<i64> = touches.iter().map(|(_, t)| t.0).collect();
        // Rows are locked in token-hash order first, so that two nodes flushing overlapping
        // batches cannot deadlock; then one UPDATE applies the latest time per session.
        let mut tx = self.pool.begin().await.map_err(map_err(Op::Write))?;
        sqlx::query(
            "SELECT 1 FROM sessions WHERE token_hash = ANY($1) ORDER BY token_hash FOR UPDATE",
        )
        .bind(&hashes)
        .execute(&mut *tx)
        .await
        .map_err(map_err(Op::Write))?;
        sqlx::query(
            "UPDATE sessions AS s SET last_seen_at = GREATEST(s.last_seen_at, t.at) \
             FROM (SELECT h, MAX(at) AS at FROM UNNEST($1::bytea[], $2::bigint[]) AS u (h, at) \
                   GROUP BY h) AS t \
             WHERE s.token_hash = t.h",
        )
        .bind(&hashes)
        .bind(&times)
        .execute(&mut *tx)
        .await
        .map_err(map_err(Op::Write))?;
        tx.commit().await.map_err(map_err(Op::Write))
    }

    async fn wait_for_change(&self) -> StoreResult<ChangeWait> {
        let idle = self
            .listen
            .idle
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        let Some(listening) = idle else {
            let listening = self.start_listening().await?;
            self.listen.put_back(listening);
            // A change committed before LISTEN took effect was not signalled: read now.
            return Ok(ChangeWait::Woken);
        };
        let mut lease = Lease {
            listen: &self.listen,
            listening: Some(listening),
        };
        loop {
            let Some(listening) = lease.listening.as_mut() else {
                return Err(StoreError::Unavailable("no LISTEN connection".into()));
            };
            let lost = match listening.listener.try_recv().await {
                Ok(Some(note)) if note.payload() == listening.schema => {
                    // Several commits may have been signalled meanwhile: one read covers them.
                    while listening.listener.next_buffered().is_some() {}
                    return Ok(ChangeWait::Woken);
                }
                // Another schema's change (tests give each store its own).
                Ok(Some(_)) => continue,
                Ok(None) => StoreError::Unavailable("the LISTEN connection was lost".into()),
                Err(e) => map_err(Op::Read)(e),
            };
            // Notifications sent while it was down are gone: the next call connects again and
            // answers `Woken`, so the caller re-reads the table.
            lease.listening = None;
            return Err(lost);
        }
    }
}

tessera_store_sql::sql_store!(PgStore);

/// Maps a sqlx error from a call doing `op` on PostgreSQL.
fn map_err(op: Op) -> impl Fn(sqlx::Error) -> StoreError {
    move |e| tessera_store_sql::error::map_err::<PgStore>(op, e)
}

#[cfg(test)]
mod tests;
