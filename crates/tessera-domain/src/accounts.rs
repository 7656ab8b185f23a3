//! Account administration: the service functions behind `tessera user …` and the admin API.
//! Each loads, applies a rule, stores, and audits; every change that must end sessions returns
//! the token hashes it revoked so that callers can drop them from caches.

use crate::account::{Account, AccountId, NewAccount, Username};
use crate::audit::{AuditEvent, AuditKind};
use crate::clock::UnixTime;
use crate::credential::password::{Password, PasswordPolicy};
use crate::error::DomainError;
use crate::login::PasswordCheck;
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
/// change must not leave old sessions alive (OWASP ASVS V3.3.3).
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
    store.set_password(&account.id, &hash, now).await?;
    let revoked = store.delete_sessions_of(&account.id).await?;
    audit(store, AuditKind::PasswordChanged, &account, actor, now).await?;
    Ok(revoked)
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
    let event = AuditEvent::new(kind, now)
        .account(&account.id)
        .username(account.username.as_str())
        .ip(actor.ip.as_deref())
        .detail(format!("by {}", actor.label));
    Ok(store.append_audit(&event).await?)
}
