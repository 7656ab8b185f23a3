//! Passwords: the secret type, the policy (NIST SP 800-63B-4 §3.1.1.2) and argon2id hashing
//! (OWASP Password Storage Cheat Sheet parameters: m=19 MiB, t=2, p=1).

use std::collections::HashSet;
use std::fmt;
use std::sync::OnceLock;

use argon2::password_hash::{PasswordHasher as _, PasswordVerifier as _};
use argon2::{Algorithm, Argon2, Params, Version};
use zeroize::Zeroizing;

use crate::error::DomainError;

/// A plaintext password in memory: redacted `Debug`, wiped on drop.
#[derive(Clone)]
pub struct Password(Zeroizing<String>);

impl Password {
    /// Wraps a presented password.
    pub fn new(text: impl Into<String>) -> Password {
        Password(Zeroizing::new(text.into()))
    }

    /// The password bytes, for hashing.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Password {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Password(***)")
    }
}

/// A stored password hash in PHC string format (`$argon2id$v=19$m=…`).
#[derive(Clone, PartialEq, Eq)]
pub struct PasswordHash(String);

impl PasswordHash {
    /// Wraps a stored PHC string (as read from the database).
    pub fn from_stored(phc: String) -> PasswordHash {
        PasswordHash(phc)
    }

    /// The PHC string, for storage.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for PasswordHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("PasswordHash(***)")
    }
}

/// Why a new password was refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum PolicyViolation {
    /// It appears in the list of common and breached passwords.
    #[error("it is a commonly used or breached password")]
    Common,
    /// It contains the username.
    #[error("it contains the username")]
    ContainsUsername,
    /// Longer than the maximum.
    #[error("it is longer than {max} characters")]
    TooLong {
        /// The maximum in characters.
        max: usize,
    },
    /// Shorter than the minimum.
    #[error("it is shorter than {min} characters")]
    TooShort {
        /// The minimum in characters.
        min: usize,
    },
}

/// Rules for new passwords. NIST SP 800-63B-4 §3.1.1.2: a minimum length (8, or 15 when the
/// password is the only factor), a maximum of at least 64, no composition rules, and a check
/// against known-compromised values.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PasswordPolicy {
    /// Minimum length in characters (at least 8).
    pub min_len: usize,
    /// Maximum length in characters (at least 64).
    pub max_len: usize,
}

impl Default for PasswordPolicy {
    fn default() -> Self {
        PasswordPolicy {
            min_len: 8,
            max_len: 256,
        }
    }
}

impl PasswordPolicy {
    /// Builds a policy, refusing values NIST does not allow.
    pub fn new(min_len: usize, max_len: usize) -> Result<PasswordPolicy, DomainError> {
        if min_len < 8 || max_len < 64 || min_len > max_len || max_len > 1024 {
            return Err(DomainError::Invalid(
                "password policy needs 8 <= min_len <= max_len, 64 <= max_len <= 1024".into(),
            ));
        }
        Ok(PasswordPolicy { min_len, max_len })
    }

    /// Checks a new password. Length counts Unicode scalar values (NIST §3.1.1.2).
    pub fn check(&self, password: &Password, username: &str) -> Result<(), PolicyViolation> {
        let text = password.expose();
        let len = text.chars().count();
        if len < self.min_len {
            return Err(PolicyViolation::TooShort { min: self.min_len });
        }
        if len > self.max_len {
            return Err(PolicyViolation::TooLong { max: self.max_len });
        }
        let lower = Zeroizing::new(text.to_lowercase());
        if common_passwords().contains(lower.as_str()) {
            return Err(PolicyViolation::Common);
        }
        if username.len() >= 4 && lower.contains(&username.to_lowercase()) {
            return Err(PolicyViolation::ContainsUsername);
        }
        Ok(())
    }
}

fn common_passwords() -> &'static HashSet<&'static str> {
    static LIST: OnceLock<HashSet<&'static str>> = OnceLock::new();
    LIST.get_or_init(|| {
        include_str!("../../data/common-passwords.txt")
            .lines()
            .collect()
    })
}

/// argon2id cost parameters.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HashParams {
    /// Memory in KiB.
    pub memory_kib: u32,
    /// Iterations.
    pub iterations: u32,
    /// Parallelism.
    pub parallelism: u32,
}

impl Default for HashParams {
    /// OWASP's argon2id recommendation: 19 MiB, 2 iterations, 1 lane.
    fn default() -> Self {
        HashParams {
            memory_kib: 19 * 1024,
            iterations: 2,
            parallelism: 1,
        }
    }
}

/// Hashes and verifies passwords with argon2id. CPU-heavy: callers run it on a bounded
/// pool of their own threads, never on an async executor thread.
#[derive(Clone)]
pub struct Hasher {
    argon: Argon2<'static>,
    /// A hash of a random password, verified against for unknown accounts so that their
    /// timing matches a wrong password (OWASP ASVS V2.2 / account enumeration).
    dummy: PasswordHash,
}

impl fmt::Debug for Hasher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Hasher").finish_non_exhaustive()
    }
}

impl Hasher {
    /// Builds a hasher; refuses parameters below OWASP's floor (m >= 7 MiB with t >= 5, or the
    /// equivalent trade-offs; here simply m >= 8 MiB and t >= 1) or absurdly high.
    pub fn new(params: HashParams) -> Result<Hasher, DomainError> {
        Hasher::build(params, 8 * 1024)
    }

    /// A hasher with tiny parameters for tests of other components. Never for production.
    pub fn insecure_fast_for_tests() -> Hasher {
        #[allow(clippy::expect_used)]
        Hasher::build(
            HashParams {
                memory_kib: 64,
                iterations: 1,
                parallelism: 1,
            },
            64,
        )
        .expect("valid test parameters")
    }

    /// Checks production parameters without building a hasher (which costs one hash).
    pub fn check_params(params: HashParams) -> Result<(), DomainError> {
        Hasher::check(params, 8 * 1024)
    }

    fn check(params: HashParams, floor_kib: u32) -> Result<(), DomainError> {
        if params.memory_kib < floor_kib
            || params.memory_kib > 4 * 1024 * 1024
            || !(1..=16).contains(&params.iterations)
            || !(1..=16).contains(&params.parallelism)
        {
            return Err(DomainError::Invalid(
                "argon2 parameters out of range (memory 8 MiB..4 GiB, iterations and parallelism 1..16)"
                    .into(),
            ));
        }
        Ok(())
    }

    fn build(params: HashParams, floor_kib: u32) -> Result<Hasher, DomainError> {
        Hasher::check(params, floor_kib)?;
        let p = Params::new(
            params.memory_kib,
            params.iterations,
            params.parallelism,
            None,
        )
        .map_err(|e| DomainError::Invalid(format!("argon2 parameters: {e}")))?;
        let argon = Argon2::new(Algorithm::Argon2id, Version::V0x13, p);
        let mut hasher = Hasher {
            argon,
            dummy: PasswordHash(String::new()),
        };
        let random = crate::random::bytes::<24>();
        let dummy_password = Password::new(tessera_token::b64::encode(random));
        hasher.dummy = hasher.hash(&dummy_password)?;
        Ok(hasher)
    }

    /// Hashes a password with a fresh 16-byte salt.
    pub fn hash(&self, password: &Password) -> Result<PasswordHash, DomainError> {
        let salt = crate::random::bytes::<16>();
        let hash = self
            .argon
            .hash_password_with_salt(password.expose().as_bytes(), &salt)
            .map_err(|e| DomainError::Hashing(e.to_string()))?;
        Ok(PasswordHash(hash.to_string()))
    }

    /// Verifies a password against a stored hash (constant-time comparison inside argon2).
    /// With `None` (unknown account) it verifies against the dummy hash and returns false, so
    /// both paths cost the same.
    pub fn verify(&self, password: &Password, stored: Option<&PasswordHash>) -> bool {
        let target = stored.unwrap_or(&self.dummy);
        let ok = self
            .argon
            .verify_password(password.expose().as_bytes(), target.as_str())
            .is_ok();
        ok && stored.is_some()
    }

    /// Whether a stored hash uses weaker parameters than this hasher and should be re-hashed at
    /// the next successful login.
    pub fn needs_rehash(&self, stored: &PasswordHash) -> bool {
        let want = self.argon.params();
        let s = stored.as_str();
        !s.starts_with("$argon2id$v=19$")
            || !s.contains(&format!(
                "m={},t={},p={}",
                want.m_cost(),
                want.t_cost(),
                want.p_cost()
            ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn policy_follows_nist() {
        let p = PasswordPolicy::default();
        assert_eq!(
            p.check(&Password::new("short"), "ada"),
            Err(PolicyViolation::TooShort { min: 8 })
        );
        assert_eq!(
            p.check(&Password::new("password1"), "ada"),
            Err(PolicyViolation::Common)
        );
        assert_eq!(
            p.check(&Password::new("PassWord1"), "ada"),
            Err(PolicyViolation::Common)
        );
        assert_eq!(
            p.check(&Password::new("xx-lovelace-xx"), "lovelace"),
            Err(PolicyViolation::ContainsUsername)
        );
        assert_eq!(
            p.check(&Password::new("x".repeat(257)), "ada"),
            Err(PolicyViolation::TooLong { max: 256 })
        );
        // No composition rules: a long all-lowercase phrase is fine; 8 multi-byte characters count as 8.
        assert_eq!(
            p.check(&Password::new("correct horse battery staple"), "ada"),
            Ok(())
        );
        assert_eq!(p.check(&Password::new("ääääääää"), "ada"), Ok(()));
        assert!(PasswordPolicy::new(7, 64).is_err());
        assert!(PasswordPolicy::new(15, 63).is_err());
        assert!(PasswordPolicy::new(15, 64).is_ok());
    }

    #[test]
    fn hashes_verify_and_unknown_accounts_never_match() {
        let h = Hasher::insecure_fast_for_tests();
        let pw = Password::new("correct horse battery staple");
        let stored = h.hash(&pw).expect("hash");
        assert!(stored.as_str().starts_with("$argon2id$v=19$"));
        assert_ne!(h.hash(&pw).expect("hash"), stored, "fresh salt each time");
        assert!(h.verify(&pw, Some(&stored)));
        assert!(!h.verify(&Password::new("wrong"), Some(&stored)));
        assert!(!h.verify(&pw, None));
        assert!(!h.verify(&pw, Some(&PasswordHash::from_stored("garbage".into()))));
        assert!(!h.needs_rehash(&stored));
        assert!(format!("{pw:?}{stored:?}").find("horse").is_none());
    }

    #[test]
    fn production_parameters_are_owasp_and_floors_hold() {
        assert_eq!(
            HashParams::default(),
            HashParams {
                memory_kib: 19456,
                iterations: 2,
                parallelism: 1
            }
        );
        assert!(
            Hasher::new(HashParams {
                memory_kib: 1024,
                iterations: 2,
                parallelism: 1
            })
            .is_err()
        );
        let fast = Hasher::insecure_fast_for_tests();
        let h = Hasher::new(HashParams::default()).expect("default");
        assert!(h.needs_rehash(&fast.hash(&Password::new("some password")).expect("hash")));
    }
}
