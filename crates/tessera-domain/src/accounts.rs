//! Account administration: the service functions behind `tessera user …` and the admin API.
//! Each loads, applies a rule, stores, and audits; every change that must end sessions returns
//! the token hashes it revoked so that callers can drop them from caches.

use crate::account::{Account, AccountId, NewAccount, Username};
use crate::audit::{AuditEvent, AuditKind};
use crate::clock::UnixTime;
use crate::credential::password::{MAX_PASSWORD_BYTES, Password, PasswordPolicy};
use crate::error::{DomainError, StoreError};
use crate::login::{LockoutPolicy, PasswordCheck};
use crate::session::TokenHash;
use crate::store::Store;

/// Who made a change, for the audit log.
#[derive(Clone, Debug, Default)]
pub struct Actor {
    /// Client address, when over HTTP.
    pub ip: Option<String>,
    /// A short label: `cli`, `admin-token`, or the admin's username.
    pub label: String,
}

/// Creates an account, checking the password against the policy first.
pub async fn create(
    store: &dyn Store,
    passwords: &dyn PasswordCheck,
    policy: &PasswordPolicy,
    new: NewAccount,
    password: Option<Password>,
    actor: &Actor,
    now: UnixTime,
) -> Result<Account, DomainError> {
    let hash = match password {
        Some(pw) => {
            policy
                .check(&pw, new.username.as_str())
                .map_err(DomainError::WeakPassword)?;
            Some(passwords.hash(pw).await?)
        }
        None => None,
    };
    let id = AccountId::generate();
    let account = store.create_account(&new, &id, hash.as_ref(), now).await?;
    audit(store, AuditKind::AccountCreated, &account, actor, now).await?;
    Ok(account)
}

/// Finds an account by name.
pub async fn find(store: &dyn Store, username: &str) -> Result<Account, DomainError> {
    let name = Username::parse(username)?;
    store
        .account_by_username(&name)
        .await?
        .map(|(a, _)| a)
        .ok_or(DomainError::NotFound)
}

/// Sets a new password (policy-checked) and ends every session of the account: a credential
/// change must not leave old sessions alive (OWASP ASVS V3.3.3). The hash, the session
/// deletion and the audit event commit together, and a sign-in still checking the old password
/// cannot open a session after it (see [`crate::store::LoginStore::commit_login_success`]).
pub async fn set_password(
    store: &dyn Store,
    passwords: &dyn PasswordCheck,
    policy: &PasswordPolicy,
    username: &str,
    password: Password,
    actor: &Actor,
    now: UnixTime,
) -> Result<Vec<TokenHash>, DomainError> {
    let account = find(store, username).await?;
    policy
        .check(&password, account.username.as_str())
        .map_err(DomainError::WeakPassword)?;
    let hash = passwords.hash(password).await?;
    let event = event(AuditKind::PasswordChanged, &account, actor, now);
    store
        .replace_password(&account.id, None, &hash, None, &event, now)
        .await?
        .ok_or(DomainError::NotFound)
}

/// A signed-in user's own password change: what the user presents.
#[derive(Debug)]
pub struct OwnPasswordChange<'a> {
    /// The signed-in account.
    pub account: &'a AccountId,
    /// The session making the change, which stays signed in.
    pub session: &'a TokenHash,
    /// The current password, re-checked.
    pub current: Password,
    /// The new password.
    pub new: Password,
    /// Client address, for the audit log.
    pub ip: Option<&'a str>,
}

/// Changes a signed-in user's own password. The current password is required (OWASP ASVS
/// 4.0.3 V2.1.6) and a wrong one counts toward the lockout like a failed sign-in (NIST SP
/// 800-63B-4 §3.2.2); a disabled or locked account cannot change it. The new password must
/// pass the policy. Every other session of the account ends (OWASP ASVS V3.3.3), the current
/// one stays; the change commits only if the stored hash is still the one just verified.
/// Returns the token hashes of the ended sessions, for caches to drop.
pub async fn change_own_password(
    store: &dyn Store,
    passwords: &dyn PasswordCheck,
    policy: &PasswordPolicy,
    lockout: LockoutPolicy,
    change: OwnPasswordChange<'_>,
    now: UnixTime,
) -> Result<Vec<TokenHash>, DomainError> {
    let account = store
        .account_by_id(change.account)
        .await?
        .ok_or(DomainError::NotFound)?;
    let (account, stored) = store
        .account_by_username(&account.username)
        .await?
        .filter(|(a, _)| a.id == account.id)
        .ok_or(DomainError::NotFound)?;
    if account.disabled {
        return Err(DomainError::AccountDisabled);
    }
    if let Some(until) = account.locked_until.filter(|_| account.is_locked(now)) {
        return Err(DomainError::AccountLocked { until });
    }
    let actor = Actor {
        ip: change.ip.map(str::to_owned),
        label: "self".to_owned(),
    };
    let ok = change.current.expose().len() <= MAX_PASSWORD_BYTES
        && passwords
            .verify(change.current.clone(), stored.clone())
            .await?;
    let Some(stored) = stored.filter(|_| ok) else {
        let failure = AuditEvent::new(AuditKind::LoginFailure, now)
            .account(&account.id)
            .username(account.username.as_str())
            .ip(change.ip)
            .detail("wrong_password (password change)");
        let lock = event(AuditKind::AccountLocked, &account, &actor, now);
        store
            .commit_login_failure(
                &account.id,
                lockout.lock_after,
                now.plus(lockout.lock_for),
                now,
                &failure,
                &lock,
            )
            .await?;
        return Err(DomainError::WrongPassword);
    };
    policy
        .check(&change.new, account.username.as_str())
        .map_err(DomainError::WeakPassword)?;
    let hash = passwords.hash(change.new).await?;
    let event = event(AuditKind::PasswordChanged, &account, &actor, now);
    match store
        .replace_password(
            &account.id,
            Some(&stored),
            &hash,
            Some(change.session),
            &event,
            now,
        )
        .await
    {
        Ok(Some(ended)) => Ok(ended),
        Ok(None) => Err(DomainError::NotFound),
        // Changed meanwhile (an administrator's reset): the password just checked is no
        // longer the current one.
        Err(StoreError::Conflict(_)) => Err(DomainError::WrongPassword),
        Err(e) => Err(e.into()),
    }
}

/// Disables or enables an account; disabling ends its sessions.
pub async fn set_disabled(
    store: &dyn Store,
    username: &str,
    disabled: bool,
    actor: &Actor,
    now: UnixTime,
) -> Result<Vec<TokenHash>, DomainError> {
    let account = find(store, username).await?;
    store.set_disabled(&account.id, disabled, now).await?;
    let revoked = if disabled {
        store.delete_sessions_of(&account.id).await?
    } else {
        Vec::new()
    };
    let kind = if disabled {
        AuditKind::AccountDisabled
    } else {
        AuditKind::AccountEnabled
    };
    audit(store, kind, &account, actor, now).await?;
    Ok(revoked)
}

/// Lifts a failure lock.
pub async fn unlock(
    store: &dyn Store,
    username: &str,
    actor: &Actor,
    now: UnixTime,
) -> Result<(), DomainError> {
    let account = find(store, username).await?;
    store.unlock(&account.id, now).await?;
    audit(store, AuditKind::AccountUnlocked, &account, actor, now).await
}

/// Deletes an account and its sessions.
pub async fn delete(
    store: &dyn Store,
    username: &str,
    actor: &Actor,
    now: UnixTime,
) -> Result<Vec<TokenHash>, DomainError> {
    let account = find(store, username).await?;
    let revoked = store.delete_sessions_of(&account.id).await?;
    store.delete_account(&account.id).await?;
    audit(store, AuditKind::AccountDeleted, &account, actor, now).await?;
    Ok(revoked)
}

async fn audit(
    store: &dyn Store,
    kind: AuditKind,
    account: &Account,
    actor: &Actor,
    now: UnixTime,
) -> Result<(), DomainError> {
    Ok(store
        .append_audit(&event(kind, account, actor, now))
        .await?)
}

fn event(kind: AuditKind, account: &Account, actor: &Actor, now: UnixTime) -> AuditEvent {
    AuditEvent::new(kind, now)
        .account(&account.id)
        .username(account.username.as_str())
        .ip(actor.ip.as_deref())
        .detail(format!("by {}", actor.label))
}
