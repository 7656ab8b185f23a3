//! Accounts: who can sign in, with which name, email and groups, and whether they may.

use std::fmt;

use serde::Serialize;

use crate::clock::UnixTime;
use crate::error::DomainError;

/// An account's stable identifier (a random UUID, stored as text).
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(transparent)]
pub struct AccountId(String);

impl AccountId {
    /// A fresh random id.
    pub fn generate() -> AccountId {
        AccountId(
            uuid::Builder::from_random_bytes(crate::random::bytes())
                .into_uuid()
                .to_string(),
        )
    }

    /// Parses a stored or presented id; it must be a canonical hyphenated UUID.
    pub fn parse(text: &str) -> Result<AccountId, DomainError> {
        match uuid::Uuid::try_parse(text) {
            Ok(u) if u.hyphenated().to_string() == text => Ok(AccountId(text.to_owned())),
            _ => Err(DomainError::Invalid("account id is not a UUID".into())),
        }
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for AccountId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A login name: 1 to 64 characters of `a-z 0-9 . _ - @`, stored in lower case so that names
/// differing only in case are the same account and look-alike Unicode names cannot exist.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(transparent)]
pub struct Username(String);

impl Username {
    /// The longest accepted name.
    pub const MAX_LEN: usize = 64;

    /// Validates and normalises (ASCII lower case) a presented name.
    pub fn parse(text: &str) -> Result<Username, DomainError> {
        let lower = text.to_ascii_lowercase();
        let ok = !lower.is_empty()
            && lower.len() <= Self::MAX_LEN
            && lower
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"._-@".contains(&b));
        if ok {
            Ok(Username(lower))
        } else {
            Err(DomainError::Invalid(
                "username must be 1-64 characters of a-z, 0-9, '.', '_', '-', '@'".into(),
            ))
        }
    }

    /// The name as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Username {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// An email address, checked for shape only (one `@`, no spaces or controls, at most 254 bytes).
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(transparent)]
pub struct Email(String);

impl Email {
    /// Validates an address.
    pub fn parse(text: &str) -> Result<Email, DomainError> {
        let ok = text.len() <= 254
            && text.split('@').count() == 2
            && text.split('@').all(|p| !p.is_empty())
            && !text
                .chars()
                .any(|c| c.is_whitespace() || c.is_control() || c == ',');
        if ok {
            Ok(Email(text.to_owned()))
        } else {
            Err(DomainError::Invalid("email address is malformed".into()))
        }
    }

    /// The address as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A group name: 1 to 64 characters of `A-Z a-z 0-9 . _ - : /` (safe in a header list).
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(transparent)]
pub struct Group(String);

impl Group {
    /// Validates a group name.
    pub fn parse(text: &str) -> Result<Group, DomainError> {
        let ok = !text.is_empty()
            && text.len() <= 64
            && text
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"._-:/".contains(&b));
        if ok {
            Ok(Group(text.to_owned()))
        } else {
            Err(DomainError::Invalid(
                "group must be 1-64 characters of A-Z, a-z, 0-9, '.', '_', '-', ':', '/'".into(),
            ))
        }
    }

    /// The name as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// What an account may administer.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// May use the admin API and pages.
    Admin,
    /// An ordinary user.
    User,
}

impl Role {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::User => "user",
        }
    }

    /// Parses a stored name.
    pub fn parse(text: &str) -> Result<Role, DomainError> {
        match text {
            "admin" => Ok(Role::Admin),
            "user" => Ok(Role::User),
            _ => Err(DomainError::Invalid("role must be admin or user".into())),
        }
    }
}

/// An account as stored (without its password hash).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Account {
    /// Stable id.
    pub id: AccountId,
    /// Login name.
    pub username: Username,
    /// Contact address.
    pub email: Option<Email>,
    /// Group memberships, sorted.
    pub groups: Vec<Group>,
    /// Admin or user.
    pub role: Role,
    /// A disabled account cannot sign in and its sessions are ended.
    pub disabled: bool,
    /// Consecutive failed logins since the last success.
    pub failed_logins: u32,
    /// Sign-in needs a second factor even if none is enrolled yet (then the sign-in only
    /// allows enrolling one; see [`crate::factors`]).
    pub mfa_required: bool,
    /// Locked until this time after too many failures (NIST SP 800-63B §5.2.2).
    pub locked_until: Option<UnixTime>,
    /// Creation time.
    pub created_at: UnixTime,
    /// Last change time.
    pub updated_at: UnixTime,
}

impl Account {
    /// Whether the failure lock is in force at `now`.
    pub fn is_locked(&self, now: UnixTime) -> bool {
        self.locked_until.is_some_and(|t| now < t)
    }
}

/// What is needed to create an account.
#[derive(Clone, Debug)]
pub struct NewAccount {
    /// Login name.
    pub username: Username,
    /// Contact address.
    pub email: Option<Email>,
    /// Group memberships.
    pub groups: Vec<Group>,
    /// Admin or user.
    pub role: Role,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usernames_are_normalised_and_restricted() {
        assert_eq!(
            Username::parse("Ada.Lovelace").expect("valid").as_str(),
            "ada.lovelace"
        );
        for bad in [
            "",
            " ada",
            "ada lovelace",
            "ädä",
            "a\u{0}",
            &"a".repeat(65),
            "ada\n",
        ] {
            assert!(Username::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn emails_groups_and_ids_are_checked() {
        assert!(Email::parse("ada@example.com").is_ok());
        for bad in ["ada", "@x", "a@", "a@b@c", "a b@c", "a@b\r\nBcc: x@y"] {
            assert!(Email::parse(bad).is_err(), "{bad:?}");
        }
        assert!(Group::parse("team/ops:admin").is_ok());
        assert!(Group::parse("a,b").is_err());
        let id = AccountId::generate();
        assert_eq!(AccountId::parse(id.as_str()).ok(), Some(id.clone()));
        assert!(AccountId::parse(&id.as_str().to_uppercase()).is_err());
    }
}
