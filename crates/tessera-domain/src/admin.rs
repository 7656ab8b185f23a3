//! Administrator API tokens: high-entropy bearer secrets, stored as SHA-256 only. The first is
//! created at first start and printed once; accounts with the admin role are the other way in.

use std::fmt;

use aws_lc_rs::digest;
use zeroize::Zeroizing;

use crate::clock::UnixTime;

/// The visible prefix of admin tokens, so that leaked ones are easy to spot by scanners.
pub const PREFIX: &str = "tsa_";

/// An admin token as handed to the operator. Never stored.
pub struct AdminToken(Zeroizing<String>);

impl AdminToken {
    /// A fresh token: `tsa_` and 32 random bytes in base64url.
    pub fn generate() -> AdminToken {
        AdminToken(Zeroizing::new(format!(
            "{PREFIX}{}",
            tessera_token::b64::encode(crate::random::bytes::<32>())
        )))
    }

    /// Parses a presented token, checking only its shape.
    pub fn parse(text: &str) -> Option<AdminToken> {
        let body = text.strip_prefix(PREFIX)?;
        (body.len() == 43 && tessera_token::b64::decode(body).is_some())
            .then(|| AdminToken(Zeroizing::new(text.to_owned())))
    }

    /// The token text, to show once.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// The stored form. A 256-bit random token needs no slow hash: SHA-256 is preimage-resistant
    /// and the lookup by hash does not leak the token through timing.
    pub fn hash(&self) -> [u8; 32] {
        let mut out = [0u8; 32];
        out.copy_from_slice(digest::digest(&digest::SHA256, self.0.as_bytes()).as_ref());
        out
    }
}

impl fmt::Debug for AdminToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("AdminToken(***)")
    }
}

/// A stored admin token record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AdminTokenRecord {
    /// SHA-256 of the token.
    pub hash: [u8; 32],
    /// What it is for.
    pub label: String,
    /// When it was created.
    pub created_at: UnixTime,
}
