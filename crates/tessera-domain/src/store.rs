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
use crate::factor::{
    Factor, FactorId, FactorUse, PendingLogin, ResendThrottle, SealedSecret, SentCode, SentCodeId,
    Throttled,
};
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
    /// The account gained a usable second factor (or `mfa_required`) after the sign-in read
    /// it: no password-only session (only [`LoginStore::commit_login_success`] says this).
    SecondFactorNeeded,
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
    /// [`SessionStore::create_session`], and `event` appended, unless the account now has
    /// `mfa_required` or an active, unlocked factor other than recovery codes
    /// ([`StaleLogin::SecondFactorNeeded`]). Otherwise nothing is written
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

/// Why [`FactorStore::commit_second_factor`] opened no session. Nothing was written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SecondStepRefused {
    /// The pending sign-in is unknown, expired, used, or belongs to another account.
    PendingGone,
    /// The account is gone, disabled or locked.
    AccountUnusable,
    /// The proof's compare-and-set changed nothing: the step, counter or code was used meanwhile
    /// (a replay, possibly on another node), or the factor is locked, not active, or not the
    /// account's.
    ProofRejected,
}

/// Second factors, recovery codes, sent codes and pending two-step sign-ins. Every decision
/// nodes must share is one statement on the shared rows (compare-and-set or
/// `UPDATE … RETURNING`), and every change is committed with its audit event.
#[async_trait]
pub trait FactorStore: Send + Sync {
    /// Stores a new factor, with `event` if given, in one transaction; `Conflict` if the account
    /// already has a factor with this label (`factors.label`) or does not exist.
    async fn create_factor(&self, factor: &Factor, event: Option<&AuditEvent>) -> StoreResult<()>;

    /// The factor with this id.
    async fn factor_by_id(&self, id: &FactorId) -> StoreResult<Option<Factor>>;

    /// The factors of an account, oldest first (ties by id).
    async fn factors_of(&self, account: &AccountId) -> StoreResult<Vec<Factor>>;

    /// Sets the account's `mfa_required` flag and appends `event`, together; false if no such
    /// account.
    async fn set_mfa_required(
        &self,
        account: &AccountId,
        required: bool,
        now: UnixTime,
        event: &AuditEvent,
    ) -> StoreResult<bool>;

    /// Applies a proof (see [`FactorUse`]) outside a sign-in (re-authentication, enrolment
    /// confirmation): the compare-and-set, the failure count reset, `last_used_at = now`,
    /// activation if asked, and `event`, in one transaction. False (nothing written) if the
    /// compare-and-set changed nothing: a replay, or a factor locked, inactive or not `account`'s.
    async fn use_factor(
        &self,
        account: &AccountId,
        proof: &FactorUse,
        now: UnixTime,
        event: &AuditEvent,
    ) -> StoreResult<bool>;

    /// Counts a failed proof in one `UPDATE … RETURNING`: at `lock_after` consecutive failures
    /// the factor locks (NIST SP 800-63B-4 §3.2.2). Appends `event`, and `lock_event` when this
    /// failure locked it, in the same transaction. Returns the factor after the update; `None`
    /// (only `event` written) if there is no such factor or it is already locked.
    async fn record_factor_failure(
        &self,
        id: &FactorId,
        lock_after: u32,
        now: UnixTime,
        event: &AuditEvent,
        lock_event: &AuditEvent,
    ) -> StoreResult<Option<Factor>>;

    /// Lifts a factor's lock and clears its failures, with `event`; false if no such factor.
    async fn unlock_factor(&self, id: &FactorId, event: &AuditEvent) -> StoreResult<bool>;

    /// Moves an HOTP counter forward to `next` (never back), with `event`; false if it was
    /// already at or past `next`, or the factor is not an HOTP factor of `account`.
    async fn advance_hotp_counter(
        &self,
        account: &AccountId,
        id: &FactorId,
        next: u64,
        event: &AuditEvent,
    ) -> StoreResult<bool>;

    /// Removes one factor of `account` (with its codes), with `event`; false if none.
    async fn remove_factor(
        &self,
        account: &AccountId,
        id: &FactorId,
        event: &AuditEvent,
    ) -> StoreResult<bool>;

    /// Removes every factor of `account` and its pending sign-ins (admin reset), with `event`;
    /// returns how many factors.
    async fn remove_factors_of(&self, account: &AccountId, event: &AuditEvent) -> StoreResult<u64>;

    /// Every sealed seed, for a master-key rotation.
    async fn sealed_secrets(&self) -> StoreResult<Vec<(FactorId, SealedSecret)>>;

    /// Re-seals in one transaction: each `(id, old, new)` replaces `old` by `new` only if the
    /// stored value is still `old` (compare-and-set). If any row changed meanwhile, nothing is
    /// written and its id is returned. `event` is appended with the changes.
    async fn reseal_secrets(
        &self,
        updates: &[(FactorId, SealedSecret, SealedSecret)],
        event: &AuditEvent,
    ) -> StoreResult<Result<u64, FactorId>>;

    /// Replaces the recovery codes of recovery factor `factor` (creating the factor if it does
    /// not exist yet) by `hashes`, with `event`, in one transaction.
    async fn replace_recovery_codes(
        &self,
        factor: &Factor,
        hashes: &[[u8; 32]],
        now: UnixTime,
        event: &AuditEvent,
    ) -> StoreResult<()>;

    /// Unused recovery codes of a recovery factor.
    async fn recovery_codes_left(&self, factor: &FactorId) -> StoreResult<u64>;

    /// Stores a sent code if the throttle allows: the factor exists, is an email or SMS factor,
    /// is not locked, its previous code is at least `min_interval` old (a compare-and-set on
    /// `last_sent_at`, so nodes share it) and fewer than `per_hour` codes were issued in the
    /// last hour. Earlier unused codes of the factor are superseded (marked used). `event` is
    /// appended with it.
    async fn issue_sent_code(
        &self,
        code: &SentCode,
        throttle: ResendThrottle,
        event: &AuditEvent,
    ) -> StoreResult<Result<(), Throttled>>;

    /// The newest unused, unexpired code of a factor.
    async fn live_sent_code(
        &self,
        factor: &FactorId,
        now: UnixTime,
    ) -> StoreResult<Option<SentCode>>;

    /// Reserves one check of a sent code (`tries + 1`, only while unused, unexpired and below
    /// `max_tries`): false means the code may not be checked any more.
    async fn reserve_sent_code_try(
        &self,
        id: &SentCodeId,
        max_tries: u32,
        now: UnixTime,
    ) -> StoreResult<bool>;

    /// The pending sign-in with this token hash, if unexpired at `now`.
    async fn pending_login(
        &self,
        hash: &TokenHash,
        now: UnixTime,
    ) -> StoreResult<Option<PendingLogin>>;

    /// Counts a wrong second-step proof; at `max_tries` the pending sign-in is deleted. Returns
    /// whether it still exists.
    async fn record_pending_failure(&self, hash: &TokenHash, max_tries: u32) -> StoreResult<bool>;

    /// Deletes a pending sign-in (cancel); false if there was none.
    async fn delete_pending_login(&self, hash: &TokenHash) -> StoreResult<bool>;

    /// Deletes expired pending sign-ins and sent codes that expired over an hour ago (the
    /// hourly resend count needs the recent ones). Returns how many rows.
    async fn delete_expired_factor_state(&self, now: UnixTime) -> StoreResult<u64>;

    /// The password step of a two-step sign-in: under the same guard as
    /// [`LoginStore::commit_login_success`] (same hash, not disabled, not locked at
    /// `pending.auth_time`), the optional rehash and the failure reset, then the pending
    /// sign-in and `event`, in one transaction. No session.
    async fn commit_login_pending(
        &self,
        pending: &PendingLogin,
        checked: &PasswordHash,
        rehash: Option<&PasswordHash>,
        event: &AuditEvent,
    ) -> StoreResult<Result<(), StaleLogin>>;

    /// The second step, all or nothing in one transaction: deletes the pending sign-in `pending`
    /// (only if unexpired at `session.created_at` and of `session.account_id`), checks the
    /// account is neither disabled nor locked, applies `proof` (compare-and-set, failures reset,
    /// `last_used_at`), creates `session` and appends `events`.
    async fn commit_second_factor(
        &self,
        pending: &TokenHash,
        proof: &FactorUse,
        session: &Session,
        events: &[AuditEvent],
    ) -> StoreResult<Result<(), SecondStepRefused>>;
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
    AccountStore
    + SessionStore
    + AuditStore
    + LoginStore
    + AdminTokenStore
    + SecretStore
    + ChangeStore
    + FactorStore
{
    /// Checks the database answers (for `/readyz`).
    async fn ping(&self) -> StoreResult<()>;

    /// The backend's name for logs and metrics (`sqlite` or `postgres`).
    fn backend(&self) -> &'static str;
}
