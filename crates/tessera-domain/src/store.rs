//! The storage traits, one per aggregate, implemented by `tessera-store-sqlite` and
//! `tessera-store-postgres` and tested by one conformance suite in `tessera-testkit`.
//! Domain types in and out; no SQL row crosses these traits. Every write that the caller relies
//! on is durable (committed) when the future resolves.

use async_trait::async_trait;

use crate::account::{Account, AccountId, NewAccount, Username};
use crate::admin::AdminTokenRecord;
use crate::audit::AuditEvent;
use crate::clock::UnixTime;
use crate::credential::password::PasswordHash;
use crate::error::StoreError;
use crate::session::{Session, SessionId, TokenHash};

/// Result of a store call.
pub type StoreResult<T> = Result<T, StoreError>;

/// Accounts and their password hashes.
#[async_trait]
pub trait AccountStore: Send + Sync {
    /// Creates an account; `Conflict` if the username is taken.
    async fn create_account(
        &self,
        new: &NewAccount,
        id: &AccountId,
        password: Option<&PasswordHash>,
        now: UnixTime,
    ) -> StoreResult<Account>;

    /// The account with this name, with its password hash if it has one.
    async fn account_by_username(
        &self,
        username: &Username,
    ) -> StoreResult<Option<(Account, Option<PasswordHash>)>>;

    /// The account with this id.
    async fn account_by_id(&self, id: &AccountId) -> StoreResult<Option<Account>>;

    /// All accounts, ordered by username.
    async fn list_accounts(&self) -> StoreResult<Vec<Account>>;

    /// Number of accounts with the admin role.
    async fn count_admins(&self) -> StoreResult<u64>;

    /// Sets the disabled flag; false if no such account.
    async fn set_disabled(
        &self,
        id: &AccountId,
        disabled: bool,
        now: UnixTime,
    ) -> StoreResult<bool>;

    /// Replaces the password hash; false if no such account.
    async fn set_password(
        &self,
        id: &AccountId,
        hash: &PasswordHash,
        now: UnixTime,
    ) -> StoreResult<bool>;

    /// Deletes an account with its sessions; false if no such account.
    async fn delete_account(&self, id: &AccountId) -> StoreResult<bool>;

    /// Atomically counts a failed login. When the count reaches `lock_after`, the account is
    /// locked until `lock_until` and the count restarts. Returns the account after the update.
    async fn record_login_failure(
        &self,
        id: &AccountId,
        lock_after: u32,
        lock_until: UnixTime,
        now: UnixTime,
    ) -> StoreResult<Option<Account>>;

    /// Clears the failure count after a successful login.
    async fn record_login_success(&self, id: &AccountId, now: UnixTime) -> StoreResult<()>;

    /// Lifts a lock and clears the failure count; false if no such account.
    async fn unlock(&self, id: &AccountId, now: UnixTime) -> StoreResult<bool>;
}

/// Server-side sessions, keyed by the SHA-256 of their token.
#[async_trait]
pub trait SessionStore: Send + Sync {
    /// Stores a new session.
    async fn create_session(&self, session: &Session) -> StoreResult<()>;

    /// The session whose token has this hash (expired ones included; the caller decides).
    async fn session_by_token(&self, hash: &TokenHash) -> StoreResult<Option<Session>>;

    /// The sessions of an account, newest first.
    async fn sessions_of(&self, account: &AccountId) -> StoreResult<Vec<Session>>;

    /// Records activity for several sessions in one write (coalesced touches). Moves
    /// `last_seen_at` forward only.
    async fn touch_sessions(&self, touches: &[(TokenHash, UnixTime)]) -> StoreResult<()>;

    /// Deletes one session of an account by public id; returns its token hash if it existed.
    async fn delete_session(
        &self,
        account: &AccountId,
        id: &SessionId,
    ) -> StoreResult<Option<TokenHash>>;

    /// Deletes the session with this token hash; false if there was none.
    async fn delete_session_by_token(&self, hash: &TokenHash) -> StoreResult<bool>;

    /// Deletes every session of an account ("sign out everywhere"), returning their token
    /// hashes so that caches can drop them.
    async fn delete_sessions_of(&self, account: &AccountId) -> StoreResult<Vec<TokenHash>>;

    /// Deletes sessions whose absolute end or idle end (`last_seen_at + idle`) has passed.
    async fn delete_expired_sessions(&self, now: UnixTime, idle_timeout: i64) -> StoreResult<u64>;

    /// Number of sessions still active at `now`.
    async fn count_active_sessions(&self, now: UnixTime, idle_timeout: i64) -> StoreResult<u64>;
}

/// The append-only audit log.
#[async_trait]
pub trait AuditStore: Send + Sync {
    /// Appends an event.
    async fn append_audit(&self, event: &AuditEvent) -> StoreResult<()>;

    /// The most recent events, newest first.
    async fn recent_audit(&self, limit: u32) -> StoreResult<Vec<AuditEvent>>;
}

/// Admin API tokens, stored hashed.
#[async_trait]
pub trait AdminTokenStore: Send + Sync {
    /// Stores a token record.
    async fn create_admin_token(&self, record: &AdminTokenRecord) -> StoreResult<()>;

    /// Whether a token with this hash exists.
    async fn admin_token_exists(&self, hash: &[u8; 32]) -> StoreResult<bool>;

    /// Number of admin tokens.
    async fn count_admin_tokens(&self) -> StoreResult<u64>;

    /// Every admin token record, oldest first.
    async fn list_admin_tokens(&self) -> StoreResult<Vec<AdminTokenRecord>>;

    /// Deletes the token with this hash; false if there is none.
    async fn delete_admin_token(&self, hash: &[u8; 32]) -> StoreResult<bool>;
}

/// Server-wide secrets shared by every node (e.g. the session-cookie filter key).
#[async_trait]
pub trait SecretStore: Send + Sync {
    /// Returns the secret called `name`, storing `candidate` first if there is none yet. Two
    /// nodes racing at first start both end up with the one value that was stored first.
    async fn server_secret(&self, name: &str, candidate: &[u8]) -> StoreResult<Vec<u8>>;
}

/// The writes of one sign-in attempt, each set in one transaction: an outcome is never
/// recorded without its audit event, nor a session without the login that opened it, even if
/// the process dies half-way (OWASP ASVS V7.1: every authentication decision is logged).
#[async_trait]
pub trait LoginStore: Send + Sync {
    /// A successful sign-in: [`AccountStore::record_login_success`] for the session's account
    /// at the session's creation time, [`SessionStore::create_session`], and `event` appended.
    /// All or nothing: if the session cannot be stored, the failure count is not cleared and
    /// no event is written.
    async fn commit_login_success(&self, session: &Session, event: &AuditEvent) -> StoreResult<()>;

    /// A wrong password: [`AccountStore::record_login_failure`] and `event` appended, together,
    /// with `lock_event` as well when this failure locked the account (its lock now ends at
    /// `lock_until`). Returns the account after the update (`None` if there is no such account;
    /// `event` is written all the same).
    #[allow(clippy::too_many_arguments)]
    async fn commit_login_failure(
        &self,
        id: &AccountId,
        lock_after: u32,
        lock_until: UnixTime,
        now: UnixTime,
        event: &AuditEvent,
        lock_event: &AuditEvent,
    ) -> StoreResult<Option<Account>>;
}

/// Everything the server needs from storage.
#[async_trait]
pub trait Store:
    AccountStore + SessionStore + AuditStore + LoginStore + AdminTokenStore + SecretStore
{
    /// Checks the database answers (for `/readyz`).
    async fn ping(&self) -> StoreResult<()>;

    /// The backend's name for logs and metrics (`sqlite` or `postgres`).
    fn backend(&self) -> &'static str;
}
