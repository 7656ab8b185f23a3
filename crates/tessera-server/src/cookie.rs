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
}

/// The cookie name for `kind` in secure or dev mode.
pub(crate) fn name(kind: Kind, secure: bool) -> &'static str {
    match (kind, secure) {
        (Kind::Session, true) => "__Host-tessera",
        (Kind::Session, false) => "tessera",
        (Kind::Login, true) => "__Host-tessera-login",
        (Kind::Login, false) => "tessera-login",
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
    }
}
