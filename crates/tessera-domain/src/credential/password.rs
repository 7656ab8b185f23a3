//! Passwords: the secret type, the policy (NIST SP 800-63B-4 §3.1.1.2) and argon2id hashing
//! (OWASP Password Storage Cheat Sheet parameters: m=19 MiB, t=2, p=1).

use std::collections::HashSet;
use std::fmt;
use std::sync::{Arc, OnceLock, RwLock};

use argon2::password_hash::{PasswordHasher as _, PasswordVerifier as _};
use argon2::{Algorithm, Argon2, Params, Version};
use zeroize::Zeroizing;

use crate::error::DomainError;

/// The longest password accepted anywhere, in bytes (UTF-8). Longer ones are refused before
/// any hashing, so that an oversized body cannot buy argon2 work; the policy's 1024-character
/// ceiling fits in it.
pub const MAX_PASSWORD_BYTES: usize = 4096;

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

/// The weakest argon2id settings OWASP accepts, as (memory KiB, iterations) with one lane; they
/// "provide an equal level of defense" (OWASP Password Storage Cheat Sheet, "Argon2id": m=47104
/// t=1, m=19456 t=2, m=12288 t=3, m=9216 t=4, m=7168 t=5, p=1). A configuration must reach
/// one of them in both memory and iterations.
pub const OWASP_ARGON2ID_MINIMUMS: [(u32, u32); 5] = [
    (47_104, 1),
    (19_456, 2),
    (12_288, 3),
    (9_216, 4),
    (7_168, 5),
];

/// The highest memory cost accepted (4 GiB), in KiB.
const MAX_MEMORY_KIB: u32 = 4 * 1024 * 1024;

impl HashParams {
    /// Whether these parameters reach one of [`OWASP_ARGON2ID_MINIMUMS`].
    pub fn meets_owasp_minimum(&self) -> bool {
        OWASP_ARGON2ID_MINIMUMS
            .iter()
            .any(|&(m, t)| self.memory_kib >= m && self.iterations >= t)
    }

    /// Checks parameters for hashing new passwords: OWASP's floor (see
    /// [`OWASP_ARGON2ID_MINIMUMS`]), at most 4 GiB, iterations and lanes 1..=16. The error
    /// names the values at fault (none is secret).
    pub fn validate(&self) -> Result<(), DomainError> {
        if !self.meets_owasp_minimum() {
            return Err(DomainError::Invalid(format!(
                "argon2 parameters m={} KiB, t={} are below OWASP's argon2id minimum (one of \
                 m>=47104 t>=1, m>=19456 t>=2, m>=12288 t>=3, m>=9216 t>=4, m>=7168 t>=5)",
                self.memory_kib, self.iterations
            )));
        }
        self.within_limits()
    }

    /// The upper bounds (and argon2's own lower ones), without OWASP's floor: what a stored
    /// hash may use for the dummy to mirror it.
    fn within_limits(&self) -> Result<(), DomainError> {
        if self.memory_kib > MAX_MEMORY_KIB
            || self.memory_kib < 8 * self.parallelism
            || !(1..=16).contains(&self.iterations)
            || !(1..=16).contains(&self.parallelism)
        {
            return Err(DomainError::Invalid(format!(
                "argon2 parameters out of range (m={} KiB, t={}, p={}: memory at most 4 GiB, \
                 iterations and parallelism 1..=16)",
                self.memory_kib, self.iterations, self.parallelism
            )));
        }
        Ok(())
    }

    /// Parses the parameter segment of a PHC string, exactly `m=<kib>,t=<n>,p=<n>`.
    pub fn parse_segment(segment: &str) -> Option<HashParams> {
        let mut parts = segment.split(',');
        let mut next = |key: &str| -> Option<u32> {
            let value = parts.next()?.strip_prefix(key)?.strip_prefix('=')?;
            if value.is_empty() || value.len() > 10 || !value.bytes().all(|b| b.is_ascii_digit()) {
                return None;
            }
            value.parse().ok()
        };
        let params = HashParams {
            memory_kib: next("m")?,
            iterations: next("t")?,
            parallelism: next("p")?,
        };
        parts.next().is_none().then_some(params)
    }

    /// The parameters of a stored `$argon2id$v=19$` hash, if it is one.
    pub fn of(hash: &PasswordHash) -> Option<HashParams> {
        let rest = hash.as_str().strip_prefix("$argon2id$v=19$")?;
        HashParams::parse_segment(rest.split('$').next()?)
    }

    /// The PHC parameter segment, `m=…,t=…,p=…`.
    pub fn segment(&self) -> String {
        format!(
            "m={},t={},p={}",
            self.memory_kib, self.iterations, self.parallelism
        )
    }
}

/// Hashes and verifies passwords with argon2id. CPU-heavy: callers run it on a bounded
/// pool of their own threads, never on an async executor thread.
#[derive(Clone)]
pub struct Hasher {
    argon: Argon2<'static>,
    /// A hash of a random password, verified against for unknown accounts so that their
    /// timing matches a wrong password (OWASP ASVS V2.2 / account enumeration). Its cost
    /// follows the accounts' (see [`Hasher::mirror_cost`]), shared by every clone.
    dummy: Arc<RwLock<PasswordHash>>,
}

impl fmt::Debug for Hasher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Hasher").finish_non_exhaustive()
    }
}

impl Hasher {
    /// Builds a hasher; refuses parameters below OWASP's argon2id minimum
    /// ([`HashParams::validate`]) or absurdly high.
    pub fn new(params: HashParams) -> Result<Hasher, DomainError> {
        params.validate()?;
        Hasher::build(params)
    }

    /// A hasher with tiny parameters for tests of other components. Never for production:
    /// only built with the `test-support` feature, which only dev-dependencies enable.
    #[cfg(any(test, feature = "test-support"))]
    pub fn insecure_fast_for_tests() -> Hasher {
        Hasher::insecure_with_params_for_tests(HashParams {
            memory_kib: 64,
            iterations: 1,
            parallelism: 1,
        })
    }

    /// A hasher with any parameters argon2 accepts (no OWASP floor), for tests of cost
    /// changes. Never for production: only with the `test-support` feature.
    #[cfg(any(test, feature = "test-support"))]
    pub fn insecure_with_params_for_tests(params: HashParams) -> Hasher {
        #[allow(clippy::expect_used)]
        Hasher::build(params).expect("valid test parameters")
    }

    /// Checks production parameters without building a hasher (which costs one hash).
    pub fn check_params(params: HashParams) -> Result<(), DomainError> {
        params.validate()
    }

    fn build(params: HashParams) -> Result<Hasher, DomainError> {
        params.within_limits()?;
        let argon = Argon2::new(Algorithm::Argon2id, Version::V0x13, argon_params(params)?);
        let hasher = Hasher {
            argon,
            dummy: Arc::new(RwLock::new(PasswordHash(String::new()))),
        };
        let dummy = hasher.dummy_hash(params)?;
        *hasher.dummy.write().unwrap_or_else(|e| e.into_inner()) = dummy;
        Ok(hasher)
    }

    /// A hash of a random password with these parameters.
    fn dummy_hash(&self, params: HashParams) -> Result<PasswordHash, DomainError> {
        let argon = Argon2::new(Algorithm::Argon2id, Version::V0x13, argon_params(params)?);
        let random = crate::random::bytes::<24>();
        let password = Zeroizing::new(tessera_token::b64::encode(random));
        let salt = crate::random::bytes::<16>();
        let hash = argon
            .hash_password_with_salt(password.as_bytes(), &salt)
            .map_err(|e| DomainError::Hashing(e.to_string()))?;
        Ok(PasswordHash(hash.to_string()))
    }

    /// The parameters this hasher hashes new passwords with.
    pub fn params(&self) -> HashParams {
        let p = self.argon.params();
        HashParams {
            memory_kib: p.m_cost(),
            iterations: p.t_cost(),
            parallelism: p.p_cost(),
        }
    }

    /// The parameters of the dummy hash verified for unknown accounts.
    pub fn dummy_params(&self) -> Option<HashParams> {
        HashParams::of(&self.dummy.read().unwrap_or_else(|e| e.into_inner()))
    }

    /// Makes the dummy hash cost what stored hashes cost: `in_use` is the parameter segment of
    /// the stored hashes with their counts ([`crate::store::AccountStore::password_params_in_use`]);
    /// the dummy takes the most used one (this hasher's own when there is none), so that an
    /// unknown name takes as long as most known names after a cost change (timing-based
    /// account enumeration, OWASP ASVS V2.2). Costs one hash when the cost changes (run it
    /// where hashing may run). Returns the parameters now in use.
    pub fn mirror_cost(&self, in_use: &[(String, u64)]) -> Result<HashParams, DomainError> {
        let want = in_use
            .iter()
            .filter_map(|(segment, n)| Some((HashParams::parse_segment(segment)?, *n)))
            .filter(|(p, _)| p.within_limits().is_ok())
            .min_by_key(|(_, n)| std::cmp::Reverse(*n))
            .map_or_else(|| self.params(), |(p, _)| p);
        if self.dummy_params() != Some(want) {
            let dummy = self.dummy_hash(want)?;
            *self.dummy.write().unwrap_or_else(|e| e.into_inner()) = dummy;
        }
        Ok(want)
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

    /// Verifies a password against a stored hash (constant-time comparison inside argon2,
    /// with the parameters stored in the hash). With `None` (unknown account) it verifies
    /// against the dummy hash and returns false, so both paths cost the same.
    pub fn verify(&self, password: &Password, stored: Option<&PasswordHash>) -> bool {
        if password.expose().len() > MAX_PASSWORD_BYTES {
            return false;
        }
        let dummy;
        let target = match stored {
            Some(s) => s,
            None => {
                dummy = self.dummy.read().unwrap_or_else(|e| e.into_inner()).clone();
                &dummy
            }
        };
        let ok = self
            .argon
            .verify_password(password.expose().as_bytes(), target.as_str())
            .is_ok();
        ok && stored.is_some()
    }

    /// Whether a stored hash uses weaker parameters than this hasher and should be re-hashed at
    /// the next successful login.
    pub fn needs_rehash(&self, stored: &PasswordHash) -> bool {
        HashParams::of(stored) != Some(self.params())
    }
}

fn argon_params(params: HashParams) -> Result<Params, DomainError> {
    Params::new(
        params.memory_kib,
        params.iterations,
        params.parallelism,
        None,
    )
    .map_err(|e| DomainError::Invalid(format!("argon2 parameters: {e}")))
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
        assert!(HashParams::default().meets_owasp_minimum());
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

    #[test]
    fn the_floor_is_owasps_weakest_argon2id_setting() {
        let p = |memory_kib, iterations| HashParams {
            memory_kib,
            iterations,
            parallelism: 1,
        };
        // Each of OWASP's five settings is accepted, as is anything stronger in both.
        for (m, t) in OWASP_ARGON2ID_MINIMUMS {
            assert!(p(m, t).validate().is_ok(), "m={m} t={t}");
            assert!(p(m + 1, t + 1).validate().is_ok(), "m={m} t={t}");
            // One KiB less memory at that iteration count is below every setting.
            assert!(p(m - 1, t).validate().is_err(), "m={} t={t}", m - 1);
        }
        // The old floor (8 MiB, one pass) and OWASP's weakest memory with too few passes.
        for (m, t) in [
            (8192, 1),
            (7168, 4),
            (9216, 3),
            (12288, 2),
            (19455, 2),
            (47103, 1),
        ] {
            let err = p(m, t).validate().expect_err("below OWASP's minimum");
            assert!(err.to_string().contains(&format!("m={m}")), "{err}");
            assert!(Hasher::new(p(m, t)).is_err());
            assert!(Hasher::check_params(p(m, t)).is_err());
        }
        // Upper bounds hold.
        assert!(p(MAX_MEMORY_KIB + 1, 2).validate().is_err());
        assert!(p(19456, 17).validate().is_err());
        assert!(
            HashParams {
                parallelism: 0,
                ..HashParams::default()
            }
            .validate()
            .is_err()
        );
    }

    #[test]
    fn phc_parameters_parse_strictly() {
        let stored = PasswordHash::from_stored(
            "$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHQ$aGFzaA".to_owned(),
        );
        assert_eq!(HashParams::of(&stored), Some(HashParams::default()));
        assert_eq!(HashParams::default().segment(), "m=19456,t=2,p=1");
        for bad in [
            "m=1,t=2",
            "m=1,t=2,p=3,x=4",
            "t=2,m=1,p=1",
            "m=,t=1,p=1",
            "m=+1,t=1,p=1",
        ] {
            assert_eq!(HashParams::parse_segment(bad), None, "{bad}");
        }
        let argon2i = PasswordHash::from_stored("$argon2i$v=19$m=19456,t=2,p=1$c2Fs$aGFz".into());
        assert_eq!(HashParams::of(&argon2i), None);
    }

    /// Defect 6: after a cost change, the dummy verified for unknown names costs what the
    /// stored (legacy) hashes cost, not the new setting.
    #[test]
    fn the_dummy_mirrors_the_cost_of_stored_hashes() {
        let legacy = HashParams {
            memory_kib: 96,
            iterations: 2,
            parallelism: 1,
        };
        let current = HashParams {
            memory_kib: 128,
            iterations: 1,
            parallelism: 1,
        };
        let old = Hasher::insecure_with_params_for_tests(legacy);
        let stored = old.hash(&Password::new("an old password")).expect("hash");
        let h = Hasher::insecure_with_params_for_tests(current);
        assert_eq!(h.dummy_params(), Some(current));
        let in_use = vec![
            (legacy.segment(), 3),
            (current.segment(), 1),
            ("garbage".to_owned(), 9),
        ];
        assert_eq!(h.mirror_cost(&in_use).expect("mirror"), legacy);
        assert_eq!(h.dummy_params(), HashParams::of(&stored));
        // Clones share the dummy; unknown names still never match.
        assert_eq!(h.clone().dummy_params(), Some(legacy));
        assert!(!h.verify(&Password::new("an old password"), None));
        // New hashes keep the current cost, and the legacy one wants a rehash.
        assert_eq!(
            HashParams::of(&h.hash(&Password::new("x")).expect("hash")),
            Some(current)
        );
        assert!(h.needs_rehash(&stored));
        // No stored hash: back to the hasher's own cost.
        assert_eq!(h.mirror_cost(&[]).expect("mirror"), current);
        assert_eq!(h.dummy_params(), Some(current));
    }

    #[test]
    fn oversized_passwords_never_verify() {
        let h = Hasher::insecure_fast_for_tests();
        let long = Password::new("a".repeat(MAX_PASSWORD_BYTES + 1));
        let stored = h.hash(&long).expect("hashing itself has no cap");
        assert!(!h.verify(&long, Some(&stored)));
        let fits = Password::new("é".repeat(MAX_PASSWORD_BYTES / 2));
        let stored = h.hash(&fits).expect("hash");
        assert!(h.verify(&fits, Some(&stored)));
    }
}
