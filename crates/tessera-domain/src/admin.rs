//! Administrator API tokens: high-entropy bearer secrets, stored as SHA-256 only. The first is
//! created at first start and printed once; accounts with the admin role are the other way in.

use std::fmt;

use aws_lc_rs::digest;
use zeroize::Zeroizing;

use crate::audit::{AuditEvent, AuditKind};
use crate::clock::UnixTime;
use crate::error::DomainError;
use crate::store::Store;

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

impl AdminTokenRecord {
    /// The token's public name for listing and revoking: the first 6 bytes of its SHA-256 in
    /// hex. It says nothing usable about the 256-bit token itself.
    pub fn id(&self) -> String {
        self.hash[..ID_BYTES]
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
    }
}

/// Bytes of the hash shown as a token's id.
const ID_BYTES: usize = 6;

/// The longest label an admin token may carry.
pub const MAX_LABEL: usize = 64;

/// Creates an admin token labelled `label` (1 to 64 characters, no control characters), stores
/// its hash, audits it, and returns the token to show once.
pub async fn create_token(
    store: &dyn Store,
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
    let token = AdminToken::generate();
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
