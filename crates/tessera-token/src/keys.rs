//! Ready-to-use keys: material parsed once into aws-lc-rs objects, each bound to exactly one
//! algorithm (RFC 8725 §3.1), so that signing and verifying never re-parse a key.

use std::fmt;

use aws_lc_rs::encoding::{AsDer, PublicKeyX509Der};
use aws_lc_rs::signature::{
    self, EcdsaKeyPair, Ed25519KeyPair, ParsedPublicKey, RsaEncoding, RsaParameters,
    RsaPublicKeyComponents, VerificationAlgorithm,
};
use aws_lc_rs::{hmac, rand, rsa};

use crate::alg::{Algorithm, Curve};
use crate::b64;
use crate::error::{Error, KeyError};
use crate::jwk::{self, Jwk, JwkSet, Material};

/// A key that verifies signatures for one algorithm.
pub struct VerifyingKey {
    alg: Algorithm,
    kid: Option<Box<str>>,
    signature_len: usize,
    inner: Verifier,
}

// Keys are few and long-lived; keeping the HMAC key inline saves a pointer chase per verify.
#[allow(clippy::large_enum_variant)]
enum Verifier {
    Hmac(hmac::Key),
    Public(ParsedPublicKey),
}

impl fmt::Debug for VerifyingKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("VerifyingKey")
            .field("alg", &self.alg)
            .field("kid", &self.kid)
            .finish_non_exhaustive()
    }
}

impl VerifyingKey {
    /// Builds a verifying key from a JWK (public or private). The JWK must resolve to exactly
    /// one algorithm and allow verification in `use`/`key_ops`.
    pub fn from_jwk(jwk: &Jwk) -> Result<VerifyingKey, Error> {
        jwk.check_usage("verify")?;
        let alg = jwk.algorithm()?;
        let (signature_len, inner) = match &jwk.material {
            Material::Oct { k } => {
                let min = alg.hmac_len().unwrap_or(64);
                if k.len() < min {
                    return Err(KeyError::HmacTooShort { min }.into());
                }
                (min, Verifier::Hmac(hmac::Key::new(hmac_alg(alg), k)))
            }
            Material::Rsa { n, e, .. } => {
                let bits = rsa_bits(n);
                if !(2048..=8192).contains(&bits) {
                    return Err(KeyError::RsaSize { bits }.into());
                }
                let parsed = RsaPublicKeyComponents { n, e }
                    .to_parsed_public_key(rsa_verification(alg))
                    .map_err(|_| KeyError::Invalid("RSA public key rejected by aws-lc"))?;
                (n.len(), Verifier::Public(parsed))
            }
            Material::Ec { crv, x, y, .. } => {
                let point = [&[4u8][..], x, y].concat();
                let parsed = ParsedPublicKey::new(ec_verification(*crv), point)
                    .map_err(|_| KeyError::Invalid("EC point is not on the curve"))?;
                (2 * crv.coordinate_len(), Verifier::Public(parsed))
            }
            Material::Okp { x, .. } => {
                let parsed = ParsedPublicKey::new(&signature::ED25519, x)
                    .map_err(|_| KeyError::Invalid("Ed25519 public key rejected"))?;
                (64, Verifier::Public(parsed))
            }
        };
        Ok(VerifyingKey {
            alg,
            kid: jwk.kid().map(Into::into),
            signature_len,
            inner,
        })
    }

    /// The one algorithm this key verifies.
    pub fn algorithm(&self) -> Algorithm {
        self.alg
    }

    /// The key id, if the JWK had one.
    pub fn kid(&self) -> Option<&str> {
        self.kid.as_deref()
    }

    /// The exact signature length this key accepts, in bytes.
    pub fn signature_len(&self) -> usize {
        self.signature_len
    }

    /// Verifies `signature` over `message`: exact length first (ECDSA as fixed-size R||S, RSA as
    /// long as the modulus), then the primitive. HMAC tags are compared in constant time.
    pub fn verify(&self, message: &[u8], signature: &[u8]) -> Result<(), Error> {
        if signature.len() != self.signature_len {
            return Err(Error::SignatureLength {
                expected: self.signature_len,
                actual: signature.len(),
            });
        }
        let ok = match &self.inner {
            Verifier::Hmac(key) => hmac::verify(key, message, signature),
            Verifier::Public(key) => key.verify_sig(message, signature),
        };
        ok.map_err(|_| Error::Signature)
    }
}

/// A key that signs with one algorithm. `Debug` never shows key material.
pub struct SigningKey {
    alg: Algorithm,
    kid: Box<str>,
    /// The base64url of `{"alg":…,"kid":…,"typ":"JWT"}`, computed once.
    jwt_header: String,
    inner: Signer,
}

#[allow(clippy::large_enum_variant)]
enum Signer {
    Ec(EcdsaKeyPair),
    Ed(Ed25519KeyPair),
    Hmac(hmac::Key),
    Rsa(rsa::KeyPair, &'static dyn RsaEncoding),
}

impl fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SigningKey")
            .field("alg", &self.alg)
            .field("kid", &self.kid)
            .finish_non_exhaustive()
    }
}

impl SigningKey {
    /// Builds a signing key from a private JWK. A JWK without `kid` is given its RFC 7638
    /// thumbprint, so that every token names its key.
    pub fn from_jwk(jwk: &Jwk) -> Result<SigningKey, Error> {
        jwk.check_usage("sign")?;
        let alg = jwk.algorithm()?;
        if !jwk.is_private() {
            return Err(KeyError::NotPrivate.into());
        }
        let inner = match &jwk.material {
            Material::Oct { k } => {
                let min = alg.hmac_len().unwrap_or(64);
                if k.len() < min {
                    return Err(KeyError::HmacTooShort { min }.into());
                }
                Signer::Hmac(hmac::Key::new(hmac_alg(alg), k))
            }
            Material::Rsa { n, .. } => {
                let bits = rsa_bits(n);
                if !(2048..=8192).contains(&bits) {
                    return Err(KeyError::RsaSize { bits }.into());
                }
                Signer::Rsa(rsa_pair(jwk)?, rsa_encoding(alg))
            }
            Material::Ec { crv, .. } => Signer::Ec(ec_pair(jwk, *crv)?),
            Material::Okp { .. } => Signer::Ed(ed_pair(jwk)?),
        };
        let kid: Box<str> = match jwk.kid() {
            Some(kid) => kid.into(),
            None => jwk.thumbprint().into(),
        };
        let header = jwt_header(alg, &kid);
        Ok(SigningKey {
            alg,
            jwt_header: header,
            kid,
            inner,
        })
    }

    /// The one algorithm this key signs with.
    pub fn algorithm(&self) -> Algorithm {
        self.alg
    }

    /// The key id written into every header.
    pub fn kid(&self) -> &str {
        &self.kid
    }

    /// The base64url-encoded default JWT header (`alg`, `kid`, `typ: JWT`).
    pub(crate) fn jwt_header_b64(&self) -> &str {
        &self.jwt_header
    }

    /// Signs `message` and returns the raw JWS signature (ECDSA as fixed-size R||S).
    pub fn sign(&self, message: &[u8]) -> Result<Vec<u8>, Error> {
        let failed = |_| Error::Key(KeyError::Invalid("signing failed"));
        match &self.inner {
            Signer::Hmac(key) => Ok(hmac::sign(key, message).as_ref().to_vec()),
            Signer::Ec(pair) => {
                let rng = rand::SystemRandom::new();
                Ok(pair.sign(&rng, message).map_err(failed)?.as_ref().to_vec())
            }
            Signer::Ed(pair) => Ok(pair.sign(message).as_ref().to_vec()),
            Signer::Rsa(pair, encoding) => {
                let rng = rand::SystemRandom::new();
                let mut sig = vec![0u8; pair.public_modulus_len()];
                pair.sign(*encoding, &rng, message, &mut sig)
                    .map_err(failed)?;
                Ok(sig)
            }
        }
    }
}

/// The verification keys of one issuer, looked up by exact `kid`.
#[derive(Debug, Default)]
pub struct KeySet {
    keys: Vec<VerifyingKey>,
    /// For each key, the exact encoded header tessera's own signer writes for it: a token whose
    /// header is byte-for-byte one of these needs no header parsing (same result, less work).
    own_headers: Vec<String>,
}

/// The base64url of the header tessera writes on JWTs: `{"alg":…,"kid":…,"typ":"JWT"}`.
pub(crate) fn jwt_header(alg: Algorithm, kid: &str) -> String {
    let header = serde_json::json!({"alg": alg.as_str(), "kid": kid, "typ": "JWT"});
    b64::encode(header.to_string())
}

impl KeySet {
    /// Builds a set; every key needs a `kid`, and `kid`s must be unique.
    pub fn new(keys: Vec<VerifyingKey>) -> Result<KeySet, Error> {
        for (i, key) in keys.iter().enumerate() {
            let kid = key.kid().ok_or(KeyError::MissingKid)?;
            if keys[..i].iter().any(|k| k.kid() == Some(kid)) {
                return Err(KeyError::DuplicateKid.into());
            }
        }
        let own_headers = keys
            .iter()
            .map(|k| jwt_header(k.algorithm(), k.kid().unwrap_or_default()))
            .collect();
        Ok(KeySet { keys, own_headers })
    }

    /// The key whose own JWT header is exactly `encoded`, if any.
    pub(crate) fn by_own_header(&self, encoded: &[u8]) -> Option<&VerifyingKey> {
        let i = self
            .own_headers
            .iter()
            .position(|h| h.as_bytes() == encoded)?;
        self.keys.get(i)
    }

    /// Builds a set from a JWK Set; the error names the first unusable key, and a set left with
    /// no signature key is an error. Keys marked
    /// `"use": "enc"` are encryption keys that a JWK Set may legitimately carry beside signature
    /// keys; they are skipped (RFC 7517 §5 lets a reader ignore keys it does not use).
    pub fn from_jwks(set: &JwkSet) -> Result<KeySet, Error> {
        let keys = set
            .keys
            .iter()
            .enumerate()
            .filter(|(_, jwk)| !jwk.is_encryption_key())
            .map(|(index, jwk)| {
                VerifyingKey::from_jwk(jwk).map_err(|e| match e {
                    Error::Key(reason) => Error::Key(KeyError::InSet {
                        index,
                        reason: Box::new(reason),
                    }),
                    other => other,
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        // A set that verifies nothing is a broken configuration, not a set that rejects all.
        if keys.is_empty() {
            return Err(KeyError::NoSignatureKeys.into());
        }
        KeySet::new(keys)
    }

    /// The key with exactly this `kid`; there is no fallback to other keys.
    pub fn find(&self, kid: &str) -> Option<&VerifyingKey> {
        self.keys.iter().find(|k| k.kid() == Some(kid))
    }

    /// Number of keys.
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    /// Whether the set is empty.
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }
}

fn hmac_alg(alg: Algorithm) -> hmac::Algorithm {
    match alg {
        Algorithm::HS384 => hmac::HMAC_SHA384,
        Algorithm::HS512 => hmac::HMAC_SHA512,
        _ => hmac::HMAC_SHA256,
    }
}

fn rsa_bits(n: &[u8]) -> usize {
    match n.first() {
        Some(&top) => n.len() * 8 - top.leading_zeros() as usize,
        None => 0,
    }
}

fn rsa_verification(alg: Algorithm) -> &'static RsaParameters {
    match alg {
        Algorithm::RS384 => &signature::RSA_PKCS1_2048_8192_SHA384,
        Algorithm::RS512 => &signature::RSA_PKCS1_2048_8192_SHA512,
        Algorithm::PS256 => &signature::RSA_PSS_2048_8192_SHA256,
        Algorithm::PS384 => &signature::RSA_PSS_2048_8192_SHA384,
        Algorithm::PS512 => &signature::RSA_PSS_2048_8192_SHA512,
        _ => &signature::RSA_PKCS1_2048_8192_SHA256,
    }
}

fn rsa_encoding(alg: Algorithm) -> &'static dyn RsaEncoding {
    match alg {
        Algorithm::RS384 => &signature::RSA_PKCS1_SHA384,
        Algorithm::RS512 => &signature::RSA_PKCS1_SHA512,
        Algorithm::PS256 => &signature::RSA_PSS_SHA256,
        Algorithm::PS384 => &signature::RSA_PSS_SHA384,
        Algorithm::PS512 => &signature::RSA_PSS_SHA512,
        _ => &signature::RSA_PKCS1_SHA256,
    }
}

pub(crate) fn ec_verification(crv: Curve) -> &'static dyn VerificationAlgorithm {
    match crv {
        Curve::P384 => &signature::ECDSA_P384_SHA384_FIXED,
        Curve::P521 => &signature::ECDSA_P521_SHA512_FIXED,
        _ => &signature::ECDSA_P256_SHA256_FIXED,
    }
}

/// Builds the aws-lc-rs RSA key pair from a private JWK (all CRT members checked by aws-lc).
pub(crate) fn rsa_pair(jwk: &Jwk) -> Result<rsa::KeyPair, KeyError> {
    match &jwk.material {
        Material::Rsa {
            n,
            e,
            private: Some(p),
        } => rsa::KeyPair::from_components(&rsa::KeyPairComponents {
            public_key: RsaPublicKeyComponents {
                n: n.as_slice(),
                e: e.as_slice(),
            },
            d: p.d.as_slice(),
            p: p.p.as_slice(),
            q: p.q.as_slice(),
            dP: p.dp.as_slice(),
            dQ: p.dq.as_slice(),
            qInv: p.qi.as_slice(),
        })
        .map_err(|_| KeyError::Invalid("RSA private key is inconsistent")),
        _ => Err(KeyError::NotPrivate),
    }
}

/// Builds the aws-lc-rs ECDSA key pair from a private JWK; aws-lc checks `d` matches `x`,`y`.
pub(crate) fn ec_pair(jwk: &Jwk, crv: Curve) -> Result<EcdsaKeyPair, KeyError> {
    match &jwk.material {
        Material::Ec {
            x, y, d: Some(d), ..
        } => {
            let point = [&[4u8][..], x, y].concat();
            EcdsaKeyPair::from_private_key_and_public_key(jwk::ec_signing(crv), d, &point)
                .map_err(|_| KeyError::Invalid("EC private key does not match its public key"))
        }
        _ => Err(KeyError::NotPrivate),
    }
}

/// Builds the aws-lc-rs Ed25519 key pair from a private JWK; aws-lc checks `d` matches `x`.
pub(crate) fn ed_pair(jwk: &Jwk) -> Result<Ed25519KeyPair, KeyError> {
    match &jwk.material {
        Material::Okp { x, d: Some(d) } => Ed25519KeyPair::from_seed_and_public_key(d, x)
            .map_err(|_| KeyError::Invalid("Ed25519 private key does not match its public key")),
        _ => Err(KeyError::NotPrivate),
    }
}

/// The SubjectPublicKeyInfo DER of a JWK's public half.
pub(crate) fn spki_der(jwk: &Jwk) -> Result<Vec<u8>, KeyError> {
    let rejected = |_| KeyError::Invalid("public key rejected by aws-lc");
    let parsed = match &jwk.material {
        Material::Rsa { n, e, .. } => RsaPublicKeyComponents { n, e }
            .to_parsed_public_key(&signature::RSA_PKCS1_2048_8192_SHA256)
            .map_err(rejected)?,
        Material::Ec { crv, x, y, .. } => {
            ParsedPublicKey::new(ec_verification(*crv), [&[4u8][..], x, y].concat())
                .map_err(rejected)?
        }
        Material::Okp { x, .. } => {
            ParsedPublicKey::new(&signature::ED25519, x).map_err(rejected)?
        }
        Material::Oct { .. } => return Err(KeyError::Unsupported("PEM for oct keys")),
    };
    let der: PublicKeyX509Der<'static> = parsed
        .as_der()
        .map_err(|_| KeyError::Invalid("public key encoding failed"))?;
    Ok(der.as_ref().to_vec())
}
