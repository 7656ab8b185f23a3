//! The token core of tessera: JOSE on aws-lc-rs, with no I/O, no clock and no async.
//!
//! It owns JWS compact signing and verification ([`jws`], [`jwt`]), JSON Web Keys and key sets
//! with RFC 7638 thumbprints, generation and PEM import/export ([`Jwk`], [`JwkSet`]), and the
//! strict verification policy of RFC 8725 ([`Policy`]); one-time passwords (HOTP, TOTP,
//! `otpauth://` URIs: [`otp`]); and sealing secrets at rest under a master key ([`seal`]). Time is always a parameter (`now`);
//! randomness comes from aws-lc-rs's DRBG, used only to generate keys and inside probabilistic
//! signatures (ECDSA, RSA-PSS).
//!
//! Trust is carried by types: a token is only a string until [`jwt::verify`] returns a
//! [`Verified`], the only type that exposes claims. Keys are bound to exactly one
//! [`Algorithm`]; the header never chooses one. Anything that skips verification lives in
//! [`danger`] with `insecure_` in its name.
//!
//! ```
//! use tessera_token::{jwt, Algorithm, Jwk, KeySet, Policy, SigningKey, VerifyingKey};
//!
//! let jwk = Jwk::generate(Algorithm::ES256, Some("k1".into())).unwrap();
//! let signer = SigningKey::from_jwk(&jwk).unwrap();
//! let token = jwt::sign(&signer, &serde_json::json!({"sub": "ada", "exp": 2_000_000_000})).unwrap();
//!
//! let keys = KeySet::new(vec![VerifyingKey::from_jwk(&jwk.to_public().unwrap()).unwrap()]).unwrap();
//! let verified = jwt::verify(&token, &keys, &Policy::new(), 1_700_000_000).unwrap();
//! assert_eq!(verified.subject(), Some("ada"));
//! ```
//!
//! Never depends on the domain, storage, HTTP or an async runtime (see ARCHITECTURE.md).

pub mod alg;
pub mod b64;
pub mod danger;
mod der;
mod error;
mod json;
pub mod jwk;
pub mod jws;
pub mod jwt;
mod keys;
pub mod otp;
pub mod pem;
pub mod seal;

pub use alg::{Algorithm, Curve, KeyFamily};
pub use error::{Culprit, Error, JsonReason, KeyError, Part};
pub use jwk::{Jwk, JwkSet};
pub use jws::Limits;
pub use jwt::{Policy, Verified};
pub use keys::{KeySet, SigningKey, VerifyingKey};
