//! Configuration: defaults < TOML file < `TESSERA_*` environment < command-line flags, turned
//! into a validated `tessera_server::ServerConfig`. Every key is documented in
//! docs/configuration.md.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result, bail};
use figment::Figment;
use figment::providers::{Env, Format, Serialized, Toml};
use serde::{Deserialize, Serialize};
use tessera_domain::credential::password::{HashParams, PasswordPolicy};
use tessera_domain::factor::{FactorPolicy, ResendThrottle};
use tessera_domain::login::LockoutPolicy;
use tessera_domain::session::SessionPolicy;
use tessera_server::config::{HttpTimeouts, ThrottleConfig};
use tessera_server::{Cidr, ServerConfig, Transport};

/// The file/environment configuration, with every default.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct FileConfig {
    pub(crate) listen: String,
    pub(crate) data_dir: PathBuf,
    pub(crate) database_url: String,
    pub(crate) public_origin: String,
    pub(crate) behind_tls_proxy: bool,
    pub(crate) redirect_domains: Vec<String>,
    pub(crate) max_body: usize,
    pub(crate) log_format: String,
    pub(crate) log_level: String,
    pub(crate) session: SessionSection,
    pub(crate) lockout: LockoutSection,
    pub(crate) password: PasswordSection,
    pub(crate) throttle: ThrottleSection,
    // --- the network edge: proxies, connection time limits, the metrics listener ---
    pub(crate) trusted_proxies: Vec<String>,
    pub(crate) http: HttpSection,
    pub(crate) metrics: MetricsSection,
    pub(crate) branding: BrandingSection,
    pub(crate) audit: AuditSection,
    /// `[delivery]`: how one-time codes are sent (docs/delivery.md); validated by
    /// `FileConfig::delivery_senders`.
    pub(crate) delivery: tessera_delivery::DeliveryConfig,
    /// `[secrets]`: the master key sealing second-factor seeds (docs/factors.md).
    pub(crate) secrets: SecretsSection,
    /// `[factors]`: second-factor windows, limits and policies (docs/factors.md).
    pub(crate) factors: FactorsSection,
}

/// `[factors]`: the second-factor rules ([`FactorPolicy`]); durations in seconds or with a
/// unit.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct FactorsSection {
    pub(crate) totp_window: u32,
    pub(crate) hotp_look_ahead: u32,
    pub(crate) hotp_resync_max: u32,
    pub(crate) lock_after: u32,
    pub(crate) sent_code_digits: u8,
    #[serde(deserialize_with = "seconds::deserialize")]
    pub(crate) sent_code_ttl: i64,
    pub(crate) sent_code_tries: u32,
    #[serde(deserialize_with = "seconds::deserialize")]
    pub(crate) resend_interval: i64,
    pub(crate) resend_per_hour: u32,
    #[serde(deserialize_with = "seconds::deserialize")]
    pub(crate) pending_ttl: i64,
    pub(crate) pending_tries: u32,
    pub(crate) admins_required: bool,
}

impl Default for FactorsSection {
    fn default() -> Self {
        let p = FactorPolicy::default();
        FactorsSection {
            totp_window: p.totp_window,
            hotp_look_ahead: p.hotp_look_ahead,
            hotp_resync_max: p.hotp_resync_max,
            lock_after: p.lock_after,
            sent_code_digits: p.sent_code_digits,
            sent_code_ttl: p.sent_code_ttl,
            sent_code_tries: p.sent_code_tries,
            resend_interval: p.resend.min_interval,
            resend_per_hour: p.resend.per_hour,
            pending_ttl: p.pending_ttl,
            pending_tries: p.pending_tries,
            admins_required: p.admins_required,
        }
    }
}

impl FactorsSection {
    /// The validated policy.
    pub(crate) fn policy(&self) -> Result<FactorPolicy> {
        let policy = FactorPolicy {
            totp_window: self.totp_window,
            hotp_look_ahead: self.hotp_look_ahead,
            hotp_resync_max: self.hotp_resync_max,
            lock_after: self.lock_after,
            sent_code_digits: self.sent_code_digits,
            sent_code_ttl: self.sent_code_ttl,
            sent_code_tries: self.sent_code_tries,
            resend: ResendThrottle {
                min_interval: self.resend_interval,
                per_hour: self.resend_per_hour,
            },
            pending_ttl: self.pending_ttl,
            pending_tries: self.pending_tries,
            admins_required: self.admins_required,
        };
        policy.validate().with_context(|| {
            format!(
                "[factors]: totp_window ≤ 10, hotp_look_ahead 1–100, hotp_resync_max 1–100000, \
                 lock_after 1–100, sent_code_digits 6–8, sent_code_ttl 30 s–1 h, \
                 sent_code_tries 1–10, resend_interval ≤ 1 h, resend_per_hour 1–100, \
                 pending_ttl 30 s–1 h, pending_tries 1–20; got {self:?}"
            )
        })?;
        Ok(policy)
    }
}

/// `[secrets]`: where the master key is. The key itself may instead come from the
/// `TESSERA_MASTER_KEY` variable (read by [`crate::secrets`], never by figment).
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct SecretsSection {
    /// A file holding the current master key (64 hex digits or base64 of 32 bytes); empty for
    /// none.
    pub(crate) master_key_file: PathBuf,
    /// Files holding previous master keys, still accepted for opening during a rotation.
    pub(crate) previous_master_key_files: Vec<PathBuf>,
}

/// `[branding]`: the product name and logo on the pages.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct BrandingSection {
    pub(crate) product_name: String,
    /// A PNG, JPEG, WebP or SVG file; empty for none.
    pub(crate) logo: PathBuf,
}

impl Default for BrandingSection {
    fn default() -> Self {
        BrandingSection {
            product_name: tessera_server::config::Branding::default().product_name,
            logo: PathBuf::new(),
        }
    }
}

impl BrandingSection {
    /// The validated branding, with the logo file read.
    fn branding(&self) -> Result<tessera_server::config::Branding> {
        use tessera_server::config::{Branding, Logo};
        let logo = if self.logo.as_os_str().is_empty() {
            None
        } else {
            let path = &self.logo;
            let bytes = std::fs::read(path)
                .with_context(|| format!("branding.logo = {:?}: cannot read", path.display()))?;
            let name = path.file_name().map(|n| n.to_string_lossy().into_owned());
            Some(Logo::new(&name.unwrap_or_default(), bytes).map_err(anyhow::Error::msg)?)
        };
        let branding = Branding {
            product_name: self.product_name.clone(),
            logo,
        };
        branding.validate().map_err(anyhow::Error::msg)?;
        Ok(branding)
    }
}

/// `[audit]`: how long audit events are kept.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct AuditSection {
    #[serde(deserialize_with = "seconds::deserialize")]
    pub(crate) retention: u64,
}

impl Default for AuditSection {
    fn default() -> Self {
        AuditSection {
            retention: tessera_server::config::DEFAULT_AUDIT_RETENTION,
        }
    }
}

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct SessionSection {
    #[serde(deserialize_with = "seconds::deserialize")]
    pub(crate) idle_timeout: i64,
    #[serde(deserialize_with = "seconds::deserialize")]
    pub(crate) absolute_timeout: i64,
    #[serde(deserialize_with = "seconds::deserialize")]
    pub(crate) touch_interval: i64,
    #[serde(deserialize_with = "seconds::deserialize")]
    pub(crate) cache_ttl: u64,
}

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct LockoutSection {
    pub(crate) lock_after: u32,
    #[serde(deserialize_with = "seconds::deserialize")]
    pub(crate) lock_for: i64,
}

/// `[http]`: connection time limits, in seconds.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct HttpSection {
    #[serde(deserialize_with = "seconds::deserialize")]
    pub(crate) header_timeout: u64,
    #[serde(deserialize_with = "seconds::deserialize")]
    pub(crate) body_timeout: u64,
    #[serde(deserialize_with = "seconds::deserialize")]
    pub(crate) idle_timeout: u64,
}

/// `[metrics]`: the private Prometheus listener.
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct MetricsSection {
    /// `IP:port` of the metrics listener; empty: no metrics endpoint.
    pub(crate) listen: String,
}

impl Default for HttpSection {
    fn default() -> Self {
        let t = HttpTimeouts::default();
        HttpSection {
            header_timeout: t.header.as_secs(),
            body_timeout: t.body.as_secs(),
            idle_timeout: t.idle.as_secs(),
        }
    }
}

/// Durations in seconds, written as a number of seconds (`900`) or a string in the syntax of
/// [`crate::input::parse_duration`] (`"900"`, `"30s"`, `"15m"`, `"1h"`, `"7d"`).
pub(crate) mod seconds {
    use serde::Deserializer;
    use serde::de::{Error, Unexpected, Visitor};

    struct Seconds;

    impl Visitor<'_> for Seconds {
        type Value = u64;

        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str(
                "a duration: seconds (900) or a string such as \"30s\", \"15m\", \"1h\", \"7d\"",
            )
        }

        fn visit_u64<E: Error>(self, v: u64) -> Result<u64, E> {
            Ok(v)
        }

        fn visit_i64<E: Error>(self, v: i64) -> Result<u64, E> {
            u64::try_from(v).map_err(|_| E::invalid_value(Unexpected::Signed(v), &self))
        }

        fn visit_str<E: Error>(self, v: &str) -> Result<u64, E> {
            crate::input::parse_duration(v.trim())
                .map_err(|_| E::invalid_value(Unexpected::Str(v), &self))
        }
    }

    /// `deserialize_with` for any integer field holding seconds.
    pub(crate) fn deserialize<'de, D, T>(d: D) -> Result<T, D::Error>
    where
        D: Deserializer<'de>,
        T: TryFrom<u64>,
    {
        let secs = d.deserialize_any(Seconds)?;
        T::try_from(secs)
            .map_err(|_| D::Error::invalid_value(Unexpected::Unsigned(secs), &"a shorter duration"))
    }
}

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct PasswordSection {
    pub(crate) min_length: usize,
    pub(crate) max_length: usize,
    pub(crate) argon2_memory_kib: u32,
    pub(crate) argon2_iterations: u32,
    pub(crate) argon2_parallelism: u32,
    pub(crate) hash_concurrency: usize,
}

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct ThrottleSection {
    pub(crate) per_ip_per_minute: u32,
    pub(crate) per_ip_burst: u32,
    pub(crate) per_account_per_minute: u32,
    pub(crate) per_account_burst: u32,
}

impl Default for FileConfig {
    fn default() -> Self {
        FileConfig {
            listen: "127.0.0.1:8080".into(),
            data_dir: PathBuf::from("tessera-data"),
            database_url: String::new(),
            public_origin: String::new(),
            behind_tls_proxy: false,
            redirect_domains: Vec::new(),
            max_body: 64 * 1024,
            log_format: "text".into(),
            log_level: "info".into(),
            session: SessionSection::default(),
            lockout: LockoutSection::default(),
            password: PasswordSection::default(),
            throttle: ThrottleSection::default(),
            branding: BrandingSection::default(),
            trusted_proxies: Cidr::loopback().iter().map(ToString::to_string).collect(),
            http: HttpSection::default(),
            metrics: MetricsSection::default(),
            audit: AuditSection::default(),
            delivery: tessera_delivery::DeliveryConfig::default(),
            secrets: SecretsSection::default(),
            factors: FactorsSection::default(),
        }
    }
}

impl Default for SessionSection {
    fn default() -> Self {
        let p = SessionPolicy::default();
        SessionSection {
            idle_timeout: p.idle_timeout,
            absolute_timeout: p.absolute_timeout,
            touch_interval: p.touch_interval,
            cache_ttl: tessera_server::config::DEFAULT_SESSION_CACHE_TTL,
        }
    }
}

impl Default for LockoutSection {
    fn default() -> Self {
        let p = LockoutPolicy::default();
        LockoutSection {
            lock_after: p.lock_after,
            lock_for: p.lock_for,
        }
    }
}

impl Default for PasswordSection {
    fn default() -> Self {
        let p = PasswordPolicy::default();
        let h = HashParams::default();
        PasswordSection {
            min_length: p.min_len,
            max_length: p.max_len,
            argon2_memory_kib: h.memory_kib,
            argon2_iterations: h.iterations,
            argon2_parallelism: h.parallelism,
            hash_concurrency: 0,
        }
    }
}

impl Default for ThrottleSection {
    fn default() -> Self {
        let t = ThrottleConfig::default();
        ThrottleSection {
            per_ip_per_minute: t.per_ip_per_minute,
            per_ip_burst: t.per_ip_burst,
            per_account_per_minute: t.per_account_per_minute,
            per_account_burst: t.per_account_burst,
        }
    }
}

/// The flags shared by every command that reaches the store.
#[derive(clap::Args, Debug, Clone, Default)]
pub(crate) struct StoreArgs {
    /// TOML configuration file.
    #[arg(long, env = "TESSERA_CONFIG")]
    pub(crate) config: Option<PathBuf>,
    /// Directory for the embedded SQLite database (created on first start).
    #[arg(long)]
    pub(crate) data_dir: Option<PathBuf>,
    /// Database URL: `postgres://…` for PostgreSQL, `sqlite://PATH` or empty for SQLite.
    #[arg(long)]
    pub(crate) database: Option<String>,
}

/// Loads the configuration: defaults, then the file, then `TESSERA_*` variables (nested keys
/// with `__`, e.g. `TESSERA_SESSION__IDLE_TIMEOUT`), then flags.
pub(crate) fn load(args: &StoreArgs, listen: Option<&str>) -> Result<FileConfig> {
    let mut figment = Figment::from(Serialized::defaults(FileConfig::default()));
    if let Some(path) = &args.config {
        if !path.exists() {
            bail!("configuration file {} does not exist", path.display());
        }
        figment = figment.merge(Toml::file(path));
    }
    figment = figment.merge(
        Env::prefixed("TESSERA_")
            // TESSERA_MASTER_KEY holds a key, not a setting: `crate::secrets` reads it.
            .ignore(&["CONFIG", "LOG", "MASTER_KEY"])
            .split("__"),
    );
    let mut config: FileConfig = figment.extract().map_err(explain)?;
    if let Some(dir) = &args.data_dir {
        config.data_dir = dir.clone();
    }
    if let Some(url) = &args.database {
        config.database_url = url.clone();
    }
    if let Some(listen) = listen {
        config.listen = listen.to_owned();
    }
    Ok(config)
}

/// One line per fault, each naming the key (as written where it came from: the TOML key or the
/// `TESSERA_*` variable) and the value at fault, without figment's profile prefix.
fn explain(error: figment::Error) -> anyhow::Error {
    let lines: Vec<String> = error
        .into_iter()
        .map(|e| {
            let key = e.path.join(".");
            // Where it came from: the variable's name for the environment, the file's path.
            let source = e.metadata.as_ref().map(|m| {
                let name = if m.name.contains("environment") {
                    format!("TESSERA_{}, ", e.path.join("__").to_uppercase())
                } else {
                    String::new()
                };
                let origin = m
                    .source
                    .as_ref()
                    .map(|s| format!(" {s}"))
                    .unwrap_or_default();
                format!(" ({name}{}{origin})", m.name)
            });
            let source = source.unwrap_or_default();
            if key.is_empty() {
                format!("{}{source}", e.kind)
            } else {
                format!("key `{key}`{source}: {}", e.kind)
            }
        })
        .collect();
    anyhow::anyhow!("invalid configuration: {}", lines.join("; "))
}

impl FileConfig {
    /// The trusted proxy ranges, each checked, the faulty one named.
    fn trusted_proxies(&self) -> Result<Vec<Cidr>> {
        self.trusted_proxies
            .iter()
            .map(|c| Cidr::parse(c).map_err(|e| anyhow::anyhow!("trusted_proxies: {e}")))
            .collect()
    }

    /// The metrics listener address, if metrics are on.
    pub(crate) fn metrics_listen(&self) -> Result<Option<SocketAddr>> {
        if self.metrics.listen.is_empty() {
            return Ok(None);
        }
        let addr: SocketAddr = self.metrics.listen.parse().with_context(|| {
            format!(
                "metrics.listen = {:?} is not an address like 127.0.0.1:9898 (or \"\" for none)",
                self.metrics.listen
            )
        })?;
        Ok(Some(addr))
    }

    /// The validated server configuration.
    pub(crate) fn server(&self) -> Result<ServerConfig> {
        let listen: SocketAddr = self.listen.parse().with_context(|| {
            format!(
                "listen = {:?} is not an address like 127.0.0.1:8080",
                self.listen
            )
        })?;
        let transport = if self.behind_tls_proxy {
            Transport::BehindTlsProxy
        } else if listen.ip().is_loopback() {
            Transport::Dev
        } else {
            bail!(
                "refusing to serve plain HTTP on {listen}: session cookies would travel in clear. \
                 Terminate TLS in a reverse proxy and set behind_tls_proxy = true \
                 (plain HTTP is allowed on loopback addresses only, for development)"
            );
        };
        let public_origin = if self.public_origin.is_empty() {
            if transport == Transport::BehindTlsProxy {
                bail!("behind_tls_proxy needs public_origin, e.g. https://auth.example.com");
            }
            format!("http://{listen}")
        } else {
            self.public_origin.clone()
        };
        let mut config = ServerConfig::dev(listen);
        config.transport = transport;
        config.public_origin = public_origin;
        config.sessions = SessionPolicy {
            idle_timeout: self.session.idle_timeout,
            absolute_timeout: self.session.absolute_timeout,
            touch_interval: self.session.touch_interval,
        };
        config.session_cache_ttl = self.session.cache_ttl;
        config.lockout = LockoutPolicy::new(self.lockout.lock_after, self.lockout.lock_for)
            .with_context(|| {
                format!(
                    "[lockout] lock_after = {}, lock_for = {} s",
                    self.lockout.lock_after, self.lockout.lock_for
                )
            })?;
        (config.passwords, config.hash_params) = self.password_rules()?;
        if self.password.hash_concurrency > 0 {
            config.hash_concurrency = self.password.hash_concurrency;
        }
        config.throttle = ThrottleConfig {
            per_ip_per_minute: self.throttle.per_ip_per_minute,
            per_ip_burst: self.throttle.per_ip_burst,
            per_account_per_minute: self.throttle.per_account_per_minute,
            per_account_burst: self.throttle.per_account_burst,
        };
        config.redirect_domains = self.redirect_domains.clone();
        config.max_body = self.max_body;
        config.branding = self.branding.branding()?;
        config.trusted_proxies = self.trusted_proxies()?;
        config.timeouts = HttpTimeouts {
            header: Duration::from_secs(self.http.header_timeout),
            body: Duration::from_secs(self.http.body_timeout),
            idle: Duration::from_secs(self.http.idle_timeout),
        };
        if let Some(metrics) = self.metrics_listen()?
            && metrics.port() != 0
            && metrics == listen
        {
            bail!(
                "metrics.listen = {:?} is the same address as listen",
                self.metrics.listen
            );
        }
        config.audit_retention = self.audit.retention;
        config.factors = self.factors.policy()?;
        config.validate().map_err(anyhow::Error::msg)?;
        Ok(config)
    }

    /// The password policy and argon2 parameters, validated (shared by `serve` and `user`).
    pub(crate) fn password_rules(&self) -> Result<(PasswordPolicy, HashParams)> {
        let policy = PasswordPolicy::new(self.password.min_length, self.password.max_length)
            .with_context(|| {
                format!(
                    "[password] min_length = {}, max_length = {}",
                    self.password.min_length, self.password.max_length
                )
            })?;
        let params = HashParams {
            memory_kib: self.password.argon2_memory_kib,
            iterations: self.password.argon2_iterations,
            parallelism: self.password.argon2_parallelism,
        };
        tessera_domain::credential::password::Hasher::check_params(params).with_context(|| {
            format!(
                "[password] argon2_memory_kib = {}, argon2_iterations = {}, argon2_parallelism = {}",
                params.memory_kib, params.iterations, params.parallelism
            )
        })?;
        Ok((policy, params))
    }

    /// Where the SQLite database lives when no PostgreSQL URL is given.
    pub(crate) fn sqlite_path(&self) -> Result<PathBuf> {
        match self.database_url.strip_prefix("sqlite://") {
            Some(path) if !path.is_empty() => Ok(Path::new(path).to_path_buf()),
            Some(_) => bail!("database_url sqlite:// needs a path"),
            None if self.database_url.is_empty() => Ok(self.data_dir.join("tessera.db")),
            None => bail!(
                "database_url must start with postgres://, postgresql:// or sqlite:// (got a different scheme)"
            ),
        }
    }

    /// Whether the configured database is PostgreSQL.
    pub(crate) fn is_postgres(&self) -> bool {
        self.database_url.starts_with("postgres://")
            || self.database_url.starts_with("postgresql://")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Loads `toml` from a temporary file (the process has no `TESSERA_*` variables in tests).
    fn load_toml(toml: &str) -> Result<FileConfig> {
        let dir = tempfile::tempdir()?;
        let path = dir.path().join("tessera.toml");
        std::fs::write(&path, toml)?;
        let args = StoreArgs {
            config: Some(path),
            ..StoreArgs::default()
        };
        load(&args, None)
    }

    fn error_of(toml: &str) -> String {
        match load_toml(toml).and_then(|f| f.server().map(|_| ())) {
            Ok(()) => panic!("accepted:\n{toml}"),
            Err(e) => format!("{e:#}"),
        }
    }

    #[test]
    fn durations_take_seconds_or_units_on_every_duration_key() {
        let f = load_toml(
            "[session]\nidle_timeout = \"15m\"\nabsolute_timeout = \"2h\"\n\
             touch_interval = \"30s\"\ncache_ttl = \"5\"\n\
             [lockout]\nlock_for = \"1d\"\n\
             [http]\nheader_timeout = 5\nbody_timeout = \"1m\"\nidle_timeout = \"2m\"\n",
        )
        .expect("load");
        assert_eq!(f.session.idle_timeout, 900);
        assert_eq!(f.session.absolute_timeout, 7200);
        assert_eq!(f.session.touch_interval, 30);
        assert_eq!(f.session.cache_ttl, 5);
        assert_eq!(f.lockout.lock_for, 86_400);
        let server = f.server().expect("valid");
        assert_eq!(server.timeouts.header, Duration::from_secs(5));
        assert_eq!(server.timeouts.body, Duration::from_secs(60));
        assert_eq!(server.timeouts.idle, Duration::from_secs(120));
    }

    #[test]
    fn errors_name_the_key_and_the_value() {
        let e = error_of("[session]\nidle_timeout = \"fifteen minutes\"\n");
        assert!(
            e.contains("session.idle_timeout") && e.contains("fifteen minutes"),
            "{e}"
        );
        assert!(!e.contains("default."), "figment's profile leaks into: {e}");
        let e = error_of("[throttle]\nper_ip_burst = \"lots\"\n");
        assert!(
            e.contains("throttle.per_ip_burst") && e.contains("lots"),
            "{e}"
        );
        let e = error_of("[throttle]\nper_ip_burst = -3\n");
        assert!(
            e.contains("throttle.per_ip_burst") && e.contains("-3"),
            "{e}"
        );
        let e = error_of("[lockout]\nlock_after = 500\n");
        assert!(e.contains("lock_after = 500"), "{e}");
        let e = error_of("[password]\nmin_length = 4\n");
        assert!(e.contains("min_length = 4"), "{e}");
        let e = error_of("trusted_proxies = [\"10.0.0.1/8\"]\n");
        assert!(
            e.contains("trusted_proxies") && e.contains("10.0.0.1/8"),
            "{e}"
        );
        let e = error_of("[metrics]\nlisten = \"localhost:9898\"\n");
        assert!(
            e.contains("metrics.listen") && e.contains("localhost:9898"),
            "{e}"
        );
        let e = error_of("[http]\nheader_timeout = \"2h\"\n");
        assert!(
            e.contains("http.header_timeout") && e.contains("7200"),
            "{e}"
        );
        let e = error_of("public_origin = \"https://auth.example.com\"\n");
        assert!(
            e.contains("https://auth.example.com") && e.contains("behind_tls_proxy"),
            "{e}"
        );
    }

    #[test]
    fn the_edge_defaults() {
        let server = FileConfig::default().server().expect("defaults are valid");
        assert_eq!(server.trusted_proxies, Cidr::loopback());
        assert_eq!(server.timeouts, HttpTimeouts::default());
        assert_eq!(FileConfig::default().metrics_listen().expect("ok"), None);
        let f = load_toml("trusted_proxies = [\"10.0.0.0/8\", \"2001:db8::/32\"]\n").expect("load");
        assert_eq!(f.server().expect("valid").trusted_proxies.len(), 2);
    }

    /// `[audit] retention` is a duration (default a year; 0 keeps events forever), and the
    /// argon2 floor is OWASP's, both named with their values when refused.
    #[test]
    fn audit_retention_and_the_argon2_floor() {
        let server = FileConfig::default().server().expect("defaults are valid");
        assert_eq!(server.audit_retention, 365 * 86_400);
        let f = load_toml("[audit]\nretention = \"90d\"\n").expect("load");
        assert_eq!(f.server().expect("valid").audit_retention, 90 * 86_400);
        let f = load_toml("[audit]\nretention = 0\n").expect("load");
        assert_eq!(f.server().expect("valid").audit_retention, 0);
        let e = error_of("[audit]\nretention = \"1h\"\n");
        assert!(e.contains("audit.retention") && e.contains("3600"), "{e}");
        let e = error_of("[password]\nargon2_memory_kib = 8192\nargon2_iterations = 1\n");
        assert!(e.contains("OWASP") && e.contains("m=8192"), "{e}");
        let f = load_toml("[password]\nargon2_memory_kib = 7168\nargon2_iterations = 5\n")
            .expect("load");
        f.server().expect("OWASP's weakest setting is accepted");
    }

    /// `[factors]` reaches the server's policy; an out-of-range value names the section.
    #[test]
    fn the_factors_section() {
        let f = load_toml(
            "[factors]\nlock_after = 20\nsent_code_ttl = \"10m\"\nadmins_required = true\n",
        )
        .expect("load");
        let p = f.server().expect("valid").factors;
        assert_eq!(p.lock_after, 20);
        assert_eq!(p.sent_code_ttl, 600);
        assert!(p.admins_required);
        let e = error_of("[factors]\nlock_after = 500\n");
        assert!(
            e.contains("[factors]") && e.contains("lock_after: 500"),
            "{e}"
        );
    }

    /// `[delivery]` is read from the file with the other sections; a bad key is named with
    /// its section, and a missing required key by figment.
    #[test]
    fn the_delivery_section() {
        let f = load_toml(
            "[delivery.sms]\nurl = \"https://sms.example.com/send\"\nattempts = 5\n\
             [delivery.sms.form]\nTo = \"{to}\"\nBody = \"{message}\"\n\
             [delivery.log]\nenabled = true\n",
        )
        .expect("load");
        let sms = f.delivery.sms.as_ref().expect("sms section");
        assert_eq!(sms.attempts, 5);
        assert_eq!(sms.form.as_ref().map(|f| f.len()), Some(2));
        assert!(f.delivery.log.enabled);
        assert!(f.delivery.email.is_none());
        assert_eq!(FileConfig::default().delivery, Default::default());
        let e = match load_toml("[delivery.email]\nhost = \"smtp.example.com\"\n") {
            Ok(_) => panic!("accepted an email section without from"),
            Err(e) => format!("{e:#}"),
        };
        assert!(e.contains("delivery.email") && e.contains("from"), "{e}");
        let e = match load_toml("[delivery.email]\nhost = \"x\"\nfrom = \"a@b\"\ntls = \"ssl\"\n") {
            Ok(_) => panic!("accepted tls = ssl"),
            Err(e) => format!("{e:#}"),
        };
        assert!(e.contains("delivery.email.tls") && e.contains("ssl"), "{e}");
    }
}
