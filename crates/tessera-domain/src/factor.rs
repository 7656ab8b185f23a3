//! Second factors as data: what a [`Factor`] is (TOTP, HOTP, a code sent by email or SMS,
//! recovery codes), the secrets that go with it and how they are kept (seeds sealed under the
//! master key ring, codes as keyed hashes), the sent codes, the two-step sign-in state
//! ([`PendingLogin`]) and the rules' limits ([`FactorPolicy`]). The services that use them are in
//! [`crate::factors`]; the storage trait is [`crate::store::FactorStore`].
//!
//! Secrets at rest: a TOTP/HOTP seed is sealed with AES-256-GCM under the master key ring given
//! by the composition root ([`FactorKeys`]), with associated data naming the factor
//! (`tessera factor seed v1:<id>`), so a sealed seed copied to another row does not open.
//! Recovery codes and sent codes are stored as HMAC-SHA256 under a server-wide pepper kept in
//! the store's server secrets ([`PEPPER_SECRET`]): the codes table alone does not allow an
//! offline guess (NIST SP 800-63B-4 §3.1.2.1 and §3.1.3.1 on look-up secrets and out-of-band
//! codes). The pending sign-in token is 256 random bits, stored as its SHA-256 like a session's.

use std::fmt;
use std::sync::Arc;

use aws_lc_rs::hmac;
use serde::Serialize;
pub use tessera_token::otp::OtpAlgorithm;
use tessera_token::otp::OtpSecret;
use tessera_token::seal::KeyRing;
use zeroize::Zeroizing;

use crate::account::{AccountId, Email};
use crate::clock::UnixTime;
use crate::error::DomainError;
use crate::session::TokenHash;
use crate::store::{Store, StoreResult};

/// The name of the server secret keying recovery-code and sent-code hashes.
pub const PEPPER_SECRET: &str = "factor-code-pepper";

/// The longest label a user may give a factor, in characters.
pub const MAX_LABEL: usize = 64;

/// A factor's stable, public identifier: 16 random bytes, base64url (22 characters).
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(transparent)]
pub struct FactorId(String);

impl FactorId {
    /// A fresh random id.
    pub fn generate() -> FactorId {
        FactorId(tessera_token::b64::encode(crate::random::bytes::<16>()))
    }

    /// Parses a presented or stored id: 22 base64url characters (16 bytes).
    pub fn parse(text: &str) -> Result<FactorId, DomainError> {
        if text.len() == 22 && tessera_token::b64::decode(text).is_some_and(|b| b.len() == 16) {
            Ok(FactorId(text.to_owned()))
        } else {
            Err(DomainError::Invalid("factor id is malformed".into()))
        }
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The associated data a sealed seed of this factor is bound to.
    pub fn seed_aad(&self) -> Vec<u8> {
        format!("tessera factor seed v1:{}", self.0).into_bytes()
    }
}

impl fmt::Display for FactorId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// What kind of second factor.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FactorKind {
    /// Time-based codes from an authenticator app (RFC 6238).
    Totp,
    /// Counter-based codes from a key fob (RFC 4226).
    Hotp,
    /// A code sent by email.
    Email,
    /// A code sent by text message.
    Sms,
    /// The account's set of single-use recovery codes (at most one per account).
    Recovery,
}

impl FactorKind {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            FactorKind::Totp => "totp",
            FactorKind::Hotp => "hotp",
            FactorKind::Email => "email",
            FactorKind::Sms => "sms",
            FactorKind::Recovery => "recovery",
        }
    }

    /// Parses a stored name.
    pub fn parse(text: &str) -> Option<FactorKind> {
        [
            FactorKind::Totp,
            FactorKind::Hotp,
            FactorKind::Email,
            FactorKind::Sms,
            FactorKind::Recovery,
        ]
        .into_iter()
        .find(|k| k.as_str() == text)
    }

    /// The RFC 8176 §2 `amr` value a proof of this factor adds: `otp` for codes from an app or
    /// a fob (RFC 4226/6238), for emailed codes and for recovery codes (one-time codes; RFC 8176
    /// registers nothing closer), `sms` for a text message.
    pub fn amr(self) -> &'static str {
        match self {
            FactorKind::Sms => "sms",
            FactorKind::Totp | FactorKind::Hotp | FactorKind::Email | FactorKind::Recovery => "otp",
        }
    }

    /// Whether having an active factor of this kind makes sign-in two-step. Recovery codes
    /// alone do not: they are a fallback for the other factors.
    pub fn asks_at_sign_in(self) -> bool {
        self != FactorKind::Recovery
    }
}

/// Whether a factor is usable yet.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FactorStatus {
    /// Enrolment begun, not proven: a TOTP seed the user has not confirmed with a first code,
    /// an address not yet confirmed with a sent code.
    Pending,
    /// Proven; accepted at sign-in.
    Active,
}

impl FactorStatus {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            FactorStatus::Pending => "pending",
            FactorStatus::Active => "active",
        }
    }

    /// Parses a stored name.
    pub fn parse(text: &str) -> Option<FactorStatus> {
        match text {
            "pending" => Some(FactorStatus::Pending),
            "active" => Some(FactorStatus::Active),
            _ => None,
        }
    }
}

/// A user-given name for a factor ("phone", "YubiKey 5"): 1 to [`MAX_LABEL`] characters, no
/// control characters, trimmed.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(transparent)]
pub struct FactorLabel(String);

impl FactorLabel {
    /// Checks and trims a label.
    pub fn parse(text: &str) -> Result<FactorLabel, DomainError> {
        let t = text.trim();
        if t.is_empty() || t.chars().count() > MAX_LABEL || t.chars().any(char::is_control) {
            return Err(DomainError::Invalid(
                "a factor label must be 1 to 64 characters without control characters".into(),
            ));
        }
        Ok(FactorLabel(t.to_owned()))
    }

    /// The label.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A phone number in E.164 form: `+`, then 8 to 15 digits, the first not 0 (ITU-T E.164 §6).
/// Kept as validated text until the delivery port defines its own type.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(transparent)]
pub struct Phone(String);

impl Phone {
    /// Checks a number; spaces, dashes, dots and parentheses typed between digits are dropped.
    pub fn parse(text: &str) -> Result<Phone, DomainError> {
        let bad = || DomainError::Invalid("a phone number must be + and 8 to 15 digits".into());
        if text.len() > 32 {
            return Err(bad());
        }
        let rest = text.trim().strip_prefix('+').ok_or_else(bad)?;
        let mut digits = String::with_capacity(16);
        for c in rest.chars() {
            match c {
                '0'..='9' => digits.push(c),
                ' ' | '-' | '.' | '(' | ')' => {}
                _ => return Err(bad()),
            }
        }
        if !(8..=15).contains(&digits.len()) || digits.starts_with('0') {
            return Err(bad());
        }
        Ok(Phone(format!("+{digits}")))
    }

    /// The number as `+` and digits.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A seed sealed under the master key ring (see [`tessera_token::seal`]). `Debug` shows only its
/// length.
#[derive(Clone, PartialEq, Eq)]
pub struct SealedSecret(pub Vec<u8>);

impl fmt::Debug for SealedSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SealedSecret({} bytes)", self.0.len())
    }
}

/// What each kind of factor keeps.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FactorData {
    /// An authenticator app's seed and parameters, and the last accepted time step (RFC 6238
    /// §5.2: a step is never accepted twice).
    Totp {
        /// The sealed seed.
        secret: SealedSecret,
        /// The HMAC.
        algorithm: OtpAlgorithm,
        /// 6 to 8.
        digits: u8,
        /// Seconds per step.
        period: u32,
        /// The last accepted step, if any.
        last_step: Option<u64>,
    },
    /// A key fob's seed and parameters, and the first counter not yet used (RFC 4226 §7.2).
    Hotp {
        /// The sealed seed.
        secret: SealedSecret,
        /// The HMAC.
        algorithm: OtpAlgorithm,
        /// 6 to 8.
        digits: u8,
        /// The next counter to accept (only moves forward).
        next_counter: u64,
    },
    /// Codes sent to this address.
    Email {
        /// Where codes go.
        address: Email,
    },
    /// Codes sent to this number.
    Sms {
        /// Where codes go.
        phone: Phone,
    },
    /// Recovery codes (kept apart, as keyed hashes).
    Recovery,
}

impl FactorData {
    /// The kind of factor this data belongs to.
    pub fn kind(&self) -> FactorKind {
        match self {
            FactorData::Totp { .. } => FactorKind::Totp,
            FactorData::Hotp { .. } => FactorKind::Hotp,
            FactorData::Email { .. } => FactorKind::Email,
            FactorData::Sms { .. } => FactorKind::Sms,
            FactorData::Recovery => FactorKind::Recovery,
        }
    }

    /// The sealed seed, for TOTP and HOTP.
    pub fn sealed(&self) -> Option<&SealedSecret> {
        match self {
            FactorData::Totp { secret, .. } | FactorData::Hotp { secret, .. } => Some(secret),
            _ => None,
        }
    }
}

/// A second factor of an account, as stored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Factor {
    /// Stable id.
    pub id: FactorId,
    /// Whose.
    pub account_id: AccountId,
    /// The user's name for it.
    pub label: FactorLabel,
    /// Pending or active.
    pub status: FactorStatus,
    /// When enrolment began.
    pub created_at: UnixTime,
    /// When it last proved a sign-in or a re-authentication.
    pub last_used_at: Option<UnixTime>,
    /// Consecutive failed proofs since the last success.
    pub failures: u32,
    /// When it locked after too many consecutive failures; a locked factor is refused until an
    /// administrator unlocks or removes it.
    pub locked_at: Option<UnixTime>,
    /// When the last code was sent to it (email/SMS), for the resend throttle.
    pub last_sent_at: Option<UnixTime>,
    /// The kind and what goes with it.
    pub data: FactorData,
}

impl Factor {
    /// The kind.
    pub fn kind(&self) -> FactorKind {
        self.data.kind()
    }

    /// Whether it may prove a sign-in: active and not locked.
    pub fn is_usable(&self) -> bool {
        self.status == FactorStatus::Active && self.locked_at.is_none()
    }

    /// What a user or an admin may see of it (no secret, no sealed value).
    pub fn summary(&self) -> FactorSummary {
        FactorSummary {
            id: self.id.clone(),
            kind: self.kind(),
            label: self.label.clone(),
            status: self.status,
            created_at: self.created_at,
            last_used_at: self.last_used_at,
            locked: self.locked_at.is_some(),
            destination: match &self.data {
                FactorData::Email { address } => Some(mask_email(address.as_str())),
                FactorData::Sms { phone } => Some(mask_phone(phone.as_str())),
                _ => None,
            },
        }
    }
}

/// A factor as shown to its owner, to an admin, or on the second-step page.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct FactorSummary {
    /// Id, to choose it.
    pub id: FactorId,
    /// Kind.
    pub kind: FactorKind,
    /// Label.
    pub label: FactorLabel,
    /// Pending or active.
    pub status: FactorStatus,
    /// Enrolled at.
    pub created_at: UnixTime,
    /// Last used at.
    pub last_used_at: Option<UnixTime>,
    /// Locked after too many failures.
    pub locked: bool,
    /// Where sent codes go, masked (`a…@example.com`, `+44…89`).
    pub destination: Option<String>,
}

fn mask_email(address: &str) -> String {
    match address.split_once('@') {
        Some((local, domain)) => {
            let first: String = local.chars().take(1).collect();
            format!("{first}…@{domain}")
        }
        None => "…".to_owned(),
    }
}

fn mask_phone(phone: &str) -> String {
    let head: String = phone.chars().take(3).collect();
    let tail: String = phone
        .chars()
        .rev()
        .take(2)
        .collect::<Vec<_>>()
        .into_iter()
        .rev()
        .collect();
    format!("{head}…{tail}")
}

/// A sent code's id: 16 random bytes, base64url. The code's hash is bound to it.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct SentCodeId(pub String);

impl SentCodeId {
    /// A fresh id.
    pub fn generate() -> SentCodeId {
        SentCodeId(tessera_token::b64::encode(crate::random::bytes::<16>()))
    }
}

/// A one-time code sent to an email address or a phone, as stored (its keyed hash only).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SentCode {
    /// Id.
    pub id: SentCodeId,
    /// The factor it was sent to.
    pub factor_id: FactorId,
    /// HMAC-SHA256 under the pepper over the id and the code.
    pub hash: [u8; 32],
    /// When it was sent.
    pub created_at: UnixTime,
    /// When it stops being accepted.
    pub expires_at: UnixTime,
    /// Checks spent on it (each check reserves one first, so concurrent guesses count).
    pub tries: u32,
    /// When it was used or superseded by a newer code.
    pub used_at: Option<UnixTime>,
}

/// The secret of a pending two-step sign-in, for the server's own cookie: 32 random bytes,
/// base64url. Never stored; the store keeps its SHA-256 in a table of its own, so nothing that
/// reads sessions can find it.
pub struct PendingToken(Zeroizing<String>);

impl PendingToken {
    /// A fresh token.
    pub fn generate() -> PendingToken {
        PendingToken(Zeroizing::new(tessera_token::b64::encode(
            crate::random::bytes::<32>(),
        )))
    }

    /// Parses a presented value: exactly 43 base64url characters (32 bytes), else `None`.
    pub fn parse(text: &str) -> Option<PendingToken> {
        (text.len() == 43 && tessera_token::b64::decode(text).is_some_and(|b| b.len() == 32))
            .then(|| PendingToken(Zeroizing::new(text.to_owned())))
    }

    /// The value for the cookie.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// The stored lookup key: SHA-256 of the token text.
    pub fn hash(&self) -> TokenHash {
        let d = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, self.0.as_bytes());
        let mut out = [0u8; 32];
        out.copy_from_slice(d.as_ref());
        TokenHash(out)
    }
}

impl fmt::Debug for PendingToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("PendingToken(***)")
    }
}

/// A sign-in whose password step passed and whose second step has not: never a session.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PendingLogin {
    /// SHA-256 of the [`PendingToken`].
    pub token_hash: TokenHash,
    /// Whose.
    pub account_id: AccountId,
    /// The methods proven so far (RFC 8176), `["pwd"]`.
    pub amr: Vec<String>,
    /// When the password step passed (the authentication time carried into the session).
    pub auth_time: UnixTime,
    /// When it stops being accepted.
    pub expires_at: UnixTime,
    /// Client address at the password step.
    pub ip: Option<String>,
    /// User agent at the password step (truncated to 256 characters).
    pub user_agent: Option<String>,
    /// Failed second-step proofs so far.
    pub tries: u32,
    /// The account must have a second factor and has none usable: this state only allows
    /// enrolling a TOTP factor, whose first proven code completes the sign-in.
    pub enrol_only: bool,
}

/// What a proof changes, applied by the store in one statement each, compare-and-set, so that
/// two nodes never both accept one code.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FactorUse {
    /// Record TOTP step `step` (only if later than the stored one).
    Totp {
        /// Which.
        factor: FactorId,
        /// The accepted step.
        step: u64,
        /// Activate a pending factor with this first code (enrolment).
        activate: bool,
    },
    /// HOTP counter `counter` matched: the next counter becomes `counter + 1`, only if the stored
    /// one is not already past `counter`.
    Hotp {
        /// Which.
        factor: FactorId,
        /// The matched counter.
        counter: u64,
    },
    /// Consume sent code `code` of `factor` (unused, unexpired).
    SentCode {
        /// Which factor.
        factor: FactorId,
        /// Which code.
        code: SentCodeId,
        /// Activate a pending factor (address confirmation).
        activate: bool,
    },
    /// Consume the recovery code with this keyed hash.
    Recovery {
        /// The account's recovery factor.
        factor: FactorId,
        /// HMAC of the code.
        hash: [u8; 32],
    },
}

impl FactorUse {
    /// The factor concerned.
    pub fn factor(&self) -> &FactorId {
        match self {
            FactorUse::Totp { factor, .. }
            | FactorUse::Hotp { factor, .. }
            | FactorUse::SentCode { factor, .. }
            | FactorUse::Recovery { factor, .. } => factor,
        }
    }
}

/// The resend throttle for sent codes, checked by the store on the shared rows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ResendThrottle {
    /// At most one code per this many seconds per factor.
    pub min_interval: i64,
    /// At most this many codes per factor in any hour.
    pub per_hour: u32,
}

/// Why no code was sent.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Throttled {
    /// Too soon after the previous code.
    TooSoon,
    /// Too many codes this hour.
    HourlyLimit,
    /// No such factor, not a sending kind, or locked.
    Unavailable,
}

/// The rules' numbers, with defaults from the standards cited on each field. `Copy`: handlers
/// take it from the server's configuration.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FactorPolicy {
    /// TOTP steps accepted either side of now (RFC 6238 §5.2; default 1).
    pub totp_window: u32,
    /// HOTP look-ahead (RFC 4226 §7.4; default 10).
    pub hotp_look_ahead: u32,
    /// How far beyond the counter a resynchronisation searches (default 1000).
    pub hotp_resync_max: u32,
    /// Consecutive failures that lock a factor (NIST SP 800-63B-4 §3.2.2: at most 100;
    /// default 100).
    pub lock_after: u32,
    /// Digits of a sent code (6 to 8; default 6).
    pub sent_code_digits: u8,
    /// Lifetime of a sent code in seconds (default 5 min).
    pub sent_code_ttl: i64,
    /// Checks allowed per sent code (default 5).
    pub sent_code_tries: u32,
    /// Resend throttle per factor (default one per 30 s, 10 per hour).
    pub resend: ResendThrottle,
    /// Lifetime of a pending two-step sign-in in seconds (default 5 min).
    pub pending_ttl: i64,
    /// Wrong proofs a pending sign-in survives before it is dropped (default 5).
    pub pending_tries: u32,
    /// Every admin must pass a second factor (global policy; default off).
    pub admins_required: bool,
}

impl Default for FactorPolicy {
    fn default() -> Self {
        FactorPolicy {
            totp_window: 1,
            hotp_look_ahead: 10,
            hotp_resync_max: 1000,
            lock_after: 100,
            sent_code_digits: 6,
            sent_code_ttl: 300,
            sent_code_tries: 5,
            resend: ResendThrottle {
                min_interval: 30,
                per_hour: 10,
            },
            pending_ttl: 300,
            pending_tries: 5,
            admins_required: false,
        }
    }
}

impl FactorPolicy {
    /// Checks a policy: windows small, limits within the standards' bounds.
    pub fn validate(&self) -> Result<(), DomainError> {
        let ok = self.totp_window <= 10
            && (1..=100).contains(&self.hotp_look_ahead)
            && (1..=100_000).contains(&self.hotp_resync_max)
            && (1..=100).contains(&self.lock_after)
            && (6..=8).contains(&self.sent_code_digits)
            && (30..=3600).contains(&self.sent_code_ttl)
            && (1..=10).contains(&self.sent_code_tries)
            && (0..=3600).contains(&self.resend.min_interval)
            && (1..=100).contains(&self.resend.per_hour)
            && (30..=3600).contains(&self.pending_ttl)
            && (1..=20).contains(&self.pending_tries);
        if ok {
            Ok(())
        } else {
            Err(DomainError::Invalid(
                "second-factor policy out of range (lock_after ≤ 100, 6–8 digits, ttl 30 s–1 h)"
                    .into(),
            ))
        }
    }
}

/// The keys of second factors, given by the composition root: the master key ring that seals
/// seeds (absent when no master key is configured: then nothing can be enrolled that needs
/// one) and the pepper keying code hashes (a server secret shared by all nodes).
#[derive(Clone)]
pub struct FactorKeys {
    ring: Option<Arc<KeyRing>>,
    pepper: hmac::Key,
}

impl fmt::Debug for FactorKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FactorKeys")
            .field("ring", &self.ring)
            .field("pepper", &"***")
            .finish()
    }
}

impl FactorKeys {
    /// Keys from a pepper and an optional ring.
    pub fn new(pepper: &[u8], ring: Option<Arc<KeyRing>>) -> FactorKeys {
        FactorKeys {
            ring,
            pepper: hmac::Key::new(hmac::HMAC_SHA256, pepper),
        }
    }

    /// This deployment's keys: the pepper is the server secret [`PEPPER_SECRET`] (created by the
    /// first node that asks, first writer wins).
    pub async fn load(store: &dyn Store, ring: Option<Arc<KeyRing>>) -> StoreResult<FactorKeys> {
        let candidate = Zeroizing::new(crate::random::bytes::<32>());
        let pepper = Zeroizing::new(store.server_secret(PEPPER_SECRET, &candidate[..]).await?);
        Ok(FactorKeys::new(&pepper, ring))
    }

    /// The ring, if a master key is configured.
    pub fn ring(&self) -> Option<&KeyRing> {
        self.ring.as_deref()
    }

    /// The ring, or [`DomainError::NoMasterKey`].
    pub fn require_ring(&self) -> Result<&KeyRing, DomainError> {
        self.ring.as_deref().ok_or(DomainError::NoMasterKey)
    }

    /// Seals a seed for factor `id`.
    pub fn seal_seed(&self, id: &FactorId, seed: &OtpSecret) -> Result<SealedSecret, DomainError> {
        self.require_ring()?
            .seal(seed.expose(), &id.seed_aad())
            .map(SealedSecret)
            .map_err(|e| DomainError::Sealing(e.to_string()))
    }

    /// Opens the sealed seed of factor `id`.
    pub fn open_seed(
        &self,
        id: &FactorId,
        sealed: &SealedSecret,
    ) -> Result<OtpSecret, DomainError> {
        let plain = self
            .require_ring()?
            .open(&sealed.0, &id.seed_aad())
            .map_err(|e| DomainError::Sealing(e.to_string()))?;
        OtpSecret::new(plain.to_vec())
            .map_err(|_| DomainError::Sealing("the seed is malformed".into()))
    }

    /// The keyed hash of a recovery code of factor `id` (already normalised).
    pub fn recovery_hash(&self, id: &FactorId, normalised: &str) -> [u8; 32] {
        self.mac(&["tessera recovery code v1", id.as_str(), normalised])
    }

    /// The keyed hash of sent code `code` with id `id`.
    pub fn sent_code_hash(&self, id: &SentCodeId, code: &str) -> [u8; 32] {
        self.mac(&["tessera sent code v1", &id.0, code])
    }

    fn mac(&self, parts: &[&str]) -> [u8; 32] {
        let mut ctx = hmac::Context::with_key(&self.pepper);
        for part in parts {
            // Length-prefixed, so no two part lists give one input.
            ctx.update(&(part.len() as u64).to_be_bytes());
            ctx.update(part.as_bytes());
        }
        let tag = ctx.sign();
        let mut out = [0u8; 32];
        out.copy_from_slice(tag.as_ref());
        out
    }
}

/// The alphabet of recovery codes: Crockford's base32 in lower case (no `i`, `l`, `o`, `u`), so
/// a code read aloud or copied by hand is unambiguous.
pub const RECOVERY_ALPHABET: &[u8; 32] = b"0123456789abcdefghjkmnpqrstvwxyz";

/// Characters of a recovery code (50 bits: NIST SP 800-63B-4 §3.1.2.1 asks look-up secrets for
/// at least 20 bits when rate-limited; 50 keeps them safe even without the limit).
pub const RECOVERY_CODE_CHARS: usize = 10;

/// Recovery codes per set.
pub const RECOVERY_CODES: usize = 10;

/// A fresh recovery code as shown once: `xxxxx-xxxxx`.
pub fn generate_recovery_code() -> Zeroizing<String> {
    let bytes = Zeroizing::new(crate::random::bytes::<8>());
    let value = u64::from_be_bytes(*bytes);
    let mut out = Zeroizing::new(String::with_capacity(11));
    for i in 0..RECOVERY_CODE_CHARS {
        if i == 5 {
            out.push('-');
        }
        // 32 = 2^5 characters: five bits each, no bias.
        let index = ((value >> (5 * i)) & 0x1f) as usize;
        out.push(char::from(RECOVERY_ALPHABET[index]));
    }
    out
}

/// A typed recovery code reduced to its 10 characters: case, spaces and dashes ignored; `o` read
/// as `0` and `i`/`l` as `1` (Crockford). `None` if it cannot be one.
pub fn normalise_recovery_code(input: &str) -> Option<Zeroizing<String>> {
    if input.len() > 64 {
        return None;
    }
    let mut out = Zeroizing::new(String::with_capacity(RECOVERY_CODE_CHARS));
    for c in input.chars() {
        let c = match c.to_ascii_lowercase() {
            ' ' | '-' => continue,
            'o' => '0',
            'i' | 'l' => '1',
            c if c.is_ascii() && RECOVERY_ALPHABET.contains(&(c as u8)) => c,
            _ => return None,
        };
        out.push(c);
    }
    (out.len() == RECOVERY_CODE_CHARS).then_some(out)
}

/// A fresh sent code of `digits` digits, uniformly drawn (rejection sampling: no modulo bias).
pub fn generate_sent_code(digits: u8) -> Zeroizing<String> {
    let digits = digits.clamp(6, 8);
    let modulus = 10u32.pow(u32::from(digits));
    let limit = u32::MAX - (u32::MAX % modulus);
    loop {
        let value = u32::from_be_bytes(crate::random::bytes::<4>());
        if value < limit {
            return Zeroizing::new(format!(
                "{:0width$}",
                value % modulus,
                width = usize::from(digits)
            ));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_labels_and_phones_are_checked() {
        let id = FactorId::generate();
        assert_eq!(FactorId::parse(id.as_str()).ok(), Some(id.clone()));
        for bad in [
            "",
            "x",
            &"A".repeat(23),
            &format!("{}=", &id.as_str()[..21]),
        ] {
            assert!(FactorId::parse(bad).is_err(), "{bad:?}");
        }
        assert_eq!(
            FactorLabel::parse("  my phone ").unwrap().as_str(),
            "my phone"
        );
        assert!(FactorLabel::parse(&"é".repeat(64)).is_ok());
        for bad in ["", "   ", &"a".repeat(65), "a\nb"] {
            assert!(FactorLabel::parse(bad).is_err(), "{bad:?}");
        }
        assert_eq!(
            Phone::parse("+44 (20) 7946-0958").unwrap().as_str(),
            "+442079460958"
        );
        for bad in [
            "442079460958",
            "+0123456789",
            "+1234567",
            "+1234567890123456",
            "+44a1234567",
        ] {
            assert!(Phone::parse(bad).is_err(), "{bad:?}");
        }
        for kind in [
            FactorKind::Totp,
            FactorKind::Hotp,
            FactorKind::Email,
            FactorKind::Sms,
            FactorKind::Recovery,
        ] {
            assert_eq!(FactorKind::parse(kind.as_str()), Some(kind));
        }
        assert_eq!(FactorKind::Sms.amr(), "sms");
        assert_eq!(FactorKind::Totp.amr(), "otp");
    }

    #[test]
    fn recovery_codes_have_fifty_bits_and_normalise() {
        let a = generate_recovery_code();
        assert_eq!(a.len(), 11);
        assert_eq!(&a[5..6], "-");
        let n = normalise_recovery_code(&a.to_uppercase()).unwrap();
        assert_eq!(n.len(), 10);
        assert_eq!(*n, a.replace('-', ""));
        assert_eq!(
            normalise_recovery_code("OIL23-45678")
                .as_deref()
                .map(String::as_str),
            Some("0112345678")
        );
        for bad in ["", "abcd", "abcde-fghjku", "abcde-fghj!", &"a".repeat(65)] {
            assert!(normalise_recovery_code(bad).is_none(), "{bad:?}");
        }
        // 100 fresh codes: all distinct (50 bits each).
        let set: std::collections::BTreeSet<String> = (0..100)
            .map(|_| generate_recovery_code().to_string())
            .collect();
        assert_eq!(set.len(), 100);
    }

    #[test]
    fn sent_codes_and_hashes() {
        for d in 6..=8u8 {
            let c = generate_sent_code(d);
            assert_eq!(c.len(), usize::from(d));
            assert!(c.bytes().all(|b| b.is_ascii_digit()));
        }
        let keys = FactorKeys::new(&[1u8; 32], None);
        let other = FactorKeys::new(&[2u8; 32], None);
        let id = SentCodeId::generate();
        assert_eq!(
            keys.sent_code_hash(&id, "123456"),
            keys.sent_code_hash(&id, "123456")
        );
        assert_ne!(
            keys.sent_code_hash(&id, "123456"),
            other.sent_code_hash(&id, "123456")
        );
        assert_ne!(
            keys.sent_code_hash(&id, "123456"),
            keys.sent_code_hash(&SentCodeId::generate(), "123456")
        );
        let f = FactorId::generate();
        assert_ne!(
            keys.recovery_hash(&f, "abc"),
            keys.recovery_hash(&FactorId::generate(), "abc")
        );
        // No master key: sealing is a clear error.
        let seed = OtpSecret::generate(OtpAlgorithm::Sha1).unwrap();
        assert!(matches!(
            keys.seal_seed(&f, &seed),
            Err(DomainError::NoMasterKey)
        ));
    }

    #[test]
    fn seeds_are_bound_to_their_factor() {
        let (key, _) = tessera_token::seal::MasterKey::generate().unwrap();
        let keys = FactorKeys::new(&[1u8; 32], Some(Arc::new(KeyRing::new(key, vec![]))));
        let seed = OtpSecret::generate(OtpAlgorithm::Sha1).unwrap();
        let f = FactorId::generate();
        let sealed = keys.seal_seed(&f, &seed).unwrap();
        assert_eq!(keys.open_seed(&f, &sealed).unwrap(), seed);
        assert!(keys.open_seed(&FactorId::generate(), &sealed).is_err());
        assert!(!format!("{sealed:?}").contains(&format!("{:?}", sealed.0)));
    }

    #[test]
    fn pending_tokens_parse_strictly() {
        let t = PendingToken::generate();
        assert_eq!(PendingToken::parse(t.expose()).unwrap().hash(), t.hash());
        assert!(PendingToken::parse("short").is_none());
        assert!(!format!("{t:?}").contains(t.expose()));
        assert!(FactorPolicy::default().validate().is_ok());
        let bad = FactorPolicy {
            lock_after: 101,
            ..FactorPolicy::default()
        };
        assert!(bad.validate().is_err());
    }
}
