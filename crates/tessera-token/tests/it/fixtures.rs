//! Shared keys and token forging helpers.

use std::sync::OnceLock;

use tessera_token::{Algorithm, Jwk, KeySet, SigningKey, VerifyingKey, b64};

/// A fixed "now" for every test: 2026-11-01T00:00:00Z.
pub(crate) const NOW: u64 = 1_793_491_200;

/// One private JWK per algorithm family used by the attack tests, each with kid = alg name.
pub(crate) struct Keys {
    pub(crate) jwks: Vec<Jwk>,
}

pub(crate) fn keys() -> &'static Keys {
    static KEYS: OnceLock<Keys> = OnceLock::new();
    KEYS.get_or_init(|| Keys {
        jwks: [
            Algorithm::HS256,
            Algorithm::RS256,
            Algorithm::ES256,
            Algorithm::EdDSA,
        ]
        .into_iter()
        .map(|alg| Jwk::generate(alg, Some(alg.as_str().to_owned())).expect("generate"))
        .collect(),
    })
}

impl Keys {
    pub(crate) fn jwk(&self, kid: &str) -> &Jwk {
        self.jwks
            .iter()
            .find(|j| j.kid() == Some(kid))
            .expect("fixture key")
    }

    pub(crate) fn signer(&self, kid: &str) -> SigningKey {
        SigningKey::from_jwk(self.jwk(kid)).expect("signing key")
    }

    /// The verification set: public halves, and the HMAC secret.
    pub(crate) fn set(&self) -> KeySet {
        KeySet::new(
            self.jwks
                .iter()
                .map(|j| {
                    let public = j.to_public().unwrap_or_else(|_| j.clone());
                    VerifyingKey::from_jwk(&public).expect("verifying key")
                })
                .collect(),
        )
        .expect("key set")
    }
}

/// Builds a token from raw header and payload bytes, signed by `key` over exactly those bytes.
pub(crate) fn forge(header: &str, payload: &str, key: &SigningKey) -> String {
    let input = format!("{}.{}", b64::encode(header), b64::encode(payload));
    let sig = key.sign(input.as_bytes()).expect("sign");
    format!("{input}.{}", b64::encode(sig))
}

/// A valid header for `kid` with the key's own algorithm.
pub(crate) fn header(key: &SigningKey) -> String {
    format!(
        r#"{{"alg":"{}","kid":"{}","typ":"JWT"}}"#,
        key.algorithm(),
        key.kid()
    )
}

/// Valid claims at [`NOW`].
pub(crate) fn claims() -> String {
    format!(
        r#"{{"iss":"https://id.example","sub":"ada","aud":"api","exp":{},"iat":{}}}"#,
        NOW + 600,
        NOW
    )
}
