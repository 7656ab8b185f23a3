//! One-time passwords, pure: HOTP (RFC 4226), TOTP (RFC 6238), the `otpauth://` Key URI that
//! authenticator apps read, and the base32 they use. No I/O and no clock: the time is a
//! parameter (`now`, Unix seconds) and the caller records what was used (the last accepted time
//! step, the next HOTP counter) in its store.
//!
//! ```
//! use tessera_token::otp::{OtpAlgorithm, OtpParams, OtpSecret, Totp};
//!
//! let secret = OtpSecret::new(b"12345678901234567890".to_vec()).unwrap();
//! let totp = Totp::new(secret, OtpParams::new(OtpAlgorithm::Sha1, 8).unwrap(), 30).unwrap();
//! assert_eq!(totp.code_at(59).unwrap(), "94287082"); // RFC 6238 Appendix B
//! // Accepted once at step 1; the same code is then a replay (RFC 6238 §5.2).
//! assert_eq!(totp.check("94287082", 59, 1, None), Ok(1));
//! assert!(totp.check("94287082", 59, 1, Some(1)).is_err());
//! ```

use std::fmt;

use aws_lc_rs::{constant_time, hmac, rand};
use zeroize::Zeroizing;

pub mod base32;
pub mod uri;

pub use uri::{KeyUri, OtpKind};

/// The longest code input looked at, before any other work (a code is 6–8 digits; spaces and
/// dashes that users type between groups are allowed).
pub const MAX_CODE_INPUT: usize = 32;

/// The HMAC behind a code (RFC 6238 §1.2 allows SHA-256 and SHA-512 besides SHA-1).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum OtpAlgorithm {
    /// HMAC-SHA-1, RFC 4226's and the authenticator apps' default.
    Sha1,
    /// HMAC-SHA-256.
    Sha256,
    /// HMAC-SHA-512.
    Sha512,
}

impl OtpAlgorithm {
    /// The name used in `otpauth://` URIs (`SHA1`, `SHA256`, `SHA512`).
    pub fn as_str(self) -> &'static str {
        match self {
            OtpAlgorithm::Sha1 => "SHA1",
            OtpAlgorithm::Sha256 => "SHA256",
            OtpAlgorithm::Sha512 => "SHA512",
        }
    }

    /// Parses a URI name, case-insensitively (`SHA1`, `sha256`, …).
    pub fn parse(name: &str) -> Result<OtpAlgorithm, OtpError> {
        match name.to_ascii_uppercase().as_str() {
            "SHA1" => Ok(OtpAlgorithm::Sha1),
            "SHA256" => Ok(OtpAlgorithm::Sha256),
            "SHA512" => Ok(OtpAlgorithm::Sha512),
            _ => Err(OtpError::Algorithm),
        }
    }

    /// The seed length generated for this algorithm: its HMAC output length (RFC 4226 §4 R6
    /// asks for at least 128 bits and recommends 160; RFC 6238 §5.1 matches the hash).
    pub fn seed_len(self) -> usize {
        match self {
            OtpAlgorithm::Sha1 => 20,
            OtpAlgorithm::Sha256 => 32,
            OtpAlgorithm::Sha512 => 64,
        }
    }

    fn hmac(self) -> hmac::Algorithm {
        match self {
            OtpAlgorithm::Sha1 => hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY,
            OtpAlgorithm::Sha256 => hmac::HMAC_SHA256,
            OtpAlgorithm::Sha512 => hmac::HMAC_SHA512,
        }
    }
}

impl fmt::Display for OtpAlgorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why an OTP value, parameter or URI was refused. Never carries the secret or the code.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum OtpError {
    /// The algorithm is not SHA1, SHA256 or SHA512.
    Algorithm,
    /// The number of digits is outside 6–8 (RFC 4226 §5.3 R4 asks for at least 6).
    Digits,
    /// The TOTP period is outside 1–300 seconds.
    Period,
    /// The secret is shorter than 128 bits (RFC 4226 §4 R6) or longer than 128 bytes.
    SecretLength,
    /// The secret is not valid base32 (RFC 4648 §6) or hex.
    SecretEncoding,
    /// The time is before the Unix epoch (`T0`) or too far in the future.
    Time,
    /// The code is not exactly the expected number of ASCII digits.
    Malformed,
    /// The code matches no value in the window.
    Wrong,
    /// The code matches a time step at or before the last accepted one (RFC 6238 §5.2).
    Replayed,
    /// The HOTP counter would overflow.
    Counter,
    /// The `otpauth://` URI is malformed; the reason says which part.
    Uri(&'static str),
    /// The system random generator failed.
    Random,
}

impl fmt::Display for OtpError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            OtpError::Algorithm => f.write_str("algorithm must be SHA1, SHA256 or SHA512"),
            OtpError::Digits => f.write_str("codes must have 6, 7 or 8 digits"),
            OtpError::Period => f.write_str("the TOTP period must be 1 to 300 seconds"),
            OtpError::SecretLength => f.write_str("the secret must be 16 to 128 bytes"),
            OtpError::SecretEncoding => f.write_str("the secret is not valid base32 or hex"),
            OtpError::Time => f.write_str("the time is out of range"),
            OtpError::Malformed => f.write_str("the code must be digits only"),
            OtpError::Wrong => f.write_str("the code is wrong"),
            OtpError::Replayed => f.write_str("the code was already used"),
            OtpError::Counter => f.write_str("the counter is out of range"),
            OtpError::Uri(why) => write!(f, "bad otpauth URI: {why}"),
            OtpError::Random => f.write_str("the system random generator failed"),
        }
    }
}

impl std::error::Error for OtpError {}

/// A shared secret (the "seed"), wiped from memory on drop and never shown by `Debug`.
#[derive(Clone, PartialEq, Eq)]
pub struct OtpSecret(Zeroizing<Vec<u8>>);

impl OtpSecret {
    /// The shortest accepted secret: 128 bits (RFC 4226 §4 R6).
    pub const MIN_LEN: usize = 16;
    /// The longest accepted secret.
    pub const MAX_LEN: usize = 128;

    /// Wraps raw secret bytes (16–128 bytes).
    pub fn new(bytes: Vec<u8>) -> Result<OtpSecret, OtpError> {
        let bytes = Zeroizing::new(bytes);
        if !(Self::MIN_LEN..=Self::MAX_LEN).contains(&bytes.len()) {
            return Err(OtpError::SecretLength);
        }
        Ok(OtpSecret(bytes))
    }

    /// A fresh random secret as long as `alg`'s HMAC output (≥ 160 bits), from aws-lc-rs's DRBG.
    pub fn generate(alg: OtpAlgorithm) -> Result<OtpSecret, OtpError> {
        let mut bytes = Zeroizing::new(vec![0u8; alg.seed_len()]);
        rand::fill(&mut bytes).map_err(|_| OtpError::Random)?;
        Ok(OtpSecret(bytes))
    }

    /// Parses base32 (any case, spaces and `=` padding ignored), as apps and fob vendors print it.
    pub fn from_base32(text: &str) -> Result<OtpSecret, OtpError> {
        OtpSecret::new(base32::decode(text).ok_or(OtpError::SecretEncoding)?)
    }

    /// Parses hex (any case, spaces ignored), as hardware fob seed files list it.
    pub fn from_hex(text: &str) -> Result<OtpSecret, OtpError> {
        let digits: Zeroizing<Vec<u8>> =
            Zeroizing::new(text.bytes().filter(|b| !b.is_ascii_whitespace()).collect());
        if !digits.len().is_multiple_of(2) || digits.len() > 2 * Self::MAX_LEN {
            return Err(if !digits.len().is_multiple_of(2) {
                OtpError::SecretEncoding
            } else {
                OtpError::SecretLength
            });
        }
        let mut out = Zeroizing::new(Vec::with_capacity(digits.len() / 2));
        for pair in digits.chunks_exact(2) {
            let hi = hex_value(pair[0]).ok_or(OtpError::SecretEncoding)?;
            let lo = hex_value(pair[1]).ok_or(OtpError::SecretEncoding)?;
            out.push(hi << 4 | lo);
        }
        OtpSecret::new(std::mem::take(&mut *out))
    }

    /// The raw bytes (to seal for storage; never log them).
    pub fn expose(&self) -> &[u8] {
        &self.0
    }

    /// The secret in unpadded upper-case base32, for manual entry into an app.
    pub fn to_base32(&self) -> Zeroizing<String> {
        Zeroizing::new(base32::encode(&self.0))
    }
}

impl fmt::Debug for OtpSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "OtpSecret({} bytes)", self.0.len())
    }
}

fn hex_value(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// The algorithm and code length shared by HOTP and TOTP.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct OtpParams {
    alg: OtpAlgorithm,
    digits: u8,
}

impl OtpParams {
    /// SHA-1 and 6 digits: what every authenticator app and fob understands.
    pub const DEFAULT: OtpParams = OtpParams {
        alg: OtpAlgorithm::Sha1,
        digits: 6,
    };

    /// Checked parameters: 6, 7 or 8 digits (RFC 4226 §5.3 R4, and `10^digits` must fit the
    /// 31-bit truncation).
    pub fn new(alg: OtpAlgorithm, digits: u8) -> Result<OtpParams, OtpError> {
        if !(6..=8).contains(&digits) {
            return Err(OtpError::Digits);
        }
        Ok(OtpParams { alg, digits })
    }

    /// The HMAC algorithm.
    pub fn algorithm(self) -> OtpAlgorithm {
        self.alg
    }

    /// The number of digits of a code.
    pub fn digits(self) -> u8 {
        self.digits
    }

    fn modulus(self) -> u32 {
        10u32.pow(u32::from(self.digits))
    }
}

impl Default for OtpParams {
    fn default() -> Self {
        OtpParams::DEFAULT
    }
}

/// The HOTP value for `counter` (RFC 4226 §5.3: HMAC, dynamic truncation, modulo `10^digits`).
pub fn hotp_value(secret: &OtpSecret, counter: u64, params: OtpParams) -> u32 {
    let key = hmac::Key::new(params.alg.hmac(), secret.expose());
    let tag = hmac::sign(&key, &counter.to_be_bytes());
    let mac = tag.as_ref();
    // RFC 4226 §5.4: the low 4 bits of the last byte pick the offset of 4 bytes; the top bit is
    // masked so the result is a positive 31-bit number whatever the platform's signedness.
    let offset = usize::from(mac[mac.len() - 1] & 0x0f);
    let word = u32::from_be_bytes([
        mac[offset] & 0x7f,
        mac[offset + 1],
        mac[offset + 2],
        mac[offset + 3],
    ]);
    word % params.modulus()
}

/// The HOTP code for `counter` as the user sees it, zero-padded to `digits`.
pub fn hotp_code(secret: &OtpSecret, counter: u64, params: OtpParams) -> String {
    format_code(hotp_value(secret, counter, params), params.digits)
}

fn format_code(value: u32, digits: u8) -> String {
    format!("{value:0width$}", width = usize::from(digits))
}

/// A code as typed by a user: ASCII digits with optional spaces or dashes between groups,
/// reduced to exactly `digits` digits. Anything else (letters, other lengths, more than
/// [`MAX_CODE_INPUT`] bytes) is [`OtpError::Malformed`].
pub fn normalize_code(input: &str, digits: u8) -> Result<Zeroizing<String>, OtpError> {
    if input.len() > MAX_CODE_INPUT {
        return Err(OtpError::Malformed);
    }
    let mut out = Zeroizing::new(String::with_capacity(usize::from(digits)));
    for c in input.trim().chars() {
        match c {
            '0'..='9' => out.push(c),
            ' ' | '-' => {}
            _ => return Err(OtpError::Malformed),
        }
    }
    if out.len() != usize::from(digits) {
        return Err(OtpError::Malformed);
    }
    Ok(out)
}

fn same_code(expected: &str, given: &str) -> bool {
    constant_time::verify_slices_are_equal(expected.as_bytes(), given.as_bytes()).is_ok()
}

/// A time-based generator (RFC 6238): HOTP over the number of `period`-second steps since the
/// Unix epoch (`T0 = 0`).
#[derive(Clone, Debug)]
pub struct Totp {
    secret: OtpSecret,
    params: OtpParams,
    period: u32,
}

impl Totp {
    /// The period every app assumes when none is given (RFC 6238 §5.2).
    pub const DEFAULT_PERIOD: u32 = 30;

    /// A generator; `period` is 1–300 seconds.
    pub fn new(secret: OtpSecret, params: OtpParams, period: u32) -> Result<Totp, OtpError> {
        if !(1..=300).contains(&period) {
            return Err(OtpError::Period);
        }
        Ok(Totp {
            secret,
            params,
            period,
        })
    }

    /// The parameters.
    pub fn params(&self) -> OtpParams {
        self.params
    }

    /// The period in seconds.
    pub fn period(&self) -> u32 {
        self.period
    }

    /// The secret.
    pub fn secret(&self) -> &OtpSecret {
        &self.secret
    }

    /// The time step containing `now` (RFC 6238 §4.2: `floor((now - T0) / X)`); `None` before
    /// the epoch.
    pub fn step_at(&self, now: i64) -> Option<u64> {
        u64::try_from(now).ok().map(|t| t / u64::from(self.period))
    }

    /// The code of time step `step`.
    pub fn code_for_step(&self, step: u64) -> String {
        hotp_code(&self.secret, step, self.params)
    }

    /// The code shown at time `now`.
    pub fn code_at(&self, now: i64) -> Result<String, OtpError> {
        Ok(self.code_for_step(self.step_at(now).ok_or(OtpError::Time)?))
    }

    /// Checks `code` at time `now` against the steps `now ± window` (RFC 6238 §5.2 allows a
    /// small window for clock drift and network delay; the default is 1), returning the matched
    /// step, which the caller records as the last used one. A step at or before `last_used` is
    /// [`OtpError::Replayed`]: no code is accepted twice, and no older code after a newer one.
    pub fn check(
        &self,
        code: &str,
        now: i64,
        window: u32,
        last_used: Option<u64>,
    ) -> Result<u64, OtpError> {
        let code = normalize_code(code, self.params.digits)?;
        let current = self.step_at(now).ok_or(OtpError::Time)?;
        let first = current.saturating_sub(u64::from(window));
        let last = current
            .checked_add(u64::from(window))
            .ok_or(OtpError::Time)?;
        let mut replayed = false;
        for step in first..=last {
            if same_code(&self.code_for_step(step), &code) {
                if last_used.is_some_and(|used| step <= used) {
                    replayed = true;
                    continue;
                }
                return Ok(step);
            }
        }
        Err(if replayed {
            OtpError::Replayed
        } else {
            OtpError::Wrong
        })
    }
}

/// A counter-based generator (RFC 4226), as in hardware key fobs.
#[derive(Clone, Debug)]
pub struct Hotp {
    secret: OtpSecret,
    params: OtpParams,
}

impl Hotp {
    /// The look-ahead window used when none is configured (RFC 4226 §7.4's `s`).
    pub const DEFAULT_LOOK_AHEAD: u32 = 10;

    /// A generator.
    pub fn new(secret: OtpSecret, params: OtpParams) -> Hotp {
        Hotp { secret, params }
    }

    /// The parameters.
    pub fn params(&self) -> OtpParams {
        self.params
    }

    /// The secret.
    pub fn secret(&self) -> &OtpSecret {
        &self.secret
    }

    /// The code for `counter`.
    pub fn code(&self, counter: u64) -> String {
        hotp_code(&self.secret, counter, self.params)
    }

    /// Checks `code` against counters `next .. next + look_ahead` (RFC 4226 §7.4), `next` being
    /// the first counter not yet used. Returns the matched counter: the caller stores
    /// `matched + 1` as the new `next`, so the counter only moves forward.
    pub fn check(&self, code: &str, next: u64, look_ahead: u32) -> Result<u64, OtpError> {
        let code = normalize_code(code, self.params.digits)?;
        let span = u64::from(look_ahead.max(1));
        for counter in next..next.checked_add(span).ok_or(OtpError::Counter)? {
            if same_code(&self.code(counter), &code) {
                return Ok(counter);
            }
        }
        Err(OtpError::Wrong)
    }

    /// Resynchronisation (RFC 4226 §7.4): two consecutive codes `first`, `second` from the fob,
    /// searched for beyond the normal window, from `next` up to `next + max_ahead`. Returns the
    /// counter of `second`; the caller stores it `+ 1`. One code alone never resynchronises.
    pub fn resync(
        &self,
        first: &str,
        second: &str,
        next: u64,
        max_ahead: u32,
    ) -> Result<u64, OtpError> {
        let first = normalize_code(first, self.params.digits)?;
        let second = normalize_code(second, self.params.digits)?;
        let end = next
            .checked_add(u64::from(max_ahead))
            .ok_or(OtpError::Counter)?;
        let mut previous_matched = false;
        for counter in next..=end {
            let code = self.code(counter);
            if previous_matched && same_code(&code, &second) {
                return Ok(counter);
            }
            previous_matched = same_code(&code, &first);
        }
        Err(OtpError::Wrong)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rfc_secret() -> OtpSecret {
        OtpSecret::new(b"12345678901234567890".to_vec()).expect("secret")
    }

    #[test]
    fn window_edges_and_replay() {
        let totp = Totp::new(rfc_secret(), OtpParams::DEFAULT, 30).expect("totp");
        let now = 1_000_000_000; // step 33_333_333
        let step = totp.step_at(now).expect("step");
        for (offset, ok) in [(-2i64, false), (-1, true), (0, true), (1, true), (2, false)] {
            let code = totp.code_for_step(step.wrapping_add_signed(offset));
            assert_eq!(
                totp.check(&code, now, 1, None).is_ok(),
                ok,
                "offset {offset}"
            );
        }
        let code = totp.code_for_step(step);
        assert_eq!(
            totp.check(&code, now, 1, Some(step)),
            Err(OtpError::Replayed)
        );
        // An older code after a newer one was used is refused too.
        let older = totp.code_for_step(step - 1);
        assert_eq!(
            totp.check(&older, now, 1, Some(step)),
            Err(OtpError::Replayed)
        );
        assert_eq!(totp.check(&code, now, 0, Some(step - 1)), Ok(step));
        assert_eq!(totp.check("12345", now, 1, None), Err(OtpError::Malformed));
        assert_eq!(totp.check(&code, -1, 1, None), Err(OtpError::Time));
    }

    #[test]
    fn codes_typed_with_spaces_and_dashes() {
        assert_eq!(&*normalize_code(" 123 456 ", 6).expect("ok"), "123456");
        assert_eq!(&*normalize_code("123-456", 6).expect("ok"), "123456");
        for bad in [
            "12345",
            "1234567",
            "12345a",
            "１２３４５６",
            &"1".repeat(40),
        ] {
            assert_eq!(normalize_code(bad, 6), Err(OtpError::Malformed), "{bad}");
        }
    }

    #[test]
    fn hotp_look_ahead_and_resync() {
        let hotp = Hotp::new(rfc_secret(), OtpParams::DEFAULT);
        assert_eq!(hotp.check(&hotp.code(3), 0, 10), Ok(3));
        assert_eq!(hotp.check(&hotp.code(10), 0, 10), Err(OtpError::Wrong));
        assert_eq!(hotp.check(&hotp.code(2), 3, 10), Err(OtpError::Wrong));
        // Two consecutive codes beyond the window resynchronise; one alone or a gap does not.
        assert_eq!(hotp.resync(&hotp.code(40), &hotp.code(41), 0, 100), Ok(41));
        assert_eq!(
            hotp.resync(&hotp.code(40), &hotp.code(42), 0, 100),
            Err(OtpError::Wrong)
        );
        assert_eq!(
            hotp.resync(&hotp.code(41), &hotp.code(40), 0, 100),
            Err(OtpError::Wrong)
        );
        assert_eq!(
            hotp.resync(&hotp.code(5), &hotp.code(6), 10, 100),
            Err(OtpError::Wrong)
        );
        assert_eq!(
            hotp.check(&hotp.code(0), u64::MAX - 1, 10),
            Err(OtpError::Counter)
        );
    }

    #[test]
    fn secrets() {
        assert_eq!(OtpSecret::new(vec![0; 15]), Err(OtpError::SecretLength));
        assert_eq!(
            OtpSecret::from_hex("3132333435363738393031323334353637383930")
                .expect("hex")
                .expose(),
            b"12345678901234567890"
        );
        assert_eq!(OtpSecret::from_hex("313"), Err(OtpError::SecretEncoding));
        assert_eq!(
            OtpSecret::from_hex(&"zz".repeat(20)),
            Err(OtpError::SecretEncoding)
        );
        for alg in [
            OtpAlgorithm::Sha1,
            OtpAlgorithm::Sha256,
            OtpAlgorithm::Sha512,
        ] {
            let a = OtpSecret::generate(alg).expect("random");
            assert!(a.expose().len() * 8 >= 160);
            assert_ne!(a, OtpSecret::generate(alg).expect("random"));
        }
        assert_eq!(format!("{:?}", rfc_secret()), "OtpSecret(20 bytes)");
        assert_eq!(OtpParams::new(OtpAlgorithm::Sha1, 9), Err(OtpError::Digits));
        assert!(Totp::new(rfc_secret(), OtpParams::DEFAULT, 0).is_err());
    }
}
