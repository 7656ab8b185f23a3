//! The JWS algorithms tessera signs and verifies (RFC 7518 §3, RFC 8037 §3.1).

use std::fmt;

/// A JWS signature algorithm. Each key carries exactly one (RFC 8725 §3.1).
///
/// `none` is deliberately absent: there is no value of this type that means "unsigned".
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Algorithm {
    /// Ed25519 signatures (RFC 8037 §3.1).
    EdDSA,
    /// ECDSA on P-256 with SHA-256.
    ES256,
    /// ECDSA on P-384 with SHA-384.
    ES384,
    /// ECDSA on P-521 with SHA-512.
    ES512,
    /// HMAC with SHA-256.
    HS256,
    /// HMAC with SHA-384.
    HS384,
    /// HMAC with SHA-512.
    HS512,
    /// RSASSA-PSS with SHA-256 and MGF1-SHA-256.
    PS256,
    /// RSASSA-PSS with SHA-384 and MGF1-SHA-384.
    PS384,
    /// RSASSA-PSS with SHA-512 and MGF1-SHA-512.
    PS512,
    /// RSASSA-PKCS1-v1_5 with SHA-256.
    RS256,
    /// RSASSA-PKCS1-v1_5 with SHA-384.
    RS384,
    /// RSASSA-PKCS1-v1_5 with SHA-512.
    RS512,
}

/// The family of key an algorithm needs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeyFamily {
    /// Elliptic curve (`kty` `EC`).
    Ec,
    /// Symmetric secret (`kty` `oct`).
    Hmac,
    /// Octet key pair (`kty` `OKP`, Ed25519).
    Okp,
    /// RSA (`kty` `RSA`).
    Rsa,
}

impl Algorithm {
    /// Every supported algorithm, in a stable order.
    pub const ALL: [Algorithm; 13] = [
        Algorithm::HS256,
        Algorithm::HS384,
        Algorithm::HS512,
        Algorithm::RS256,
        Algorithm::RS384,
        Algorithm::RS512,
        Algorithm::PS256,
        Algorithm::PS384,
        Algorithm::PS512,
        Algorithm::ES256,
        Algorithm::ES384,
        Algorithm::ES512,
        Algorithm::EdDSA,
    ];

    /// The registered `alg` name (RFC 7518 §3.1).
    pub const fn as_str(self) -> &'static str {
        match self {
            Algorithm::EdDSA => "EdDSA",
            Algorithm::ES256 => "ES256",
            Algorithm::ES384 => "ES384",
            Algorithm::ES512 => "ES512",
            Algorithm::HS256 => "HS256",
            Algorithm::HS384 => "HS384",
            Algorithm::HS512 => "HS512",
            Algorithm::PS256 => "PS256",
            Algorithm::PS384 => "PS384",
            Algorithm::PS512 => "PS512",
            Algorithm::RS256 => "RS256",
            Algorithm::RS384 => "RS384",
            Algorithm::RS512 => "RS512",
        }
    }

    /// Parses an `alg` value by exact, case-sensitive comparison (RFC 7515 §4.1.1).
    pub fn from_name(name: &str) -> Option<Algorithm> {
        Algorithm::ALL.into_iter().find(|a| a.as_str() == name)
    }

    /// The kind of key this algorithm needs.
    pub const fn family(self) -> KeyFamily {
        match self {
            Algorithm::EdDSA => KeyFamily::Okp,
            Algorithm::ES256 | Algorithm::ES384 | Algorithm::ES512 => KeyFamily::Ec,
            Algorithm::HS256 | Algorithm::HS384 | Algorithm::HS512 => KeyFamily::Hmac,
            Algorithm::PS256
            | Algorithm::PS384
            | Algorithm::PS512
            | Algorithm::RS256
            | Algorithm::RS384
            | Algorithm::RS512 => KeyFamily::Rsa,
        }
    }

    /// For HMAC algorithms, the hash output length in bytes, which is also the minimum key
    /// length (RFC 7518 §3.2).
    pub const fn hmac_len(self) -> Option<usize> {
        match self {
            Algorithm::HS256 => Some(32),
            Algorithm::HS384 => Some(48),
            Algorithm::HS512 => Some(64),
            _ => None,
        }
    }
}

impl fmt::Display for Algorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for Algorithm {
    type Err = crate::Error;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Algorithm::from_name(s).ok_or(crate::Error::UnsupportedAlgorithm)
    }
}

/// An elliptic curve usable for signatures.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Curve {
    /// Ed25519 (`OKP`, RFC 8037).
    Ed25519,
    /// NIST P-256 (`EC`).
    P256,
    /// NIST P-384 (`EC`).
    P384,
    /// NIST P-521 (`EC`).
    P521,
}

impl Curve {
    /// The registered `crv` name (RFC 7518 §6.2.1.1, RFC 8037 §2).
    pub const fn as_str(self) -> &'static str {
        match self {
            Curve::Ed25519 => "Ed25519",
            Curve::P256 => "P-256",
            Curve::P384 => "P-384",
            Curve::P521 => "P-521",
        }
    }

    /// Parses a `crv` value exactly.
    pub fn from_name(name: &str) -> Option<Curve> {
        [Curve::Ed25519, Curve::P256, Curve::P384, Curve::P521]
            .into_iter()
            .find(|c| c.as_str() == name)
    }

    /// The one algorithm this curve implies: unambiguous, so a JWK without `alg` may take it.
    pub const fn algorithm(self) -> Algorithm {
        match self {
            Curve::Ed25519 => Algorithm::EdDSA,
            Curve::P256 => Algorithm::ES256,
            Curve::P384 => Algorithm::ES384,
            Curve::P521 => Algorithm::ES512,
        }
    }

    /// Length in bytes of one coordinate (and of the private scalar).
    pub const fn coordinate_len(self) -> usize {
        match self {
            Curve::Ed25519 | Curve::P256 => 32,
            Curve::P384 => 48,
            Curve::P521 => 66,
        }
    }
}
