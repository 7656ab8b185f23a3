//! The post-login redirect check (`rd`), differentially against the WHATWG URL parser (the
//! `url` crate, which follows the same standard as browsers). An accepted `rd` becomes the
//! `Location` of the response after a successful sign-in, so an accepted value that a browser
//! resolves to another host is an open redirect (OWASP Unvalidated Redirects cheat sheet).
//!
//! Three configurations: dev on `127.0.0.1:8080` with `.example.com` and `app.other.org`;
//! behind a TLS proxy as `https://auth.example.net` with `.corp.example`; dev on `[::1]:8080`.
//!
//! Properties, for every configuration:
//! * `safe` never panics, and what it returns is `rd` with its non-ASCII characters
//!   percent-encoded as UTF-8, which is visible ASCII (`Location` is an ASCII URI reference)
//!   and which a browser resolves exactly as it resolves `rd` itself;
//! * an accepted value that starts with `/` resolves, against a page of the public origin, to
//!   that same origin; it does not start with `//` or `/\`;
//! * any other accepted value parses on its own as an absolute `http`/`https` URL without
//!   credentials, whose host (after the parser's percent-decoding, IDNA and IPv4 forms) is the
//!   public host, a `redirect_domains` host, or under a `.domain`; resolving it against a page
//!   of the public origin gives the same URL (no base-dependent reading).

#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use tessera_server::fuzzing::redirect_safe;
use tessera_server::{ServerConfig, Transport};
use url::{Host, Url};

fn configs() -> &'static [ServerConfig] {
    static CONFIGS: OnceLock<Vec<ServerConfig>> = OnceLock::new();
    CONFIGS.get_or_init(|| {
        let mut dev = ServerConfig::dev("127.0.0.1:8080".parse().expect("addr"));
        dev.redirect_domains = vec![".example.com".into(), "app.other.org".into()];
        let mut proxied = ServerConfig::dev("127.0.0.1:9000".parse().expect("addr"));
        proxied.transport = Transport::BehindTlsProxy;
        proxied.public_origin = "https://auth.example.net".into();
        proxied.redirect_domains = vec![".corp.example".into()];
        let mut v6 = ServerConfig::dev("[::1]:8080".parse().expect("addr"));
        v6.redirect_domains = vec!["x-y.example.org".into()];
        let all = vec![dev, proxied, v6];
        for c in &all {
            c.validate().expect("fuzz configuration is valid");
        }
        all
    })
}

/// The public host of `config` as the URL parser writes it (`127.0.0.1`, `[::1]`).
fn public_host(config: &ServerConfig) -> String {
    let url = Url::parse(&config.public_origin).expect("public_origin parses");
    url.host_str().expect("public_origin has a host").to_owned()
}

/// Whether a host, as serialised by the URL parser, may be redirected to: written from the
/// configuration's documentation, not from `redirect.rs`.
fn allowed(host: &Host<&str>, config: &ServerConfig) -> bool {
    let text = match host {
        Host::Domain(d) => d.to_string(),
        Host::Ipv4(a) => a.to_string(),
        Host::Ipv6(a) => format!("[{a}]"),
    };
    if text == public_host(config) {
        return true;
    }
    config
        .redirect_domains
        .iter()
        .any(|d| match d.strip_prefix('.') {
            Some(parent) => {
                matches!(host, Host::Domain(_))
                    && (text == parent || text.ends_with(&format!(".{parent}")))
            }
            None => matches!(host, Host::Domain(_)) && text == *d,
        })
}

/// `text` with every non-ASCII character percent-encoded as UTF-8 (upper-case hex).
fn percent_encoded(text: &str) -> String {
    let mut out = String::new();
    for c in text.chars() {
        if c.is_ascii() {
            out.push(c);
        } else {
            let mut buf = [0u8; 4];
            for b in c.encode_utf8(&mut buf).bytes() {
                out.push_str(&format!("%{b:02X}"));
            }
        }
    }
    out
}

fn check(rd: &str, config: &ServerConfig) {
    let Some(out) = redirect_safe(rd, config) else {
        return;
    };
    assert_eq!(
        out,
        percent_encoded(rd),
        "safe changed more than the non-ASCII characters"
    );
    assert!(
        out.bytes().all(|b| b.is_ascii_graphic()),
        "accepted {out:?}, which is no ASCII URI reference"
    );
    let page = Url::parse(&format!("{}/login", config.public_origin)).expect("page URL");
    let resolved = page.join(&out);
    assert_eq!(
        resolved.as_ref().ok(),
        page.join(rd).as_ref().ok(),
        "{rd:?} is sent as {out:?}, which a browser reads differently"
    );
    if out.starts_with('/') {
        assert!(
            !out.starts_with("//") && !out.starts_with("/\\"),
            "accepted scheme-relative {out:?}"
        );
        let resolved = resolved
            .unwrap_or_else(|e| panic!("accepted local {out:?} that does not resolve: {e}"));
        assert_eq!(
            resolved.origin(),
            page.origin(),
            "accepted local {out:?}, which a browser sends to {resolved}"
        );
        return;
    }
    let url = Url::parse(&out).unwrap_or_else(|e| panic!("accepted {out:?}, which is no URL: {e}"));
    assert!(
        matches!(url.scheme(), "http" | "https"),
        "accepted scheme {:?} in {out:?}",
        url.scheme()
    );
    assert!(
        url.username().is_empty() && url.password().is_none(),
        "accepted credentials in {out:?}"
    );
    let host = url
        .host()
        .unwrap_or_else(|| panic!("accepted {out:?} without a host"));
    assert!(
        allowed(&host, config),
        "OPEN REDIRECT: accepted {out:?}, whose host is {host} (public origin {}, redirect_domains {:?})",
        config.public_origin,
        config.redirect_domains
    );
    assert_eq!(
        resolved.as_ref().ok(),
        Some(&url),
        "{out:?} reads differently against a base"
    );
}

fuzz_target!(|data: &[u8]| {
    let Ok(rd) = std::str::from_utf8(data) else {
        return;
    };
    for config in configs() {
        check(rd, config);
    }
});
