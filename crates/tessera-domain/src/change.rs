//! What changed: the domain's one notion of a write that other nodes' caches must hear of. The
//! stores append a [`Change`] in the same transaction as the write that causes it (a committed
//! write always has its change, a rolled-back one never does), under a monotonic position that
//! a node reads from to catch up ([`crate::store::ChangeStore`]).

use std::fmt;

use crate::account::AccountId;
use crate::session::TokenHash;

/// A change that invalidates cached state. New kinds (keys, clients, refresh families) join
/// later, so matches need a wildcard arm. `Debug` shows a hash's first 4 bytes only.
#[derive(Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Change {
    /// One session ended (signed out, deleted by its owner or an admin).
    SessionRevoked(TokenHash),
    /// Every session of an account ended, or all but one (sign out everywhere, password change).
    AccountSessionsRevoked(AccountId),
    /// The account was disabled, enabled, unlocked or deleted.
    AccountChanged(AccountId),
    /// An admin API token was revoked (by its SHA-256).
    AdminTokenRevoked([u8; 32]),
}

impl fmt::Debug for Change {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            // `TokenHash`'s own Debug prints a prefix only.
            Change::SessionRevoked(hash) => f.debug_tuple("SessionRevoked").field(hash).finish(),
            Change::AccountSessionsRevoked(id) => {
                f.debug_tuple("AccountSessionsRevoked").field(id).finish()
            }
            Change::AccountChanged(id) => f.debug_tuple("AccountChanged").field(id).finish(),
            // A prefix is enough to correlate with the admin token list; the whole hash is a
            // lookup key for the token and stays out of logs.
            Change::AdminTokenRevoked(hash) => write!(
                f,
                "AdminTokenRevoked({:02x}{:02x}{:02x}{:02x}…)",
                hash[0], hash[1], hash[2], hash[3]
            ),
        }
    }
}

/// A change with its position in the change feed (strictly increasing in commit order).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChangeRecord {
    /// Where it stands in the feed; a reader resumes after the last one it saw.
    pub position: u64,
    /// What changed.
    pub change: Change,
}

impl Change {
    /// The stored kind name.
    pub fn kind(&self) -> &'static str {
        match self {
            Change::SessionRevoked(_) => "session_revoked",
            Change::AccountSessionsRevoked(_) => "account_sessions_revoked",
            Change::AccountChanged(_) => "account_changed",
            Change::AdminTokenRevoked(_) => "admin_token_revoked",
        }
    }

    /// The stored subject: a token hash's 32 bytes, or an account id's text as bytes.
    pub fn subject(&self) -> Vec<u8> {
        match self {
            Change::SessionRevoked(hash) => hash.0.to_vec(),
            Change::AccountSessionsRevoked(id) | Change::AccountChanged(id) => {
                id.as_str().as_bytes().to_vec()
            }
            Change::AdminTokenRevoked(hash) => hash.to_vec(),
        }
    }

    /// The change stored as `kind` and `subject`; `None` if either is malformed.
    pub fn parse(kind: &str, subject: &[u8]) -> Option<Change> {
        let account = || {
            std::str::from_utf8(subject)
                .ok()
                .and_then(|s| AccountId::parse(s).ok())
        };
        let hash = || <[u8; 32]>::try_from(subject).ok();
        match kind {
            "session_revoked" => hash().map(|h| Change::SessionRevoked(TokenHash(h))),
            "account_sessions_revoked" => account().map(Change::AccountSessionsRevoked),
            "account_changed" => account().map(Change::AccountChanged),
            "admin_token_revoked" => hash().map(Change::AdminTokenRevoked),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_round_trips_and_bad_rows_are_refused() {
        let id = AccountId::generate();
        for change in [
            Change::SessionRevoked(TokenHash([3; 32])),
            Change::AccountSessionsRevoked(id.clone()),
            Change::AccountChanged(id.clone()),
            Change::AdminTokenRevoked([4; 32]),
        ] {
            assert_eq!(
                Change::parse(change.kind(), &change.subject()),
                Some(change)
            );
        }
        assert_eq!(Change::parse("session_revoked", &[1; 31]), None);
        assert_eq!(Change::parse("account_changed", b"not-an-id"), None);
        assert_eq!(Change::parse("unknown", &[0; 32]), None);
    }

    #[test]
    fn debug_shows_a_hash_prefix_only() {
        let hash: [u8; 32] = std::array::from_fn(|i| 0xa0 + i as u8);
        let full: String = hash.iter().map(|b| format!("{b:02x}")).collect();
        for change in [
            Change::AdminTokenRevoked(hash),
            Change::SessionRevoked(TokenHash(hash)),
        ] {
            let record = ChangeRecord {
                position: 7,
                change,
            };
            let shown = format!("{record:?} {record:#?}");
            assert!(shown.contains("a0a1a2a3…"), "{shown}");
            // Neither the whole hash in hex nor its bytes as a decimal list.
            assert!(!shown.contains(&full[..10]), "{shown}");
            assert!(!shown.contains("164"), "{shown}");
        }
        let id = AccountId::generate();
        assert!(format!("{:?}", Change::AccountChanged(id.clone())).contains(id.as_str()));
    }
}
