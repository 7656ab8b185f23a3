//! The sliver of DER (ITU-T X.690) needed to read and write key containers: PKCS#8
//! `PrivateKeyInfo` (RFC 5208), `SubjectPublicKeyInfo` (RFC 5280 §4.1) and PKCS#1
//! `RSAPrivateKey`/`RSAPublicKey` (RFC 8017 A.1). Only definite, minimal lengths are accepted.
//! This is container parsing, not cryptography: every key it yields is handed to aws-lc-rs,
//! which validates the key itself.

use crate::error::KeyError;

pub(crate) const SEQUENCE: u8 = 0x30;
pub(crate) const INTEGER: u8 = 0x02;
pub(crate) const BIT_STRING: u8 = 0x03;
pub(crate) const OCTET_STRING: u8 = 0x04;
pub(crate) const NULL: u8 = 0x05;
pub(crate) const OID: u8 = 0x06;

/// rsaEncryption, 1.2.840.113549.1.1.1 (content bytes only).
pub(crate) const OID_RSA: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01];
/// id-ecPublicKey, 1.2.840.10045.2.1.
pub(crate) const OID_EC: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01];
/// prime256v1, 1.2.840.10045.3.1.7.
pub(crate) const OID_P256: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07];
/// secp384r1, 1.3.132.0.34.
pub(crate) const OID_P384: &[u8] = &[0x2b, 0x81, 0x04, 0x00, 0x22];
/// secp521r1, 1.3.132.0.35.
pub(crate) const OID_P521: &[u8] = &[0x2b, 0x81, 0x04, 0x00, 0x23];
/// id-Ed25519, 1.3.101.112 (RFC 8410).
pub(crate) const OID_ED25519: &[u8] = &[0x2b, 0x65, 0x70];

fn bad(why: &'static str) -> KeyError {
    KeyError::Pem(why)
}

/// A reader over DER bytes.
pub(crate) struct Reader<'a> {
    rest: &'a [u8],
}

impl<'a> Reader<'a> {
    pub(crate) fn new(bytes: &'a [u8]) -> Self {
        Reader { rest: bytes }
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.rest.is_empty()
    }

    /// Reads one element, returning its tag and contents.
    pub(crate) fn any(&mut self) -> Result<(u8, &'a [u8]), KeyError> {
        let (&tag, rest) = self.rest.split_first().ok_or(bad("truncated"))?;
        if tag & 0x1f == 0x1f {
            return Err(bad("multi-byte tags are not supported"));
        }
        let (&first, mut rest) = rest.split_first().ok_or(bad("truncated"))?;
        let len = if first < 0x80 {
            usize::from(first)
        } else {
            let n = usize::from(first & 0x7f);
            if n == 0 || n > 4 {
                return Err(bad("indefinite or oversized length"));
            }
            if rest.len() < n {
                return Err(bad("truncated"));
            }
            let mut len = 0usize;
            for &b in &rest[..n] {
                len = (len << 8) | usize::from(b);
            }
            if rest[0] == 0 || len < 0x80 {
                return Err(bad("non-minimal length"));
            }
            rest = &rest[n..];
            len
        };
        if rest.len() < len {
            return Err(bad("truncated"));
        }
        let (contents, rest) = rest.split_at(len);
        self.rest = rest;
        Ok((tag, contents))
    }

    /// Reads one element that must carry `tag`.
    pub(crate) fn expect(&mut self, tag: u8) -> Result<&'a [u8], KeyError> {
        match self.any()? {
            (t, contents) if t == tag => Ok(contents),
            _ => Err(bad("unexpected element")),
        }
    }

    /// Reads an INTEGER that must be non-negative, returning its magnitude without leading zeros.
    pub(crate) fn unsigned(&mut self) -> Result<&'a [u8], KeyError> {
        let bytes = self.expect(INTEGER)?;
        match bytes {
            [] => Err(bad("empty integer")),
            [b, ..] if b & 0x80 != 0 => Err(bad("negative integer")),
            [0, next, ..] if next & 0x80 == 0 => Err(bad("non-minimal integer")),
            [0, rest @ ..] if !rest.is_empty() => Ok(rest),
            _ => Ok(bytes),
        }
    }

    /// Reads a small INTEGER (a version number).
    pub(crate) fn small(&mut self) -> Result<u8, KeyError> {
        match self.expect(INTEGER)? {
            [v] if v & 0x80 == 0 => Ok(*v),
            _ => Err(bad("unexpected version")),
        }
    }

    /// Requires the input to be fully consumed.
    pub(crate) fn finish(&self) -> Result<(), KeyError> {
        if self.rest.is_empty() {
            Ok(())
        } else {
            Err(bad("trailing data"))
        }
    }
}

/// The algorithm and key bytes of a `SubjectPublicKeyInfo` or a `PrivateKeyInfo`.
pub(crate) struct KeyInfo<'a> {
    /// The algorithm OID (contents).
    pub(crate) algorithm: &'a [u8],
    /// The curve OID for EC keys.
    pub(crate) curve: Option<&'a [u8]>,
    /// The BIT STRING payload (public) or OCTET STRING payload (private).
    pub(crate) key: &'a [u8],
}

fn algorithm_identifier<'a>(r: &mut Reader<'a>) -> Result<(&'a [u8], Option<&'a [u8]>), KeyError> {
    let mut alg = Reader::new(r.expect(SEQUENCE)?);
    let oid = alg.expect(OID)?;
    let params = if alg.is_empty() {
        None
    } else {
        match alg.any()? {
            (OID, curve) => Some(curve),
            (NULL, []) => None,
            _ => return Err(bad("unsupported algorithm parameters")),
        }
    };
    alg.finish()?;
    Ok((oid, params))
}

/// Parses a `SubjectPublicKeyInfo` (RFC 5280 §4.1.2.7).
pub(crate) fn spki(der: &[u8]) -> Result<KeyInfo<'_>, KeyError> {
    let mut outer = Reader::new(der);
    let mut r = Reader::new(outer.expect(SEQUENCE)?);
    outer.finish()?;
    let (algorithm, curve) = algorithm_identifier(&mut r)?;
    let bits = r.expect(BIT_STRING)?;
    r.finish()?;
    match bits.split_first() {
        Some((0, key)) => Ok(KeyInfo {
            algorithm,
            curve,
            key,
        }),
        _ => Err(bad("bit string with unused bits")),
    }
}

/// Parses a PKCS#8 `PrivateKeyInfo` (RFC 5208 §5, or its v2 `OneAsymmetricKey`, RFC 5958).
pub(crate) fn pkcs8(der: &[u8]) -> Result<KeyInfo<'_>, KeyError> {
    let mut outer = Reader::new(der);
    let mut r = Reader::new(outer.expect(SEQUENCE)?);
    outer.finish()?;
    if r.small()? > 1 {
        return Err(bad("unsupported PKCS#8 version"));
    }
    let (algorithm, curve) = algorithm_identifier(&mut r)?;
    let key = r.expect(OCTET_STRING)?;
    // Optional attributes [0] and public key [1] may follow; aws-lc-rs checks them.
    Ok(KeyInfo {
        algorithm,
        curve,
        key,
    })
}

/// The integers of a two-prime PKCS#1 `RSAPrivateKey`.
pub(crate) struct RsaPrivate<'a> {
    pub(crate) n: &'a [u8],
    pub(crate) e: &'a [u8],
    pub(crate) d: &'a [u8],
    pub(crate) p: &'a [u8],
    pub(crate) q: &'a [u8],
    pub(crate) dp: &'a [u8],
    pub(crate) dq: &'a [u8],
    pub(crate) qi: &'a [u8],
}

/// Parses a PKCS#1 `RSAPrivateKey` (RFC 8017 A.1.2); multi-prime keys are refused.
pub(crate) fn rsa_private(der: &[u8]) -> Result<RsaPrivate<'_>, KeyError> {
    let mut outer = Reader::new(der);
    let mut r = Reader::new(outer.expect(SEQUENCE)?);
    outer.finish()?;
    if r.small()? != 0 {
        return Err(bad("multi-prime RSA keys are not supported"));
    }
    let key = RsaPrivate {
        n: r.unsigned()?,
        e: r.unsigned()?,
        d: r.unsigned()?,
        p: r.unsigned()?,
        q: r.unsigned()?,
        dp: r.unsigned()?,
        dq: r.unsigned()?,
        qi: r.unsigned()?,
    };
    r.finish()?;
    Ok(key)
}

/// Parses a PKCS#1 `RSAPublicKey` (RFC 8017 A.1.1), returning `(n, e)`.
pub(crate) fn rsa_public(der: &[u8]) -> Result<(&[u8], &[u8]), KeyError> {
    let mut outer = Reader::new(der);
    let mut r = Reader::new(outer.expect(SEQUENCE)?);
    outer.finish()?;
    let n = r.unsigned()?;
    let e = r.unsigned()?;
    r.finish()?;
    Ok((n, e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_unsigned_integers_without_sign_byte() {
        let der = [0x02, 0x03, 0x00, 0x81, 0x02, 0x02, 0x01, 0x7f];
        let mut r = Reader::new(&der);
        assert_eq!(r.unsigned(), Ok(&[0x81, 0x02][..]));
        assert_eq!(r.unsigned(), Ok(&[0x7f][..]));
        r.finish().expect("consumed");
    }

    #[test]
    fn rejects_truncation_indefinite_and_non_minimal_lengths() {
        for bad in [
            &[0x30u8][..],
            &[0x30, 0x80, 0x00, 0x00],
            &[0x30, 0x81, 0x05, 1, 2, 3, 4, 5],
            &[0x30, 0x82, 0x00, 0x01, 0],
            &[0x30, 0x03, 0x02, 0x01],
            &[0x1f, 0x01, 0x00],
            &[0x02, 0x02, 0x00, 0x01],
            &[0x02, 0x01, 0x80],
        ] {
            let mut r = Reader::new(bad);
            let result = r.any().and_then(|(tag, c)| {
                if tag == INTEGER {
                    Reader::new(bad).unsigned().map(|_| ())
                } else {
                    Reader::new(c).any().map(|_| ())
                }
            });
            assert!(result.is_err(), "{bad:?}");
        }
    }
}
