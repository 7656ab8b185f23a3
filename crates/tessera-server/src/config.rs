//! The validated server configuration. Parsing files and environment variables is the CLI's
//! job; this is the checked result.

use std::net::SocketAddr;

use tessera_domain::credential::password::{HashParams, PasswordPolicy};
use tessera_domain::login::LockoutPolicy;
use tessera_domain::session::SessionPolicy;

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

/// The default of [`ServerConfig::session_cache_ttl`], in seconds.
pub const DEFAULT_SESSION_CACHE_TTL: u64 = 10;

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
        if !(1..=1024).contains(&self.hash_concurrency) {
            return Err("hash_concurrency must be 1..=1024".into());
        }
        if !(1024..=16 * 1024 * 1024).contains(&self.max_body) {
            return Err("max_body must be between 1 KiB and 16 MiB".into());
        }
        if self.sessions.idle_timeout < 60
            || self.sessions.absolute_timeout < self.sessions.idle_timeout
            || !(1..=self.sessions.idle_timeout).contains(&self.sessions.touch_interval)
        {
            return Err("sessions: need idle_timeout >= 60 s, absolute >= idle, 1 <= touch_interval <= idle".into());
        }
        if !(1..=300).contains(&self.session_cache_ttl) {
            return Err("session cache_ttl must be 1..=300 seconds".into());
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
