//! The login flow as a pure decision plus a thin service that loads, decides and stores
//! (rustls-style sans-I/O). The password step either opens a session or, for an account with
//! second factors (or required to have one), stores a pending sign-in that
//! [`crate::factors::complete_sign_in`] finishes.

use async_trait::async_trait;

use crate::account::{Account, Username};
use crate::audit::{AuditEvent, AuditKind};
use crate::clock::UnixTime;
use crate::credential::password::{MAX_PASSWORD_BYTES, Password, PasswordHash};
use crate::error::DomainError;
use crate::session::{Session, SessionPolicy, SessionToken};
use crate::store::{StaleLogin, Store};

/// Runs password hashing where it cannot starve the async executor. The server implements it
/// with a bounded pool of low-priority threads; tests may run it inline.
#[async_trait]
pub trait PasswordCheck: Send + Sync {
    /// Verifies `password` against `stored` (a dummy hash when `None`, same cost).
    async fn verify(
        &self,
        password: Password,
        stored: Option<PasswordHash>,
    ) -> Result<bool, DomainError>;
    /// Hashes a new password.
    async fn hash(&self, password: Password) -> Result<PasswordHash, DomainError>;
    /// Whether a stored hash should be upgraded to the current parameters.
    fn needs_rehash(&self, stored: &PasswordHash) -> bool;
}

/// Lockout rules (NIST SP 800-63B-4 §3.2.2: at most 100 consecutive failures).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LockoutPolicy {
    /// Consecutive failures that lock the account (1..=100, default 10).
    pub lock_after: u32,
    /// How long a lock lasts, in seconds (default 15 min).
    pub lock_for: i64,
}

impl Default for LockoutPolicy {
    fn default() -> Self {
        LockoutPolicy {
            lock_after: 10,
            lock_for: 15 * 60,
        }
    }
}

impl LockoutPolicy {
    /// Builds a policy within NIST's bound.
    pub fn new(lock_after: u32, lock_for: i64) -> Result<LockoutPolicy, DomainError> {
        if !(1..=100).contains(&lock_after) || !(1..=86_400 * 30).contains(&lock_for) {
            return Err(DomainError::Invalid(
                "lockout: lock_after must be 1..=100 and lock_for 1 s..30 days".into(),
            ));
        }
        Ok(LockoutPolicy {
            lock_after,
            lock_for,
        })
    }
}

/// Why a login failed. The client always sees the same generic answer; this is for the log.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Denial {
    /// The account is disabled.
    Disabled,
    /// The account is locked.
    Locked,
    /// No such account.
    UnknownAccount,
    /// Wrong password.
    WrongPassword,
}

impl Denial {
    /// The audit/metrics label.
    pub fn as_str(self) -> &'static str {
        match self {
            Denial::Disabled => "disabled",
            Denial::Locked => "locked",
            Denial::UnknownAccount => "unknown_account",
            Denial::WrongPassword => "wrong_password",
        }
    }
}

/// The next state after the password step.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Step {
    /// Fully authenticated with these RFC 8176 methods.
    Authenticated {
        /// The account.
        account: Account,
        /// Methods used, e.g. `["pwd"]`.
        amr: Vec<String>,
    },
    /// Refused.
    Denied(Denial),
}

/// The pure password step: what to do given the loaded account, the hash check and `now`.
pub fn decide(account: Option<Account>, password_ok: bool, now: UnixTime) -> Step {
    match account {
        None => Step::Denied(Denial::UnknownAccount),
        Some(a) if a.disabled => Step::Denied(Denial::Disabled),
        // A correct password does not open a locked account; the lock must run out or be lifted.
        Some(a) if a.is_locked(now) => Step::Denied(Denial::Locked),
        Some(_) if !password_ok => Step::Denied(Denial::WrongPassword),
        Some(account) => Step::Authenticated {
            account,
            amr: vec!["pwd".to_owned()],
        },
    }
}

/// A login attempt as received.
#[derive(Debug)]
pub struct LoginAttempt {
    /// The name as typed.
    pub username: String,
    /// The password as typed.
    pub password: Password,
    /// Client address.
    pub ip: Option<String>,
    /// Client user agent.
    pub user_agent: Option<String>,
}

/// A successful login.
#[derive(Debug)]
pub struct LoggedIn {
    /// The account.
    pub account: Account,
    /// The new session.
    pub session: Session,
    /// The token for the cookie.
    pub token: SessionToken,
}

/// The password step passed; a second factor is needed before any session exists.
#[derive(Debug)]
pub struct SecondFactorNeeded {
    /// The account.
    pub account: Account,
    /// The secret for the server's second-step cookie (only its SHA-256 is stored).
    pub token: crate::factor::PendingToken,
    /// The stored pending state.
    pub pending: crate::factor::PendingLogin,
    /// The factors to offer (active, not locked); empty when `pending.enrol_only`.
    pub factors: Vec<crate::factor::FactorSummary>,
}

/// What a correct password leads to.
#[derive(Debug)]
pub enum LoginOutcome {
    /// Signed in: no second factor needed.
    Session(LoggedIn),
    /// A second factor is pending (see [`crate::factors`]).
    SecondFactor(SecondFactorNeeded),
}

/// Outcome of [`login`]: a session or a pending second step, or the denial reason (for logs
/// and metrics only).
pub type LoginResult = Result<LoginOutcome, Denial>;

/// Everything [`login`] needs besides the attempt.
pub struct LoginContext<'a> {
    /// Storage.
    pub store: &'a dyn Store,
    /// Password hashing.
    pub passwords: &'a dyn PasswordCheck,
    /// Lockout rules.
    pub lockout: LockoutPolicy,
    /// Session lifetimes.
    pub sessions: SessionPolicy,
    /// Second-factor rules (pending-state lifetime, "required for admins").
    pub factors: crate::factor::FactorPolicy,
    /// Current time.
    pub now: UnixTime,
}

/// Runs the password step: load the account, verify (always, against a dummy hash for unknown
/// names, so that timing does not reveal which names exist), decide, then record the outcome,
/// open a session on success, and append an audit event either way. The session is committed
/// only if the account is still as it was loaded (same hash, not disabled, not locked): a reset,
/// disable or lock that lands while the hash is being checked wins, and the sign-in is denied.
/// A password longer than [`MAX_PASSWORD_BYTES`] is denied before any hashing.
///
/// An account with a usable second factor, with `mfa_required`, or an admin while
/// [`crate::factor::FactorPolicy::admins_required`] is on gets
/// [`LoginOutcome::SecondFactor`] instead of a session: the pending state is committed under
/// the same guard a session would be, and the event is `second_factor_pending`.
pub async fn login(
    ctx: &LoginContext<'_>,
    attempt: LoginAttempt,
) -> Result<LoginResult, DomainError> {
    let event = AuditEvent::new(AuditKind::LoginFailure, ctx.now)
        .username(&attempt.username)
        .ip(attempt.ip.as_deref());
    if attempt.password.expose().len() > MAX_PASSWORD_BYTES {
        ctx.store
            .append_audit(&event.detail("oversized_password"))
            .await?;
        return Ok(Err(Denial::WrongPassword));
    }
    let loaded = match Username::parse(&attempt.username) {
        Ok(name) => ctx.store.account_by_username(&name).await?,
        Err(_) => None,
    };
    let (account, hash) = match loaded {
        Some((a, h)) => (Some(a), h),
        None => (None, None),
    };
    let account_id = account.as_ref().map(|a| a.id.clone());
    let password_ok = ctx
        .passwords
        .verify(attempt.password.clone(), hash.clone())
        .await?;
    let step = match (&hash, decide(account, password_ok, ctx.now)) {
        // A verified password implies a stored hash; without one, deny.
        (None, Step::Authenticated { .. }) => Step::Denied(Denial::WrongPassword),
        (_, step) => step,
    };
    match step {
        Step::Denied(denial) => {
            let mut event = event.detail(denial.as_str());
            if let Some(id) = &account_id {
                event = event.account(id);
            }
            match account_id {
                Some(id) if denial == Denial::WrongPassword => {
                    let until = ctx.now.plus(ctx.lockout.lock_for);
                    let lock = AuditEvent::new(AuditKind::AccountLocked, ctx.now)
                        .account(&id)
                        .username(&attempt.username)
                        .ip(attempt.ip.as_deref());
                    ctx.store
                        .commit_login_failure(
                            &id,
                            ctx.lockout.lock_after,
                            until,
                            ctx.now,
                            &event,
                            &lock,
                        )
                        .await?;
                }
                _ => ctx.store.append_audit(&event).await?,
            }
            Ok(Err(denial))
        }
        Step::Authenticated { account, amr } => {
            let Some(checked) = hash else {
                return Ok(Err(Denial::WrongPassword));
            };
            // The upgrade is written with the session, and only if the hash is still the one
            // verified: it never overwrites a password set meanwhile.
            let rehash = if ctx.passwords.needs_rehash(&checked) {
                Some(ctx.passwords.hash(attempt.password).await?)
            } else {
                None
            };
            let factors = ctx.store.factors_of(&account.id).await?;
            if let Some((offered, enrol_only)) =
                crate::factors::second_step_needed(&account, &factors, &ctx.factors)
            {
                let meta = (attempt.ip.clone(), attempt.user_agent);
                return pend(
                    ctx,
                    event,
                    account,
                    &checked,
                    rehash.as_ref(),
                    offered,
                    enrol_only,
                    meta,
                )
                .await;
            }
            let (session, token) = Session::open(
                account.id.clone(),
                amr,
                attempt.ip.clone(),
                attempt.user_agent,
                ctx.now,
                &ctx.sessions,
            );
            let mut success = event.clone().account(&account.id);
            success.kind = AuditKind::LoginSuccess;
            let committed = ctx
                .store
                .commit_login_success(&session, &checked, rehash.as_ref(), &success)
                .await?;
            match committed {
                Ok(()) => Ok(Ok(LoginOutcome::Session(LoggedIn {
                    account,
                    session,
                    token,
                }))),
                // A factor was enrolled or required while the password was checked: the
                // sign-in becomes two-step, on the account as it is now.
                Err(StaleLogin::SecondFactorNeeded) => {
                    let fresh = ctx.store.account_by_id(&account.id).await?;
                    let factors = ctx.store.factors_of(&account.id).await?;
                    let needed = fresh.as_ref().and_then(|a| {
                        crate::factors::second_step_needed(a, &factors, &ctx.factors)
                    });
                    match (fresh, needed) {
                        (Some(fresh), Some((offered, enrol_only))) => {
                            let meta = (session.ip, session.user_agent);
                            pend(
                                ctx,
                                event,
                                fresh,
                                &checked,
                                rehash.as_ref(),
                                offered,
                                enrol_only,
                                meta,
                            )
                            .await
                        }
                        _ => {
                            refuse_stale(ctx, event, &account, StaleLogin::CredentialChanged).await
                        }
                    }
                }
                Err(stale) => refuse_stale(ctx, event, &account, stale).await,
            }
        }
    }
}

/// Commits the pending second step of a sign-in whose password was right.
#[allow(clippy::too_many_arguments)]
async fn pend(
    ctx: &LoginContext<'_>,
    event: AuditEvent,
    account: Account,
    checked: &PasswordHash,
    rehash: Option<&PasswordHash>,
    offered: Vec<crate::factor::FactorSummary>,
    enrol_only: bool,
    (ip, user_agent): (Option<String>, Option<String>),
) -> Result<LoginResult, DomainError> {
    let (pending, token) =
        crate::factors::new_pending(&account, ip, user_agent, enrol_only, &ctx.factors, ctx.now);
    let mut step = event.clone().account(&account.id);
    step.kind = AuditKind::SecondFactorPending;
    step.detail = Some(if enrol_only { "enrol_only" } else { "pwd" }.to_owned());
    let committed = ctx
        .store
        .commit_login_pending(&pending, checked, rehash, &step)
        .await?;
    match committed {
        Ok(()) => Ok(Ok(LoginOutcome::SecondFactor(SecondFactorNeeded {
            account,
            token,
            pending,
            factors: offered,
        }))),
        Err(stale) => refuse_stale(ctx, event, &account, stale).await,
    }
}

/// A sign-in whose account changed before the commit: audited and denied.
async fn refuse_stale(
    ctx: &LoginContext<'_>,
    event: AuditEvent,
    account: &Account,
    stale: StaleLogin,
) -> Result<LoginResult, DomainError> {
    let denial = match stale {
        StaleLogin::Gone => Denial::UnknownAccount,
        StaleLogin::Disabled => Denial::Disabled,
        StaleLogin::Locked => Denial::Locked,
        // The password was right, but for a credential that no longer is (or the second-factor
        // set changed twice during the sign-in).
        StaleLogin::CredentialChanged | StaleLogin::SecondFactorNeeded => Denial::WrongPassword,
    };
    let detail = match stale {
        StaleLogin::CredentialChanged => "credential_changed",
        _ => denial.as_str(),
    };
    let refused = event.account(&account.id).detail(detail);
    ctx.store.append_audit(&refused).await?;
    Ok(Err(denial))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::account::{AccountId, Role};

    fn account() -> Account {
        Account {
            id: AccountId::generate(),
            username: Username::parse("ada").expect("name"),
            email: None,
            groups: vec![],
            role: Role::User,
            disabled: false,
            failed_logins: 0,
            mfa_required: false,
            locked_until: None,
            created_at: UnixTime(0),
            updated_at: UnixTime(0),
        }
    }

    #[test]
    fn decisions() {
        let now = UnixTime(100);
        assert_eq!(
            decide(None, true, now),
            Step::Denied(Denial::UnknownAccount)
        );
        assert_eq!(
            decide(Some(account()), false, now),
            Step::Denied(Denial::WrongPassword)
        );
        let disabled = Account {
            disabled: true,
            ..account()
        };
        assert_eq!(
            decide(Some(disabled), true, now),
            Step::Denied(Denial::Disabled)
        );
        let locked = Account {
            locked_until: Some(UnixTime(101)),
            ..account()
        };
        assert_eq!(
            decide(Some(locked.clone()), true, now),
            Step::Denied(Denial::Locked)
        );
        assert!(matches!(
            decide(Some(locked), true, UnixTime(101)),
            Step::Authenticated { .. }
        ));
        assert!(
            matches!(decide(Some(account()), true, now), Step::Authenticated { ref amr, .. } if amr == &["pwd"])
        );
        assert!(LockoutPolicy::new(101, 60).is_err());
        assert!(LockoutPolicy::new(100, 60).is_ok());
    }
}
