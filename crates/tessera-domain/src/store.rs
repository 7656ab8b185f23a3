//! The storage traits, one per aggregate, implemented by `tessera-store-sqlite` and
//! `tessera-store-postgres` and tested by one conformance suite in `tessera-testkit`.
//! Domain types in and out; no SQL row crosses these traits. Every write that the caller relies
//! on is durable (committed) when the future resolves.

use async_trait::async_trait;

use crate::account::{Account, AccountId, NewAccount, Username};
use crate::admin::AdminTokenRecord;
use crate::audit::AuditEvent;
use crate::change::ChangeRecord;
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

    /// How many accounts use each argon2id cost: the parameter segment of every stored
    /// `$argon2id$v=19$` hash (e.g. `m=19456,t=2,p=1`) with its count, most used first (ties in
    /// byte order). Lets the dummy hash for unknown accounts cost what real ones cost.
    async fn password_params_in_use(&self) -> StoreResult<Vec<(String, u64)>>;

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

    /// Deletes the events stamped strictly before `before` (retention); returns how many.
    async fn prune_audit(&self, before: UnixTime) -> StoreResult<u64>;
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

/// Why [`LoginStore::commit_login_success`] opened no session: the account changed between
/// the moment the sign-in read it and the commit (a reset, a lock or a disable in between).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StaleLogin {
    /// The account no longer exists.
    Gone,
    /// The account is disabled.
    Disabled,
    /// The account is locked at the session's creation time.
    Locked,
    /// The stored password hash is no longer the one the sign-in verified.
    CredentialChanged,
}

/// The writes of one sign-in attempt, and of a password change, each set in one transaction: an
/// outcome is never recorded without its audit event, nor a session without the login that
/// opened it, even if the process dies half-way (OWASP ASVS V7.1: every authentication decision
/// is logged).
#[async_trait]
pub trait LoginStore: Send + Sync {
    /// A successful sign-in, committed only if the account is still as the sign-in saw it:
    /// it exists, is neither disabled nor locked at the session's creation time, and its stored
    /// hash is still `checked` (the one the password was verified against). Then, all at once:
    /// the hash becomes `rehash` if given (an upgrade to the current argon2 cost),
    /// [`AccountStore::record_login_success`] at the session's creation time,
    /// [`SessionStore::create_session`], and `event` appended. Otherwise nothing is written
    /// and the reason is returned (a reset or a lock that raced the sign-in wins; OWASP ASVS
    /// V3.3.3). All or nothing: if the session cannot be stored, nothing is written either.
    async fn commit_login_success(
        &self,
        session: &Session,
        checked: &PasswordHash,
        rehash: Option<&PasswordHash>,
        event: &AuditEvent,
    ) -> StoreResult<Result<(), StaleLogin>>;

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

    /// A password change, in one transaction: the account's hash becomes `hash` (stamping
    /// `updated_at` with `now`), every session of the account except `keep` is deleted, and
    /// `event` is appended. With `expected`, only if the stored hash is still that one
    /// (compare-and-set), else `Conflict` and nothing is written. Returns the deleted sessions'
    /// token hashes, for caches to drop; `None` (nothing written) if there is no such account.
    #[allow(clippy::too_many_arguments)]
    async fn replace_password(
        &self,
        id: &AccountId,
        expected: Option<&PasswordHash>,
        hash: &PasswordHash,
        keep: Option<&TokenHash>,
        event: &AuditEvent,
        now: UnixTime,
    ) -> StoreResult<Option<Vec<TokenHash>>>;
}

/// The change feed (see [`crate::change`]). Every write that revokes a session, changes or
/// deletes an account, or revokes an admin token appends its [`crate::change::Change`] in the
/// same transaction, and only when it changed something. Positions are strictly increasing in
/// commit order: a reader that saw position `p` misses nothing by asking for what follows `p`.
#[async_trait]
pub trait ChangeStore: Send + Sync {
    /// Up to `limit` changes after `position`, in position order. A malformed stored change is
    /// `Corrupt`.
    async fn changes_since(&self, position: u64, limit: u32) -> StoreResult<Vec<ChangeRecord>>;

    /// The position of the newest change (0 when there is none): where a new reader starts.
    async fn latest_change_position(&self) -> StoreResult<u64>;

    /// Deletes the changes before `position`; returns how many.
    async fn prune_changes(&self, before: u64) -> StoreResult<u64>;

    /// Waits for a sign that a change was committed (PostgreSQL: a `NOTIFY` heard on a
    /// `LISTEN` connection), or answers `NotSupported` at once. It has no time limit of its own
    /// (the stores have no async runtime): the caller bounds it with its timer, and cancelling
    /// it is safe (the listener is kept for the next call). A wake-up only says "read the feed":
    /// the durable change table stays the truth, so a lost signal costs a caller that re-reads
    /// at least every `t` no more than `t`. `Unavailable` when the listening connection is lost
    /// or cannot be made (the next call makes a new one). Meant for one waiter per store.
    async fn wait_for_change(&self) -> StoreResult<ChangeWait>;
}

/// What [`ChangeStore::wait_for_change`] saw.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ChangeWait {
    /// A change may have been committed: a notification arrived, or listening has just
    /// (re)started and a change committed before it would not have been signalled. Read the
    /// feed now.
    Woken,
    /// This backend sends no notifications (SQLite: other processes write the file) and
    /// returned at once: the caller polls on its own schedule.
    NotSupported,
}

/// Everything the server needs from storage.
#[async_trait]
pub trait Store:
    AccountStore + SessionStore + AuditStore + LoginStore + AdminTokenStore + SecretStore + ChangeStore
{
    /// Checks the database answers (for `/readyz`).
    async fn ping(&self) -> StoreResult<()>;

    /// The backend's name for logs and metrics (`sqlite` or `postgres`).
    fn backend(&self) -> &'static str;
}
