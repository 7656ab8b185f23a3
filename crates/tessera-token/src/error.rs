//! The one error type of the token core.
//!
//! Every variant names the rule that failed and who is at fault (see [`Culprit`]). Messages never
//! echo attacker-controlled input, so they can be logged and shown to operators as they are.

use std::fmt;

use crate::alg::Algorithm;

/// Which part of a token an encoding error was found in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Part {
    /// The protected header.
    Header,
    /// The payload (claims).
    Payload,
    /// The signature.
    Signature,
}

impl fmt::Display for Part {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Part::Header => "header",
            Part::Payload => "payload",
            Part::Signature => "signature",
        })
    }
}

/// Why a JSON document was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum JsonReason {
    /// A member name appears twice in one object (RFC 8725 §3.8 / RFC 7515 §5.2 step 4).
    DuplicateMember,
    /// Objects and arrays are nested deeper than the configured cap.
    TooDeep,
    /// The top-level value is not a JSON object.
    NotObject,
    /// Not well-formed JSON, or not valid UTF-8.
    Syntax,
}

impl fmt::Display for JsonReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            JsonReason::DuplicateMember => "duplicate member name",
            JsonReason::TooDeep => "nested too deeply",
            JsonReason::NotObject => "not a JSON object",
            JsonReason::Syntax => "malformed JSON or invalid UTF-8",
        })
    }
}

/// Who caused an error: decides whether the caller reports a rejected token or a broken setup.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Culprit {
    /// The token (or other untrusted input) is malformed or fails a rule.
    Token,
    /// The keys or policy given by the caller are unusable.
    Configuration,
}

/// An error from parsing, signing or verifying.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Error {
    // ---- token structure and encoding (culprit: token) ----
    /// The input exceeds the size cap checked before any other work.
    TooLarge {
        /// The cap in bytes.
        limit: usize,
    },
    /// Not exactly three dot-separated segments (RFC 7515 §7.1); JWE and JSON serialization are
    /// not accepted.
    Segments,
    /// A segment is not strict unpadded base64url (RFC 7515 §2).
    Base64 {
        /// Which segment.
        part: Part,
    },
    /// A header or payload is not an acceptable JSON object.
    Json {
        /// Which segment.
        part: Part,
        /// Which rule.
        reason: JsonReason,
    },
    /// A header member is missing or has the wrong JSON type.
    HeaderMember {
        /// The member name.
        name: &'static str,
    },
    /// `alg` is `none` in some casing (RFC 8725 §3.2).
    AlgorithmNone,
    /// `alg` names no supported algorithm.
    UnsupportedAlgorithm,
    /// The header `alg` differs from the one the selected key is bound to (RFC 8725 §3.1).
    AlgorithmMismatch {
        /// The key's algorithm.
        expected: Algorithm,
    },
    /// No key in the set has the token's `kid` (exact match, no fallback).
    UnknownKey,
    /// The header carries a `crit` parameter (or `b64`) naming an extension tessera does not
    /// implement (RFC 7515 §4.1.11, RFC 7797 §6).
    CriticalExtension,
    /// The signature has the wrong length for the key (RFC 7518 §3.4, §3.3).
    SignatureLength {
        /// The exact length required.
        expected: usize,
        /// The length presented.
        actual: usize,
    },
    /// The signature does not verify.
    Signature,

    // ---- claims (culprit: token) ----
    /// A registered claim required by the policy is absent.
    MissingClaim {
        /// The claim name.
        name: &'static str,
    },
    /// A registered claim has the wrong JSON type (RFC 7519 §4.1).
    ClaimType {
        /// The claim name.
        name: &'static str,
    },
    /// The claims are valid JSON but do not fit the type the caller asked for.
    ClaimsShape,
    /// `exp` (plus leeway) is not after now (RFC 7519 §4.1.4).
    Expired,
    /// `nbf` (minus leeway) is after now (RFC 7519 §4.1.5).
    NotYetValid,
    /// `iss` differs from the expected issuer (RFC 7519 §4.1.1).
    Issuer,
    /// `aud` contains none of the expected audiences (RFC 7519 §4.1.3).
    Audience,
    /// `typ` differs from the one the policy requires (RFC 8725 §3.11).
    Type,

    // ---- keys and policy (culprit: configuration) ----
    /// A key or key set is unusable; the message says why.
    Key(KeyError),
    /// The verification policy is out of bounds.
    Policy(&'static str),
}

/// Why a key was refused.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum KeyError {
    /// The key has no `alg` and its type does not imply one (RSA, oct).
    AmbiguousAlgorithm,
    /// Two keys in one set share a `kid`.
    DuplicateKid,
    /// An HMAC secret shorter than the hash output (RFC 7518 §3.2).
    HmacTooShort {
        /// The minimum in bytes.
        min: usize,
    },
    /// The key material is malformed or inconsistent.
    Invalid(&'static str),
    /// `alg` does not fit the key type or curve.
    Mismatch(&'static str),
    /// Key number `index` (from 0) of a key set is unusable.
    InSet {
        /// Position in the set.
        index: usize,
        /// Why.
        reason: Box<KeyError>,
    },
    /// A verification key set key has no `kid`.
    MissingKid,
    /// A key set has no key usable for signatures (empty, or only `"use": "enc"` keys).
    NoSignatureKeys,
    /// A private key was needed but the key is public.
    NotPrivate,
    /// The PEM or DER wrapping is malformed or of an unsupported kind.
    Pem(&'static str),
    /// An RSA modulus under 2048 bits (RFC 7518 §3.3) or over 8192 bits.
    RsaSize {
        /// The modulus size in bits.
        bits: usize,
    },
    /// `use` or `key_ops` forbid signatures.
    Usage,
    /// The `kty`, `crv` or `alg` is not supported.
    Unsupported(&'static str),
}

impl Error {
    /// Whether the token (untrusted input) or the caller's configuration is at fault.
    pub fn culprit(&self) -> Culprit {
        match self {
            Error::Key(_) | Error::Policy(_) => Culprit::Configuration,
            _ => Culprit::Token,
        }
    }
}

impl From<KeyError> for Error {
    fn from(e: KeyError) -> Self {
        Error::Key(e)
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::TooLarge { limit } => write!(f, "token exceeds the size limit of {limit} bytes"),
            Error::Segments => {
                f.write_str("not a compact JWS: expected three dot-separated segments")
            }
            Error::Base64 { part } => write!(f, "{part} is not strict unpadded base64url"),
            Error::Json { part, reason } => write!(f, "{part} JSON rejected: {reason}"),
            Error::HeaderMember { name } => {
                write!(f, "header member `{name}` is missing or has the wrong type")
            }
            Error::AlgorithmNone => f.write_str("alg `none` is never accepted"),
            Error::UnsupportedAlgorithm => f.write_str("alg is not a supported algorithm"),
            Error::AlgorithmMismatch { expected } => {
                write!(
                    f,
                    "header alg does not match the key's algorithm {expected}"
                )
            }
            Error::UnknownKey => f.write_str("no key with the token's kid"),
            Error::CriticalExtension => {
                f.write_str("header requires an unsupported extension (crit/b64)")
            }
            Error::SignatureLength { expected, actual } => {
                write!(
                    f,
                    "signature is {actual} bytes, the key requires exactly {expected}"
                )
            }
            Error::Signature => f.write_str("signature verification failed"),
            Error::MissingClaim { name } => write!(f, "required claim `{name}` is missing"),
            Error::ClaimType { name } => write!(f, "claim `{name}` has the wrong JSON type"),
            Error::ClaimsShape => f.write_str("claims do not fit the expected type"),
            Error::Expired => f.write_str("token has expired"),
            Error::NotYetValid => f.write_str("token is not valid yet (nbf)"),
            Error::Issuer => f.write_str("issuer does not match"),
            Error::Audience => f.write_str("audience does not match"),
            Error::Type => f.write_str("header typ does not match"),
            Error::Key(e) => write!(f, "key rejected: {e}"),
            Error::Policy(why) => write!(f, "invalid verification policy: {why}"),
        }
    }
}

impl fmt::Display for KeyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            KeyError::AmbiguousAlgorithm => {
                f.write_str("no `alg` and the key type does not imply one; set `alg`")
            }
            KeyError::DuplicateKid => f.write_str("two keys share a kid"),
            KeyError::HmacTooShort { min } => {
                write!(f, "HMAC secret shorter than {min} bytes (RFC 7518 §3.2)")
            }
            KeyError::Invalid(why) => write!(f, "invalid key material: {why}"),
            KeyError::Mismatch(why) => write!(f, "alg does not fit the key: {why}"),
            KeyError::InSet { index, reason } => write!(f, "key #{index} of the set: {reason}"),
            KeyError::MissingKid => f.write_str("key has no kid"),
            KeyError::NoSignatureKeys => f.write_str("the key set has no signature keys"),
            KeyError::NotPrivate => f.write_str("a private key is required"),
            KeyError::Pem(why) => write!(f, "PEM/DER: {why}"),
            KeyError::RsaSize { bits } => {
                write!(f, "RSA modulus of {bits} bits is outside 2048..=8192")
            }
            KeyError::Usage => f.write_str("`use`/`key_ops` do not allow signatures"),
            KeyError::Unsupported(what) => write!(f, "unsupported {what}"),
        }
    }
}

impl std::error::Error for Error {}
impl std::error::Error for KeyError {}
