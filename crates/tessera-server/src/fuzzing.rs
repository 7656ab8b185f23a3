//! The edge's input parsers, re-exported for the cargo-fuzz targets in `fuzz/` (a separate
//! crate that can only call public API). Not part of the supported API: these wrappers take
//! plain text and bytes so that a fuzz target needs no HTTP types of its own.

use std::net::IpAddr;

use axum::http::header::COOKIE;
use axum::http::{HeaderMap, HeaderValue};

use crate::config::ServerConfig;
use crate::cookie::{self, Kind};

pub use crate::client_addr::Cidr;

/// `client_addr::client_address`: the client behind `trusted` proxies, from the socket `peer`
/// and the `X-Forwarded-For` header `lines` in the order received.
pub fn client_address(peer: IpAddr, lines: &[&[u8]], trusted: &[Cidr]) -> IpAddr {
    crate::client_addr::client_address(peer, lines.iter().copied(), trusted)
}

/// `user_agent::describe`: "Chrome on Linux" for a `User-Agent`.
pub fn describe_user_agent(user_agent: Option<&str>) -> String {
    crate::user_agent::describe(user_agent)
}

/// A header map holding the `Cookie` lines that are valid header values (the others could
/// not reach the server: hyper refuses them).
fn cookie_headers(lines: &[&[u8]]) -> HeaderMap {
    let mut headers = HeaderMap::new();
    for line in lines {
        if let Ok(v) = HeaderValue::from_bytes(line) {
            headers.append(COOKIE, v);
        }
    }
    headers
}

/// `cookie::get`: the session cookie's (or with `login`, the sign-in CSRF cookie's) value in
/// the `Cookie` header `lines`, in secure (`__Host-`) or dev naming.
pub fn cookie_value(lines: &[&[u8]], login: bool, secure: bool) -> Option<String> {
    let kind = if login { Kind::Login } else { Kind::Session };
    cookie::get(&cookie_headers(lines), kind, secure)
}

/// The cookie name `cookie_value` looks for.
pub fn cookie_name(login: bool, secure: bool) -> &'static str {
    cookie::name(if login { Kind::Login } else { Kind::Session }, secure)
}

/// The sign-in page's check of its CSRF cookie's shape (43 base64url characters).
pub fn is_login_csrf_shape(value: &str) -> bool {
    crate::routes::login::is_login_csrf_shape(value)
}

/// `redirect::safe`: the post-login target for `rd`, if it is a local path or an http(s) URL
/// on the public origin's host or a `redirect_domains` host.
pub fn redirect_safe(rd: &str, config: &ServerConfig) -> Option<String> {
    crate::routes::redirect::safe(rd, config)
}
