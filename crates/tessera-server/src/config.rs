//! The validated server configuration. Parsing files and environment variables is the CLI's
//! job; this is the checked result.

use std::net::SocketAddr;
use std::time::Duration;

use tessera_domain::credential::password::{HashParams, PasswordPolicy};
use tessera_domain::factor::FactorPolicy;
use tessera_domain::login::LockoutPolicy;
use tessera_domain::session::SessionPolicy;

use crate::client_addr::Cidr;

/// How browsers reach the server, which decides the cookie attributes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Transport {
    /// Plain HTTP on a loopback address for development: cookies lose `Secure` and the
    /// `__Host-` prefix. Refused on non-loopback addresses.
    Dev,
    /// Behind a reverse proxy that terminates TLS: `Secure` cookies; `X-Forwarded-For` from the
    /// proxy gives the client address.
    BehindTlsProxy,
}

/// Login throttling (per client address and per account name), in attempts per minute.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ThrottleConfig {
    /// Sustained login attempts per minute from one client address.
    pub per_ip_per_minute: u32,
    /// Burst allowed per client address.
    pub per_ip_burst: u32,
    /// Sustained login attempts per minute against one account name.
    pub per_account_per_minute: u32,
    /// Burst allowed per account name.
    pub per_account_burst: u32,
}

impl Default for ThrottleConfig {
    fn default() -> Self {
        ThrottleConfig {
            per_ip_per_minute: 30,
            per_ip_burst: 20,
            per_account_per_minute: 10,
            per_account_burst: 10,
        }
    }
}

/// Connection time limits against slow clients (OWASP ASVS 5.0 V13.1: resource limits; the
/// "slowloris" attack). They bound how long a client may hold a connection without sending.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HttpTimeouts {
    /// From the first byte of a request to the end of its header block.
    pub header: Duration,
    /// From the end of the header block to the end of the body.
    pub body: Duration,
    /// A keep-alive connection with no request in progress is closed after this long.
    pub idle: Duration,
}

impl Default for HttpTimeouts {
    fn default() -> Self {
        HttpTimeouts {
            header: Duration::from_secs(10),
            body: Duration::from_secs(30),
            idle: Duration::from_secs(60),
        }
    }
}

/// The default of [`ServerConfig::session_cache_ttl`], in seconds.
pub const DEFAULT_SESSION_CACHE_TTL: u64 = 10;

/// The default of [`ServerConfig::audit_retention`]: a year of audit events, in seconds.
pub const DEFAULT_AUDIT_RETENTION: u64 = 365 * 86_400;

/// Everything the server needs to run, already validated.
#[derive(Clone, Debug)]
pub struct ServerConfig {
    /// Address to listen on.
    pub listen: SocketAddr,
    /// The external origin browsers use (`https://auth.example.com`), for Origin checks and
    /// redirects. In dev mode defaults to `http://<listen>`.
    pub public_origin: String,
    /// Cookie and proxy mode.
    pub transport: Transport,
    /// Session lifetimes.
    pub sessions: SessionPolicy,
    /// Seconds a node may answer from its cached copy of a session before reading it again:
    /// the bound on how late it sees a change made elsewhere (the CLI, another node).
    pub session_cache_ttl: u64,
    /// Account lockout.
    pub lockout: LockoutPolicy,
    /// New-password rules.
    pub passwords: PasswordPolicy,
    /// argon2id cost.
    pub hash_params: HashParams,
    /// Concurrent password hashes (the hashing threads). Default: the number of CPUs.
    pub hash_concurrency: usize,
    /// Login throttling.
    pub throttle: ThrottleConfig,
    /// Hosts (exact, or `.example.com` for subdomains) that post-login redirects may target.
    pub redirect_domains: Vec<String>,
    /// Largest accepted request body in bytes.
    pub max_body: usize,
    /// The product name and logo on the pages.
    pub branding: Branding,
    /// Socket peers whose `X-Forwarded-For` is believed, behind a TLS proxy (default loopback).
    pub trusted_proxies: Vec<Cidr>,
    /// Header, body and idle time limits of client connections.
    pub timeouts: HttpTimeouts,
    /// Seconds audit events are kept before the background task deletes them; 0 keeps them
    /// forever.
    pub audit_retention: u64,
    /// Second-factor windows and limits (docs/factors.md).
    pub factors: FactorPolicy,
}

impl ServerConfig {
    /// Defaults for `listen` in dev mode: everything else at its documented default.
    pub fn dev(listen: SocketAddr) -> ServerConfig {
        ServerConfig {
            listen,
            public_origin: format!("http://{listen}"),
            transport: Transport::Dev,
            sessions: SessionPolicy::default(),
            session_cache_ttl: DEFAULT_SESSION_CACHE_TTL,
            lockout: LockoutPolicy::default(),
            passwords: PasswordPolicy::default(),
            hash_params: HashParams::default(),
            hash_concurrency: std::thread::available_parallelism().map_or(2, |n| n.get()),
            throttle: ThrottleConfig::default(),
            redirect_domains: Vec::new(),
            max_body: 64 * 1024,
            branding: Branding::default(),
            trusted_proxies: Cidr::loopback(),
            timeouts: HttpTimeouts::default(),
            audit_retention: DEFAULT_AUDIT_RETENTION,
            factors: FactorPolicy::default(),
        }
    }

    /// Checks the combination: dev mode only on loopback; an origin that parses.
    pub fn validate(&self) -> Result<(), String> {
        if self.transport == Transport::Dev && !self.listen.ip().is_loopback() {
            return Err(format!(
                "dev mode (plain HTTP cookies) is only allowed on a loopback address, not {}; \
                 put tessera behind a TLS proxy and set behind_tls_proxy = true",
                self.listen
            ));
        }
        let origin_ok = (self.public_origin.starts_with("https://")
            || (self.transport == Transport::Dev && self.public_origin.starts_with("http://")))
            && !self.public_origin.ends_with('/')
            && self
                .public_origin
                .split("://")
                .nth(1)
                .is_some_and(|h| !h.is_empty() && !h.contains('/'));
        if !origin_ok {
            return Err(format!(
                "public_origin must look like https://auth.example.com (no path, no trailing slash), got {:?}",
                self.public_origin
            ));
        }
        if self.transport == Transport::Dev && self.public_origin.starts_with("https://") {
            // The browser would use HTTPS while the cookies lack `Secure` and `__Host-`.
            return Err(format!(
                "public_origin = {:?} is https:// but behind_tls_proxy is false (dev mode): \
                 cookies would lack Secure and __Host-; set behind_tls_proxy = true",
                self.public_origin
            ));
        }
        for d in &self.redirect_domains {
            let host = d.strip_prefix('.').unwrap_or(d);
            if host.is_empty()
                || host.starts_with('.')
                || host.ends_with('.')
                || !host
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.')
            {
                return Err(format!(
                    "redirect_domains: {d:?} is not a host name (app.example.com) or a domain \
                     with a leading dot (.example.com)"
                ));
            }
        }
        for (name, t) in [
            ("http.header_timeout", self.timeouts.header),
            ("http.body_timeout", self.timeouts.body),
            ("http.idle_timeout", self.timeouts.idle),
        ] {
            if !(Duration::from_secs(1)..=Duration::from_secs(3600)).contains(&t) {
                return Err(format!(
                    "{name} = {} s is out of range 1 s ..= 1 h",
                    t.as_secs()
                ));
            }
        }
        if !(1..=1024).contains(&self.hash_concurrency) {
            return Err(format!(
                "password.hash_concurrency = {} must be 1..=1024",
                self.hash_concurrency
            ));
        }
        if !(1024..=16 * 1024 * 1024).contains(&self.max_body) {
            return Err(format!(
                "max_body = {} must be between 1024 (1 KiB) and 16777216 (16 MiB)",
                self.max_body
            ));
        }
        if self.sessions.idle_timeout < 60
            || self.sessions.absolute_timeout < self.sessions.idle_timeout
            || !(1..=self.sessions.idle_timeout).contains(&self.sessions.touch_interval)
        {
            return Err(format!(
                "session.idle_timeout = {} s, absolute_timeout = {} s, touch_interval = {} s: \
                 need idle_timeout >= 60 s, absolute_timeout >= idle_timeout, \
                 1 s <= touch_interval <= idle_timeout",
                self.sessions.idle_timeout,
                self.sessions.absolute_timeout,
                self.sessions.touch_interval
            ));
        }
        if !(1..=300).contains(&self.session_cache_ttl) {
            return Err(format!(
                "session.cache_ttl = {} s must be 1..=300 seconds",
                self.session_cache_ttl
            ));
        }
        self.branding.validate()?;
        self.factors
            .validate()
            .map_err(|e| format!("[factors]: {e}"))?;
        // OWASP's argon2id floor (Password Storage Cheat Sheet), as the CLI checks it too.
        tessera_domain::credential::password::Hasher::check_params(self.hash_params)
            .map_err(|e| format!("password: {e}"))?;
        if self.audit_retention != 0 && !(86_400..=36_500 * 86_400).contains(&self.audit_retention)
        {
            return Err(format!(
                "audit.retention must be 0 (keep forever) or 1 day ..= 36500 days, got {} s",
                self.audit_retention
            ));
        }
        Ok(())
    }

    /// Whether cookies carry `Secure` and the `__Host-` prefix.
    pub fn secure_cookies(&self) -> bool {
        self.transport != Transport::Dev
    }

    /// The host part of the public origin.
    pub fn public_host(&self) -> &str {
        self.public_origin.split("://").nth(1).unwrap_or_default()
    }
}

/// What the pages show of the product: its name (page titles and header) and an optional
/// logo, served by tessera itself at `/static/logo` (the pages' CSP allows images from this
/// origin only).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Branding {
    /// The product name, 1 to 64 characters, no control characters. Default `tessera`.
    pub product_name: String,
    /// The logo image, if any.
    pub logo: Option<Logo>,
}

impl Default for Branding {
    fn default() -> Self {
        Branding {
            product_name: "tessera".into(),
            logo: None,
        }
    }
}

impl Branding {
    /// Checks the product name.
    pub fn validate(&self) -> Result<(), String> {
        let n = self.product_name.chars().count();
        if !(1..=64).contains(&n) || self.product_name.chars().any(char::is_control) {
            return Err(format!(
                "branding.product_name must be 1 to 64 characters without control characters, got {:?}",
                self.product_name
            ));
        }
        Ok(())
    }
}

/// A logo image checked against its declared type: PNG, JPEG, WebP or SVG, at most
/// [`Logo::MAX_BYTES`].
#[derive(Clone, PartialEq, Eq)]
pub struct Logo {
    content_type: &'static str,
    bytes: axum::body::Bytes,
}

impl std::fmt::Debug for Logo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Logo({}, {} bytes)", self.content_type, self.bytes.len())
    }
}

impl Logo {
    /// The largest logo accepted, in bytes.
    pub const MAX_BYTES: usize = 256 * 1024;

    /// A logo from a file's name (its extension gives the type) and content, which must match
    /// that type. The error says what is wrong, for the operator.
    pub fn new(file_name: &str, bytes: Vec<u8>) -> Result<Logo, String> {
        let ext = file_name
            .rsplit_once('.')
            .map(|(_, e)| e.to_ascii_lowercase())
            .unwrap_or_default();
        let (content_type, ok) = match ext.as_str() {
            "png" => ("image/png", bytes.starts_with(b"\x89PNG\r\n\x1a\n")),
            "jpg" | "jpeg" => ("image/jpeg", bytes.starts_with(&[0xff, 0xd8, 0xff])),
            "webp" => (
                "image/webp",
                bytes.len() >= 12 && &bytes[..4] == b"RIFF" && &bytes[8..12] == b"WEBP",
            ),
            "svg" => (
                "image/svg+xml",
                std::str::from_utf8(&bytes).is_ok_and(|t| t.contains("<svg")),
            ),
            _ => {
                return Err(format!(
                    "branding.logo {file_name:?}: use a .png, .jpg, .webp or .svg file"
                ));
            }
        };
        if bytes.is_empty() || bytes.len() > Logo::MAX_BYTES {
            return Err(format!(
                "branding.logo {file_name:?}: {} bytes; the limit is {} bytes",
                bytes.len(),
                Logo::MAX_BYTES
            ));
        }
        if !ok {
            return Err(format!(
                "branding.logo {file_name:?}: the content is not a {content_type} image"
            ));
        }
        Ok(Logo {
            content_type,
            bytes: bytes.into(),
        })
    }

    /// The `Content-Type` it is served with.
    pub fn content_type(&self) -> &'static str {
        self.content_type
    }

    /// The image (a cheap, shared copy).
    pub fn bytes(&self) -> axum::body::Bytes {
        self.bytes.clone()
    }
}

#[cfg(test)]
mod branding_tests {
    use super::*;

    #[test]
    fn logos_must_be_what_their_names_say() {
        let png = b"\x89PNG\r\n\x1a\nrest".to_vec();
        assert_eq!(
            Logo::new("a.PNG", png.clone()).unwrap().content_type(),
            "image/png"
        );
        assert!(
            Logo::new("a.svg", png.clone())
                .unwrap_err()
                .contains("not a image/svg+xml")
        );
        assert!(Logo::new("a.gif", png).unwrap_err().contains(".png, .jpg"));
        let svg = br#"<svg xmlns="http://www.w3.org/2000/svg"/>"#.to_vec();
        assert_eq!(
            Logo::new("l.svg", svg).unwrap().content_type(),
            "image/svg+xml"
        );
        assert!(Logo::new("l.png", vec![]).is_err());
        let mut big = b"\x89PNG\r\n\x1a\n".to_vec();
        big.resize(Logo::MAX_BYTES + 1, 0);
        assert!(Logo::new("l.png", big).unwrap_err().contains("limit"));
    }

    #[test]
    fn product_names_are_checked() {
        let mut b = Branding::default();
        assert!(b.validate().is_ok());
        b.product_name = String::new();
        assert!(b.validate().is_err());
        b.product_name = "a\nb".into();
        assert!(b.validate().is_err());
        b.product_name = "x".repeat(65);
        assert!(b.validate().is_err());
        b.product_name = "Acme Sign-in".into();
        assert!(b.validate().is_ok());
    }
}
