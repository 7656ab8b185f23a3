//! Configuration: defaults < TOML file < `TESSERA_*` environment < command-line flags, turned
//! into a validated `tessera_server::ServerConfig`. Every key is documented in
//! docs/configuration.md.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use figment::Figment;
use figment::providers::{Env, Format, Serialized, Toml};
use serde::{Deserialize, Serialize};
use tessera_domain::credential::password::{HashParams, PasswordPolicy};
use tessera_domain::login::LockoutPolicy;
use tessera_domain::session::SessionPolicy;
use tessera_server::config::ThrottleConfig;
use tessera_server::{ServerConfig, Transport};

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
    pub(crate) branding: BrandingSection,
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

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct SessionSection {
    pub(crate) idle_timeout: i64,
    pub(crate) absolute_timeout: i64,
    pub(crate) touch_interval: i64,
    pub(crate) cache_ttl: u64,
}

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct LockoutSection {
    pub(crate) lock_after: u32,
    pub(crate) lock_for: i64,
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
            .ignore(&["CONFIG", "LOG"])
            .split("__"),
    );
    let mut config: FileConfig = figment
        .extract()
        .map_err(|e| anyhow::anyhow!("invalid configuration: {e}"))?;
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

impl FileConfig {
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
        config.lockout = LockoutPolicy::new(self.lockout.lock_after, self.lockout.lock_for)?;
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
        config.validate().map_err(anyhow::Error::msg)?;
        Ok(config)
    }

    /// The password policy and argon2 parameters, validated (shared by `serve` and `user`).
    pub(crate) fn password_rules(&self) -> Result<(PasswordPolicy, HashParams)> {
        let policy = PasswordPolicy::new(self.password.min_length, self.password.max_length)?;
        let params = HashParams {
            memory_kib: self.password.argon2_memory_kib,
            iterations: self.password.argon2_iterations,
            parallelism: self.password.argon2_parallelism,
        };
        tessera_domain::credential::password::Hasher::check_params(params)?;
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
