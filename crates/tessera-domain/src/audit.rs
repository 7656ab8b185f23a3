//! Audit events: every login attempt and account change, for the operator. Never a secret.

use serde::Serialize;

use crate::account::AccountId;
use crate::clock::UnixTime;

/// What happened.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum AuditKind {
    /// An account was created.
    AccountCreated,
    /// An account was deleted.
    AccountDeleted,
    /// An account was disabled.
    AccountDisabled,
    /// An account was enabled.
    AccountEnabled,
    /// An account was locked after repeated failures.
    AccountLocked,
    /// An administrator lifted a lock.
    AccountUnlocked,
    /// A second factor was enrolled (proven and activated).
    FactorEnrolled,
    /// A second factor proved a sign-in or a re-authentication.
    FactorUsed,
    /// A second-factor proof failed.
    FactorFailure,
    /// A second factor locked after too many consecutive failures.
    FactorLocked,
    /// An administrator unlocked a second factor.
    FactorUnlocked,
    /// A second factor was removed (by its owner or an administrator).
    FactorRemoved,
    /// An HOTP factor's counter was resynchronised.
    FactorResynced,
    /// A one-time code was issued for sending.
    CodeSent,
    /// A recovery code was used.
    RecoveryCodeUsed,
    /// A new set of recovery codes replaced the previous one.
    RecoveryCodesGenerated,
    /// The password step passed; the second step is pending.
    SecondFactorPending,
    /// The account's second-factor requirement was set or cleared.
    MfaRequirementChanged,
    /// Every sealed secret was re-sealed under the current master key.
    MasterKeyRotated,
    /// An admin API token was created.
    AdminTokenCreated,
    /// An admin API token was revoked.
    AdminTokenRevoked,
    /// A login failed.
    LoginFailure,
    /// A login succeeded.
    LoginSuccess,
    /// A session ended by logout.
    Logout,
    /// A password was set or changed.
    PasswordChanged,
    /// One or more sessions were revoked.
    SessionsRevoked,
}

impl AuditKind {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            AuditKind::AccountCreated => "account_created",
            AuditKind::AccountDeleted => "account_deleted",
            AuditKind::AccountDisabled => "account_disabled",
            AuditKind::AccountEnabled => "account_enabled",
            AuditKind::AccountLocked => "account_locked",
            AuditKind::AccountUnlocked => "account_unlocked",
            AuditKind::FactorEnrolled => "factor_enrolled",
            AuditKind::FactorUsed => "factor_used",
            AuditKind::FactorFailure => "factor_failure",
            AuditKind::FactorLocked => "factor_locked",
            AuditKind::FactorUnlocked => "factor_unlocked",
            AuditKind::FactorRemoved => "factor_removed",
            AuditKind::FactorResynced => "factor_resynced",
            AuditKind::CodeSent => "code_sent",
            AuditKind::RecoveryCodeUsed => "recovery_code_used",
            AuditKind::RecoveryCodesGenerated => "recovery_codes_generated",
            AuditKind::SecondFactorPending => "second_factor_pending",
            AuditKind::MfaRequirementChanged => "mfa_requirement_changed",
            AuditKind::MasterKeyRotated => "master_key_rotated",
            AuditKind::AdminTokenCreated => "admin_token_created",
            AuditKind::AdminTokenRevoked => "admin_token_revoked",
            AuditKind::LoginFailure => "login_failure",
            AuditKind::LoginSuccess => "login_success",
            AuditKind::Logout => "logout",
            AuditKind::PasswordChanged => "password_changed",
            AuditKind::SessionsRevoked => "sessions_revoked",
        }
    }

    /// Parses a stored name.
    pub fn parse(text: &str) -> Option<AuditKind> {
        use AuditKind::*;
        [
            AccountCreated,
            AccountDeleted,
            AccountDisabled,
            AccountEnabled,
            AccountLocked,
            AccountUnlocked,
            FactorEnrolled,
            FactorUsed,
            FactorFailure,
            FactorLocked,
            FactorUnlocked,
            FactorRemoved,
            FactorResynced,
            CodeSent,
            RecoveryCodeUsed,
            RecoveryCodesGenerated,
            SecondFactorPending,
            MfaRequirementChanged,
            MasterKeyRotated,
            AdminTokenCreated,
            AdminTokenRevoked,
            LoginFailure,
            LoginSuccess,
            Logout,
            PasswordChanged,
            SessionsRevoked,
        ]
        .into_iter()
        .find(|k| k.as_str() == text)
    }
}

/// One audit record.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct AuditEvent {
    /// When.
    pub at: UnixTime,
    /// What.
    pub kind: AuditKind,
    /// The account concerned, when known.
    pub account_id: Option<AccountId>,
    /// The name presented or concerned (may name no account), truncated to 64 characters.
    pub username: Option<String>,
    /// Client address, when the event came from a request.
    pub ip: Option<String>,
    /// A short machine-readable reason or detail (e.g. `wrong_password`), never a secret.
    pub detail: Option<String>,
}

impl AuditEvent {
    /// An event of `kind` at `at` with nothing else filled in.
    pub fn new(kind: AuditKind, at: UnixTime) -> AuditEvent {
        AuditEvent {
            at,
            kind,
            account_id: None,
            username: None,
            ip: None,
            detail: None,
        }
    }

    /// Sets the account.
    pub fn account(mut self, id: &AccountId) -> Self {
        self.account_id = Some(id.clone());
        self
    }

    /// Sets the presented name (truncated; control characters replaced so logs stay one line).
    pub fn username(mut self, name: &str) -> Self {
        self.username = Some(
            name.chars()
                .take(64)
                .map(|c| if c.is_control() { '?' } else { c })
                .collect(),
        );
        self
    }

    /// Sets the client address.
    pub fn ip(mut self, ip: Option<&str>) -> Self {
        self.ip = ip.map(str::to_owned);
        self
    }

    /// Sets the detail.
    pub fn detail(mut self, detail: impl Into<String>) -> Self {
        self.detail = Some(detail.into());
        self
    }
}
