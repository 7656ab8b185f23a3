//! JSON Web Keys (RFC 7517) and key sets: parsing with strict rules, serialization, RFC 7638
//! thumbprints, generation, and PEM import/export (PKCS#8 private, SPKI public).
//!
//! A [`Jwk`] is key *data*. To sign or verify, turn it into a [`crate::SigningKey`] or a
//! [`crate::VerifyingKey`], which parse the material once into aws-lc-rs objects.

use std::borrow::Cow;
use std::fmt;

use aws_lc_rs::encoding::{AsBigEndian, AsDer, Pkcs8V1Der};
use aws_lc_rs::signature::{self, EcdsaKeyPair, Ed25519KeyPair, KeyPair as _};
use aws_lc_rs::{digest, rand, rsa};
use serde::Deserialize;
use zeroize::Zeroizing;

use crate::alg::{Algorithm, Curve, KeyFamily};
use crate::b64;
use crate::der;
use crate::error::{Error, JsonReason, KeyError, Part};
use crate::json;
use crate::pem;

/// Secret key bytes, wiped from memory on drop.
pub(crate) type Secret = Zeroizing<Vec<u8>>;

/// The largest JWK or JWK Set document accepted.
pub const MAX_JWKS_LEN: usize = 1024 * 1024;

/// How deeply a JWK document may nest (a set is three levels: set, keys array, key).
const MAX_DEPTH: u32 = 8;

/// A JSON Web Key: public or private key material plus its `kid`, `alg`, `use` and `key_ops`.
///
/// `Debug` never prints key material.
#[derive(Clone, PartialEq, Eq)]
pub struct Jwk {
    kid: Option<String>,
    alg: Option<Algorithm>,
    key_use: Option<String>,
    key_ops: Option<Vec<String>>,
    pub(crate) material: Material,
}

/// Key material by type. Private parts are zeroized on drop.
#[derive(Clone, PartialEq, Eq)]
pub(crate) enum Material {
    Ec {
        crv: Curve,
        x: Vec<u8>,
        y: Vec<u8>,
        d: Option<Secret>,
    },
    Oct {
        k: Secret,
    },
    Okp {
        x: Vec<u8>,
        d: Option<Secret>,
    },
    Rsa {
        n: Vec<u8>,
        e: Vec<u8>,
        private: Option<Box<RsaPrivate>>,
    },
}

/// The private members of an RSA JWK (RFC 7518 §6.3.2); multi-prime (`oth`) keys are refused.
#[derive(Clone, PartialEq, Eq)]
pub(crate) struct RsaPrivate {
    pub(crate) d: Secret,
    pub(crate) p: Secret,
    pub(crate) q: Secret,
    pub(crate) dp: Secret,
    pub(crate) dq: Secret,
    pub(crate) qi: Secret,
}

impl fmt::Debug for Jwk {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Jwk")
            .field("kty", &self.kty())
            .field("kid", &self.kid)
            .field("alg", &self.alg)
            .field("private", &self.is_private())
            .finish_non_exhaustive()
    }
}

/// The raw members of a JWK as they appear in JSON.
#[derive(Deserialize)]
struct RawJwk<'a> {
    #[serde(borrow)]
    kty: Option<Cow<'a, str>>,
    #[serde(borrow)]
    kid: Option<Cow<'a, str>>,
    #[serde(borrow)]
    alg: Option<Cow<'a, str>>,
    #[serde(borrow, rename = "use")]
    key_use: Option<Cow<'a, str>>,
    key_ops: Option<Vec<String>>,
    #[serde(borrow)]
    crv: Option<Cow<'a, str>>,
    #[serde(borrow)]
    x: Option<Cow<'a, str>>,
    #[serde(borrow)]
    y: Option<Cow<'a, str>>,
    #[serde(borrow)]
    d: Option<Cow<'a, str>>,
    #[serde(borrow)]
    k: Option<Cow<'a, str>>,
    #[serde(borrow)]
    n: Option<Cow<'a, str>>,
    #[serde(borrow)]
    e: Option<Cow<'a, str>>,
    #[serde(borrow)]
    p: Option<Cow<'a, str>>,
    #[serde(borrow)]
    q: Option<Cow<'a, str>>,
    #[serde(borrow)]
    dp: Option<Cow<'a, str>>,
    #[serde(borrow)]
    dq: Option<Cow<'a, str>>,
    #[serde(borrow)]
    qi: Option<Cow<'a, str>>,
    oth: Option<serde::de::IgnoredAny>,
}

#[derive(Deserialize)]
struct RawSet<'a> {
    #[serde(borrow)]
    keys: Vec<RawJwk<'a>>,
}

fn json_error(e: Error) -> KeyError {
    match e {
        Error::Json { reason, .. } => KeyError::Invalid(match reason {
            JsonReason::DuplicateMember => "duplicate JSON member name",
            JsonReason::TooDeep => "JSON nested too deeply",
            JsonReason::NotObject => "not a JSON object",
            JsonReason::Syntax => "malformed JSON or invalid UTF-8",
        }),
        _ => KeyError::Invalid("malformed JSON"),
    }
}

fn strict_json(bytes: &[u8]) -> Result<(), KeyError> {
    if bytes.len() > MAX_JWKS_LEN {
        return Err(KeyError::Invalid("document larger than 1 MiB"));
    }
    json::check_object(bytes, Part::Payload, MAX_DEPTH).map_err(json_error)
}

fn member(value: Option<&Cow<'_, str>>, why: &'static str) -> Result<Vec<u8>, KeyError> {
    let text = value.ok_or(KeyError::Invalid(why))?;
    b64::decode(text.as_bytes()).ok_or(KeyError::Invalid("a key member is not strict base64url"))
}

fn secret(value: Option<&Cow<'_, str>>, why: &'static str) -> Result<Secret, KeyError> {
    member(value, why).map(Zeroizing::new)
}

fn strip_zeros(mut bytes: Vec<u8>) -> Vec<u8> {
    let skip = bytes.iter().take_while(|&&b| b == 0).count();
    bytes.drain(..skip);
    bytes
}

impl Jwk {
    /// Parses one JWK from JSON text (RFC 7517 §4), applying the strict rules.
    pub fn from_json(json: &[u8]) -> Result<Jwk, Error> {
        strict_json(json)?;
        let raw: RawJwk<'_> = serde_json::from_slice(json)
            .map_err(|_| KeyError::Invalid("a JWK member has the wrong JSON type"))?;
        Ok(Jwk::from_raw(&raw)?)
    }

    fn from_raw(raw: &RawJwk<'_>) -> Result<Jwk, KeyError> {
        let alg = match &raw.alg {
            None => None,
            Some(a) => match Algorithm::from_name(a) {
                Some(alg) => Some(alg),
                // An encryption key (e.g. `RSA-OAEP`) may sit in a set beside signature keys;
                // it is kept as data without an algorithm and never used to verify.
                None if raw.key_use.as_deref() == Some("enc") => None,
                None => return Err(KeyError::Unsupported("alg")),
            },
        };
        let kty = raw.kty.as_deref().ok_or(KeyError::Invalid("missing kty"))?;
        let material = match kty {
            "EC" => {
                let crv = raw.crv.as_deref().ok_or(KeyError::Invalid("missing crv"))?;
                let crv = match Curve::from_name(crv) {
                    Some(c) if c != Curve::Ed25519 => c,
                    _ => return Err(KeyError::Unsupported("EC curve")),
                };
                let len = crv.coordinate_len();
                let x = member(raw.x.as_ref(), "missing x")?;
                let y = member(raw.y.as_ref(), "missing y")?;
                // RFC 7518 §6.2.1.2: coordinates are the full size of the curve.
                if x.len() != len || y.len() != len {
                    return Err(KeyError::Invalid("EC coordinate has the wrong length"));
                }
                let d = match raw.d.as_ref() {
                    None => None,
                    Some(_) => Some(fixed_scalar(secret(raw.d.as_ref(), "")?, len)?),
                };
                Material::Ec { crv, x, y, d }
            }
            "OKP" => {
                match raw.crv.as_deref() {
                    Some("Ed25519") => {}
                    Some(_) => return Err(KeyError::Unsupported("OKP curve (only Ed25519)")),
                    None => return Err(KeyError::Invalid("missing crv")),
                }
                let x = member(raw.x.as_ref(), "missing x")?;
                if x.len() != 32 {
                    return Err(KeyError::Invalid("Ed25519 public key must be 32 bytes"));
                }
                let d = match raw.d.as_ref() {
                    None => None,
                    Some(_) => {
                        let d = secret(raw.d.as_ref(), "")?;
                        if d.len() != 32 {
                            return Err(KeyError::Invalid("Ed25519 private key must be 32 bytes"));
                        }
                        Some(d)
                    }
                };
                Material::Okp { x, d }
            }
            "RSA" => {
                if raw.oth.is_some() {
                    return Err(KeyError::Unsupported("multi-prime RSA key (oth)"));
                }
                // RFC 7518 §6.3.1.1 forbids leading zeros, but some producers add one; the value
                // is the same integer, so it is normalised rather than refused.
                let n = strip_zeros(member(raw.n.as_ref(), "missing n")?);
                let e = strip_zeros(member(raw.e.as_ref(), "missing e")?);
                if n.is_empty() || e.is_empty() {
                    return Err(KeyError::Invalid("RSA n or e is zero"));
                }
                let private = match raw.d.as_ref() {
                    None => {
                        if raw.p.is_some() || raw.q.is_some() {
                            return Err(KeyError::Invalid("RSA private members without d"));
                        }
                        None
                    }
                    Some(_) => {
                        let need = "RSA private key needs d, p, q, dp, dq and qi";
                        Some(Box::new(RsaPrivate {
                            d: secret(raw.d.as_ref(), need)?,
                            p: secret(raw.p.as_ref(), need)?,
                            q: secret(raw.q.as_ref(), need)?,
                            dp: secret(raw.dp.as_ref(), need)?,
                            dq: secret(raw.dq.as_ref(), need)?,
                            qi: secret(raw.qi.as_ref(), need)?,
                        }))
                    }
                };
                Material::Rsa { n, e, private }
            }
            "oct" => {
                let k = secret(raw.k.as_ref(), "missing k")?;
                if k.is_empty() {
                    return Err(KeyError::Invalid("empty HMAC secret"));
                }
                Material::Oct { k }
            }
            _ => return Err(KeyError::Unsupported("kty")),
        };
        let jwk = Jwk {
            kid: raw.kid.as_deref().map(str::to_owned),
            alg,
            key_use: raw.key_use.as_deref().map(str::to_owned),
            key_ops: raw.key_ops.clone(),
            material,
        };
        if let Some(alg) = alg {
            jwk.check_alg(alg)?;
        }
        Ok(jwk)
    }

    /// Serializes as JSON (members sorted by name; private members included if present).
    pub fn to_json(&self) -> String {
        let mut m = serde_json::Map::new();
        let s = |v: &str| serde_json::Value::String(v.to_owned());
        let b = |v: &[u8]| serde_json::Value::String(b64::encode(v));
        m.insert("kty".into(), s(self.kty()));
        if let Some(kid) = &self.kid {
            m.insert("kid".into(), s(kid));
        }
        if let Some(alg) = self.alg {
            m.insert("alg".into(), s(alg.as_str()));
        }
        if let Some(u) = &self.key_use {
            m.insert("use".into(), s(u));
        }
        if let Some(ops) = &self.key_ops {
            m.insert("key_ops".into(), ops.iter().map(|o| s(o)).collect());
        }
        match &self.material {
            Material::Ec { crv, x, y, d } => {
                m.insert("crv".into(), s(crv.as_str()));
                m.insert("x".into(), b(x));
                m.insert("y".into(), b(y));
                if let Some(d) = d {
                    m.insert("d".into(), b(d));
                }
            }
            Material::Oct { k } => {
                m.insert("k".into(), b(k));
            }
            Material::Okp { x, d } => {
                m.insert("crv".into(), s("Ed25519"));
                m.insert("x".into(), b(x));
                if let Some(d) = d {
                    m.insert("d".into(), b(d));
                }
            }
            Material::Rsa { n, e, private } => {
                m.insert("n".into(), b(n));
                m.insert("e".into(), b(e));
                if let Some(p) = private {
                    for (name, v) in [
                        ("d", &p.d),
                        ("p", &p.p),
                        ("q", &p.q),
                        ("dp", &p.dp),
                        ("dq", &p.dq),
                        ("qi", &p.qi),
                    ] {
                        m.insert(name.into(), b(v));
                    }
                }
            }
        }
        serde_json::Value::Object(m).to_string()
    }

    /// The key type: `EC`, `oct`, `OKP` or `RSA`.
    pub fn kty(&self) -> &'static str {
        match self.material {
            Material::Ec { .. } => "EC",
            Material::Oct { .. } => "oct",
            Material::Okp { .. } => "OKP",
            Material::Rsa { .. } => "RSA",
        }
    }

    /// The key id, if any.
    pub fn kid(&self) -> Option<&str> {
        self.kid.as_deref()
    }

    /// Sets the key id.
    pub fn set_kid(&mut self, kid: impl Into<String>) {
        self.kid = Some(kid.into());
    }

    /// The `alg` member as written, if any.
    pub fn alg(&self) -> Option<Algorithm> {
        self.alg
    }

    /// Sets `alg`, checking that it fits the key type and curve.
    pub fn set_alg(&mut self, alg: Algorithm) -> Result<(), Error> {
        self.check_alg(alg)?;
        self.alg = Some(alg);
        Ok(())
    }

    /// The one algorithm this key may be used with: its `alg`, or the one its curve implies.
    /// RSA and `oct` keys without `alg` are ambiguous and refused (RFC 8725 §3.1).
    pub fn algorithm(&self) -> Result<Algorithm, KeyError> {
        match (self.alg, &self.material) {
            (Some(alg), _) => Ok(alg),
            (None, Material::Ec { crv, .. }) => Ok(crv.algorithm()),
            (None, Material::Okp { .. }) => Ok(Algorithm::EdDSA),
            (None, Material::Oct { .. } | Material::Rsa { .. }) => {
                Err(KeyError::AmbiguousAlgorithm)
            }
        }
    }

    /// Whether private key material (or an HMAC secret) is present.
    pub fn is_private(&self) -> bool {
        match &self.material {
            Material::Ec { d, .. } | Material::Okp { d, .. } => d.is_some(),
            Material::Oct { .. } => true,
            Material::Rsa { private, .. } => private.is_some(),
        }
    }

    /// The public half of this key, with the same `kid`, `alg`, `use` and `key_ops`
    /// (the latter restricted to `verify`). Fails for `oct` keys, which have no public half.
    pub fn to_public(&self) -> Result<Jwk, KeyError> {
        let material = match &self.material {
            Material::Ec { crv, x, y, .. } => Material::Ec {
                crv: *crv,
                x: x.clone(),
                y: y.clone(),
                d: None,
            },
            Material::Okp { x, .. } => Material::Okp {
                x: x.clone(),
                d: None,
            },
            Material::Rsa { n, e, .. } => Material::Rsa {
                n: n.clone(),
                e: e.clone(),
                private: None,
            },
            Material::Oct { .. } => {
                return Err(KeyError::Unsupported("public half of an oct (HMAC) key"));
            }
        };
        Ok(Jwk {
            kid: self.kid.clone(),
            alg: self.alg,
            key_use: self.key_use.clone(),
            key_ops: self
                .key_ops
                .as_ref()
                .map(|ops| ops.iter().filter(|o| *o == "verify").cloned().collect()),
            material,
        })
    }

    /// The RFC 7638 thumbprint with SHA-256, base64url-encoded.
    pub fn thumbprint(&self) -> String {
        let canonical = match &self.material {
            Material::Ec { crv, x, y, .. } => format!(
                r#"{{"crv":"{}","kty":"EC","x":"{}","y":"{}"}}"#,
                crv.as_str(),
                b64::encode(x),
                b64::encode(y)
            ),
            Material::Oct { k } => format!(r#"{{"k":"{}","kty":"oct"}}"#, b64::encode(k)),
            Material::Okp { x, .. } => {
                format!(
                    r#"{{"crv":"Ed25519","kty":"OKP","x":"{}"}}"#,
                    b64::encode(x)
                )
            }
            Material::Rsa { n, e, .. } => format!(
                r#"{{"e":"{}","kty":"RSA","n":"{}"}}"#,
                b64::encode(e),
                b64::encode(n)
            ),
        };
        b64::encode(digest::digest(&digest::SHA256, canonical.as_bytes()))
    }

    /// Generates a fresh private key for `alg` (RSA keys are 2048 bits). Without a `kid`, the key
    /// gets its RFC 7638 thumbprint as `kid`.
    pub fn generate(alg: Algorithm, kid: Option<String>) -> Result<Jwk, Error> {
        Jwk::generate_with(alg, kid, 2048)
    }

    /// Like [`Jwk::generate`], with the RSA modulus size in bits (2048, 3072, 4096 or 8192).
    pub fn generate_with(
        alg: Algorithm,
        kid: Option<String>,
        rsa_bits: usize,
    ) -> Result<Jwk, Error> {
        let unspecified = |_| KeyError::Invalid("key generation failed");
        let material = match alg.family() {
            KeyFamily::Hmac => {
                let mut k = Zeroizing::new(vec![0u8; alg.hmac_len().unwrap_or(64)]);
                rand::fill(&mut k).map_err(unspecified)?;
                Material::Oct { k }
            }
            KeyFamily::Rsa => {
                let size = match rsa_bits {
                    2048 => rsa::KeySize::Rsa2048,
                    3072 => rsa::KeySize::Rsa3072,
                    4096 => rsa::KeySize::Rsa4096,
                    8192 => rsa::KeySize::Rsa8192,
                    bits => return Err(KeyError::RsaSize { bits }.into()),
                };
                let pair = rsa::KeyPair::generate(size).map_err(unspecified)?;
                let pkcs8: Pkcs8V1Der<'static> = pair.as_der().map_err(unspecified)?;
                rsa_material_from_pkcs8(pkcs8.as_ref())?
            }
            KeyFamily::Ec => {
                let crv = ec_curve(alg);
                let pair = EcdsaKeyPair::generate(ec_signing(crv)).map_err(unspecified)?;
                ec_material(crv, &pair)?
            }
            KeyFamily::Okp => {
                let pair = Ed25519KeyPair::generate().map_err(unspecified)?;
                okp_material(&pair)?
            }
        };
        let mut jwk = Jwk {
            kid: None,
            alg: Some(alg),
            key_use: None,
            key_ops: None,
            material,
        };
        jwk.kid = Some(kid.unwrap_or_else(|| jwk.thumbprint()));
        Ok(jwk)
    }

    /// Imports a PEM key: `PRIVATE KEY` (PKCS#8) or `PUBLIC KEY` (SPKI). `alg` is checked
    /// against the key; without it, EC and Ed25519 keys take the one their curve implies and RSA
    /// keys are left without (and refused for use until one is set).
    pub fn from_pem(text: &str, alg: Option<Algorithm>, kid: Option<String>) -> Result<Jwk, Error> {
        let (label, der) = pem::decode(text)?;
        let material = match label {
            pem::Label::PrivateKey => material_from_pkcs8(&der)?,
            pem::Label::PublicKey => material_from_spki(&der)?,
        };
        let mut jwk = Jwk {
            kid: None,
            alg: None,
            key_use: None,
            key_ops: None,
            material,
        };
        match alg {
            Some(alg) => jwk.set_alg(alg)?,
            // EC and Ed25519 keys imply their algorithm; RSA keys stay without one.
            None => jwk.alg = jwk.algorithm().ok(),
        }
        jwk.kid = Some(kid.unwrap_or_else(|| jwk.thumbprint()));
        Ok(jwk)
    }

    /// Exports as PEM: PKCS#8 for private keys, SPKI for public keys. `oct` keys have no PEM form.
    pub fn to_pem(&self) -> Result<String, Error> {
        let unspecified = |_| KeyError::Invalid("key encoding failed");
        if !self.is_private() {
            let der = crate::keys::spki_der(self)?;
            return Ok(pem::encode(pem::Label::PublicKey, &der));
        }
        let der: Vec<u8> = match &self.material {
            Material::Oct { .. } => return Err(KeyError::Unsupported("PEM for oct keys").into()),
            Material::Rsa { .. } => {
                let pair = crate::keys::rsa_pair(self)?;
                let doc: Pkcs8V1Der<'static> = pair.as_der().map_err(unspecified)?;
                doc.as_ref().to_vec()
            }
            Material::Ec { crv, .. } => {
                let pair = crate::keys::ec_pair(self, *crv)?;
                pair.to_pkcs8v1().map_err(unspecified)?.as_ref().to_vec()
            }
            Material::Okp { .. } => {
                let pair = crate::keys::ed_pair(self)?;
                let doc: Pkcs8V1Der<'static> = pair.as_der().map_err(unspecified)?;
                doc.as_ref().to_vec()
            }
        };
        let der = Zeroizing::new(der);
        Ok(pem::encode(pem::Label::PrivateKey, &der))
    }

    /// Whether `use` marks this as an encryption key (`"use": "enc"`).
    pub fn is_encryption_key(&self) -> bool {
        self.key_use.as_deref() == Some("enc")
    }

    /// Checks `use` and `key_ops` allow the operation `op` (`sign` or `verify`), RFC 7517 §4.2-4.3.
    pub(crate) fn check_usage(&self, op: &str) -> Result<(), KeyError> {
        if self.key_use.as_deref().is_some_and(|u| u != "sig") {
            return Err(KeyError::Usage);
        }
        if let Some(ops) = &self.key_ops
            && !ops.iter().any(|o| o == op)
        {
            return Err(KeyError::Usage);
        }
        Ok(())
    }

    fn check_alg(&self, alg: Algorithm) -> Result<(), KeyError> {
        match (&self.material, alg.family()) {
            (Material::Ec { crv, .. }, KeyFamily::Ec) if crv.algorithm() == alg => Ok(()),
            (Material::Ec { .. }, KeyFamily::Ec) => Err(KeyError::Mismatch("curve")),
            (Material::Oct { .. }, KeyFamily::Hmac)
            | (Material::Okp { .. }, KeyFamily::Okp)
            | (Material::Rsa { .. }, KeyFamily::Rsa) => Ok(()),
            _ => Err(KeyError::Mismatch("key type")),
        }
    }
}

fn fixed_scalar(d: Secret, len: usize) -> Result<Secret, KeyError> {
    // RFC 7518 §6.2.2.1 wants the full length; a shorter value is the same scalar left-padded.
    if d.len() > len || d.is_empty() {
        return Err(KeyError::Invalid("EC private key has the wrong length"));
    }
    let mut out = Zeroizing::new(vec![0u8; len - d.len()]);
    out.extend_from_slice(&d);
    Ok(out)
}

pub(crate) fn ec_curve(alg: Algorithm) -> Curve {
    match alg {
        Algorithm::ES384 => Curve::P384,
        Algorithm::ES512 => Curve::P521,
        _ => Curve::P256,
    }
}

pub(crate) fn ec_signing(crv: Curve) -> &'static signature::EcdsaSigningAlgorithm {
    match crv {
        Curve::P384 => &signature::ECDSA_P384_SHA384_FIXED_SIGNING,
        Curve::P521 => &signature::ECDSA_P521_SHA512_FIXED_SIGNING,
        _ => &signature::ECDSA_P256_SHA256_FIXED_SIGNING,
    }
}

fn ec_material(crv: Curve, pair: &EcdsaKeyPair) -> Result<Material, KeyError> {
    let d: aws_lc_rs::encoding::EcPrivateKeyBin<'static> = pair
        .private_key()
        .as_be_bytes()
        .map_err(|_| KeyError::Invalid("EC key export failed"))?;
    let (x, y) = split_point(crv, pair.public_key().as_ref())?;
    Ok(Material::Ec {
        crv,
        x,
        y,
        d: Some(fixed_scalar(
            Zeroizing::new(d.as_ref().to_vec()),
            crv.coordinate_len(),
        )?),
    })
}

fn split_point(crv: Curve, point: &[u8]) -> Result<(Vec<u8>, Vec<u8>), KeyError> {
    let len = crv.coordinate_len();
    match point.split_first() {
        Some((4, xy)) if xy.len() == 2 * len => Ok((xy[..len].to_vec(), xy[len..].to_vec())),
        _ => Err(KeyError::Invalid(
            "EC public key must be an uncompressed point",
        )),
    }
}

fn okp_material(pair: &Ed25519KeyPair) -> Result<Material, KeyError> {
    let seed: aws_lc_rs::encoding::Curve25519SeedBin<'static> = pair
        .seed()
        .and_then(|s| s.as_be_bytes())
        .map_err(|_| KeyError::Invalid("Ed25519 key export failed"))?;
    Ok(Material::Okp {
        x: pair.public_key().as_ref().to_vec(),
        d: Some(Zeroizing::new(seed.as_ref().to_vec())),
    })
}

fn rsa_material_from_pkcs8(der: &[u8]) -> Result<Material, KeyError> {
    let info = der::pkcs8(der)?;
    if info.algorithm != der::OID_RSA {
        return Err(KeyError::Pem("not an RSA key"));
    }
    rsa_material_from_pkcs1(info.key)
}

fn rsa_material_from_pkcs1(der: &[u8]) -> Result<Material, KeyError> {
    let k = der::rsa_private(der)?;
    let s = |v: &[u8]| Zeroizing::new(v.to_vec());
    Ok(Material::Rsa {
        n: k.n.to_vec(),
        e: k.e.to_vec(),
        private: Some(Box::new(RsaPrivate {
            d: s(k.d),
            p: s(k.p),
            q: s(k.q),
            dp: s(k.dp),
            dq: s(k.dq),
            qi: s(k.qi),
        })),
    })
}

fn curve_from_oid(oid: Option<&[u8]>) -> Result<Curve, KeyError> {
    match oid {
        Some(o) if o == der::OID_P256 => Ok(Curve::P256),
        Some(o) if o == der::OID_P384 => Ok(Curve::P384),
        Some(o) if o == der::OID_P521 => Ok(Curve::P521),
        _ => Err(KeyError::Unsupported("EC curve")),
    }
}

fn material_from_pkcs8(der: &[u8]) -> Result<Material, KeyError> {
    let info = der::pkcs8(der)?;
    let rejected = |_| KeyError::Invalid("private key rejected by aws-lc");
    if info.algorithm == der::OID_RSA {
        // Validate the whole key once so that errors surface at import.
        rsa::KeyPair::from_pkcs8(der).map_err(rejected)?;
        rsa_material_from_pkcs1(info.key)
    } else if info.algorithm == der::OID_EC {
        let crv = curve_from_oid(info.curve)?;
        let pair = EcdsaKeyPair::from_pkcs8(ec_signing(crv), der).map_err(rejected)?;
        ec_material(crv, &pair)
    } else if info.algorithm == der::OID_ED25519 {
        let pair = Ed25519KeyPair::from_pkcs8_maybe_unchecked(der).map_err(rejected)?;
        okp_material(&pair)
    } else {
        Err(KeyError::Unsupported("PKCS#8 key algorithm"))
    }
}

fn material_from_spki(der: &[u8]) -> Result<Material, KeyError> {
    let info = der::spki(der)?;
    if info.algorithm == der::OID_RSA {
        let (n, e) = der::rsa_public(info.key)?;
        Ok(Material::Rsa {
            n: n.to_vec(),
            e: e.to_vec(),
            private: None,
        })
    } else if info.algorithm == der::OID_EC {
        let crv = curve_from_oid(info.curve)?;
        let (x, y) = split_point(crv, info.key)?;
        // Refuse points off the curve at import, as PKCS#8 imports are (aws-lc checks).
        aws_lc_rs::signature::ParsedPublicKey::new(crate::keys::ec_verification(crv), info.key)
            .map_err(|_| KeyError::Invalid("EC point is not on the curve"))?;
        Ok(Material::Ec { crv, x, y, d: None })
    } else if info.algorithm == der::OID_ED25519 {
        if info.key.len() != 32 {
            return Err(KeyError::Invalid("Ed25519 public key must be 32 bytes"));
        }
        Ok(Material::Okp {
            x: info.key.to_vec(),
            d: None,
        })
    } else {
        Err(KeyError::Unsupported("SPKI key algorithm"))
    }
}

/// A JWK Set (RFC 7517 §5).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct JwkSet {
    /// The keys, in document order.
    pub keys: Vec<Jwk>,
}

impl JwkSet {
    /// Parses a JWK Set. Every key must parse; the error names the first that does not.
    pub fn from_json(json: &[u8]) -> Result<JwkSet, Error> {
        strict_json(json)?;
        let raw: RawSet<'_> = serde_json::from_slice(json)
            .map_err(|_| KeyError::Invalid("not a JWK Set: expected {\"keys\": [...]}"))?;
        let keys = raw
            .keys
            .iter()
            .enumerate()
            .map(|(index, k)| {
                Jwk::from_raw(k).map_err(|e| KeyError::InSet {
                    index,
                    reason: Box::new(e),
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(JwkSet { keys })
    }

    /// Parses either a JWK Set or a single JWK (as one-key set), for command-line convenience.
    pub fn from_json_or_single(json: &[u8]) -> Result<JwkSet, Error> {
        match JwkSet::from_json(json) {
            Ok(set) => Ok(set),
            Err(set_error) => match Jwk::from_json(json) {
                Ok(jwk) => Ok(JwkSet { keys: vec![jwk] }),
                Err(_) => Err(set_error),
            },
        }
    }

    /// Serializes as `{"keys":[...]}`.
    pub fn to_json(&self) -> String {
        let mut out = String::from(r#"{"keys":["#);
        for (i, k) in self.keys.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            out.push_str(&k.to_json());
        }
        out.push_str("]}");
        out
    }

    /// The public JWK Set to publish: every key reduced to its public half. Fails if a key is a
    /// symmetric secret, which must never be published.
    pub fn to_public(&self) -> Result<JwkSet, KeyError> {
        Ok(JwkSet {
            keys: self
                .keys
                .iter()
                .map(Jwk::to_public)
                .collect::<Result<_, _>>()?,
        })
    }
}
