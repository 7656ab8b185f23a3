//! The HTTP edge's parsers of client-chosen text, each checked against a small independent
//! model written from its documentation:
//!
//! * `Cidr::parse` (`trusted_proxies`), on every line: an accepted range is `ADDR` or
//!   `ADDR/PREFIX` with a decimal prefix of at most 3 digits that fits the family and no host
//!   bits, prints as `network/prefix` (an IPv4-mapped range as its IPv4 range), re-parses to
//!   itself and contains its own address;
//! * the right-to-left `X-Forwarded-For` walk: line 1 is the socket peer, line 2 the
//!   comma-separated `trusted_proxies`, the other lines (raw bytes, not necessarily UTF-8) are
//!   the header lines. The answer equals the model's: the peer unless it is trusted, else the
//!   first untrusted entry from the right among at most 32, stopping at a malformed entry;
//! * `user_agent::describe` on the whole input: one of the names it can produce, never the
//!   client's own text;
//! * `cookie::get` with the lines as `Cookie` header lines, for both cookies in both namings:
//!   the value of the first pair with that name, if it is at most 256 printable ASCII bytes
//!   without `"`; then the sign-in page's CSRF shape check (43 base64url characters);
//! * `parse_duration` (crates/tessera-cli/src/input.rs, compiled in here because the CLI has no
//!   library; the config's duration keys call it on the trimmed string) on every line: an
//!   accepted text is digits with an optional `s`/`m`/`h`/`d` and a value of 1 s to 366 days.

#![no_main]

use std::net::IpAddr;

use libfuzzer_sys::fuzz_target;
use tessera_server::fuzzing::{
    Cidr, client_address, cookie_name, cookie_value, describe_user_agent, is_login_csrf_shape,
};

#[allow(dead_code)]
#[path = "../../crates/tessera-cli/src/input.rs"]
mod input;

fn check_cidr(text: &str) {
    let Ok(cidr) = Cidr::parse(text) else {
        return;
    };
    let (addr, prefix) = match text.split_once('/') {
        Some((a, p)) => (a, Some(p)),
        None => (text, None),
    };
    let ip: IpAddr = addr.parse().expect("an accepted range has an address");
    let max = if ip.is_ipv4() { 32 } else { 128 };
    let bits = match prefix {
        None => max,
        Some(p) => {
            assert!(
                (1..=3).contains(&p.len()) && p.bytes().all(|b| b.is_ascii_digit()),
                "accepted prefix {p:?}"
            );
            p.parse::<u32>().expect("digits")
        }
    };
    assert!(bits <= max, "accepted /{bits} for {ip}");
    // An IPv4-mapped range is its IPv4 range.
    let (ip, bits) = match ip.to_canonical() {
        IpAddr::V4(v4) if ip.is_ipv6() => (IpAddr::V4(v4), bits - 96),
        _ => (ip, bits),
    };
    let printed = cidr.to_string();
    assert_eq!(printed, format!("{ip}/{bits}"), "{text:?} has host bits");
    assert_eq!(
        Cidr::parse(&printed),
        Ok(cidr),
        "{printed:?} does not re-parse"
    );
    assert!(cidr.contains(ip), "{text:?} does not contain its address");
}

/// The model of the `X-Forwarded-For` walk.
fn model_client(peer: IpAddr, lines: &[&[u8]], trusted: &[Cidr]) -> IpAddr {
    let canonical = |ip: IpAddr| ip.to_canonical();
    let is_trusted = |ip: IpAddr| trusted.iter().any(|c| c.contains(ip));
    let peer = canonical(peer);
    if !is_trusted(peer) {
        return peer;
    }
    let mut entries: Vec<Option<IpAddr>> = Vec::new();
    for line in lines.iter().rev() {
        match std::str::from_utf8(line) {
            Err(_) => entries.push(None),
            Ok(text) => {
                for entry in text.split(',').rev() {
                    let e = entry.trim();
                    let ip = e
                        .parse::<IpAddr>()
                        .ok()
                        .or_else(|| e.parse::<std::net::SocketAddr>().ok().map(|s| s.ip()));
                    entries.push(ip.map(canonical));
                }
            }
        }
    }
    let mut client = peer;
    for entry in entries.into_iter().take(32) {
        let Some(ip) = entry else { return client };
        client = ip;
        if !is_trusted(ip) {
            return ip;
        }
    }
    client
}

/// Every name `describe` can show.
const BROWSERS: &[&str] = &[
    "Edge",
    "Opera",
    "Samsung Internet",
    "Firefox",
    "Chrome",
    "Headless Chrome",
    "Chromium",
    "Safari",
    "curl",
    "Wget",
    "Python requests",
    "Python urllib",
    "Go HTTP client",
    "Node.js",
    "OkHttp",
    "Postman",
    "Unknown browser",
];
const SYSTEMS: &[&str] = &[
    "Android", "iPhone", "iPad", "ChromeOS", "Windows", "macOS", "Linux", "FreeBSD",
];

fn check_user_agent(text: &str) {
    let name = describe_user_agent(Some(text));
    let ok = BROWSERS.contains(&name.as_str())
        || name
            .split_once(" on ")
            .is_some_and(|(b, s)| BROWSERS.contains(&b) && SYSTEMS.contains(&s));
    assert!(ok, "{text:?} is shown as {name:?}");
    if text.trim().is_empty() {
        assert_eq!(name, "Unknown browser");
    }
}

/// The model of `cookie::get`: the first `name=value` pair, across the lines that are valid
/// visible-ASCII header values.
fn model_cookie(lines: &[&[u8]], name: &str) -> Option<String> {
    for line in lines {
        let valid = line
            .iter()
            .all(|&b| b == b'\t' || (0x20..0x7f).contains(&b));
        if !valid {
            continue;
        }
        let text = std::str::from_utf8(line).expect("ASCII");
        for pair in text.split(';') {
            if let Some((k, v)) = pair.trim().split_once('=')
                && k == name
            {
                let ok = v.len() <= 256 && v.bytes().all(|b| b.is_ascii_graphic() && b != b'"');
                return ok.then(|| v.to_owned());
            }
        }
    }
    None
}

fn check_duration(text: &str) {
    let Ok(secs) = input::parse_duration(text) else {
        return;
    };
    let (digits, scale) = match text.as_bytes().last() {
        Some(b's') => (&text[..text.len() - 1], 1),
        Some(b'm') => (&text[..text.len() - 1], 60),
        Some(b'h') => (&text[..text.len() - 1], 3600),
        Some(b'd') => (&text[..text.len() - 1], 86_400),
        _ => (text, 1),
    };
    assert!(
        !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()),
        "accepted duration {text:?}"
    );
    assert!((1..=366 * 86_400).contains(&secs), "{text:?} is {secs} s");
    let n: u128 = digits.parse().expect("digits");
    assert_eq!(n * scale, u128::from(secs), "{text:?}");
    assert_eq!(input::parse_duration(&secs.to_string()), Ok(secs));
}

fuzz_target!(|data: &[u8]| {
    let lines: Vec<&[u8]> = data.split(|&b| b == b'\n').collect();
    let texts: Vec<&str> = lines
        .iter()
        .filter_map(|l| std::str::from_utf8(l).ok())
        .collect();
    for text in &texts {
        check_cidr(text);
        check_duration(text);
        check_duration(text.trim());
    }

    // X-Forwarded-For: peer, trusted ranges, header lines.
    let peer = texts
        .first()
        .and_then(|t| t.parse::<IpAddr>().ok())
        .unwrap_or(IpAddr::from([127, 0, 0, 1]));
    let trusted: Vec<Cidr> = match lines.get(1).and_then(|l| std::str::from_utf8(l).ok()) {
        Some(list) => list
            .split(',')
            .filter_map(|c| Cidr::parse(c.trim()).ok())
            .collect(),
        None => Cidr::loopback(),
    };
    let headers = lines.get(2..).unwrap_or_default();
    let got = client_address(peer, headers, &trusted);
    assert_eq!(
        got,
        model_client(peer, headers, &trusted),
        "X-Forwarded-For walk"
    );
    assert_eq!(got, got.to_canonical(), "an IPv4-mapped answer");

    if let Ok(text) = std::str::from_utf8(data) {
        check_user_agent(text);
    }

    for login in [false, true] {
        for secure in [false, true] {
            let got = cookie_value(&lines, login, secure);
            assert_eq!(
                got,
                model_cookie(&lines, cookie_name(login, secure)),
                "Cookie"
            );
            if login && let Some(v) = got {
                let shaped = v.len() == 43
                    && v.bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
                assert_eq!(is_login_csrf_shape(&v), shaped, "sign-in CSRF cookie {v:?}");
            }
        }
    }
    if let Ok(text) = std::str::from_utf8(data) {
        let shaped = text.len() == 43
            && text
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        assert_eq!(
            is_login_csrf_shape(text),
            shaped,
            "sign-in CSRF shape {text:?}"
        );
    }
});
