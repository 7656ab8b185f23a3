//! Post-login redirect targets, validated so that `rd` cannot be an open redirect (OWASP
//! Unvalidated Redirects cheat sheet): a local path, or an http(s) URL on an allowed host.

use crate::config::ServerConfig;

/// The target to send the browser to after login, if `rd` is acceptable, as the `Location`
/// to send.
///
/// `Location` is a URI reference (RFC 9110 §10.2.2), which is ASCII: characters beyond ASCII
/// in the path, query or fragment are percent-encoded as UTF-8, as a browser does with them
/// (WHATWG URL §4.4), and the result is visible ASCII. Controls, whitespace and the backslash
/// that browsers read as `/` are refused. An absolute URL's authority must be a host and an
/// optional decimal port below 65536, as the URL standard requires
/// (`https://evil.com:x.example.com/` is no URL). Hosts are ASCII letters, digits, `-` and `.`
/// (all that `redirect_domains` may hold), or the bracketed IPv6 public host: a
/// percent-encoded or non-ASCII host, which a browser decodes before resolving, never passes.
pub(crate) fn safe(rd: &str, config: &ServerConfig) -> Option<String> {
    if rd.len() > 2048
        || rd
            .chars()
            .any(|c| c.is_control() || c.is_whitespace() || c == '\\')
    {
        return None;
    }
    check(rd, config).then(|| percent_encode_non_ascii(rd))
}

/// Upper-case hexadecimal digits, for percent-encoding (RFC 3986 §2.1).
const HEX: &[u8; 16] = b"0123456789ABCDEF";

/// Characters beyond ASCII as `%XX` escapes of their UTF-8 bytes; ASCII as it is.
fn percent_encode_non_ascii(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if c.is_ascii() {
            out.push(c);
        } else {
            let mut buf = [0u8; 4];
            for b in c.encode_utf8(&mut buf).bytes() {
                out.push('%');
                out.push(char::from(HEX[usize::from(b >> 4)]));
                out.push(char::from(HEX[usize::from(b & 15)]));
            }
        }
    }
    out
}

/// Whether `rd` (without controls, whitespace or backslashes) is a local path or an http(s)
/// URL on an allowed host.
fn check(rd: &str, config: &ServerConfig) -> bool {
    if rd.starts_with('/') && !rd.starts_with("//") {
        return true;
    }
    let rest = rd
        .strip_prefix("https://")
        .or_else(|| rd.strip_prefix("http://"));
    let Some(authority) = rest.and_then(|r| r.split(['/', '?', '#']).next()) else {
        return false;
    };
    if authority.contains('@') {
        return false;
    }
    let Some((host, port)) = split_port(authority) else {
        return false;
    };
    // An empty port (`https://example.com:/`) is valid: the URL standard drops it.
    let port_ok = port.is_empty()
        || (port.bytes().all(|b| b.is_ascii_digit()) && port.parse::<u16>().is_ok());
    if !port_ok {
        return false;
    }
    let host = host.to_ascii_lowercase();
    let public = split_port(config.public_host()).map(|(h, _)| h.to_ascii_lowercase());
    if public.as_deref() == Some(host.as_str()) {
        return true;
    }
    // `https:///evil.example` has an empty authority, and browsers read it as
    // `https://evil.example/`: an empty host never matches anything.
    if host.is_empty()
        || !host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.')
    {
        return false;
    }
    config.redirect_domains.iter().any(|d| {
        let d = d.to_ascii_lowercase();
        match d.strip_prefix('.') {
            Some(parent) => host.ends_with(&format!(".{parent}")) || host == parent,
            None => host == d,
        }
    })
}

/// `host[:port]` or `[v6][:port]` split into the host (brackets kept) and the port text
/// (empty when there is none); `None` for text after an IPv6 literal that is not a port.
fn split_port(authority: &str) -> Option<(&str, &str)> {
    if authority.starts_with('[') {
        let end = authority.find(']')? + 1;
        let (host, after) = authority.split_at(end);
        let port = match after {
            "" => "",
            _ => after.strip_prefix(':')?,
        };
        return Some((host, port));
    }
    Some(authority.split_once(':').unwrap_or((authority, "")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_local_paths_and_allowed_hosts() {
        let mut c = ServerConfig::dev("127.0.0.1:8080".parse().expect("addr"));
        c.redirect_domains = vec![".example.com".into(), "app.other.org".into()];
        for ok in [
            "/account",
            "/x?y=1",
            "https://app.example.com/a",
            "https://example.com",
            "http://app.other.org:8443/z",
            "http://127.0.0.1:8080/account",
        ] {
            assert_eq!(safe(ok, &c).as_deref(), Some(ok), "{ok}");
        }
        for bad in [
            "//evil.com",
            "/\\evil.com",
            "https://evil.com",
            "https://example.com.evil.com/",
            "https://user@app.example.com",
            "javascript:alert(1)",
            "https://app.other.org.evil/",
            "/a b",
            "ftp://app.example.com",
            "https:///evil.example",
            "https://:443/evil.example",
            "http:///\\evil.example",
        ] {
            assert_eq!(safe(bad, &c), None, "{bad}");
        }
    }

    /// Found by the `redirect_safe` fuzz target: each was accepted although it is no URL
    /// (`url::Url::parse` and browsers refuse it) or no ASCII `Location` URI reference.
    #[test]
    fn no_url_and_no_header_value_is_refused() {
        let mut c = ServerConfig::dev("127.0.0.1:8080".parse().expect("addr"));
        c.redirect_domains = vec![".example.com".into(), "app.other.org".into()];
        for bad in [
            // A port that is not a number hid the real host from the suffix check.
            "https://evil.com:x.example.com/",
            "https://evil.com:443.example.com/",
            "http://evil.com:.app.other.org",
            "https://app.example.com:+443/",
            "https://app.example.com:99999/",
            // A browser decodes the host before resolving it.
            "https://%65vil.example.com/",
            "https://evil.com%2f.example.com/",
            "/a\u{7f}",
            "/a\u{a0}b",
            "https://\u{430}pp.example.com/",
        ] {
            assert_eq!(safe(bad, &c), None, "{bad}");
        }
        // Beyond ASCII: percent-encoded as UTF-8, as a browser would, so that `Location`
        // is an ASCII URI reference (the old code sent the raw bytes).
        for (rd, sent) in [
            ("/caf\u{e9}?q=\u{e9}#\u{e9}", "/caf%C3%A9?q=%C3%A9#%C3%A9"),
            (
                "https://app.example.com/\u{1f600}",
                "https://app.example.com/%F0%9F%98%80",
            ),
        ] {
            assert_eq!(safe(rd, &c).as_deref(), Some(sent), "{rd}");
        }
        for ok in [
            "https://app.example.com:/",
            "https://APP.Example.COM:65535/x",
            "http://127.0.0.1/",
        ] {
            assert_eq!(safe(ok, &c).as_deref(), Some(ok), "{ok}");
        }
        let mut v6 = ServerConfig::dev("[::1]:8080".parse().expect("addr"));
        v6.redirect_domains = vec!["App.Other.org".into()];
        for ok in [
            "http://[::1]:8080/account",
            "http://[::1]/",
            "https://app.other.org/",
        ] {
            assert_eq!(safe(ok, &v6).as_deref(), Some(ok), "{ok}");
        }
        for bad in [
            "http://[::1]x/",
            "http://[::1]:x/",
            "http://[::2]/",
            "http://[::1/",
        ] {
            assert_eq!(safe(bad, &v6), None, "{bad}");
        }
    }

    #[test]
    fn an_empty_host_never_passes_even_with_degenerate_domains() {
        // `validate` refuses "" and "." in redirect_domains; the check here does not rely on it.
        let mut c = ServerConfig::dev("127.0.0.1:8080".parse().expect("addr"));
        c.redirect_domains = vec![".".into(), "".into()];
        assert!(c.validate().is_err());
        for bad in [
            "https:///evil.example",
            "http://:80/evil.example",
            "https://?x",
        ] {
            assert_eq!(safe(bad, &c), None, "{bad}");
        }
        for bad in [
            "",
            ".",
            "..example.com",
            "example.com.",
            "a/b",
            "exa mple.com",
            "*.example.com",
        ] {
            let mut c = ServerConfig::dev("127.0.0.1:8080".parse().expect("addr"));
            c.redirect_domains = vec![bad.into()];
            let err = c.validate().expect_err(bad);
            assert!(err.contains("redirect_domains"), "{err}");
        }
        c.redirect_domains = vec![".example.com".into(), "app.example.org".into()];
        assert_eq!(c.validate(), Ok(()));
    }
}
