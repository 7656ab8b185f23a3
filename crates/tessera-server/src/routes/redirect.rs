//! Post-login redirect targets, validated so that `rd` cannot be an open redirect (OWASP
//! Unvalidated Redirects cheat sheet): a local path, or an http(s) URL on an allowed host.

use crate::config::ServerConfig;

/// The target to send the browser to after login, if `rd` is acceptable.
pub(crate) fn safe(rd: &str, config: &ServerConfig) -> Option<String> {
    if rd.len() > 2048
        || rd
            .chars()
            .any(|c| c.is_control() || c.is_whitespace() || c == '\\')
    {
        return None;
    }
    if rd.starts_with('/') && !rd.starts_with("//") {
        return Some(rd.to_owned());
    }
    let rest = rd
        .strip_prefix("https://")
        .or_else(|| rd.strip_prefix("http://"))?;
    let authority = rest.split(['/', '?', '#']).next()?;
    if authority.contains('@') {
        return None;
    }
    let host = match authority.rsplit_once(':') {
        Some((h, port)) if port.bytes().all(|b| b.is_ascii_digit()) => h,
        _ => authority,
    }
    .to_ascii_lowercase();
    // `https:///evil.example` has an empty authority, and browsers read it as
    // `https://evil.example/`: an empty host never matches anything.
    if host.is_empty() {
        return None;
    }
    let public = config.public_host();
    let public_host = public.rsplit_once(':').map_or(public, |(h, _)| h);
    let allowed = host == public_host
        || config
            .redirect_domains
            .iter()
            .any(|d| match d.strip_prefix('.') {
                Some(parent) => host.ends_with(&format!(".{parent}")) || host == parent,
                None => host == d.to_ascii_lowercase(),
            });
    allowed.then(|| rd.to_owned())
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
