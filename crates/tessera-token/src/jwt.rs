//! JSON Web Tokens (RFC 7519) signed as compact JWS, verified under a strict policy
//! (RFC 8725): the key is chosen by exact `kid`, the key decides the algorithm, the signature is
//! checked before the claims are parsed, and `exp` is always required.

use std::borrow::Cow;

use serde::Serialize;
use serde::de::{Deserialize, DeserializeOwned, MapAccess};

use crate::alg::Algorithm;
use crate::b64;
use crate::error::{Error, JsonReason, Part};
use crate::json::typed::{Claims, Shape};
use crate::json::{self, Member, Members, OneOrMany};
use crate::jws::{self, Limits};
use crate::keys::{KeySet, SigningKey};

/// Default clock-skew allowance for `exp` and `nbf`, in seconds.
pub const DEFAULT_LEEWAY: u64 = 60;
/// The largest leeway a policy accepts, in seconds.
pub const MAX_LEEWAY: u64 = 300;

/// What a verifier requires of a token beyond a good signature. Safe by default; there is no
/// switch that turns a check off.
#[derive(Clone, Debug)]
pub struct Policy {
    issuer: Option<String>,
    audiences: Vec<String>,
    leeway: u64,
    typ: Option<String>,
    limits: Limits,
}

impl Default for Policy {
    fn default() -> Self {
        Policy::new()
    }
}

impl Policy {
    /// The default policy: `exp` required, 60 s leeway, 16 KiB and depth-16 caps, no issuer or
    /// audience configured (a token that carries `aud` is then refused, RFC 7519 §4.1.3).
    pub fn new() -> Self {
        Policy {
            issuer: None,
            audiences: Vec::new(),
            leeway: DEFAULT_LEEWAY,
            typ: None,
            limits: Limits::default(),
        }
    }

    /// Requires `iss` to equal `issuer` exactly.
    pub fn issuer(mut self, issuer: impl Into<String>) -> Self {
        self.issuer = Some(issuer.into());
        self
    }

    /// Accepts tokens whose `aud` contains `audience` (may be called several times; any one
    /// match suffices).
    pub fn audience(mut self, audience: impl Into<String>) -> Self {
        self.audiences.push(audience.into());
        self
    }

    /// Sets the clock-skew allowance; at most [`MAX_LEEWAY`] seconds.
    pub fn leeway(mut self, seconds: u64) -> Result<Self, Error> {
        if seconds > MAX_LEEWAY {
            return Err(Error::Policy("leeway exceeds 300 seconds"));
        }
        self.leeway = seconds;
        Ok(self)
    }

    /// Requires the header `typ` (RFC 8725 §3.11), compared case-insensitively with an optional
    /// `application/` prefix (RFC 7515 §4.1.9), e.g. `at+jwt` for RFC 9068 access tokens.
    pub fn typ(mut self, typ: impl Into<String>) -> Self {
        self.typ = Some(typ.into());
        self
    }

    /// Replaces the size and nesting caps.
    pub fn limits(mut self, limits: Limits) -> Self {
        self.limits = limits;
        self
    }
}

/// A token whose signature and claims passed the policy. Only this type exposes claims.
#[derive(Debug, Clone)]
pub struct Verified {
    alg: Algorithm,
    payload: Vec<u8>,
    exp: f64,
    nbf: Option<f64>,
    iat: Option<f64>,
    iss: Option<Text>,
    sub: Option<Text>,
    jti: Option<Text>,
}

/// A string claim: a span of the payload, or a copy when JSON escapes had to be decoded.
#[derive(Debug, Clone)]
enum Text {
    Owned(Box<str>),
    Span(usize, usize),
}

impl Text {
    fn new(value: Cow<'_, str>, payload: &[u8]) -> Text {
        match value {
            Cow::Borrowed(s) => {
                let start = (s.as_ptr() as usize).wrapping_sub(payload.as_ptr() as usize);
                match payload.get(start..start.wrapping_add(s.len())) {
                    Some(bytes) if bytes == s.as_bytes() => Text::Span(start, start + s.len()),
                    _ => Text::Owned(s.into()),
                }
            }
            Cow::Owned(s) => Text::Owned(s.into()),
        }
    }

    fn get<'a>(&'a self, payload: &'a [u8]) -> Option<&'a str> {
        match self {
            Text::Owned(s) => Some(s),
            Text::Span(a, b) => std::str::from_utf8(payload.get(*a..*b)?).ok(),
        }
    }
}

impl Verified {
    /// The algorithm the token was signed with (the key's).
    pub fn algorithm(&self) -> Algorithm {
        self.alg
    }

    /// The payload: the claims as a UTF-8 JSON object, exactly as signed.
    pub fn payload(&self) -> &[u8] {
        &self.payload
    }

    /// The payload as text.
    pub fn claims_json(&self) -> &str {
        // The strict parse already proved the payload is UTF-8 JSON.
        std::str::from_utf8(&self.payload).unwrap_or_default()
    }

    /// Deserializes the claims into the caller's type (borrowing from the payload where it can).
    pub fn claims<'a, T: Deserialize<'a>>(&'a self) -> Result<T, serde_json::Error> {
        serde_json::from_slice(&self.payload)
    }

    /// `exp` (seconds since the epoch).
    pub fn expires_at(&self) -> f64 {
        self.exp
    }

    /// `nbf`, if present.
    pub fn not_before(&self) -> Option<f64> {
        self.nbf
    }

    /// `iat`, if present.
    pub fn issued_at(&self) -> Option<f64> {
        self.iat
    }

    /// `iss`, if present.
    pub fn issuer(&self) -> Option<&str> {
        self.iss.as_ref()?.get(&self.payload)
    }

    /// `sub`, if present.
    pub fn subject(&self) -> Option<&str> {
        self.sub.as_ref()?.get(&self.payload)
    }

    /// `jti`, if present.
    pub fn jwt_id(&self) -> Option<&str> {
        self.jti.as_ref()?.get(&self.payload)
    }
}

/// Verifies a JWT against a key set and a policy at time `now` (seconds since the epoch).
///
/// The order is fixed so that no expensive or ambiguous work happens on untrusted input before
/// it is needed: size cap, three segments, strict header (`alg` not `none`, supported, `kid`
/// present, no `crit`), key by exact `kid`, `alg` equal to the key's, exact signature length,
/// signature, then the claims (strict JSON, `exp` required, `nbf`, `iss`, `aud`).
pub fn verify(token: &str, keys: &KeySet, policy: &Policy, now: u64) -> Result<Verified, Error> {
    let parts = jws::split(token, &policy.limits)?;
    let key = signing_key(&parts, keys, policy)?;
    jws::check_signature(&parts, key)?;
    claims_of(&parts, key, policy, now)
}

/// The key for a split token: header, exact `kid`, the key's algorithm, `typ` if required.
fn signing_key<'k>(
    parts: &jws::Compact<'_>,
    keys: &'k KeySet,
    policy: &Policy,
) -> Result<&'k crate::keys::VerifyingKey, Error> {
    // Tokens from tessera's own signer carry a header we know byte for byte: the parse below
    // would find exactly this key, its algorithm, no `crit` and `typ: JWT`.
    let own = keys.by_own_header(parts.header).filter(|_| {
        policy
            .typ
            .as_deref()
            .is_none_or(|want| typ_matches("JWT", want))
    });
    match own {
        Some(key) => Ok(key),
        None => header_key(parts, keys, policy),
    }
}

/// Finds the key by parsing the header: `alg`, exact `kid`, `typ` when the policy asks.
fn header_key<'k>(
    parts: &jws::Compact<'_>,
    keys: &'k KeySet,
    policy: &Policy,
) -> Result<&'k crate::keys::VerifyingKey, Error> {
    jws::with_decoded(parts.header, Part::Header, |bytes| {
        let header = jws::parse_header(bytes, &policy.limits)?;
        let kid = header.kid.ok_or(Error::HeaderMember { name: "kid" })?;
        let key = keys.find(&kid).ok_or(Error::UnknownKey)?;
        if header.alg != key.algorithm() {
            return Err(Error::AlgorithmMismatch {
                expected: key.algorithm(),
            });
        }
        if let Some(want) = &policy.typ
            && !header.typ.as_deref().is_some_and(|t| typ_matches(t, want))
        {
            return Err(Error::Type);
        }
        Ok(key)
    })
}

/// Decodes and checks the claims of a token whose signature is good.
fn claims_of(
    parts: &jws::Compact<'_>,
    key: &crate::keys::VerifyingKey,
    policy: &Policy,
    now: u64,
) -> Result<Verified, Error> {
    let payload = b64::decode(parts.payload).ok_or(Error::Base64 {
        part: Part::Payload,
    })?;
    let mut claims = ClaimSink::default();
    json::parse_object(&payload, Part::Payload, policy.limits.depth(), &mut claims)?;
    claims.check(policy, now)?;
    let registered = claims.into_registered(&payload)?;
    Ok(registered.into_verified(key.algorithm(), payload))
}

/// Like [`verify`], and also deserializes the claims into `T` in the same single pass over the
/// payload (the strict rules apply to every member, including those `T` ignores). A payload that
/// does not fit `T` is [`Error::ClaimsShape`]. Prefer this to `verify` + [`Verified::claims`]
/// on hot paths: it parses once instead of twice.
pub fn verify_into<T: DeserializeOwned>(
    token: &str,
    keys: &KeySet,
    policy: &Policy,
    now: u64,
) -> Result<(T, Verified), Error> {
    let parts = jws::split(token, &policy.limits)?;
    let key = signing_key(&parts, keys, policy)?;
    jws::check_signature(&parts, key)?;
    let payload = b64::decode(parts.payload).ok_or(Error::Base64 {
        part: Part::Payload,
    })?;
    let mut claims = ClaimSink::default();
    let value: T = json::typed::parse(&payload, Part::Payload, policy.limits.depth(), &mut claims)?;
    claims.check(policy, now)?;
    let registered = claims.into_registered(&payload)?;
    Ok((value, registered.into_verified(key.algorithm(), payload)))
}

/// The registered claims, detached from the payload they were read from.
struct Registered {
    exp: f64,
    nbf: Option<f64>,
    iat: Option<f64>,
    iss: Option<Text>,
    sub: Option<Text>,
    jti: Option<Text>,
}

impl Registered {
    fn into_verified(self, alg: Algorithm, payload: Vec<u8>) -> Verified {
        Verified {
            alg,
            payload,
            exp: self.exp,
            nbf: self.nbf,
            iat: self.iat,
            iss: self.iss,
            sub: self.sub,
            jti: self.jti,
        }
    }
}

/// Checks a claims object as [`verify`] would, without the time, issuer and audience rules:
/// strict JSON (no duplicate names, depth cap) and the JSON types of the registered claims
/// (`exp`, `nbf`, `iat` numbers; `iss`, `sub`, `jti` strings; `aud` a string or strings).
/// Issuers call it to refuse claims their own verifiers would reject.
pub fn check_claims(payload: &[u8]) -> Result<(), Error> {
    let mut claims = ClaimSink::default();
    json::parse_object(payload, Part::Payload, jws::DEFAULT_MAX_DEPTH, &mut claims)
}

/// Signs claims as a JWT with the header `{"alg","kid","typ":"JWT"}`. The claims must serialize
/// to a JSON object.
pub fn sign<T: Serialize + ?Sized>(key: &SigningKey, claims: &T) -> Result<String, Error> {
    let payload = serde_json::to_vec(claims).map_err(|_| Error::Json {
        part: Part::Payload,
        reason: JsonReason::Syntax,
    })?;
    sign_payload(key, &payload)
}

/// Signs an already-serialized claims object as a JWT with the default header.
pub fn sign_payload(key: &SigningKey, payload: &[u8]) -> Result<String, Error> {
    if payload.first() != Some(&b'{') {
        return Err(Error::Json {
            part: Part::Payload,
            reason: JsonReason::NotObject,
        });
    }
    let header = key.jwt_header_b64();
    let mut out = String::with_capacity(header.len() + payload.len() * 4 / 3 + 360);
    out.push_str(header);
    out.push('.');
    b64::encode_into(payload, &mut out);
    jws::finish(key, out)
}

fn typ_matches(got: &str, want: &str) -> bool {
    fn strip(t: &str) -> &str {
        match t.get(..12) {
            Some(p) if p.eq_ignore_ascii_case("application/") => &t[12..],
            _ => t,
        }
    }
    strip(got).eq_ignore_ascii_case(strip(want))
}

/// The registered claims (RFC 7519 §4.1), read in the strict pass over the payload.
#[derive(Default)]
struct ClaimSink<'a> {
    exp: Option<f64>,
    nbf: Option<f64>,
    iat: Option<f64>,
    iss: Option<Cow<'a, str>>,
    sub: Option<Cow<'a, str>>,
    jti: Option<Cow<'a, str>>,
    aud: Option<OneOrMany<'a>>,
}

/// The registered claims and their JSON shapes (RFC 7519 §4.1).
fn shape(name: &str) -> Option<Shape> {
    Some(match name {
        "exp" => Shape::Number(Error::ClaimType { name: "exp" }),
        "nbf" => Shape::Number(Error::ClaimType { name: "nbf" }),
        "iat" => Shape::Number(Error::ClaimType { name: "iat" }),
        "iss" => Shape::Str(Error::ClaimType { name: "iss" }),
        "sub" => Shape::Str(Error::ClaimType { name: "sub" }),
        "jti" => Shape::Str(Error::ClaimType { name: "jti" }),
        "aud" => Shape::Strings(Error::ClaimType { name: "aud" }),
        _ => return None,
    })
}

impl<'de> Claims<'de> for ClaimSink<'de> {
    fn shape(&self, name: &str) -> Option<Shape> {
        shape(name)
    }

    fn number(&mut self, name: &str, value: f64) {
        match name {
            "exp" => self.exp = Some(value),
            "nbf" => self.nbf = Some(value),
            _ => self.iat = Some(value),
        }
    }

    fn string(&mut self, name: &str, value: Cow<'de, str>) {
        match name {
            "iss" => self.iss = Some(value),
            "sub" => self.sub = Some(value),
            _ => self.jti = Some(value),
        }
    }

    fn strings(&mut self, _: &str, value: OneOrMany<'de>) {
        self.aud = Some(value);
    }
}

impl<'de> Members<'de> for ClaimSink<'de> {
    fn member<A: MapAccess<'de>>(
        &mut self,
        name: &str,
        map: &mut A,
        member: Member<'_>,
    ) -> Result<(), A::Error> {
        match shape(name) {
            None => member.skip(map),
            Some(Shape::Number(error)) => {
                let n = map.next_value_seed(member.number(error))?;
                self.number(name, n.as_f64());
                Ok(())
            }
            Some(Shape::Str(error)) => {
                let s = map.next_value_seed(member.string(error))?;
                self.string(name, s);
                Ok(())
            }
            Some(Shape::Strings(error)) => {
                let v = map.next_value_seed(member.strings(error))?;
                self.strings(name, v);
                Ok(())
            }
        }
    }
}

impl ClaimSink<'_> {
    /// Detaches the registered claims from the payload (spans where no escape forced a copy).
    fn into_registered(self, payload: &[u8]) -> Result<Registered, Error> {
        Ok(Registered {
            exp: self.exp.ok_or(Error::MissingClaim { name: "exp" })?,
            nbf: self.nbf,
            iat: self.iat,
            iss: self.iss.map(|v| Text::new(v, payload)),
            sub: self.sub.map(|v| Text::new(v, payload)),
            jti: self.jti.map(|v| Text::new(v, payload)),
        })
    }

    fn check(&self, policy: &Policy, now: u64) -> Result<(), Error> {
        let now = now as f64;
        let leeway = policy.leeway as f64;
        // RFC 7519 §4.1.4: the current time must be before `exp` (allowing some leeway).
        let exp = self.exp.ok_or(Error::MissingClaim { name: "exp" })?;
        if now >= exp + leeway {
            return Err(Error::Expired);
        }
        // RFC 7519 §4.1.5: the current time must be at or after `nbf` (allowing some leeway).
        if let Some(nbf) = self.nbf
            && now + leeway < nbf
        {
            return Err(Error::NotYetValid);
        }
        if let Some(want) = &policy.issuer {
            match &self.iss {
                Some(iss) if iss == want => {}
                None => return Err(Error::MissingClaim { name: "iss" }),
                Some(_) => return Err(Error::Issuer),
            }
        }
        // RFC 7519 §4.1.3: a recipient that does not find itself in a present `aud` must reject.
        match (&self.aud, policy.audiences.is_empty()) {
            (None, true) => {}
            (None, false) => return Err(Error::MissingClaim { name: "aud" }),
            (Some(aud), _) => {
                let found = match aud {
                    OneOrMany::One(a) => policy.audiences.iter().any(|w| w == a),
                    OneOrMany::Many(all) => {
                        all.iter().any(|a| policy.audiences.iter().any(|w| w == a))
                    }
                };
                if !found {
                    return Err(Error::Audience);
                }
            }
        }
        Ok(())
    }
}
