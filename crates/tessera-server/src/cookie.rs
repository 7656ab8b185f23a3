//! Cookie names, attributes and parsing. In production the session cookie is
//! `__Host-tessera; Secure; HttpOnly; SameSite=Lax; Path=/` (RFC 6265bis §4.1.3.2: the
//! `__Host-` prefix pins it to this exact host, defeating cookie tossing from subdomains).

use axum::http::HeaderMap;
use axum::http::header::COOKIE;

/// Which cookie.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Kind {
    /// The session cookie.
    Session,
    /// The pre-login CSRF cookie for the sign-in form (double submit).
    Login,
    /// A pending two-step sign-in: the password step passed, the second factor has not. It
    /// opens nothing: only the second-step routes read it.
    Pending,
}

/// The cookie name for `kind` in secure or dev mode.
pub(crate) fn name(kind: Kind, secure: bool) -> &'static str {
    match (kind, secure) {
        (Kind::Session, true) => "__Host-tessera",
        (Kind::Session, false) => "tessera",
        (Kind::Login, true) => "__Host-tessera-login",
        (Kind::Login, false) => "tessera-login",
        (Kind::Pending, true) => "__Host-tessera-mfa",
        (Kind::Pending, false) => "tessera-mfa",
    }
}

/// A `Set-Cookie` value. `max_age` 0 deletes the cookie.
pub(crate) fn set(kind: Kind, secure: bool, value: &str, max_age: i64) -> String {
    let mut out = format!(
        "{}={value}; Path=/; HttpOnly; SameSite=Lax; Max-Age={max_age}",
        name(kind, secure)
    );
    if secure {
        out.push_str("; Secure");
    }
    out
}

/// The value of the first cookie called `name(kind)` in the request, if its value is plain
/// printable ASCII of at most 256 bytes (anything else is ignored, never parsed further).
pub(crate) fn get(headers: &HeaderMap, kind: Kind, secure: bool) -> Option<String> {
    let wanted = name(kind, secure);
    for header in headers.get_all(COOKIE) {
        let Ok(text) = header.to_str() else { continue };
        for pair in text.split(';') {
            let Some((k, v)) = pair.trim().split_once('=') else {
                continue;
            };
            if k == wanted {
                let ok = v.len() <= 256 && v.bytes().all(|b| b.is_ascii_graphic() && b != b'"');
                return ok.then(|| v.to_owned());
            }
        }
    }
    None
}

/// The keyed tags of the pending-sign-in cookie (`<token>.<tag>`, like the session cookie's)
/// and of its second-step form's CSRF token. Keyed by the cookie-seal secret, with labels of
/// their own, so neither value can stand for a session cookie's tag or for each other.
pub(crate) struct PendingSeal {
    key: aws_lc_rs::hmac::Key,
}

impl PendingSeal {
    /// Tag length in bytes (128 bits).
    const TAG_LEN: usize = 16;

    /// A seal keyed by the 32-byte cookie-seal secret.
    pub(crate) fn new(key: &[u8]) -> PendingSeal {
        PendingSeal {
            key: aws_lc_rs::hmac::Key::new(aws_lc_rs::hmac::HMAC_SHA256, key),
        }
    }

    fn tag(&self, label: &[u8], token: &str) -> String {
        let mut ctx = aws_lc_rs::hmac::Context::with_key(&self.key);
        ctx.update(label);
        ctx.update(token.as_bytes());
        tessera_token::b64::encode(&ctx.sign().as_ref()[..Self::TAG_LEN])
    }

    /// The cookie value for a pending token.
    pub(crate) fn seal(&self, token: &str) -> String {
        format!(
            "{token}.{}",
            self.tag(b"tessera pending cookie v1\0", token)
        )
    }

    /// The token text of a presented cookie value, if its tag is right (checked in constant
    /// time); the caller parses it.
    pub(crate) fn open<'a>(&self, cookie: &'a str) -> Option<&'a str> {
        let (token, tag) = cookie.split_once('.')?;
        let expected = self.tag(b"tessera pending cookie v1\0", token);
        aws_lc_rs::constant_time::verify_slices_are_equal(expected.as_bytes(), tag.as_bytes())
            .ok()?;
        Some(token)
    }

    /// The CSRF token of the second-step forms of this pending sign-in (a synchronizer token
    /// derived from it: OWASP CSRF Prevention Cheat Sheet, HMAC-based token pattern).
    pub(crate) fn csrf(&self, token: &str) -> String {
        self.tag(b"tessera pending csrf v1\0", token)
    }

    /// Whether `presented` is the CSRF token of this pending sign-in (constant time).
    pub(crate) fn csrf_matches(&self, token: &str, presented: &str) -> bool {
        aws_lc_rs::constant_time::verify_slices_are_equal(
            self.csrf(token).as_bytes(),
            presented.as_bytes(),
        )
        .is_ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    #[test]
    fn attributes_and_parsing() {
        let c = set(Kind::Session, true, "abc", 60);
        assert_eq!(
            c,
            "__Host-tessera=abc; Path=/; HttpOnly; SameSite=Lax; Max-Age=60; Secure"
        );
        assert!(!set(Kind::Session, false, "abc", 0).contains("Secure"));
        let mut h = HeaderMap::new();
        h.append(
            COOKIE,
            HeaderValue::from_static("a=1; __Host-tessera=tok.tag; b=2"),
        );
        assert_eq!(get(&h, Kind::Session, true).as_deref(), Some("tok.tag"));
        assert_eq!(get(&h, Kind::Session, false), None);
        let mut h = HeaderMap::new();
        h.append(COOKIE, HeaderValue::from_static("tessera=bad value"));
        assert_eq!(get(&h, Kind::Session, false), None);
        assert!(set(Kind::Pending, true, "x", 300).starts_with("__Host-tessera-mfa=x; Path=/"));
    }

    #[test]
    fn pending_cookies_and_their_csrf_are_tagged_apart() {
        let seal = PendingSeal::new(&[3u8; 32]);
        let token = "a".repeat(43);
        let cookie = seal.seal(&token);
        assert_eq!(seal.open(&cookie), Some(token.as_str()));
        assert!(PendingSeal::new(&[4u8; 32]).open(&cookie).is_none());
        let csrf = seal.csrf(&token);
        assert!(seal.csrf_matches(&token, &csrf));
        assert!(!seal.csrf_matches(&"b".repeat(43), &csrf));
        // Neither tag stands for the other, nor for the session cookie's.
        assert!(seal.open(&format!("{token}.{csrf}")).is_none());
        let session = tessera_domain::session::CookieSeal::new(&[3u8; 32]);
        let t = tessera_domain::session::SessionToken::generate();
        assert!(seal.open(&session.seal(&t)).is_none());
        for bad in ["", ".", &token, &cookie[..cookie.len() - 1]] {
            assert!(seal.open(bad).is_none(), "{bad:?}");
        }
    }
}
