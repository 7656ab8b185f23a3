//! Administrator API tokens: high-entropy bearer secrets, stored as SHA-256 only. The first is
//! created at first start and printed once; accounts with the admin role are the other way in.
//!
//! A token made now is `tsa_v2.<secret>.<tag>`: 32 random bytes and a keyed tag over what
//! precedes it (HMAC-SHA256 truncated to 128 bits, under the server secret
//! [`SEAL_SECRET`] that every node and the CLI share through the store). The server checks the
//! tag before any lookup, so random or forged tokens never reach the database, as with session
//! cookies. Tokens of the first format, `tsa_` and 43 base64url characters without a tag, keep
//! working: only the store can tell them, so they are looked up behind the per-address gate.

use std::fmt;

use aws_lc_rs::{digest, hmac};
use zeroize::Zeroizing;

use crate::audit::{AuditEvent, AuditKind};
use crate::clock::UnixTime;
use crate::error::DomainError;
use crate::store::{Store, StoreResult};

/// The visible prefix of admin tokens, so that leaked ones are easy to spot by scanners.
pub const PREFIX: &str = "tsa_";

/// What follows [`PREFIX`] in tokens that carry a tag (the format's version), up to the secret.
const SEALED: &str = "v2.";

/// The name of the server secret keying the admin-token tag (see [`crate::store::SecretStore`]).
pub const SEAL_SECRET: &str = "admin-token-seal";

/// Base64url characters of the 32-byte secret.
const SECRET_CHARS: usize = 43;

/// Bytes of the truncated tag (128 bits).
const TAG_LEN: usize = 16;

/// Base64url characters of the tag.
const TAG_CHARS: usize = 22;

/// An admin token as handed to the operator. Never stored.
pub struct AdminToken(Zeroizing<String>);

impl AdminToken {
    /// The token text, to show once.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// The stored form. A 256-bit random token needs no slow hash: SHA-256 is preimage-resistant
    /// and the lookup by hash does not leak the token through timing. It covers the whole text,
    /// tag included, as it always has, so ids and revocation are the same for both formats.
    pub fn hash(&self) -> [u8; 32] {
        let mut out = [0u8; 32];
        out.copy_from_slice(digest::digest(&digest::SHA256, self.0.as_bytes()).as_ref());
        out
    }

    /// The token's public id, as [`AdminTokenRecord::id`] shows it.
    pub fn id(&self) -> String {
        id_of(&self.hash())
    }
}

impl fmt::Debug for AdminToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("AdminToken(***)")
    }
}

/// What a presented bearer token is, judged before any lookup.
#[derive(Debug)]
pub enum Presented {
    /// The tagged format with the right tag: worth a lookup.
    Sealed(AdminToken),
    /// The first, untagged format: only the store can tell a real one from a guess.
    Untagged(AdminToken),
    /// The tagged format with a wrong tag: forged, or from another deployment. Never looked up.
    BadTag,
}

/// Makes and checks the keyed tag of admin tokens. The tag is a denial-of-service filter only:
/// the 256-bit secret is what proves a token, so a leaked tag key grants nothing.
pub struct AdminTokenSeal {
    key: hmac::Key,
}

impl fmt::Debug for AdminTokenSeal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("AdminTokenSeal(***)")
    }
}

impl AdminTokenSeal {
    /// A seal with a 32-byte key.
    pub fn new(key: &[u8]) -> AdminTokenSeal {
        AdminTokenSeal {
            key: hmac::Key::new(hmac::HMAC_SHA256, key),
        }
    }

    /// The seal of this deployment: its key is the server secret [`SEAL_SECRET`], created by the
    /// first node or command that asks (first writer wins), the same for all afterwards.
    pub async fn load(store: &dyn Store) -> StoreResult<AdminTokenSeal> {
        let candidate = Zeroizing::new(crate::random::bytes::<32>());
        let key = Zeroizing::new(store.server_secret(SEAL_SECRET, &candidate[..]).await?);
        Ok(AdminTokenSeal::new(&key))
    }

    fn tag(&self, body: &str) -> hmac::Tag {
        hmac::sign(&self.key, body.as_bytes())
    }

    /// A fresh token: `tsa_v2.`, 32 random bytes and the tag, both base64url.
    pub fn generate(&self) -> AdminToken {
        let body = Zeroizing::new(format!(
            "{PREFIX}{SEALED}{}",
            tessera_token::b64::encode(crate::random::bytes::<32>())
        ));
        let tag = self.tag(&body);
        let tag = tessera_token::b64::encode(&tag.as_ref()[..TAG_LEN]);
        AdminToken(Zeroizing::new(format!("{}.{tag}", body.as_str())))
    }

    /// Judges a presented token by its shape and, for the tagged format, its tag (compared in
    /// constant time). `None` if it has the shape of neither format.
    pub fn open(&self, text: &str) -> Option<Presented> {
        let rest = text.strip_prefix(PREFIX)?;
        let Some(sealed) = rest.strip_prefix(SEALED) else {
            return is_b64(rest, SECRET_CHARS)
                .then(|| Presented::Untagged(AdminToken(Zeroizing::new(text.to_owned()))));
        };
        let (secret, tag) = sealed.split_once('.')?;
        if !is_b64(secret, SECRET_CHARS) || !is_b64(tag, TAG_CHARS) {
            return None;
        }
        let tag = tessera_token::b64::decode(tag)?;
        let body = &text[..text.len() - TAG_CHARS - 1];
        let expected = self.tag(body);
        // Constant time, so that the tag cannot be found byte by byte (aws-lc-rs).
        Some(
            match aws_lc_rs::constant_time::verify_slices_are_equal(
                &expected.as_ref()[..TAG_LEN],
                &tag,
            ) {
                Ok(()) => Presented::Sealed(AdminToken(Zeroizing::new(text.to_owned()))),
                Err(_) => Presented::BadTag,
            },
        )
    }
}

/// `text` is `chars` base64url characters that decode.
fn is_b64(text: &str, chars: usize) -> bool {
    text.len() == chars && tessera_token::b64::decode(text).is_some()
}

/// A stored admin token record. `Debug` shows its id (a hash prefix), never the whole hash.
#[derive(Clone, PartialEq, Eq)]
pub struct AdminTokenRecord {
    /// SHA-256 of the token.
    pub hash: [u8; 32],
    /// What it is for.
    pub label: String,
    /// When it was created.
    pub created_at: UnixTime,
}

impl fmt::Debug for AdminTokenRecord {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AdminTokenRecord")
            .field("id", &self.id())
            .field("label", &self.label)
            .field("created_at", &self.created_at)
            .finish()
    }
}

impl AdminTokenRecord {
    /// The token's public name for listing and revoking: the first 6 bytes of its SHA-256 in
    /// hex. It says nothing usable about the 256-bit token itself.
    pub fn id(&self) -> String {
        id_of(&self.hash)
    }
}

/// The id of the token whose hash is `hash`: its first bytes in hex.
fn id_of(hash: &[u8; 32]) -> String {
    hash[..ID_BYTES]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Bytes of the hash shown as a token's id.
const ID_BYTES: usize = 6;

/// The longest label an admin token may carry.
pub const MAX_LABEL: usize = 64;

/// Creates an admin token labelled `label` (1 to 64 characters, no control characters), tagged
/// by `seal`, stores its hash, audits it, and returns the token to show once.
pub async fn create_token(
    store: &dyn Store,
    seal: &AdminTokenSeal,
    label: &str,
    now: UnixTime,
) -> Result<(AdminToken, AdminTokenRecord), DomainError> {
    let label = label.trim();
    if label.is_empty() || label.chars().count() > MAX_LABEL || label.chars().any(char::is_control)
    {
        return Err(DomainError::Invalid(format!(
            "an admin token label is 1 to {MAX_LABEL} characters without control characters"
        )));
    }
    let token = seal.generate();
    let record = AdminTokenRecord {
        hash: token.hash(),
        label: label.to_owned(),
        created_at: now,
    };
    store.create_admin_token(&record).await?;
    store
        .append_audit(&AuditEvent::new(AuditKind::AdminTokenCreated, now).detail(record.id()))
        .await?;
    Ok((token, record))
}

/// Revokes the admin token whose id (as [`AdminTokenRecord::id`] shows it) is `id`, at once:
/// the server checks admin tokens against the store on every request. Audited.
pub async fn revoke_token(
    store: &dyn Store,
    id: &str,
    now: UnixTime,
) -> Result<AdminTokenRecord, DomainError> {
    let id = id.trim().to_ascii_lowercase();
    if id.len() != 2 * ID_BYTES || !id.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(DomainError::Invalid(format!(
            "an admin token id is {} hexadecimal digits, as `admin-token list` shows",
            2 * ID_BYTES
        )));
    }
    let record = store
        .list_admin_tokens()
        .await?
        .into_iter()
        .find(|r| r.id() == id)
        .ok_or(DomainError::NotFound)?;
    if !store.delete_admin_token(&record.hash).await? {
        return Err(DomainError::NotFound);
    }
    store
        .append_audit(&AuditEvent::new(AuditKind::AdminTokenRevoked, now).detail(&id))
        .await?;
    Ok(record)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seal() -> AdminTokenSeal {
        AdminTokenSeal::new(&[7u8; 32])
    }

    #[test]
    fn a_generated_token_is_self_describing_and_opens_under_its_seal_only() {
        let token = seal().generate();
        let text = token.expose();
        assert!(text.starts_with("tsa_v2."), "{text}");
        assert_eq!(text.len(), 4 + 3 + SECRET_CHARS + 1 + TAG_CHARS);
        match seal().open(text) {
            Some(Presented::Sealed(t)) => assert_eq!(t.hash(), token.hash()),
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            AdminTokenSeal::new(&[8u8; 32]).open(text),
            Some(Presented::BadTag)
        ));
        assert_ne!(seal().generate().expose(), text);
    }

    #[test]
    fn any_changed_character_of_a_tagged_token_is_refused() {
        let token = seal().generate();
        let text = token.expose();
        for i in PREFIX.len() + SEALED.len()..text.len() {
            let mut bytes = text.as_bytes().to_vec();
            bytes[i] = if bytes[i] == b'A' { b'B' } else { b'A' };
            let changed = String::from_utf8(bytes).unwrap();
            // Either no longer well-formed (non-canonical trailing bits) or a wrong tag.
            assert!(
                matches!(seal().open(&changed), None | Some(Presented::BadTag)),
                "{i}"
            );
        }
    }

    #[test]
    fn the_untagged_format_is_still_recognised() {
        let old = format!("tsa_{}", tessera_token::b64::encode([9u8; 32]));
        assert!(matches!(seal().open(&old), Some(Presented::Untagged(_))));
    }

    #[test]
    fn malformed_tokens_are_neither_format() {
        let good = seal().generate();
        let good = good.expose();
        for bad in [
            "",
            "tsa_",
            "tsa_nope",
            "tsa_v2.",
            &good[..good.len() - 1],
            &format!("{good}A"),
            &good.replacen('.', "_", 2),
            &good[4..],
            &format!("tsb_{}", &good[4..]),
            &format!("tsa_{}", "A".repeat(44)),
        ] {
            assert!(seal().open(bad).is_none(), "{bad}");
        }
    }

    #[test]
    fn debug_never_shows_a_token_or_key() {
        let token = seal().generate();
        assert_eq!(format!("{token:?}"), "AdminToken(***)");
        assert_eq!(format!("{:?}", seal()), "AdminTokenSeal(***)");
        let hash: [u8; 32] = std::array::from_fn(|i| 0xa0 + i as u8);
        let record = AdminTokenRecord {
            hash,
            label: "ci".into(),
            created_at: UnixTime(1),
        };
        let shown = format!("{record:?}");
        assert!(shown.contains("a0a1a2a3a4a5"), "{shown}");
        // Not the 7th byte on, in hex or as decimal bytes.
        assert!(!shown.contains("a6") && !shown.contains("166"), "{shown}");
    }
}
