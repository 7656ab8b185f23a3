//! The one implementation of the `tessera_domain::store` traits, expanded for a backend's store
//! type by [`sql_store!`](crate::sql_store).

/// Columns of `accounts` in the order `decode::account_from_row` reads them (by name).
pub const ACCOUNT_COLUMNS: &str = "id, username, email, groups, role, disabled, password_hash, \
     failed_logins, locked_until, created_at, updated_at";

/// Columns of `sessions` read by `decode::session_from_row`.
pub const SESSION_COLUMNS: &str = "id, token_hash, account_id, created_at, last_seen_at, \
     expires_at, csrf, amr, ip, user_agent";

/// Implements every `tessera_domain::store` trait (and `Store`) for `$store`, which must
/// implement [`Backend`](crate::Backend). Use once per backend crate, at its root:
/// `tessera_store_sql::sql_store!(SqliteStore);`.
#[macro_export]
macro_rules! sql_store {
    ($store:ty) => {
        const _: () = {
            use $crate::__private::sqlx;
            use $crate::__private::tessera_domain::StoreError;
            use $crate::__private::tessera_domain::account::{Account, AccountId, NewAccount, Username};
            use $crate::__private::tessera_domain::admin::AdminTokenRecord;
            use $crate::__private::tessera_domain::audit::AuditEvent;
            use $crate::__private::tessera_domain::change::{Change, ChangeRecord};
            use $crate::__private::tessera_domain::clock::UnixTime;
            use $crate::__private::tessera_domain::credential::password::PasswordHash;
            use $crate::__private::tessera_domain::session::{Session, SessionId, TokenHash};
            use $crate::__private::tessera_domain::store::{
                AccountStore, AdminTokenStore, AuditStore, ChangeStore, LoginStore, SecretStore,
                SessionStore, StaleLogin, Store, StoreResult,
            };
            use $crate::Backend as _;
            use $crate::decode::{
                self, account_from_row, admin_token_from_row, audit_from_row, groups_json,
                change_from_row, json_list, session_from_row,
            };
            use $crate::error::Op;
            use $crate::store::{ACCOUNT_COLUMNS, SESSION_COLUMNS};

            type Db = <$store as $crate::Backend>::Db;

            /// Maps a sqlx error from a call doing `op`.
            fn err(op: Op) -> impl Fn(sqlx::Error) -> StoreError {
                move |e| $crate::error::map_err::<$store>(op, e)
            }

            /// A `COUNT(*)` result as `u64`.
            fn count(result: Result<i64, sqlx::Error>) -> StoreResult<u64> {
                let n = result.map_err(err(Op::Read))?;
                u64::try_from(n).map_err(|_| StoreError::Corrupt("negative count".into()))
            }

            /// Appends `change` to the feed inside the caller's transaction (see `Backend`'s
            /// change lock and notification).
            async fn publish(
                tx: &mut sqlx::Transaction<'_, Db>,
                change: &Change,
            ) -> StoreResult<()> {
                if let Some(lock) = <$store as $crate::Backend>::CHANGE_LOCK_SQL {
                    sqlx::query(lock).execute(&mut **tx).await.map_err(err(Op::Write))?;
                }
                sqlx::query("INSERT INTO changes (kind, subject) VALUES ($1, $2)")
                    .bind(change.kind())
                    .bind(change.subject())
                    .execute(&mut **tx)
                    .await
                    .map_err(err(Op::Write))?;
                if let Some(notify) = <$store as $crate::Backend>::CHANGE_NOTIFY_SQL {
                    sqlx::query(notify).execute(&mut **tx).await.map_err(err(Op::Write))?;
                }
                Ok(())
            }

            /// Runs `statement` on the writer and, if it changed a row, publishes `change` in the
            /// same transaction. Returns whether a row changed.
            async fn write_publishing<'q>(
                store: &$store,
                statement: sqlx::query::Query<'q, Db, <Db as sqlx::Database>::Arguments>,
                change: Change,
            ) -> StoreResult<bool> {
                let mut tx = store.writer().begin().await.map_err(err(Op::Write))?;
                let done = statement.execute(&mut *tx).await.map_err(err(Op::Write))?;
                if done.rows_affected() == 0 {
                    return Ok(false);
                }
                publish(&mut tx, &change).await?;
                tx.commit().await.map_err(err(Op::Write))?;
                Ok(true)
            }

            // The statements shared by the single-call methods and the sign-in transactions
            // (`LoginStore`), generic over a pool or a transaction.

            async fn record_login_failure<'e, E: sqlx::Executor<'e, Database = Db>>(
                ex: E,
                id: &AccountId,
                lock_after: u32,
                lock_until: UnixTime,
                now: UnixTime,
            ) -> StoreResult<Option<Account>> {
                // One statement: the count, the lock and the restart are decided on the row as
                // it is when the write lock is held (SQLite), or re-evaluated on the newest row
                // version once the row lock is granted (PostgreSQL), so concurrent failures, on
                // one node or many, are all counted.
                let row = sqlx::query(sqlx::AssertSqlSafe(format!(
                    "UPDATE accounts SET \
                         locked_until = CASE WHEN failed_logins + 1 >= $2 THEN $3 \
                                             ELSE locked_until END, \
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
                .map_err(err(Op::Write))?;
                row.as_ref().map(account_from_row).transpose()
            }

            async fn record_login_success<'e, E: sqlx::Executor<'e, Database = Db>>(
                ex: E,
                id: &AccountId,
                now: UnixTime,
            ) -> StoreResult<()> {
                // Writes only when there is something to clear, so most logins cost no write. A
                // lock still in force is kept: it may have been set by a concurrent failure.
                sqlx::query(
                    "UPDATE accounts SET failed_logins = 0, \
                         locked_until = CASE WHEN locked_until <= $2 THEN NULL \
                                             ELSE locked_until END, \
                         updated_at = $2 \
                     WHERE id = $1 AND (failed_logins <> 0 OR locked_until <= $2)",
                )
                .bind(id.as_str())
                .bind(now.0)
                .execute(ex)
                .await
                .map_err(err(Op::Write))?;
                Ok(())
            }

            async fn create_session<'e, E: sqlx::Executor<'e, Database = Db>>(
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
                .map_err(err(Op::CreateSession))?;
                Ok(())
            }

            async fn append_audit<'e, E: sqlx::Executor<'e, Database = Db>>(
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
                .map_err(err(Op::Write))?;
                Ok(())
            }

            #[$crate::__private::async_trait]
            impl AccountStore for $store {
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
                        "INSERT INTO accounts (id, username, email, groups, role, disabled, \
                         password_hash, failed_logins, locked_until, created_at, updated_at) \
                         VALUES ($1, $2, $3, $4, $5, FALSE, $6, 0, NULL, $7, $7)",
                    )
                    .bind(id.as_str())
                    .bind(new.username.as_str())
                    .bind(new.email.as_ref().map(|e| e.as_str()))
                    .bind(groups_json(&groups))
                    .bind(new.role.as_str())
                    .bind(password.map(PasswordHash::as_str))
                    .bind(now.0)
                    .execute(self.writer())
                    .await
                    .map_err(err(Op::CreateAccount))?;
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
                    .fetch_optional(self.reader())
                    .await
                    .map_err(err(Op::Read))?;
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
                    .fetch_optional(self.reader())
                    .await
                    .map_err(err(Op::Read))?;
                    row.as_ref().map(account_from_row).transpose()
                }

                async fn list_accounts(&self) -> StoreResult<Vec<Account>> {
                    let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
                        "SELECT {ACCOUNT_COLUMNS} FROM accounts ORDER BY username{}",
                        <$store as $crate::Backend>::BYTE_ORDER
                    )))
                    .fetch_all(self.reader())
                    .await
                    .map_err(err(Op::Read))?;
                    rows.iter().map(account_from_row).collect()
                }

                async fn count_admins(&self) -> StoreResult<u64> {
                    count(
                        sqlx::query_scalar("SELECT COUNT(*) FROM accounts WHERE role = 'admin'")
                            .fetch_one(self.reader())
                            .await,
                    )
                }

                async fn set_disabled(
                    &self,
                    id: &AccountId,
                    disabled: bool,
                    now: UnixTime,
                ) -> StoreResult<bool> {
                    let statement = sqlx::query(
                        "UPDATE accounts SET disabled = $2, updated_at = $3 WHERE id = $1",
                    )
                    .bind(id.as_str())
                    .bind(disabled)
                    .bind(now.0);
                    write_publishing(self, statement, Change::AccountChanged(id.clone())).await
                }

                async fn password_params_in_use(&self) -> StoreResult<Vec<(String, u64)>> {
                    let rows: Vec<(String, i64)> =
                        sqlx::query_as(<$store as $crate::Backend>::PASSWORD_PARAMS_SQL)
                            .fetch_all(self.reader())
                            .await
                            .map_err(err(Op::Read))?;
                    rows.into_iter()
                        .map(|(params, n)| Ok((params, count(Ok(n))?)))
                        .collect()
                }

                async fn delete_account(&self, id: &AccountId) -> StoreResult<bool> {
                    // Sessions go with it (ON DELETE CASCADE; SQLite enforces foreign keys on
                    // every connection).
                    let statement = sqlx::query("DELETE FROM accounts WHERE id = $1")
                        .bind(id.as_str());
                    write_publishing(self, statement, Change::AccountChanged(id.clone())).await
                }

                async fn record_login_failure(
                    &self,
                    id: &AccountId,
                    lock_after: u32,
                    lock_until: UnixTime,
                    now: UnixTime,
                ) -> StoreResult<Option<Account>> {
                    record_login_failure(self.writer(), id, lock_after, lock_until, now).await
                }

                async fn record_login_success(
                    &self,
                    id: &AccountId,
                    now: UnixTime,
                ) -> StoreResult<()> {
                    record_login_success(self.writer(), id, now).await
                }

                async fn unlock(&self, id: &AccountId, now: UnixTime) -> StoreResult<bool> {
                    let done = sqlx::query(
                        "UPDATE accounts SET failed_logins = 0, locked_until = NULL, \
                         updated_at = $2 WHERE id = $1",
                    )
                    .bind(id.as_str())
                    .bind(now.0)
                    .execute(self.writer())
                    .await
                    .map_err(err(Op::Write))?;
                    Ok(done.rows_affected() > 0)
                }
            }

            #[$crate::__private::async_trait]
            impl SessionStore for $store {
                async fn create_session(&self, session: &Session) -> StoreResult<()> {
                    create_session(self.writer(), session).await
                }

                async fn session_by_token(&self, hash: &TokenHash) -> StoreResult<Option<Session>> {
                    let row = sqlx::query(sqlx::AssertSqlSafe(format!(
                        "SELECT {SESSION_COLUMNS} FROM sessions WHERE token_hash = $1"
                    )))
                    .bind(&hash.0[..])
                    .fetch_optional(self.reader())
                    .await
                    .map_err(err(Op::Read))?;
                    row.as_ref().map(session_from_row).transpose()
                }

                async fn sessions_of(&self, account: &AccountId) -> StoreResult<Vec<Session>> {
                    let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
                        "SELECT {SESSION_COLUMNS} FROM sessions WHERE account_id = $1 \
                         ORDER BY created_at DESC, id DESC"
                    )))
                    .bind(account.as_str())
                    .fetch_all(self.reader())
                    .await
                    .map_err(err(Op::Read))?;
                    rows.iter().map(session_from_row).collect()
                }

                async fn touch_sessions(
                    &self,
                    touches: &[(TokenHash, UnixTime)],
                ) -> StoreResult<()> {
                    if touches.is_empty() {
                        return Ok(());
                    }
                    <$store as $crate::Backend>::touch_sessions(self, touches).await
                }

                async fn delete_session(
                    &self,
                    account: &AccountId,
                    id: &SessionId,
                ) -> StoreResult<Option<TokenHash>> {
                    let mut tx = self.writer().begin().await.map_err(err(Op::Write))?;
                    let hash: Option<Vec<u8>> = sqlx::query_scalar(
                        "DELETE FROM sessions WHERE account_id = $1 AND id = $2 \
                         RETURNING token_hash",
                    )
                    .bind(account.as_str())
                    .bind(id.as_str())
                    .fetch_optional(&mut *tx)
                    .await
                    .map_err(err(Op::Write))?;
                    let Some(hash) = hash.map(decode::token_hash).transpose()? else {
                        return Ok(None);
                    };
                    publish(&mut tx, &Change::SessionRevoked(hash)).await?;
                    tx.commit().await.map_err(err(Op::Write))?;
                    Ok(Some(hash))
                }

                async fn delete_session_by_token(&self, hash: &TokenHash) -> StoreResult<bool> {
                    let statement = sqlx::query("DELETE FROM sessions WHERE token_hash = $1")
                        .bind(&hash.0[..]);
                    write_publishing(self, statement, Change::SessionRevoked(*hash)).await
                }

                async fn delete_sessions_of(
                    &self,
                    account: &AccountId,
                ) -> StoreResult<Vec<TokenHash>> {
                    let mut tx = self.writer().begin().await.map_err(err(Op::Write))?;
                    let hashes: Vec<Vec<u8>> = sqlx::query_scalar(
                        "DELETE FROM sessions WHERE account_id = $1 RETURNING token_hash",
                    )
                    .bind(account.as_str())
                    .fetch_all(&mut *tx)
                    .await
                    .map_err(err(Op::Write))?;
                    let hashes = hashes
                        .into_iter()
                        .map(decode::token_hash)
                        .collect::<StoreResult<Vec<_>>>()?;
                    if hashes.is_empty() {
                        return Ok(hashes);
                    }
                    publish(&mut tx, &Change::AccountSessionsRevoked(account.clone())).await?;
                    tx.commit().await.map_err(err(Op::Write))?;
                    Ok(hashes)
                }

                async fn delete_expired_sessions(
                    &self,
                    now: UnixTime,
                    idle_timeout: i64,
                ) -> StoreResult<u64> {
                    // Expired when `now >= expires_at` or `now >= last_seen_at + idle` (the
                    // complement of `Session::is_active`), with the sum moved to the constant
                    // side so it cannot overflow.
                    let done = sqlx::query(
                        "DELETE FROM sessions WHERE expires_at <= $1 OR last_seen_at <= $2",
                    )
                    .bind(now.0)
                    .bind(now.0.saturating_sub(idle_timeout))
                    .execute(self.writer())
                    .await
                    .map_err(err(Op::Write))?;
                    Ok(done.rows_affected())
                }

                async fn count_active_sessions(
                    &self,
                    now: UnixTime,
                    idle_timeout: i64,
                ) -> StoreResult<u64> {
                    count(
                        sqlx::query_scalar(
                            "SELECT COUNT(*) FROM sessions \
                             WHERE expires_at > $1 AND last_seen_at > $2",
                        )
                        .bind(now.0)
                        .bind(now.0.saturating_sub(idle_timeout))
                        .fetch_one(self.reader())
                        .await,
                    )
                }
            }

            #[$crate::__private::async_trait]
            impl AuditStore for $store {
                async fn append_audit(&self, event: &AuditEvent) -> StoreResult<()> {
                    append_audit(self.writer(), event).await
                }

                async fn recent_audit(&self, limit: u32) -> StoreResult<Vec<AuditEvent>> {
                    let rows = sqlx::query(
                        "SELECT at, kind, account_id, username, ip, detail FROM audit \
                         ORDER BY at DESC, id DESC LIMIT $1",
                    )
                    .bind(i64::from(limit))
                    .fetch_all(self.reader())
                    .await
                    .map_err(err(Op::Read))?;
                    rows.iter().map(audit_from_row).collect()
                }

                async fn prune_audit(&self, before: UnixTime) -> StoreResult<u64> {
                    let done = sqlx::query("DELETE FROM audit WHERE at < $1")
                        .bind(before.0)
                        .execute(self.writer())
                        .await
                        .map_err(err(Op::Write))?;
                    Ok(done.rows_affected())
                }
            }

            #[$crate::__private::async_trait]
            impl AdminTokenStore for $store {
                async fn create_admin_token(&self, record: &AdminTokenRecord) -> StoreResult<()> {
                    sqlx::query(
                        "INSERT INTO admin_tokens (hash, label, created_at) VALUES ($1, $2, $3)",
                    )
                    .bind(&record.hash[..])
                    .bind(record.label.as_str())
                    .bind(record.created_at.0)
                    .execute(self.writer())
                    .await
                    .map_err(err(Op::CreateAdminToken))?;
                    Ok(())
                }

                async fn admin_token_exists(&self, hash: &[u8; 32]) -> StoreResult<bool> {
                    sqlx::query_scalar(
                        "SELECT EXISTS (SELECT 1 FROM admin_tokens WHERE hash = $1)",
                    )
                    .bind(&hash[..])
                    .fetch_one(self.reader())
                    .await
                    .map_err(err(Op::Read))
                }

                async fn count_admin_tokens(&self) -> StoreResult<u64> {
                    count(
                        sqlx::query_scalar("SELECT COUNT(*) FROM admin_tokens")
                            .fetch_one(self.reader())
                            .await,
                    )
                }

                async fn list_admin_tokens(&self) -> StoreResult<Vec<AdminTokenRecord>> {
                    let rows = sqlx::query(
                        "SELECT hash, label, created_at FROM admin_tokens \
                         ORDER BY created_at, hash",
                    )
                    .fetch_all(self.reader())
                    .await
                    .map_err(err(Op::Read))?;
                    rows.iter().map(admin_token_from_row).collect()
                }

                async fn delete_admin_token(&self, hash: &[u8; 32]) -> StoreResult<bool> {
                    let statement = sqlx::query("DELETE FROM admin_tokens WHERE hash = $1")
                        .bind(&hash[..]);
                    write_publishing(self, statement, Change::AdminTokenRevoked(*hash)).await
                }
            }

            #[$crate::__private::async_trait]
            impl SecretStore for $store {
                async fn server_secret(&self, name: &str, candidate: &[u8]) -> StoreResult<Vec<u8>> {
                    // Both statements on the writer. On SQLite it is the only connection that
                    // writes; on PostgreSQL a racing node's INSERT waits for the first one's
                    // commit and then does nothing. Either way the SELECT sees the one value
                    // that was stored first, by this process or another.
                    sqlx::query(
                        "INSERT INTO server_secrets (name, value) VALUES ($1, $2) \
                         ON CONFLICT (name) DO NOTHING",
                    )
                    .bind(name)
                    .bind(candidate)
                    .execute(self.writer())
                    .await
                    .map_err(err(Op::Write))?;
                    sqlx::query_scalar("SELECT value FROM server_secrets WHERE name = $1")
                        .bind(name)
                        .fetch_one(self.writer())
                        .await
                        .map_err(err(Op::Read))
                }
            }

            #[$crate::__private::async_trait]
            impl LoginStore for $store {
                async fn commit_login_success(
                    &self,
                    session: &Session,
                    checked: &PasswordHash,
                    rehash: Option<&PasswordHash>,
                    event: &AuditEvent,
                ) -> StoreResult<Result<(), StaleLogin>> {
                    let now = session.created_at;
                    let mut tx = self.writer().begin().await.map_err(err(Op::Write))?;
                    // The guard is an UPDATE, the transaction's first statement. On SQLite it
                    // takes the write lock until the commit: no reset, lock or disable (in this
                    // process or another) lands in between. On PostgreSQL it takes the
                    // account's row lock, and when a reset, lock or disable holds that lock
                    // first, the WHERE is re-evaluated on the row as they left it. So a change
                    // either lands after this commit (and sees the session) or before the
                    // guard (which then fails).
                    let current: Option<String> = sqlx::query_scalar(
                        "UPDATE accounts SET \
                             password_hash = COALESCE($3, password_hash), \
                             failed_logins = 0, \
                             locked_until = NULL, \
                             updated_at = CASE WHEN $3 IS NOT NULL OR failed_logins <> 0 \
                                                 OR locked_until IS NOT NULL \
                                               THEN $2 ELSE updated_at END \
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
                    .map_err(err(Op::Write))?;
                    if current.is_none() {
                        let row: Option<(bool, Option<i64>)> = sqlx::query_as(
                            "SELECT disabled, locked_until FROM accounts WHERE id = $1",
                        )
                        .bind(session.account_id.as_str())
                        .fetch_optional(&mut *tx)
                        .await
                        .map_err(err(Op::Read))?;
                        return Ok(Err(match row {
                            None => StaleLogin::Gone,
                            Some((true, _)) => StaleLogin::Disabled,
                            Some((_, Some(until))) if until > now.0 => StaleLogin::Locked,
                            Some(_) => StaleLogin::CredentialChanged,
                        }));
                    }
                    create_session(&mut *tx, session).await?;
                    append_audit(&mut *tx, event).await?;
                    tx.commit().await.map_err(err(Op::Write))?;
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
                    let mut tx = self.writer().begin().await.map_err(err(Op::Write))?;
                    let after =
                        record_login_failure(&mut *tx, id, lock_after, lock_until, now).await?;
                    append_audit(&mut *tx, event).await?;
                    if after
                        .as_ref()
                        .is_some_and(|a| a.locked_until == Some(lock_until))
                    {
                        append_audit(&mut *tx, lock_event).await?;
                    }
                    tx.commit().await.map_err(err(Op::Write))?;
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
                    let mut tx = self.writer().begin().await.map_err(err(Op::Write))?;
                    // The hash first, taking the write lock (SQLite) or the row lock
                    // (PostgreSQL): a sign-in that checked the old hash either committed before
                    // (the DELETE below, a later statement with a later snapshot, sees its
                    // session) or waits and then fails its guard on the new hash.
                    let updated: Option<String> = sqlx::query_scalar(
                        "UPDATE accounts SET password_hash = $2, updated_at = $3 \
                         WHERE id = $1 AND ($4 IS NULL OR password_hash = $4) RETURNING id",
                    )
                    .bind(id.as_str())
                    .bind(hash.as_str())
                    .bind(now.0)
                    .bind(expected.map(PasswordHash::as_str))
                    .fetch_optional(&mut *tx)
                    .await
                    .map_err(err(Op::Write))?;
                    if updated.is_none() {
                        let exists: bool = sqlx::query_scalar(
                            "SELECT EXISTS (SELECT 1 FROM accounts WHERE id = $1)",
                        )
                        .bind(id.as_str())
                        .fetch_one(&mut *tx)
                        .await
                        .map_err(err(Op::Read))?;
                        return if exists {
                            Err(StoreError::Conflict("the password changed meanwhile"))
                        } else {
                            Ok(None)
                        };
                    }
                    let ended: Vec<Vec<u8>> = sqlx::query_scalar(
                        "DELETE FROM sessions WHERE account_id = $1 \
                         AND ($2 IS NULL OR token_hash <> $2) RETURNING token_hash",
                    )
                    .bind(id.as_str())
                    .bind(keep.map(|k| &k.0[..]))
                    .fetch_all(&mut *tx)
                    .await
                    .map_err(err(Op::Write))?;
                    let ended = ended
                        .into_iter()
                        .map(decode::token_hash)
                        .collect::<StoreResult<Vec<_>>>()?;
                    append_audit(&mut *tx, event).await?;
                    // Each ended session by its hash: the kept one stays valid in caches.
                    for hash in &ended {
                        publish(&mut tx, &Change::SessionRevoked(*hash)).await?;
                    }
                    tx.commit().await.map_err(err(Op::Write))?;
                    Ok(Some(ended))
                }
            }

            #[$crate::__private::async_trait]
            impl ChangeStore for $store {
                async fn changes_since(
                    &self,
                    position: u64,
                    limit: u32,
                ) -> StoreResult<Vec<ChangeRecord>> {
                    // Positions are BIGINT: one past the largest is past every change.
                    let after = i64::try_from(position).unwrap_or(i64::MAX);
                    let rows = sqlx::query(
                        "SELECT position, kind, subject FROM changes WHERE position > $1 \
                         ORDER BY position LIMIT $2",
                    )
                    .bind(after)
                    .bind(i64::from(limit))
                    .fetch_all(self.reader())
                    .await
                    .map_err(err(Op::Read))?;
                    rows.iter().map(change_from_row).collect()
                }

                async fn latest_change_position(&self) -> StoreResult<u64> {
                    count(
                        sqlx::query_scalar("SELECT COALESCE(MAX(position), 0) FROM changes")
                            .fetch_one(self.reader())
                            .await,
                    )
                }

                async fn prune_changes(&self, before: u64) -> StoreResult<u64> {
                    let before = i64::try_from(before).unwrap_or(i64::MAX);
                    let done = sqlx::query("DELETE FROM changes WHERE position < $1")
                        .bind(before)
                        .execute(self.writer())
                        .await
                        .map_err(err(Op::Write))?;
                    Ok(done.rows_affected())
                }

                async fn wait_for_change(
                    &self,
                ) -> StoreResult<$crate::__private::tessera_domain::store::ChangeWait> {
                    <$store as $crate::Backend>::wait_for_change(self).await
                }
            }

            #[$crate::__private::async_trait]
            impl Store for $store {
                async fn ping(&self) -> StoreResult<()> {
                    // The writer too: a server whose writes cannot get through is not ready.
                    for pool in [self.reader(), self.writer()] {
                        sqlx::query("SELECT 1")
                            .execute(pool)
                            .await
                            .map_err(err(Op::Read))?;
                    }
                    Ok(())
                }

                fn backend(&self) -> &'static str {
                    <$store as $crate::Backend>::NAME
                }
            }
        };
    };
}
