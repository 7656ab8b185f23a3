//! The one implementation of the `tessera_domain::store` traits, expanded for a backend's store
//! type by [`sql_store!`](crate::sql_store).

/// Columns of `accounts` in the order `decode::account_from_row` reads them (by name).
pub const ACCOUNT_COLUMNS: &str = "id, username, email, groups, role, disabled, password_hash, \
     failed_logins, locked_until, created_at, updated_at, mfa_required";

/// Columns of `factors` read by `decode::factor_from_row`.
pub const FACTOR_COLUMNS: &str = "id, account_id, kind, label, status, created_at, last_used_at, \
     failures, locked_at, last_sent_at, secret, algorithm, digits, period, last_step, \
     next_counter, address";

/// Columns of `pending_logins` read by `decode::pending_from_row`.
pub const PENDING_COLUMNS: &str = "token_hash, account_id, amr, auth_time, expires_at, ip, \
     user_agent, tries, enrol_only";

/// Columns of `sent_codes` read by `decode::sent_code_from_row`.
pub const SENT_CODE_COLUMNS: &str = "id, factor_id, hash, created_at, expires_at, tries, used_at";

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
            use $crate::__private::tessera_domain::factor::{
                Factor, FactorData, FactorId, FactorUse, PendingLogin, ResendThrottle,
                SealedSecret, SentCode, SentCodeId, Throttled,
            };
            use $crate::__private::tessera_domain::session::{Session, SessionId, TokenHash};
            use $crate::__private::tessera_domain::store::{
                AccountStore, AdminTokenStore, AuditStore, ChangeStore, FactorStore, LoginStore,
                SecondStepRefused, SecretStore, SessionStore, StaleLogin, Store, StoreResult,
            };
            use $crate::Backend as _;
            use $crate::decode::{
                self, account_from_row, admin_token_from_row, audit_from_row, groups_json,
                change_from_row, factor_from_row, json_list, pending_from_row, sent_code_from_row,
                session_from_row,
            };
            use $crate::error::Op;
            use $crate::store::{
                ACCOUNT_COLUMNS, FACTOR_COLUMNS, PENDING_COLUMNS, SENT_CODE_COLUMNS,
                SESSION_COLUMNS,
            };

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

            /// The sign-in guard, the first statement of a sign-in's transaction (see
            /// `commit_login_success`): the account exists, is neither disabled nor locked at
            /// `now`, and its hash is still `checked`; then the failure count is cleared and the
            /// rehash applied.
            async fn login_guard(
                tx: &mut sqlx::Transaction<'_, Db>,
                account: &AccountId,
                now: UnixTime,
                checked: &PasswordHash,
                rehash: Option<&PasswordHash>,
            ) -> StoreResult<Result<(), StaleLogin>> {
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
                .bind(account.as_str())
                .bind(now.0)
                .bind(rehash.map(PasswordHash::as_str))
                .bind(checked.as_str())
                .fetch_optional(&mut **tx)
                .await
                .map_err(err(Op::Write))?;
                if current.is_none() {
                    let row: Option<(bool, Option<i64>)> = sqlx::query_as(
                        "SELECT disabled, locked_until FROM accounts WHERE id = $1",
                    )
                    .bind(account.as_str())
                    .fetch_optional(&mut **tx)
                    .await
                    .map_err(err(Op::Read))?;
                    return Ok(Err(match row {
                        None => StaleLogin::Gone,
                        Some((true, _)) => StaleLogin::Disabled,
                        Some((_, Some(until))) if until > now.0 => StaleLogin::Locked,
                        Some(_) => StaleLogin::CredentialChanged,
                    }));
                }
                Ok(Ok(()))
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
                        mfa_required: false,
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
                    if let Err(stale) = login_guard(
                        &mut tx,
                        &session.account_id,
                        now,
                        checked,
                        rehash,
                    )
                    .await?
                    {
                        return Ok(Err(stale));
                    }
                    // After the guard (which holds the account's lock): a factor enrolled or a
                    // requirement set while the password was checked forbids a one-step session.
                    let second: bool = sqlx::query_scalar(
                        "SELECT mfa_required OR EXISTS (SELECT 1 FROM factors \
                             WHERE account_id = $1 AND status = 'active' \
                               AND locked_at IS NULL AND kind <> 'recovery') \
                         FROM accounts WHERE id = $1",
                    )
                    .bind(session.account_id.as_str())
                    .fetch_one(&mut *tx)
                    .await
                    .map_err(err(Op::Read))?;
                    if second {
                        return Ok(Err(StaleLogin::SecondFactorNeeded));
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
                    // A sign-in half-way through its second step checked the old password.
                    sqlx::query("DELETE FROM pending_logins WHERE account_id = $1")
                        .bind(id.as_str())
                        .execute(&mut *tx)
                        .await
                        .map_err(err(Op::Write))?;
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


            /// A step or counter as the BIGINT it is stored in.
            fn big(value: u64) -> StoreResult<i64> {
                i64::try_from(value).map_err(|_| StoreError::Other("value out of range".into()))
            }

            /// Applies a proof's compare-and-set inside `tx`: true if it changed the rows it
            /// must (the caller rolls back otherwise).
            async fn apply_use(
                tx: &mut sqlx::Transaction<'_, Db>,
                account: &AccountId,
                proof: &FactorUse,
                now: UnixTime,
            ) -> StoreResult<bool> {
                let status = |activate: bool| if activate { "pending" } else { "active" };
                let done = match proof {
                    // RFC 6238 §5.2: a step is accepted once; `last_step < $3` is the
                    // compare-and-set that makes a racing node's identical step change nothing.
                    FactorUse::Totp { factor, step, activate } => sqlx::query(
                        "UPDATE factors SET last_step = $3, failures = 0, last_used_at = $4, \
                             status = 'active' \
                         WHERE id = $1 AND account_id = $2 AND kind = 'totp' \
                           AND locked_at IS NULL AND status = $5 \
                           AND (last_step IS NULL OR last_step < $3)",
                    )
                    .bind(factor.as_str())
                    .bind(account.as_str())
                    .bind(big(*step)?)
                    .bind(now.0)
                    .bind(status(*activate))
                    .execute(&mut **tx)
                    .await
                    .map_err(err(Op::Write))?
                    .rows_affected(),
                    // RFC 4226 §7.2: the counter only moves forward.
                    FactorUse::Hotp { factor, counter } => {
                        let next = big(counter.saturating_add(1))?;
                        sqlx::query(
                            "UPDATE factors SET next_counter = $3, failures = 0, \
                                 last_used_at = $4 \
                             WHERE id = $1 AND account_id = $2 AND kind = 'hotp' \
                               AND locked_at IS NULL AND status = 'active' \
                               AND next_counter < $3",
                        )
                        .bind(factor.as_str())
                        .bind(account.as_str())
                        .bind(next)
                        .bind(now.0)
                        .execute(&mut **tx)
                        .await
                        .map_err(err(Op::Write))?
                        .rows_affected()
                    }
                    FactorUse::SentCode { factor, code, activate } => {
                        let touched = sqlx::query(
                            "UPDATE factors SET failures = 0, last_used_at = $3, \
                                 status = 'active' \
                             WHERE id = $1 AND account_id = $2 AND kind IN ('email', 'sms') \
                               AND locked_at IS NULL AND status = $4",
                        )
                        .bind(factor.as_str())
                        .bind(account.as_str())
                        .bind(now.0)
                        .bind(status(*activate))
                        .execute(&mut **tx)
                        .await
                        .map_err(err(Op::Write))?
                        .rows_affected();
                        if touched != 1 {
                            return Ok(false);
                        }
                        sqlx::query(
                            "UPDATE sent_codes SET used_at = $3 \
                             WHERE id = $1 AND factor_id = $2 AND used_at IS NULL \
                               AND expires_at > $3",
                        )
                        .bind(code.0.as_str())
                        .bind(factor.as_str())
                        .bind(now.0)
                        .execute(&mut **tx)
                        .await
                        .map_err(err(Op::Write))?
                        .rows_affected()
                    }
                    FactorUse::Recovery { factor, hash } => {
                        let touched = sqlx::query(
                            "UPDATE factors SET failures = 0, last_used_at = $3 \
                             WHERE id = $1 AND account_id = $2 AND kind = 'recovery' \
                               AND locked_at IS NULL AND status = 'active'",
                        )
                        .bind(factor.as_str())
                        .bind(account.as_str())
                        .bind(now.0)
                        .execute(&mut **tx)
                        .await
                        .map_err(err(Op::Write))?
                        .rows_affected();
                        if touched != 1 {
                            return Ok(false);
                        }
                        sqlx::query(
                            "UPDATE recovery_codes SET used_at = $3 \
                             WHERE factor_id = $1 AND hash = $2 AND used_at IS NULL",
                        )
                        .bind(factor.as_str())
                        .bind(&hash[..])
                        .bind(now.0)
                        .execute(&mut **tx)
                        .await
                        .map_err(err(Op::Write))?
                        .rows_affected()
                    }
                };
                Ok(done == 1)
            }

            /// Inserts a factor (no commit).
            async fn insert_factor<'e, E: sqlx::Executor<'e, Database = Db>>(
                ex: E,
                f: &Factor,
                on_conflict_nothing: bool,
            ) -> StoreResult<()> {
                let (secret, algorithm, digits, period, last_step, next_counter, address): (
                    Option<&[u8]>,
                    Option<&str>,
                    Option<i64>,
                    Option<i64>,
                    Option<i64>,
                    Option<i64>,
                    Option<&str>,
                ) = match &f.data {
                    FactorData::Totp { secret, algorithm, digits, period, last_step } => (
                        Some(&secret.0[..]),
                        Some(algorithm.as_str()),
                        Some(i64::from(*digits)),
                        Some(i64::from(*period)),
                        last_step.map(big).transpose()?,
                        None,
                        None,
                    ),
                    FactorData::Hotp { secret, algorithm, digits, next_counter } => (
                        Some(&secret.0[..]),
                        Some(algorithm.as_str()),
                        Some(i64::from(*digits)),
                        None,
                        None,
                        Some(big(*next_counter)?),
                        None,
                    ),
                    FactorData::Email { address } => {
                        (None, None, None, None, None, None, Some(address.as_str()))
                    }
                    FactorData::Sms { phone } => {
                        (None, None, None, None, None, None, Some(phone.as_str()))
                    }
                    FactorData::Recovery => (None, None, None, None, None, None, None),
                };
                let sql = if on_conflict_nothing {
                    "INSERT INTO factors (id, account_id, kind, label, status, created_at, \
                     last_used_at, failures, locked_at, last_sent_at, secret, algorithm, digits, \
                     period, last_step, next_counter, address) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, \
                     $16, $17) ON CONFLICT (id) DO NOTHING"
                } else {
                    "INSERT INTO factors (id, account_id, kind, label, status, created_at, \
                     last_used_at, failures, locked_at, last_sent_at, secret, algorithm, digits, \
                     period, last_step, next_counter, address) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, \
                     $16, $17)"
                };
                sqlx::query(sql)
                    .bind(f.id.as_str())
                    .bind(f.account_id.as_str())
                    .bind(f.kind().as_str())
                    .bind(f.label.as_str())
                    .bind(f.status.as_str())
                    .bind(f.created_at.0)
                    .bind(f.last_used_at.map(|t| t.0))
                    .bind(i64::from(f.failures))
                    .bind(f.locked_at.map(|t| t.0))
                    .bind(f.last_sent_at.map(|t| t.0))
                    .bind(secret)
                    .bind(algorithm)
                    .bind(digits)
                    .bind(period)
                    .bind(last_step)
                    .bind(next_counter)
                    .bind(address)
                    .execute(ex)
                    .await
                    .map_err(err(Op::CreateFactor))?;
                Ok(())
            }

            #[$crate::__private::async_trait]
            impl FactorStore for $store {
                async fn create_factor(
                    &self,
                    factor: &Factor,
                    event: Option<&AuditEvent>,
                ) -> StoreResult<()> {
                    let mut tx = self.writer().begin().await.map_err(err(Op::Write))?;
                    insert_factor(&mut *tx, factor, false).await?;
                    if let Some(event) = event {
                        append_audit(&mut *tx, event).await?;
                    }
                    tx.commit().await.map_err(err(Op::Write))?;
                    Ok(())
                }

                async fn factor_by_id(&self, id: &FactorId) -> StoreResult<Option<Factor>> {
                    let row = sqlx::query(sqlx::AssertSqlSafe(format!(
                        "SELECT {FACTOR_COLUMNS} FROM factors WHERE id = $1"
                    )))
                    .bind(id.as_str())
                    .fetch_optional(self.reader())
                    .await
                    .map_err(err(Op::Read))?;
                    row.as_ref().map(factor_from_row).transpose()
                }

                async fn factors_of(&self, account: &AccountId) -> StoreResult<Vec<Factor>> {
                    let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
                        "SELECT {FACTOR_COLUMNS} FROM factors WHERE account_id = $1 \
                         ORDER BY created_at, id {}",
                        <$store as $crate::Backend>::BYTE_ORDER
                    )))
                    .bind(account.as_str())
                    .fetch_all(self.reader())
                    .await
                    .map_err(err(Op::Read))?;
                    rows.iter().map(factor_from_row).collect()
                }

                async fn set_mfa_required(
                    &self,
                    account: &AccountId,
                    required: bool,
                    now: UnixTime,
                    event: &AuditEvent,
                ) -> StoreResult<bool> {
                    let mut tx = self.writer().begin().await.map_err(err(Op::Write))?;
                    let done = sqlx::query(
                        "UPDATE accounts SET mfa_required = $2, updated_at = $3 WHERE id = $1",
                    )
                    .bind(account.as_str())
                    .bind(required)
                    .bind(now.0)
                    .execute(&mut *tx)
                    .await
                    .map_err(err(Op::Write))?;
                    if done.rows_affected() == 0 {
                        return Ok(false);
                    }
                    append_audit(&mut *tx, event).await?;
                    tx.commit().await.map_err(err(Op::Write))?;
                    Ok(true)
                }

                async fn use_factor(
                    &self,
                    account: &AccountId,
                    proof: &FactorUse,
                    now: UnixTime,
                    event: &AuditEvent,
                ) -> StoreResult<bool> {
                    let mut tx = self.writer().begin().await.map_err(err(Op::Write))?;
                    if !apply_use(&mut tx, account, proof, now).await? {
                        return Ok(false);
                    }
                    append_audit(&mut *tx, event).await?;
                    tx.commit().await.map_err(err(Op::Write))?;
                    Ok(true)
                }

                async fn record_factor_failure(
                    &self,
                    id: &FactorId,
                    lock_after: u32,
                    now: UnixTime,
                    event: &AuditEvent,
                    lock_event: &AuditEvent,
                ) -> StoreResult<Option<Factor>> {
                    let mut tx = self.writer().begin().await.map_err(err(Op::Write))?;
                    // One statement (NIST SP 800-63B-4 §3.2.2): the count and the lock are
                    // decided on the row under its write lock, so concurrent failures on any
                    // node are all counted and the lock is set exactly once.
                    let row = sqlx::query(sqlx::AssertSqlSafe(format!(
                        "UPDATE factors SET failures = failures + 1, \
                             locked_at = CASE WHEN failures + 1 >= $2 THEN $3 ELSE NULL END \
                         WHERE id = $1 AND locked_at IS NULL RETURNING {FACTOR_COLUMNS}"
                    )))
                    .bind(id.as_str())
                    .bind(i64::from(lock_after))
                    .bind(now.0)
                    .fetch_optional(&mut *tx)
                    .await
                    .map_err(err(Op::Write))?;
                    let after = row.as_ref().map(factor_from_row).transpose()?;
                    append_audit(&mut *tx, event).await?;
                    if after.as_ref().is_some_and(|f| f.locked_at.is_some()) {
                        append_audit(&mut *tx, lock_event).await?;
                    }
                    tx.commit().await.map_err(err(Op::Write))?;
                    Ok(after)
                }

                async fn unlock_factor(&self, id: &FactorId, event: &AuditEvent) -> StoreResult<bool> {
                    let mut tx = self.writer().begin().await.map_err(err(Op::Write))?;
                    let done = sqlx::query(
                        "UPDATE factors SET failures = 0, locked_at = NULL WHERE id = $1",
                    )
                    .bind(id.as_str())
                    .execute(&mut *tx)
                    .await
                    .map_err(err(Op::Write))?;
                    if done.rows_affected() == 0 {
                        return Ok(false);
                    }
                    append_audit(&mut *tx, event).await?;
                    tx.commit().await.map_err(err(Op::Write))?;
                    Ok(true)
                }

                async fn advance_hotp_counter(
                    &self,
                    account: &AccountId,
                    id: &FactorId,
                    next: u64,
                    event: &AuditEvent,
                ) -> StoreResult<bool> {
                    let mut tx = self.writer().begin().await.map_err(err(Op::Write))?;
                    let done = sqlx::query(
                        "UPDATE factors SET next_counter = $3, failures = 0 \
                         WHERE id = $1 AND account_id = $2 AND kind = 'hotp' \
                           AND locked_at IS NULL AND next_counter < $3",
                    )
                    .bind(id.as_str())
                    .bind(account.as_str())
                    .bind(big(next)?)
                    .execute(&mut *tx)
                    .await
                    .map_err(err(Op::Write))?;
                    if done.rows_affected() == 0 {
                        return Ok(false);
                    }
                    append_audit(&mut *tx, event).await?;
                    tx.commit().await.map_err(err(Op::Write))?;
                    Ok(true)
                }

                async fn remove_factor(
                    &self,
                    account: &AccountId,
                    id: &FactorId,
                    event: &AuditEvent,
                ) -> StoreResult<bool> {
                    let mut tx = self.writer().begin().await.map_err(err(Op::Write))?;
                    let done = sqlx::query("DELETE FROM factors WHERE id = $1 AND account_id = $2")
                        .bind(id.as_str())
                        .bind(account.as_str())
                        .execute(&mut *tx)
                        .await
                        .map_err(err(Op::Write))?;
                    if done.rows_affected() == 0 {
                        return Ok(false);
                    }
                    append_audit(&mut *tx, event).await?;
                    tx.commit().await.map_err(err(Op::Write))?;
                    Ok(true)
                }

                async fn remove_factors_of(
                    &self,
                    account: &AccountId,
                    event: &AuditEvent,
                ) -> StoreResult<u64> {
                    let mut tx = self.writer().begin().await.map_err(err(Op::Write))?;
                    let done = sqlx::query("DELETE FROM factors WHERE account_id = $1")
                        .bind(account.as_str())
                        .execute(&mut *tx)
                        .await
                        .map_err(err(Op::Write))?;
                    sqlx::query("DELETE FROM pending_logins WHERE account_id = $1")
                        .bind(account.as_str())
                        .execute(&mut *tx)
                        .await
                        .map_err(err(Op::Write))?;
                    append_audit(&mut *tx, event).await?;
                    tx.commit().await.map_err(err(Op::Write))?;
                    Ok(done.rows_affected())
                }

                async fn sealed_secrets(&self) -> StoreResult<Vec<(FactorId, SealedSecret)>> {
                    let rows: Vec<(String, Vec<u8>)> = sqlx::query_as(
                        "SELECT id, secret FROM factors WHERE secret IS NOT NULL ORDER BY id",
                    )
                    .fetch_all(self.writer())
                    .await
                    .map_err(err(Op::Read))?;
                    rows.into_iter()
                        .map(|(id, secret)| {
                            FactorId::parse(&id)
                                .map(|id| (id, SealedSecret(secret)))
                                .map_err(|_| StoreError::Corrupt("stored factor id is malformed".into()))
                        })
                        .collect()
                }

                async fn reseal_secrets(
                    &self,
                    updates: &[(FactorId, SealedSecret, SealedSecret)],
                    event: &AuditEvent,
                ) -> StoreResult<Result<u64, FactorId>> {
                    let mut tx = self.writer().begin().await.map_err(err(Op::Write))?;
                    for (id, old, new) in updates {
                        let done = sqlx::query(
                            "UPDATE factors SET secret = $3 WHERE id = $1 AND secret = $2",
                        )
                        .bind(id.as_str())
                        .bind(&old.0[..])
                        .bind(&new.0[..])
                        .execute(&mut *tx)
                        .await
                        .map_err(err(Op::Write))?;
                        if done.rows_affected() != 1 {
                            // Dropping the transaction rolls every earlier update back.
                            return Ok(Err(id.clone()));
                        }
                    }
                    append_audit(&mut *tx, event).await?;
                    tx.commit().await.map_err(err(Op::Write))?;
                    Ok(Ok(updates.len() as u64))
                }

                async fn replace_recovery_codes(
                    &self,
                    factor: &Factor,
                    hashes: &[[u8; 32]],
                    now: UnixTime,
                    event: &AuditEvent,
                ) -> StoreResult<()> {
                    let mut tx = self.writer().begin().await.map_err(err(Op::Write))?;
                    insert_factor(&mut *tx, factor, true).await?;
                    sqlx::query("DELETE FROM recovery_codes WHERE factor_id = $1")
                        .bind(factor.id.as_str())
                        .execute(&mut *tx)
                        .await
                        .map_err(err(Op::Write))?;
                    for hash in hashes {
                        sqlx::query(
                            "INSERT INTO recovery_codes (factor_id, hash, created_at) \
                             VALUES ($1, $2, $3)",
                        )
                        .bind(factor.id.as_str())
                        .bind(&hash[..])
                        .bind(now.0)
                        .execute(&mut *tx)
                        .await
                        .map_err(err(Op::Write))?;
                    }
                    append_audit(&mut *tx, event).await?;
                    tx.commit().await.map_err(err(Op::Write))?;
                    Ok(())
                }

                async fn recovery_codes_left(&self, factor: &FactorId) -> StoreResult<u64> {
                    count(
                        sqlx::query_scalar(
                            "SELECT COUNT(*) FROM recovery_codes \
                             WHERE factor_id = $1 AND used_at IS NULL",
                        )
                        .bind(factor.as_str())
                        .fetch_one(self.reader())
                        .await,
                    )
                }

                async fn issue_sent_code(
                    &self,
                    code: &SentCode,
                    throttle: ResendThrottle,
                    event: &AuditEvent,
                ) -> StoreResult<Result<(), Throttled>> {
                    let now = code.created_at;
                    let mut tx = self.writer().begin().await.map_err(err(Op::Write))?;
                    // The compare-and-set on `last_sent_at` takes the factor's row lock: two
                    // nodes issuing at once are serialized, and the second sees the first's time.
                    let claimed: Option<String> = sqlx::query_scalar(
                        "UPDATE factors SET last_sent_at = $2 \
                         WHERE id = $1 AND kind IN ('email', 'sms') AND locked_at IS NULL \
                           AND (last_sent_at IS NULL OR last_sent_at <= $3) RETURNING id",
                    )
                    .bind(code.factor_id.as_str())
                    .bind(now.0)
                    .bind(now.0.saturating_sub(throttle.min_interval))
                    .fetch_optional(&mut *tx)
                    .await
                    .map_err(err(Op::Write))?;
                    if claimed.is_none() {
                        let usable: bool = sqlx::query_scalar(
                            "SELECT EXISTS (SELECT 1 FROM factors WHERE id = $1 \
                             AND kind IN ('email', 'sms') AND locked_at IS NULL)",
                        )
                        .bind(code.factor_id.as_str())
                        .fetch_one(&mut *tx)
                        .await
                        .map_err(err(Op::Read))?;
                        return Ok(Err(if usable {
                            Throttled::TooSoon
                        } else {
                            Throttled::Unavailable
                        }));
                    }
                    let recent = count(
                        sqlx::query_scalar(
                            "SELECT COUNT(*) FROM sent_codes \
                             WHERE factor_id = $1 AND created_at > $2",
                        )
                        .bind(code.factor_id.as_str())
                        .bind(now.0.saturating_sub(3600))
                        .fetch_one(&mut *tx)
                        .await,
                    )?;
                    if recent >= u64::from(throttle.per_hour) {
                        return Ok(Err(Throttled::HourlyLimit));
                    }
                    // Earlier codes stop working: only the newest is live.
                    sqlx::query(
                        "UPDATE sent_codes SET used_at = $2 \
                         WHERE factor_id = $1 AND used_at IS NULL",
                    )
                    .bind(code.factor_id.as_str())
                    .bind(now.0)
                    .execute(&mut *tx)
                    .await
                    .map_err(err(Op::Write))?;
                    sqlx::query(
                        "INSERT INTO sent_codes (id, factor_id, hash, created_at, expires_at, \
                         tries, used_at) VALUES ($1, $2, $3, $4, $5, 0, NULL)",
                    )
                    .bind(code.id.0.as_str())
                    .bind(code.factor_id.as_str())
                    .bind(&code.hash[..])
                    .bind(now.0)
                    .bind(code.expires_at.0)
                    .execute(&mut *tx)
                    .await
                    .map_err(err(Op::Write))?;
                    append_audit(&mut *tx, event).await?;
                    tx.commit().await.map_err(err(Op::Write))?;
                    Ok(Ok(()))
                }

                async fn live_sent_code(
                    &self,
                    factor: &FactorId,
                    now: UnixTime,
                ) -> StoreResult<Option<SentCode>> {
                    let row = sqlx::query(sqlx::AssertSqlSafe(format!(
                        "SELECT {SENT_CODE_COLUMNS} FROM sent_codes \
                         WHERE factor_id = $1 AND used_at IS NULL AND expires_at > $2 \
                         ORDER BY created_at DESC, id DESC LIMIT 1"
                    )))
                    .bind(factor.as_str())
                    .bind(now.0)
                    .fetch_optional(self.reader())
                    .await
                    .map_err(err(Op::Read))?;
                    row.as_ref().map(sent_code_from_row).transpose()
                }

                async fn reserve_sent_code_try(
                    &self,
                    id: &SentCodeId,
                    max_tries: u32,
                    now: UnixTime,
                ) -> StoreResult<bool> {
                    let done = sqlx::query(
                        "UPDATE sent_codes SET tries = tries + 1 \
                         WHERE id = $1 AND used_at IS NULL AND expires_at > $3 AND tries < $2",
                    )
                    .bind(id.0.as_str())
                    .bind(i64::from(max_tries))
                    .bind(now.0)
                    .execute(self.writer())
                    .await
                    .map_err(err(Op::Write))?;
                    Ok(done.rows_affected() == 1)
                }

                async fn pending_login(
                    &self,
                    hash: &TokenHash,
                    now: UnixTime,
                ) -> StoreResult<Option<PendingLogin>> {
                    let row = sqlx::query(sqlx::AssertSqlSafe(format!(
                        "SELECT {PENDING_COLUMNS} FROM pending_logins \
                         WHERE token_hash = $1 AND expires_at > $2"
                    )))
                    .bind(&hash.0[..])
                    .bind(now.0)
                    .fetch_optional(self.reader())
                    .await
                    .map_err(err(Op::Read))?;
                    row.as_ref().map(pending_from_row).transpose()
                }

                async fn record_pending_failure(
                    &self,
                    hash: &TokenHash,
                    max_tries: u32,
                ) -> StoreResult<bool> {
                    let mut tx = self.writer().begin().await.map_err(err(Op::Write))?;
                    let tries: Option<i64> = sqlx::query_scalar(
                        "UPDATE pending_logins SET tries = tries + 1 WHERE token_hash = $1 \
                         RETURNING tries",
                    )
                    .bind(&hash.0[..])
                    .fetch_optional(&mut *tx)
                    .await
                    .map_err(err(Op::Write))?;
                    let kept = match tries {
                        None => false,
                        Some(n) if n >= i64::from(max_tries) => {
                            sqlx::query("DELETE FROM pending_logins WHERE token_hash = $1")
                                .bind(&hash.0[..])
                                .execute(&mut *tx)
                                .await
                                .map_err(err(Op::Write))?;
                            false
                        }
                        Some(_) => true,
                    };
                    tx.commit().await.map_err(err(Op::Write))?;
                    Ok(kept)
                }

                async fn delete_pending_login(&self, hash: &TokenHash) -> StoreResult<bool> {
                    let done = sqlx::query("DELETE FROM pending_logins WHERE token_hash = $1")
                        .bind(&hash.0[..])
                        .execute(self.writer())
                        .await
                        .map_err(err(Op::Write))?;
                    Ok(done.rows_affected() == 1)
                }

                async fn delete_expired_factor_state(&self, now: UnixTime) -> StoreResult<u64> {
                    let pending = sqlx::query("DELETE FROM pending_logins WHERE expires_at <= $1")
                        .bind(now.0)
                        .execute(self.writer())
                        .await
                        .map_err(err(Op::Write))?;
                    let codes = sqlx::query("DELETE FROM sent_codes WHERE expires_at <= $1")
                        .bind(now.0.saturating_sub(3600))
                        .execute(self.writer())
                        .await
                        .map_err(err(Op::Write))?;
                    Ok(pending.rows_affected() + codes.rows_affected())
                }

                async fn commit_login_pending(
                    &self,
                    pending: &PendingLogin,
                    checked: &PasswordHash,
                    rehash: Option<&PasswordHash>,
                    event: &AuditEvent,
                ) -> StoreResult<Result<(), StaleLogin>> {
                    let mut tx = self.writer().begin().await.map_err(err(Op::Write))?;
                    if let Err(stale) =
                        login_guard(&mut tx, &pending.account_id, pending.auth_time, checked, rehash)
                            .await?
                    {
                        return Ok(Err(stale));
                    }
                    sqlx::query(
                        "INSERT INTO pending_logins (token_hash, account_id, amr, auth_time, \
                         expires_at, ip, user_agent, tries, enrol_only) \
                         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
                    )
                    .bind(&pending.token_hash.0[..])
                    .bind(pending.account_id.as_str())
                    .bind(json_list(&pending.amr))
                    .bind(pending.auth_time.0)
                    .bind(pending.expires_at.0)
                    .bind(pending.ip.as_deref())
                    .bind(pending.user_agent.as_deref())
                    .bind(i64::from(pending.tries))
                    .bind(pending.enrol_only)
                    .execute(&mut *tx)
                    .await
                    .map_err(err(Op::Write))?;
                    append_audit(&mut *tx, event).await?;
                    tx.commit().await.map_err(err(Op::Write))?;
                    Ok(Ok(()))
                }

                async fn commit_second_factor(
                    &self,
                    pending: &TokenHash,
                    proof: &FactorUse,
                    session: &Session,
                    events: &[AuditEvent],
                ) -> StoreResult<Result<(), SecondStepRefused>> {
                    let now = session.created_at;
                    let account = &session.account_id;
                    let mut tx = self.writer().begin().await.map_err(err(Op::Write))?;
                    // Single use: the DELETE is the compare-and-set on the pending state.
                    let consumed = sqlx::query(
                        "DELETE FROM pending_logins \
                         WHERE token_hash = $1 AND account_id = $2 AND expires_at > $3",
                    )
                    .bind(&pending.0[..])
                    .bind(account.as_str())
                    .bind(now.0)
                    .execute(&mut *tx)
                    .await
                    .map_err(err(Op::Write))?;
                    if consumed.rows_affected() != 1 {
                        return Ok(Err(SecondStepRefused::PendingGone));
                    }
                    // The account's row lock, as in the password step's guard: a disable or a
                    // lock either lands before (and this fails) or after (and sees the session).
                    let usable: Option<String> = sqlx::query_scalar(
                        "UPDATE accounts SET updated_at = updated_at \
                         WHERE id = $1 AND NOT disabled \
                           AND (locked_until IS NULL OR locked_until <= $2) RETURNING id",
                    )
                    .bind(account.as_str())
                    .bind(now.0)
                    .fetch_optional(&mut *tx)
                    .await
                    .map_err(err(Op::Write))?;
                    if usable.is_none() {
                        return Ok(Err(SecondStepRefused::AccountUnusable));
                    }
                    if !apply_use(&mut tx, account, proof, now).await? {
                        return Ok(Err(SecondStepRefused::ProofRejected));
                    }
                    create_session(&mut *tx, session).await?;
                    for event in events {
                        append_audit(&mut *tx, event).await?;
                    }
                    tx.commit().await.map_err(err(Op::Write))?;
                    Ok(Ok(()))
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
