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

mod decode;
mod error;
mod migrations;

use std::str::FromStr as _;
use std::time::Duration;

use async_trait::async_trait;
use sqlx::Connection as _;
use sqlx::postgres::{PgConnectOptions, PgConnection, PgPool, PgPoolOptions};
use tessera_domain::StoreError;
use tessera_domain::account::{Account, AccountId, NewAccount, Username};
use tessera_domain::admin::AdminTokenRecord;
use tessera_domain::audit::AuditEvent;
use tessera_domain::clock::UnixTime;
use tessera_domain::credential::password::PasswordHash;
use tessera_domain::session::{Session, SessionId, TokenHash};
use tessera_domain::store::{
    AccountStore, AdminTokenStore, AuditStore, LoginStore, SecretStore, SessionStore, StaleLogin,
    Store, StoreResult,
};

use crate::decode::{
    account_from_row, admin_token_from_row, audit_from_row, groups_json, json_list,
    session_from_row,
};
use crate::error::{Op, map_err};

/// Connections per node.
const MAX_CONNECTIONS: u32 = 10;
/// How long a caller waits for a pooled connection before `Unavailable`.
const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(10);

/// Columns of `accounts` in the order `decode::account_from_row` reads them (by name).
const ACCOUNT_COLUMNS: &str = "id, username, email, groups, role, disabled, password_hash, \
     failed_logins, locked_until, created_at, updated_at";

/// The store on a PostgreSQL database (optionally one schema of it). Cheap to clone (the pool is
/// shared).
#[derive(Clone, Debug)]
pub struct PgStore {
    pool: PgPool,
    schema: Option<String>,
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
            .map_err(|e| map_err(Op::Open, e))?;
        let pool = pool_options()
            .connect_with(options)
            .await
            .map_err(|e| map_err(Op::Open, e))?;
        let store = PgStore { pool, schema: None };
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
            Err(e) => return Err(map_err(Op::Open, e)),
        }
        conn.close().await.map_err(|e| map_err(Op::Open, e))?;
        let set_path = format!("SET search_path TO \"{schema}\"");
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
            .map_err(|e| map_err(Op::Open, e))?;
        let store = PgStore {
            pool,
            schema: Some(schema.to_owned()),
        };
        store.migrate().await?;
        Ok(store)
    }

    /// Applies the embedded migrations that have not run yet, under PostgreSQL's advisory lock
    /// (nodes starting together wait for one another). Idempotent; the constructors call it.
    pub async fn migrate(&self) -> Result<(), StoreError> {
        migrations::migrator()
            .run(&self.pool)
            .await
            .map_err(error::map_migrate_err)
    }

    /// The schema given to [`PgStore::connect_with_schema`], if any.
    pub fn schema(&self) -> Option<&str> {
        self.schema.as_deref()
    }

    /// Closes every connection; later calls fail with `Unavailable`.
    pub async fn close(&self) {
        self.pool.close().await;
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
        other => match map_err(Op::Open, other) {
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

#[async_trait]
impl AccountStore for PgStore {
    async fn create_account(
        &self,
        new: &NewAccount,
        id: &AccountId,
        password: Option<&PasswordHash>,
        now: UnixTime,
    ) -> StoreResult<Account> {
        let mut groups = new.groups.clone();
        groups.sort();
        groups.dedup();
        sqlx::query(
            "INSERT INTO accounts (id, username, email, groups, role, disabled, password_hash, \
             failed_logins, locked_until, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, FALSE, $6, 0, NULL, $7, $7)",
        )
        .bind(id.as_str())
        .bind(new.username.as_str())
        .bind(new.email.as_ref().map(|e| e.as_str()))
        .bind(groups_json(&groups))
        .bind(new.role.as_str())
        .bind(password.map(PasswordHash::as_str))
        .bind(now.0)
        .execute(&self.pool)
        .await
        .map_err(|e| map_err(Op::CreateAccount, e))?;
        Ok(Account {
            id: id.clone(),
            username: new.username.clone(),
            email: new.email.clone(),
            groups,
            role: new.role,
            disabled: false,
            failed_logins: 0,
            locked_until: None,
            created_at: now,
            updated_at: now,
        })
    }

    async fn account_by_username(
        &self,
        username: &Username,
    ) -> StoreResult<Option<(Account, Option<PasswordHash>)>> {
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {ACCOUNT_COLUMNS} FROM accounts WHERE username = $1"
        )))
        .bind(username.as_str())
        .fetch_optional(&self.pool)
        .await
        .map_err(|e| map_err(Op::Read, e))?;
        row.map(|r| {
            let hash: Option<String> = decode::get(&r, "password_hash")?;
            Ok((account_from_row(&r)?, hash.map(PasswordHash::from_stored)))
        })
        .transpose()
    }

    async fn account_by_id(&self, id: &AccountId) -> StoreResult<Option<Account>> {
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {ACCOUNT_COLUMNS} FROM accounts WHERE id = $1"
        )))
        .bind(id.as_str())
        .fetch_optional(&self.pool)
        .await
        .map_err(|e| map_err(Op::Read, e))?;
        row.as_ref().map(account_from_row).transpose()
    }

    async fn list_accounts(&self) -> StoreResult<Vec<Account>> {
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {ACCOUNT_COLUMNS} FROM accounts ORDER BY username COLLATE \"C\""
        )))
        .fetch_all(&self.pool)
        .await
        .map_err(|e| map_err(Op::Read, e))?;
        rows.iter().map(account_from_row).collect()
    }

    async fn count_admins(&self) -> StoreResult<u64> {
        count(
            sqlx::query_scalar("SELECT COUNT(*) FROM accounts WHERE role = 'admin'")
                .fetch_one(&self.pool)
                .await,
        )
    }

    async fn set_disabled(
        &self,
        id: &AccountId,
        disabled: bool,
        now: UnixTime,
    ) -> StoreResult<bool> {
        let done = sqlx::query("UPDATE accounts SET disabled = $2, updated_at = $3 WHERE id = $1")
            .bind(id.as_str())
            .bind(disabled)
            .bind(now.0)
            .execute(&self.pool)
            .await
            .map_err(|e| map_err(Op::Write, e))?;
        Ok(done.rows_affected() > 0)
    }

    async fn password_params_in_use(&self) -> StoreResult<Vec<(String, u64)>> {
        // The fourth `$`-separated field of `$argon2id$v=19$<params>$<salt>$<hash>`.
        let rows: Vec<(String, i64)> = sqlx::query_as(
            "SELECT split_part(password_hash, '$', 4) AS params, COUNT(*) AS n \
             FROM accounts \
             WHERE left(password_hash, 15) = '$argon2id$v=19$' \
               AND split_part(password_hash, '$', 4) <> '' \
             GROUP BY split_part(password_hash, '$', 4) \
             ORDER BY n DESC, split_part(password_hash, '$', 4) COLLATE \"C\"",
        )
        .fetch_all(&self.pool)
        .await
        .map_err(|e| map_err(Op::Read, e))?;
        rows.into_iter()
            .map(|(params, n)| Ok((params, count(Ok(n))?)))
            .collect()
    }

    async fn delete_account(&self, id: &AccountId) -> StoreResult<bool> {
        // Sessions go with it (ON DELETE CASCADE).
        let done = sqlx::query("DELETE FROM accounts WHERE id = $1")
            .bind(id.as_str())
            .execute(&self.pool)
            .await
            .map_err(|e| map_err(Op::Write, e))?;
        Ok(done.rows_affected() > 0)
    }

    async fn record_login_failure(
        &self,
        id: &AccountId,
        lock_after: u32,
        lock_until: UnixTime,
        now: UnixTime,
    ) -> StoreResult<Option<Account>> {
        sql::record_login_failure(&self.pool, id, lock_after, lock_until, now).await
    }

    async fn record_login_success(&self, id: &AccountId, now: UnixTime) -> StoreResult<()> {
        sql::record_login_success(&self.pool, id, now).await
    }

    async fn unlock(&self, id: &AccountId, now: UnixTime) -> StoreResult<bool> {
        let done = sqlx::query(
            "UPDATE accounts SET failed_logins = 0, locked_until = NULL, updated_at = $2 \
             WHERE id = $1",
        )
        .bind(id.as_str())
        .bind(now.0)
        .execute(&self.pool)
        .await
        .map_err(|e| map_err(Op::Write, e))?;
        Ok(done.rows_affected() > 0)
    }
}

/// Columns of `sessions` read by `decode::session_from_row`.
const SESSION_COLUMNS: &str = "id, token_hash, account_id, created_at, last_seen_at, \
     expires_at, csrf, amr, ip, user_agent";

#[async_trait]
impl SessionStore for PgStore {
    async fn create_session(&self, session: &Session) -> StoreResult<()> {
        sql::create_session(&self.pool, session).await
    }

    async fn session_by_token(&self, hash: &TokenHash) -> StoreResult<Option<Session>> {
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {SESSION_COLUMNS} FROM sessions WHERE token_hash = $1"
        )))
        .bind(&hash.0[..])
        .fetch_optional(&self.pool)
        .await
        .map_err(|e| map_err(Op::Read, e))?;
        row.as_ref().map(session_from_row).transpose()
    }

    async fn sessions_of(&self, account: &AccountId) -> StoreResult<Vec<Session>> {
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {SESSION_COLUMNS} FROM sessions WHERE account_id = $1 \
             ORDER BY created_at DESC, id DESC"
        )))
        .bind(account.as_str())
        .fetch_all(&self.pool)
        .await
        .map_err(|e| map_err(Op::Read, e))?;
        rows.iter().map(session_from_row).collect()
    }

    async fn touch_sessions(&self, touches: &[(TokenHash, UnixTime)]) -> StoreResult<()> {
        if touches.is_empty() {
            return Ok(());
        }
        let hashes: Vec<&[u8]> = touches.iter().map(|(h, _)| &h.0[..]).collect();
        let times: Vec<i64> = touches.iter().map(|(_, t)| t.0).collect();
        // Rows are locked in token-hash order first, so that two nodes flushing overlapping
        // batches cannot deadlock; then one UPDATE applies the latest time per session.
        let mut tx = self.pool.begin().await.map_err(|e| map_err(Op::Write, e))?;
        sqlx::query(
            "SELECT 1 FROM sessions WHERE token_hash = ANY($1) ORDER BY token_hash FOR UPDATE",
        )
        .bind(&hashes)
        .execute(&mut *tx)
        .await
        .map_err(|e| map_err(Op::Write, e))?;
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
        .map_err(|e| map_err(Op::Write, e))?;
        tx.commit().await.map_err(|e| map_err(Op::Write, e))
    }

    async fn delete_session(
        &self,
        account: &AccountId,
        id: &SessionId,
    ) -> StoreResult<Option<TokenHash>> {
        let hash: Option<Vec<u8>> = sqlx::query_scalar(
            "DELETE FROM sessions WHERE account_id = $1 AND id = $2 RETURNING token_hash",
        )
        .bind(account.as_str())
        .bind(id.as_str())
        .fetch_optional(&self.pool)
        .await
        .map_err(|e| map_err(Op::Write, e))?;
        hash.map(decode::token_hash).transpose()
    }

    async fn delete_session_by_token(&self, hash: &TokenHash) -> StoreResult<bool> {
        let done = sqlx::query("DELETE FROM sessions WHERE token_hash = $1")
            .bind(&hash.0[..])
            .execute(&self.pool)
            .await
            .map_err(|e| map_err(Op::Write, e))?;
        Ok(done.rows_affected() > 0)
    }

    async fn delete_sessions_of(&self, account: &AccountId) -> StoreResult<Vec<TokenHash>> {
        let hashes: Vec<Vec<u8>> =
            sqlx::query_scalar("DELETE FROM sessions WHERE account_id = $1 RETURNING token_hash")
                .bind(account.as_str())
                .fetch_all(&self.pool)
                .await
                .map_err(|e| map_err(Op::Write, e))?;
        hashes.into_iter().map(decode::token_hash).collect()
    }

    async fn delete_expired_sessions(&self, now: UnixTime, idle_timeout: i64) -> StoreResult<u64> {
        // Expired when `now >= expires_at` or `now >= last_seen_at + idle` (the complement of
        // `Session::is_active`), with the sum moved to the constant side so it cannot overflow.
        let done = sqlx::query("DELETE FROM sessions WHERE expires_at <= $1 OR last_seen_at <= $2")
            .bind(now.0)
            .bind(now.0.saturating_sub(idle_timeout))
            .execute(&self.pool)
            .await
            .map_err(|e| map_err(Op::Write, e))?;
        Ok(done.rows_affected())
    }

    async fn count_active_sessions(&self, now: UnixTime, idle_timeout: i64) -> StoreResult<u64> {
        count(
            sqlx::query_scalar(
                "SELECT COUNT(*) FROM sessions WHERE expires_at > $1 AND last_seen_at > $2",
            )
            .bind(now.0)
            .bind(now.0.saturating_sub(idle_timeout))
            .fetch_one(&self.pool)
            .await,
        )
    }
}

#[async_trait]
impl AuditStore for PgStore {
    async fn append_audit(&self, event: &AuditEvent) -> StoreResult<()> {
        sql::append_audit(&self.pool, event).await
    }

    async fn recent_audit(&self, limit: u32) -> StoreResult<Vec<AuditEvent>> {
        let rows = sqlx::query(
            "SELECT at, kind, account_id, username, ip, detail FROM audit \
             ORDER BY at DESC, id DESC LIMIT $1",
        )
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await
        .map_err(|e| map_err(Op::Read, e))?;
        rows.iter().map(audit_from_row).collect()
    }

    async fn prune_audit(&self, before: UnixTime) -> StoreResult<u64> {
        let done = sqlx::query("DELETE FROM audit WHERE at < $1")
            .bind(before.0)
            .execute(&self.pool)
            .await
            .map_err(|e| map_err(Op::Write, e))?;
        Ok(done.rows_affected())
    }
}

#[async_trait]
impl AdminTokenStore for PgStore {
    async fn create_admin_token(&self, record: &AdminTokenRecord) -> StoreResult<()> {
        sqlx::query("INSERT INTO admin_tokens (hash, label, created_at) VALUES ($1, $2, $3)")
            .bind(&record.hash[..])
            .bind(record.label.as_str())
            .bind(record.created_at.0)
            .execute(&self.pool)
            .await
            .map_err(|e| map_err(Op::CreateAdminToken, e))?;
        Ok(())
    }

    async fn admin_token_exists(&self, hash: &[u8; 32]) -> StoreResult<bool> {
        sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM admin_tokens WHERE hash = $1)")
            .bind(&hash[..])
            .fetch_one(&self.pool)
            .await
            .map_err(|e| map_err(Op::Read, e))
    }

    async fn count_admin_tokens(&self) -> StoreResult<u64> {
        count(
            sqlx::query_scalar("SELECT COUNT(*) FROM admin_tokens")
                .fetch_one(&self.pool)
                .await,
        )
    }

    async fn list_admin_tokens(&self) -> StoreResult<Vec<AdminTokenRecord>> {
        let rows = sqlx::query(
            "SELECT hash, label, created_at FROM admin_tokens ORDER BY created_at, hash",
        )
        .fetch_all(&self.pool)
        .await
        .map_err(|e| map_err(Op::Read, e))?;
        rows.iter().map(admin_token_from_row).collect()
    }

    async fn delete_admin_token(&self, hash: &[u8; 32]) -> StoreResult<bool> {
        let done = sqlx::query("DELETE FROM admin_tokens WHERE hash = $1")
            .bind(&hash[..])
            .execute(&self.pool)
            .await
            .map_err(|e| map_err(Op::Write, e))?;
        Ok(done.rows_affected() > 0)
    }
}

#[async_trait]
impl SecretStore for PgStore {
    async fn server_secret(&self, name: &str, candidate: &[u8]) -> StoreResult<Vec<u8>> {
        // A racing node's INSERT waits for the first one's commit and then does nothing, so the
        // SELECT after it sees the one value that was stored first.
        sqlx::query(
            "INSERT INTO server_secrets (name, value) VALUES ($1, $2) \
             ON CONFLICT (name) DO NOTHING",
        )
        .bind(name)
        .bind(candidate)
        .execute(&self.pool)
        .await
        .map_err(|e| map_err(Op::Write, e))?;
        sqlx::query_scalar("SELECT value FROM server_secrets WHERE name = $1")
            .bind(name)
            .fetch_one(&self.pool)
            .await
            .map_err(|e| map_err(Op::Read, e))
    }
}

#[async_trait]
impl LoginStore for PgStore {
    async fn commit_login_success(
        &self,
        session: &Session,
        checked: &PasswordHash,
        rehash: Option<&PasswordHash>,
        event: &AuditEvent,
    ) -> StoreResult<Result<(), StaleLogin>> {
        let now = session.created_at;
        let mut tx = self.pool.begin().await.map_err(|e| map_err(Op::Write, e))?;
        // The guard is an UPDATE: it takes the account's row lock until the commit, and when a
        // reset, lock or disable holds that lock first, PostgreSQL re-evaluates the WHERE on
        // the row as they left it. So a change either lands after this commit (and sees the
        // session) or before the guard (which then fails).
        let current: Option<String> = sqlx::query_scalar(
            "UPDATE accounts SET \
                 password_hash = COALESCE($3::TEXT, password_hash), \
                 failed_logins = 0, \
                 locked_until = NULL, \
                 updated_at = CASE WHEN $3::TEXT IS NOT NULL OR failed_logins <> 0 \
                                     OR locked_until IS NOT NULL THEN $2 ELSE updated_at END \
             WHERE id = $1 AND password_hash = $4 AND NOT disabled \
               AND (locked_until IS NULL OR locked_until <= $2) \
             RETURNING id",
        )
        .bind(session.account_id.as_str())
        .bind(now.0)
        .bind(rehash.map(PasswordHash::as_str))
        .bind(checked.as_str())
        .fetch_optional(&mut *tx)
        .await
        .map_err(|e| map_err(Op::Write, e))?;
        if current.is_none() {
            let row: Option<(bool, Option<i64>)> =
                sqlx::query_as("SELECT disabled, locked_until FROM accounts WHERE id = $1")
                    .bind(session.account_id.as_str())
                    .fetch_optional(&mut *tx)
                    .await
                    .map_err(|e| map_err(Op::Read, e))?;
            return Ok(Err(match row {
                None => StaleLogin::Gone,
                Some((true, _)) => StaleLogin::Disabled,
                Some((_, Some(until))) if until > now.0 => StaleLogin::Locked,
                Some(_) => StaleLogin::CredentialChanged,
            }));
        }
        sql::create_session(&mut *tx, session).await?;
        sql::append_audit(&mut *tx, event).await?;
        tx.commit().await.map_err(|e| map_err(Op::Write, e))?;
        Ok(Ok(()))
    }

    async fn commit_login_failure(
        &self,
        id: &AccountId,
        lock_after: u32,
        lock_until: UnixTime,
        now: UnixTime,
        event: &AuditEvent,
        lock_event: &AuditEvent,
    ) -> StoreResult<Option<Account>> {
        let mut tx = self.pool.begin().await.map_err(|e| map_err(Op::Write, e))?;
        let after = sql::record_login_failure(&mut *tx, id, lock_after, lock_until, now).await?;
        sql::append_audit(&mut *tx, event).await?;
        if after
            .as_ref()
            .is_some_and(|a| a.locked_until == Some(lock_until))
        {
            sql::append_audit(&mut *tx, lock_event).await?;
        }
        tx.commit().await.map_err(|e| map_err(Op::Write, e))?;
        Ok(after)
    }

    async fn replace_password(
        &self,
        id: &AccountId,
        expected: Option<&PasswordHash>,
        hash: &PasswordHash,
        keep: Option<&TokenHash>,
        event: &AuditEvent,
        now: UnixTime,
    ) -> StoreResult<Option<Vec<TokenHash>>> {
        let mut tx = self.pool.begin().await.map_err(|e| map_err(Op::Write, e))?;
        // The hash first, taking the row lock: a sign-in that checked the old hash either
        // committed before (the DELETE below, a later statement with a later snapshot, sees
        // its session) or waits and then fails its guard on the new hash.
        let updated: Option<String> = sqlx::query_scalar(
            "UPDATE accounts SET password_hash = $2, updated_at = $3 \
             WHERE id = $1 AND ($4::TEXT IS NULL OR password_hash = $4) RETURNING id",
        )
        .bind(id.as_str())
        .bind(hash.as_str())
        .bind(now.0)
        .bind(expected.map(PasswordHash::as_str))
        .fetch_optional(&mut *tx)
        .await
        .map_err(|e| map_err(Op::Write, e))?;
        if updated.is_none() {
            let exists: bool =
                sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM accounts WHERE id = $1)")
                    .bind(id.as_str())
                    .fetch_one(&mut *tx)
                    .await
                    .map_err(|e| map_err(Op::Read, e))?;
            return if exists {
                Err(StoreError::Conflict("the password changed meanwhile"))
            } else {
                Ok(None)
            };
        }
        let ended: Vec<Vec<u8>> = sqlx::query_scalar(
            "DELETE FROM sessions WHERE account_id = $1 \
             AND ($2::BYTEA IS NULL OR token_hash <> $2) RETURNING token_hash",
        )
        .bind(id.as_str())
        .bind(keep.map(|k| &k.0[..]))
        .fetch_all(&mut *tx)
        .await
        .map_err(|e| map_err(Op::Write, e))?;
        sql::append_audit(&mut *tx, event).await?;
        tx.commit().await.map_err(|e| map_err(Op::Write, e))?;
        ended
            .into_iter()
            .map(decode::token_hash)
            .collect::<StoreResult<Vec<_>>>()
            .map(Some)
    }
}

/// The statements shared by the single-call methods and the sign-in transactions
/// ([`LoginStore`]), generic over a pool or a transaction.
mod sql {
    use super::*;

    pub(super) async fn record_login_failure<
        'e,
        E: sqlx::Executor<'e, Database = sqlx::Postgres>,
    >(
        ex: E,
        id: &AccountId,
        lock_after: u32,
        lock_until: UnixTime,
        now: UnixTime,
    ) -> StoreResult<Option<Account>> {
        // One statement: under concurrency PostgreSQL re-evaluates it on the newest row version
        // once the row lock is granted, so failures on different nodes are all counted.
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "UPDATE accounts SET \
                 locked_until = CASE WHEN failed_logins + 1 >= $2 THEN $3 ELSE locked_until END, \
                 failed_logins = CASE WHEN failed_logins + 1 >= $2 THEN 0 \
                                      ELSE failed_logins + 1 END, \
                 updated_at = $4 \
             WHERE id = $1 RETURNING {ACCOUNT_COLUMNS}"
        )))
        .bind(id.as_str())
        .bind(i64::from(lock_after))
        .bind(lock_until.0)
        .bind(now.0)
        .fetch_optional(ex)
        .await
        .map_err(|e| map_err(Op::Write, e))?;
        row.as_ref().map(account_from_row).transpose()
    }

    pub(super) async fn record_login_success<
        'e,
        E: sqlx::Executor<'e, Database = sqlx::Postgres>,
    >(
        ex: E,
        id: &AccountId,
        now: UnixTime,
    ) -> StoreResult<()> {
        // Writes only when there is something to clear, so most logins cost no write. A lock
        // still in force is kept: it may have been set by a concurrent failure.
        sqlx::query(
            "UPDATE accounts SET failed_logins = 0, \
                 locked_until = CASE WHEN locked_until <= $2 THEN NULL ELSE locked_until END, \
                 updated_at = $2 \
             WHERE id = $1 AND (failed_logins <> 0 OR locked_until <= $2)",
        )
        .bind(id.as_str())
        .bind(now.0)
        .execute(ex)
        .await
        .map_err(|e| map_err(Op::Write, e))?;
        Ok(())
    }

    pub(super) async fn create_session<'e, E: sqlx::Executor<'e, Database = sqlx::Postgres>>(
        ex: E,
        session: &Session,
    ) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO sessions (id, token_hash, account_id, created_at, last_seen_at, \
             expires_at, csrf, amr, ip, user_agent) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
        )
        .bind(session.id.as_str())
        .bind(&session.token_hash.0[..])
        .bind(session.account_id.as_str())
        .bind(session.created_at.0)
        .bind(session.last_seen_at.0)
        .bind(session.expires_at.0)
        .bind(session.csrf.as_str())
        .bind(json_list(&session.amr))
        .bind(session.ip.as_deref())
        .bind(session.user_agent.as_deref())
        .execute(ex)
        .await
        .map_err(|e| map_err(Op::CreateSession, e))?;
        Ok(())
    }

    pub(super) async fn append_audit<'e, E: sqlx::Executor<'e, Database = sqlx::Postgres>>(
        ex: E,
        event: &AuditEvent,
    ) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO audit (at, kind, account_id, username, ip, detail) \
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(event.at.0)
        .bind(event.kind.as_str())
        .bind(event.account_id.as_ref().map(AccountId::as_str))
        .bind(event.username.as_deref())
        .bind(event.ip.as_deref())
        .bind(event.detail.as_deref())
        .execute(ex)
        .await
        .map_err(|e| map_err(Op::Write, e))?;
        Ok(())
    }
}

#[async_trait]
impl Store for PgStore {
    async fn ping(&self) -> StoreResult<()> {
        sqlx::query("SELECT 1")
            .execute(&self.pool)
            .await
            .map_err(|e| map_err(Op::Read, e))?;
        Ok(())
    }

    fn backend(&self) -> &'static str {
        "postgres"
    }
}

/// A `COUNT(*)` result as `u64`.
fn count(result: Result<i64, sqlx::Error>) -> StoreResult<u64> {
    let n = result.map_err(|e| map_err(Op::Read, e))?;
    u64::try_from(n).map_err(|_| StoreError::Corrupt("negative count".into()))
}

#[cfg(test)]
mod tests;
