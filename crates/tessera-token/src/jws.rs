//! JWS Compact Serialization (RFC 7515 §3.1, §7.1): splitting, strict header reading, and
//! signing or verifying with one explicitly chosen key.

use std::borrow::Cow;

use serde::de::MapAccess;

use crate::alg::Algorithm;
use crate::b64;
use crate::error::{Error, Part};
use crate::json::{self, Member, Members};
use crate::keys::{SigningKey, VerifyingKey};

/// Default cap on a token's length in bytes, checked before any decoding.
pub const DEFAULT_MAX_LEN: usize = 16 * 1024;
/// Default cap on JSON nesting in a header or payload.
pub const DEFAULT_MAX_DEPTH: u32 = 16;
/// The largest signature any supported key produces (RSA-8192).
const MAX_SIGNATURE_LEN: usize = 1024;

/// Size and nesting caps applied before any expensive work.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    max_len: usize,
    max_depth: u32,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_len: DEFAULT_MAX_LEN,
            max_depth: DEFAULT_MAX_DEPTH,
        }
    }
}

impl Limits {
    /// Sets the token length cap (1 KiB to 1 MiB).
    pub fn max_len(mut self, bytes: usize) -> Result<Self, Error> {
        if !(1024..=1024 * 1024).contains(&bytes) {
            return Err(Error::Policy("max_len must be between 1 KiB and 1 MiB"));
        }
        self.max_len = bytes;
        Ok(self)
    }

    /// Sets the JSON nesting cap (1 to 64).
    pub fn max_depth(mut self, depth: u32) -> Result<Self, Error> {
        if !(1..=64).contains(&depth) {
            return Err(Error::Policy("max_depth must be between 1 and 64"));
        }
        self.max_depth = depth;
        Ok(self)
    }

    pub(crate) fn depth(&self) -> u32 {
        self.max_depth
    }
}

/// The three segments of a compact JWS, still encoded.
pub(crate) struct Compact<'a> {
    pub(crate) header: &'a [u8],
    pub(crate) payload: &'a [u8],
    pub(crate) signature: &'a [u8],
    /// `header '.' payload`: the bytes the signature covers (RFC 7515 §5.1 step 5).
    pub(crate) signing_input: &'a [u8],
}

/// Splits a compact JWS after the size cap; exactly three segments, nothing else.
pub(crate) fn split<'a>(token: &'a str, limits: &Limits) -> Result<Compact<'a>, Error> {
    if token.len() > limits.max_len {
        return Err(Error::TooLarge {
            limit: limits.max_len,
        });
    }
    let bytes = token.as_bytes();
    let mut dots = memchr::memchr_iter(b'.', bytes);
    let (Some(first), Some(second), None) = (dots.next(), dots.next(), dots.next()) else {
        return Err(Error::Segments);
    };
    let signature = &bytes[second + 1..];
    Ok(Compact {
        header: &bytes[..first],
        payload: &bytes[first + 1..second],
        signature,
        signing_input: &bytes[..second],
    })
}

/// Decodes a segment, on the stack when small, and hands the bytes to `f`.
pub(crate) fn with_decoded<R>(
    text: &[u8],
    part: Part,
    f: impl FnOnce(&[u8]) -> Result<R, Error>,
) -> Result<R, Error> {
    let len = b64::decoded_len(text.len()).ok_or(Error::Base64 { part })?;
    let mut stack = [0u8; 256];
    if len <= stack.len() {
        let buf = &mut stack[..len];
        b64::decode_exact(text, buf).ok_or(Error::Base64 { part })?;
        f(buf)
    } else {
        let mut heap = vec![0u8; len];
        b64::decode_exact(text, &mut heap).ok_or(Error::Base64 { part })?;
        f(&heap)
    }
}

/// The protected header members tessera reads. Everything else is checked for strictness and
/// ignored: in particular `jku`, `x5u`, `jwk` and `x5c` are never used to find a key
/// (RFC 8725 §3.10).
pub(crate) struct Header<'a> {
    pub(crate) alg: Algorithm,
    pub(crate) kid: Option<Cow<'a, str>>,
    pub(crate) typ: Option<Cow<'a, str>>,
}

#[derive(Default)]
struct HeaderSink<'a> {
    alg: Option<Cow<'a, str>>,
    kid: Option<Cow<'a, str>>,
    typ: Option<Cow<'a, str>>,
}

impl<'de> Members<'de> for HeaderSink<'de> {
    fn member<A: MapAccess<'de>>(
        &mut self,
        name: &str,
        map: &mut A,
        member: Member<'_>,
    ) -> Result<(), A::Error> {
        let slot = match name {
            "alg" => &mut self.alg,
            "kid" => &mut self.kid,
            "typ" => &mut self.typ,
            // RFC 7515 §4.1.11: an extension we do not implement must make the JWS invalid.
            // RFC 7797 `b64` is one; tessera implements none, so any `crit` is refused.
            "crit" | "b64" => return Err(member.ctx.fail(Error::CriticalExtension)),
            _ => return member.skip(map),
        };
        let name = match name {
            "alg" => "alg",
            "kid" => "kid",
            _ => "typ",
        };
        *slot = Some(map.next_value_seed(member.string(Error::HeaderMember { name }))?);
        Ok(())
    }
}

/// Reads a decoded protected header.
pub(crate) fn parse_header<'a>(bytes: &'a [u8], limits: &Limits) -> Result<Header<'a>, Error> {
    let mut sink = HeaderSink::default();
    json::parse_object(bytes, Part::Header, limits.depth(), &mut sink)?;
    let alg = sink.alg.ok_or(Error::HeaderMember { name: "alg" })?;
    // RFC 8725 §3.2: `none` is refused in any casing, before anything else looks at it.
    if alg.eq_ignore_ascii_case("none") {
        return Err(Error::AlgorithmNone);
    }
    let alg = Algorithm::from_name(&alg).ok_or(Error::UnsupportedAlgorithm)?;
    Ok(Header {
        alg,
        kid: sink.kid,
        typ: sink.typ,
    })
}

/// Checks the signature of a split token with `key`, after checking its exact length.
pub(crate) fn check_signature(parts: &Compact<'_>, key: &VerifyingKey) -> Result<(), Error> {
    let len = b64::decoded_len(parts.signature.len()).ok_or(Error::Base64 {
        part: Part::Signature,
    })?;
    if len != key.signature_len() {
        // Name the real fault: padding or a foreign alphabet is an encoding error, not a length.
        if !parts
            .signature
            .iter()
            .all(|&c| c.is_ascii_alphanumeric() || c == b'-' || c == b'_')
        {
            return Err(Error::Base64 {
                part: Part::Signature,
            });
        }
        return Err(Error::SignatureLength {
            expected: key.signature_len(),
            actual: len,
        });
    }
    let mut buf = [0u8; MAX_SIGNATURE_LEN];
    let sig = buf.get_mut(..len).ok_or(Error::Signature)?;
    b64::decode_exact(parts.signature, sig).ok_or(Error::Base64 {
        part: Part::Signature,
    })?;
    key.verify(parts.signing_input, sig)
}

/// Verifies a compact JWS with one key the caller chose, returning the payload bytes.
///
/// The header `alg` must equal the key's algorithm, a header `kid` (if both have one) must equal
/// the key's, and `crit` is refused. The payload is returned as is: use [`crate::jwt::verify`]
/// for JWTs, which also selects the key by `kid` and checks the claims.
pub fn verify(token: &str, key: &VerifyingKey, limits: &Limits) -> Result<Vec<u8>, Error> {
    let parts = split(token, limits)?;
    with_decoded(parts.header, Part::Header, |bytes| {
        let header = parse_header(bytes, limits)?;
        if header.alg != key.algorithm() {
            return Err(Error::AlgorithmMismatch {
                expected: key.algorithm(),
            });
        }
        match (header.kid.as_deref(), key.kid()) {
            (Some(a), Some(b)) if a != b => Err(Error::UnknownKey),
            _ => Ok(()),
        }
    })?;
    check_signature(&parts, key)?;
    b64::decode(parts.payload).ok_or(Error::Base64 {
        part: Part::Payload,
    })
}

/// Signs `payload` under an explicit protected header, given as JSON bytes that are used
/// verbatim. The header must be a strict JSON object whose `alg` is the key's, with no `crit`.
pub fn sign(key: &SigningKey, header_json: &[u8], payload: &[u8]) -> Result<String, Error> {
    let header = parse_header(header_json, &Limits::default())?;
    if header.alg != key.algorithm() {
        return Err(Error::AlgorithmMismatch {
            expected: key.algorithm(),
        });
    }
    let mut out = b64::encode(header_json);
    out.push('.');
    b64::encode_into(payload, &mut out);
    finish(key, out)
}

/// Appends `.signature` to a signing input.
pub(crate) fn finish(key: &SigningKey, mut signing_input: String) -> Result<String, Error> {
    let sig = key.sign(signing_input.as_bytes())?;
    signing_input.push('.');
    b64::encode_into(&sig, &mut signing_input);
    Ok(signing_input)
}
