//! Domain and storage errors. They carry detail for the operator's log; the HTTP layer maps
//! them onto a small set of public codes.

/// A storage failure, as reported by a `Store` implementation.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// A uniqueness constraint was violated (e.g. the username exists).
    #[error("conflict: {0}")]
    Conflict(&'static str),
    /// The database is unreachable, locked or timed out; retrying later may work.
    #[error("storage unavailable: {0}")]
    Unavailable(String),
    /// Stored data could not be decoded (corruption or a bug).
    #[error("stored data is invalid: {0}")]
    Corrupt(String),
    /// Any other database error.
    #[error("storage error: {0}")]
    Other(String),
}

/// Why a domain operation failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DomainError {
    /// The account is disabled.
    #[error("account is disabled")]
    AccountDisabled,
    /// The account is locked after too many failures, until the given time.
    #[error("account is locked until {until}")]
    AccountLocked {
        /// When the lock lifts.
        until: crate::clock::UnixTime,
    },
    /// A username, email, group or other input is malformed.
    #[error("invalid input: {0}")]
    Invalid(String),
    /// The password was wrong.
    #[error("wrong password")]
    WrongPassword,
    /// No account has this name.
    #[error("unknown account")]
    UnknownAccount,
    /// The password breaks the password policy.
    #[error("password rejected: {0}")]
    WeakPassword(crate::credential::password::PolicyViolation),
    /// The thing named does not exist.
    #[error("not found")]
    NotFound,
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A factor needing a sealed seed (TOTP, HOTP) cannot be enrolled or used: no master key
    /// is configured.
    #[error("no master key is configured: TOTP and HOTP seeds cannot be sealed or opened")]
    NoMasterKey,
    /// A sealed seed did not open (wrong or missing master key, altered value).
    #[error("sealed secret: {0}")]
    Sealing(String),
    /// The password hasher failed or was overloaded.
    #[error("password hashing failed: {0}")]
    Hashing(String),
}
