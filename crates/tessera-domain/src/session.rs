//! Cookie sessions: a 256-bit random token in the cookie, only its SHA-256 on the server
//! (OWASP ASVS V3.2), idle and absolute timeouts (NIST SP 800-63B-4 §2.2.3 / ASVS V3.3).

use std::fmt;

use aws_lc_rs::digest;
use zeroize::Zeroizing;

use crate::account::AccountId;
use crate::clock::UnixTime;

/// The secret a browser holds: 32 random bytes, base64url in the cookie. Never stored.
pub struct SessionToken(Zeroizing<String>);

impl SessionToken {
    /// A fresh token.
    pub fn generate() -> SessionToken {
        SessionToken(Zeroizing::new(tessera_token::b64::encode(
            crate::random::bytes::<32>(),
        )))
    }

    /// Parses a presented cookie value: exactly 43 base64url characters (32 bytes), else `None`.
    pub fn parse(text: &str) -> Option<SessionToken> {
        if text.len() == 43 && tessera_token::b64::decode(text).is_some_and(|b| b.len() == 32) {
            Some(SessionToken(Zeroizing::new(text.to_owned())))
        } else {
            None
        }
    }

    /// The cookie value.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// The server-side lookup key: SHA-256 of the token text.
    pub fn hash(&self) -> TokenHash {
        let d = digest::digest(&digest::SHA256, self.0.as_bytes());
        let mut out = [0u8; 32];
        out.copy_from_slice(d.as_ref());
        TokenHash(out)
    }
}

impl fmt::Debug for SessionToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SessionToken(***)")
    }
}

/// Seals session tokens into cookie values with a keyed tag, so that a forged or random cookie
/// is refused without a cache or database lookup (a flood of random cookies must not become a
/// flood of database reads). The tag is a denial-of-service filter only: the 256-bit token is
/// what proves a session, so a leaked filter key grants nothing.
pub struct CookieSeal {
    key: aws_lc_rs::hmac::Key,
}

impl fmt::Debug for CookieSeal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("CookieSeal(***)")
    }
}

impl CookieSeal {
    /// Length of the truncated tag in bytes (128 bits).
    const TAG_LEN: usize = 16;

    /// A seal with a 32-byte key.
    pub fn new(key: &[u8]) -> CookieSeal {
        CookieSeal {
            key: aws_lc_rs::hmac::Key::new(aws_lc_rs::hmac::HMAC_SHA256, key),
        }
    }

    fn tag(&self, token: &str) -> String {
        let tag = aws_lc_rs::hmac::sign(&self.key, token.as_bytes());
        tessera_token::b64::encode(&tag.as_ref()[..Self::TAG_LEN])
    }

    /// The cookie value for a token: `<token>.<tag>`.
    pub fn seal(&self, token: &SessionToken) -> String {
        format!("{}.{}", token.expose(), self.tag(token.expose()))
    }

    /// The token in a presented cookie value, if its shape and tag are right.
    pub fn open(&self, cookie: &str) -> Option<SessionToken> {
        let (token, tag) = cookie.split_once('.')?;
        let token = SessionToken::parse(token)?;
        let expected = self.tag(token.expose());
        aws_lc_rs::constant_time::verify_slices_are_equal(expected.as_bytes(), tag.as_bytes())
            .ok()?;
        Some(token)
    }
}

/// SHA-256 of a session token: what the store keeps and looks sessions up by.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct TokenHash(pub [u8; 32]);

impl fmt::Debug for TokenHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // A short prefix is enough to correlate log lines and reveals nothing usable.
        write!(
            f,
            "TokenHash({:02x}{:02x}{:02x}{:02x}…)",
            self.0[0], self.0[1], self.0[2], self.0[3]
        )
    }
}

/// A session's public handle, shown to its owner and used to revoke it. Unrelated to the token.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
#[serde(transparent)]
pub struct SessionId(String);

impl SessionId {
    /// A fresh random id (16 bytes, base64url).
    pub fn generate() -> SessionId {
        SessionId(tessera_token::b64::encode(crate::random::bytes::<16>()))
    }

    /// Parses a presented id: 22 base64url characters.
    pub fn parse(text: &str) -> Option<SessionId> {
        (text.len() == 22 && tessera_token::b64::decode(text).is_some())
            .then(|| SessionId(text.to_owned()))
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for SessionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A server-side session.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Session {
    /// Public handle.
    pub id: SessionId,
    /// SHA-256 of the cookie token.
    pub token_hash: TokenHash,
    /// Whose session.
    pub account_id: AccountId,
    /// When it was created (at login).
    pub created_at: UnixTime,
    /// Last request seen (updated at most once per touch interval).
    pub last_seen_at: UnixTime,
    /// Absolute end, whatever the activity.
    pub expires_at: UnixTime,
    /// Synchronizer CSRF token for this session's forms (OWASP CSRF cheat sheet).
    pub csrf: String,
    /// Authentication methods used at login (RFC 8176 `amr` values, e.g. `pwd`).
    pub amr: Vec<String>,
    /// Client address at login, for the owner's session list.
    pub ip: Option<String>,
    /// User agent at login (truncated), for the owner's session list.
    pub user_agent: Option<String>,
}

/// Session lifetimes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SessionPolicy {
    /// End a session after this many seconds without a request (default 30 min).
    pub idle_timeout: i64,
    /// End a session this many seconds after login, whatever the activity (default 12 h).
    pub absolute_timeout: i64,
    /// Record activity at most this often per session (default 60 s), so that the idle timeout
    /// slides without a database write on every request.
    pub touch_interval: i64,
}

impl Default for SessionPolicy {
    fn default() -> Self {
        SessionPolicy {
            idle_timeout: 30 * 60,
            absolute_timeout: 12 * 3600,
            touch_interval: 60,
        }
    }
}

impl Session {
    /// Opens a session for `account_id` at `now`, returning it and the token for the cookie.
    pub fn open(
        account_id: AccountId,
        amr: Vec<String>,
        ip: Option<String>,
        user_agent: Option<String>,
        now: UnixTime,
        policy: &SessionPolicy,
    ) -> (Session, SessionToken) {
        let token = SessionToken::generate();
        let session = Session {
            id: SessionId::generate(),
            token_hash: token.hash(),
            account_id,
            created_at: now,
            last_seen_at: now,
            expires_at: now.plus(policy.absolute_timeout),
            csrf: tessera_token::b64::encode(crate::random::bytes::<32>()),
            amr,
            ip,
            user_agent: user_agent.map(|ua| ua.chars().take(256).collect()),
        };
        (session, token)
    }

    /// Whether the session is still valid at `now` under `policy`.
    pub fn is_active(&self, now: UnixTime, policy: &SessionPolicy) -> bool {
        now < self.expires_at && now < self.last_seen_at.plus(policy.idle_timeout)
    }

    /// Whether activity at `now` should be recorded (coalesced to one write per interval).
    pub fn needs_touch(&self, now: UnixTime, policy: &SessionPolicy) -> bool {
        now.since(self.last_seen_at) >= policy.touch_interval
    }

    /// Checks a presented CSRF token in constant time.
    pub fn csrf_matches(&self, presented: &str) -> bool {
        aws_lc_rs::constant_time::verify_slices_are_equal(
            self.csrf.as_bytes(),
            presented.as_bytes(),
        )
        .is_ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_random_parsed_strictly_and_hashed() {
        let t = SessionToken::generate();
        assert_eq!(t.expose().len(), 43);
        let back = SessionToken::parse(t.expose()).expect("parse");
        assert_eq!(back.hash(), t.hash());
        assert_ne!(SessionToken::generate().hash(), t.hash());
        for bad in [
            "",
            "x",
            &"A".repeat(44),
            &format!("{}=", &t.expose()[..42]),
            &t.expose().replace(|_: char| true, "+"),
        ] {
            assert!(SessionToken::parse(bad).is_none(), "{bad:?}");
        }
        assert!(!format!("{t:?} {:?}", t.hash()).contains(t.expose()));
    }

    #[test]
    fn sealed_cookies_open_only_with_the_right_key_and_tag() {
        let seal = CookieSeal::new(&[7u8; 32]);
        let token = SessionToken::generate();
        let cookie = seal.seal(&token);
        assert_eq!(cookie.len(), 43 + 1 + 22);
        assert_eq!(seal.open(&cookie).map(|t| t.hash()), Some(token.hash()));
        assert!(CookieSeal::new(&[8u8; 32]).open(&cookie).is_none());
        let forged = format!("{}.{}", SessionToken::generate().expose(), &cookie[44..]);
        assert!(seal.open(&forged).is_none());
        for bad in [
            "",
            ".",
            token.expose(),
            &cookie[..cookie.len() - 1],
            &format!("{cookie}x"),
        ] {
            assert!(seal.open(bad).is_none(), "{bad:?}");
        }
    }

    #[test]
    fn idle_and_absolute_timeouts() {
        let p = SessionPolicy::default();
        let now = UnixTime(1_000_000);
        let (mut s, _) = Session::open(
            AccountId::generate(),
            vec!["pwd".into()],
            None,
            None,
            now,
            &p,
        );
        assert!(s.is_active(now, &p));
        assert!(s.is_active(now.plus(1799), &p));
        assert!(!s.is_active(now.plus(1800), &p));
        assert!(!s.needs_touch(now.plus(59), &p));
        assert!(s.needs_touch(now.plus(60), &p));
        // Activity slides the idle timeout but never past the absolute one.
        s.last_seen_at = now.plus(43_000);
        assert!(s.is_active(now.plus(43_199), &p));
        assert!(!s.is_active(now.plus(43_200), &p));
        assert!(s.csrf_matches(&s.csrf.clone()));
        assert!(!s.csrf_matches("nope"));
    }
}
