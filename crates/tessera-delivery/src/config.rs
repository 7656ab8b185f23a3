//! The `[delivery]` configuration section and its validation into senders. Every key is
//! documented, with examples, in docs/delivery.md.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tessera_domain::clock::Clock;
use tessera_domain::delivery::Senders;
use zeroize::Zeroizing;

use crate::Environment;
use crate::email::SmtpSender;
use crate::log::LogSender;
use crate::retry::RetryPolicy;
use crate::webhook::WebhookSender;

/// A setting that cannot be used, named by its key (`delivery.sms.url`).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{key}: {reason}")]
pub struct ConfigError {
    /// The key at fault, `delivery.` included.
    pub key: String,
    /// What is wrong, and how to put it right.
    pub reason: String,
}

impl ConfigError {
    pub(crate) fn new(key: &str, reason: impl Into<String>) -> ConfigError {
        ConfigError {
            key: format!("delivery.{key}"),
            reason: reason.into(),
        }
    }
}

/// `[delivery]`: the channels that carry one-time codes. A channel without its section does
/// not exist; the development `log` channel exists only when enabled.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct DeliveryConfig {
    /// `[delivery.email]`: SMTP.
    pub email: Option<EmailConfig>,
    /// `[delivery.sms]`: the SMS gateway webhook.
    pub sms: Option<SmsConfig>,
    /// `[delivery.log]`: the development channel.
    pub log: LogConfig,
}

/// How the SMTP connection is protected.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum TlsMode {
    /// Plain connection upgraded with STARTTLS, which is required (RFC 3207; port 587).
    #[default]
    Starttls,
    /// TLS from the first byte ("implicit TLS", RFC 8314 §3.3; port 465).
    Tls,
    /// No encryption: allowed only for a relay on a loopback address.
    None,
}

/// `[delivery.email]`: an SMTP relay or submission server.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct EmailConfig {
    /// The server's host name (checked against its certificate) or IP address.
    pub host: String,
    /// The port; by default 587 for `starttls`, 465 for `tls`, 25 for `none`.
    #[serde(default)]
    pub port: Option<u16>,
    /// `starttls` (default), `tls` or `none`.
    #[serde(default)]
    pub tls: TlsMode,
    /// The user name for SMTP AUTH; none: no authentication.
    #[serde(default)]
    pub username: Option<String>,
    /// A file holding the SMTP password (one trailing newline is ignored).
    #[serde(default)]
    pub password_file: Option<PathBuf>,
    /// An environment variable holding the SMTP password.
    #[serde(default)]
    pub password_env: Option<String>,
    /// The sender, `no-reply@example.com` or `Example <no-reply@example.com>`.
    pub from: String,
    /// A PEM file of extra CA certificates to trust (a private relay), beside the system's.
    #[serde(default)]
    pub ca_file: Option<PathBuf>,
    /// Seconds to wait for the connection and for each reply.
    #[serde(default = "default_timeout")]
    pub timeout_secs: u64,
    /// Tries in all for a transient failure (1 to 10).
    #[serde(default = "default_attempts")]
    pub attempts: u32,
    /// Milliseconds to wait after the first failed try; doubled after each further one.
    #[serde(default = "default_retry_delay")]
    pub retry_delay_ms: u64,
}

/// `[delivery.sms]`: an HTTP webhook that hands the text to an SMS gateway.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct SmsConfig {
    /// The URL; `https://` unless the host is a loopback address.
    pub url: String,
    /// `POST` (default) or `PUT`.
    #[serde(default = "default_method")]
    pub method: String,
    /// Extra request headers, name → value.
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// Extra request headers whose value is in an environment variable, name → variable.
    #[serde(default)]
    pub headers_env: BTreeMap<String, String>,
    /// The JSON body: a JSON object whose string values may hold `{to}`, `{code}`,
    /// `{message}` and `{purpose}`. Default: `{"to":"{to}","message":"{message}","purpose":"{purpose}"}`.
    #[serde(default)]
    pub json_body: Option<String>,
    /// Instead of JSON, an `application/x-www-form-urlencoded` body: field → templated value.
    #[serde(default)]
    pub form: Option<BTreeMap<String, String>>,
    /// HTTP Basic user name (Twilio: the Account SID).
    #[serde(default)]
    pub username: Option<String>,
    /// A file holding the HTTP Basic password.
    #[serde(default)]
    pub password_file: Option<PathBuf>,
    /// An environment variable holding the HTTP Basic password.
    #[serde(default)]
    pub password_env: Option<String>,
    /// A file holding the HMAC-SHA256 signing secret (at least 32 bytes).
    #[serde(default)]
    pub signing_secret_file: Option<PathBuf>,
    /// An environment variable holding the signing secret.
    #[serde(default)]
    pub signing_secret_env: Option<String>,
    /// The signature header's name.
    #[serde(default = "default_signature_header")]
    pub signature_header: String,
    /// A PEM file of extra CA certificates to trust (a private gateway), beside the system's.
    #[serde(default)]
    pub ca_file: Option<PathBuf>,
    /// An HTTP(S) proxy URL for reaching the gateway; none: direct.
    #[serde(default)]
    pub proxy: Option<String>,
    /// Seconds for one request, connection included.
    #[serde(default = "default_timeout")]
    pub timeout_secs: u64,
    /// Tries in all (1 to 10).
    #[serde(default = "default_attempts")]
    pub attempts: u32,
    /// Milliseconds to wait after the first failed try; doubled after each further one.
    #[serde(default = "default_retry_delay")]
    pub retry_delay_ms: u64,
    /// The longest `Retry-After` obeyed, in seconds; a longer one is cut to this.
    #[serde(default = "default_retry_after_max")]
    pub retry_after_max_secs: u64,
}

/// `[delivery.log]`: writes codes to the log instead of sending them. For development only.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct LogConfig {
    /// Off by default; when on, a channel without a sender of its own logs its codes at WARN.
    pub enabled: bool,
}

fn default_timeout() -> u64 {
    10
}
fn default_attempts() -> u32 {
    3
}
fn default_retry_delay() -> u64 {
    500
}
fn default_retry_after_max() -> u64 {
    30
}
fn default_method() -> String {
    "POST".into()
}
fn default_signature_header() -> String {
    "Tessera-Signature".into()
}

/// The default JSON body of the webhook.
pub const DEFAULT_JSON_BODY: &str = r#"{"to":"{to}","message":"{message}","purpose":"{purpose}"}"#;

impl DeliveryConfig {
    /// Checks every setting, reads the secrets named by `*_env`/`*_file` through `env`, and
    /// builds the senders. Must run inside a Tokio runtime (the SMTP connection pool starts a
    /// task). `clock` dates the webhook signatures and reads `Retry-After` dates.
    pub fn build(
        &self,
        env: &dyn Environment,
        clock: Arc<dyn Clock>,
    ) -> Result<Senders, ConfigError> {
        let mut senders = Senders::none();
        if let Some(email) = &self.email {
            senders = senders.with_email(Arc::new(SmtpSender::new(email, env, clock.clone())?));
        }
        if let Some(sms) = &self.sms {
            senders = senders.with_sms(Arc::new(WebhookSender::new(sms, env, clock)?));
        }
        if self.log.enabled {
            senders = senders.with_log(Arc::new(LogSender::new()));
        }
        Ok(senders)
    }
}

/// Whether `host` (a name, an IP address, or `[v6]`) is this machine's loopback.
pub(crate) fn is_loopback(host: &str) -> bool {
    let bare = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host);
    bare.eq_ignore_ascii_case("localhost")
        || bare.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

/// The retry settings, checked.
pub(crate) fn retry_policy(
    section: &str,
    attempts: u32,
    retry_delay_ms: u64,
    retry_after_max_secs: u64,
) -> Result<RetryPolicy, ConfigError> {
    if !(1..=10).contains(&attempts) {
        return Err(ConfigError::new(
            &format!("{section}.attempts"),
            format!("{attempts} is not between 1 and 10"),
        ));
    }
    if retry_delay_ms > 60_000 {
        return Err(ConfigError::new(
            &format!("{section}.retry_delay_ms"),
            format!("{retry_delay_ms} ms is more than a minute"),
        ));
    }
    if retry_after_max_secs > 3600 {
        return Err(ConfigError::new(
            &format!("{section}.retry_after_max_secs"),
            format!("{retry_after_max_secs} s is more than an hour"),
        ));
    }
    Ok(RetryPolicy {
        attempts,
        base: Duration::from_millis(retry_delay_ms),
        retry_after_max: Duration::from_secs(retry_after_max_secs),
    })
}

/// A timeout in seconds, checked (1 s to 5 min).
pub(crate) fn timeout(section: &str, secs: u64) -> Result<Duration, ConfigError> {
    if !(1..=300).contains(&secs) {
        return Err(ConfigError::new(
            &format!("{section}.timeout_secs"),
            format!("{secs} is not between 1 and 300 seconds"),
        ));
    }
    Ok(Duration::from_secs(secs))
}

/// Reads a secret given by exactly one of `<name>_file` and `<name>_env` (neither: `None`).
/// A file's one trailing newline is dropped; an empty secret is refused.
pub(crate) fn secret(
    env: &dyn Environment,
    section: &str,
    name: &str,
    file: Option<&PathBuf>,
    var: Option<&String>,
) -> Result<Option<Zeroizing<String>>, ConfigError> {
    let value = match (file, var) {
        (None, None) => return Ok(None),
        (Some(_), Some(_)) => {
            return Err(ConfigError::new(
                &format!("{section}.{name}_file"),
                format!("give {name}_file or {name}_env, not both"),
            ));
        }
        (Some(path), None) => {
            let key = format!("{section}.{name}_file");
            let bytes = Zeroizing::new(env.read_file(path).map_err(|e| {
                ConfigError::new(&key, format!("cannot read {}: {e}", path.display()))
            })?);
            let text = std::str::from_utf8(&bytes).map_err(|_| {
                ConfigError::new(&key, format!("{} is not UTF-8 text", path.display()))
            })?;
            let text = text
                .strip_suffix('\n')
                .map(|t| t.strip_suffix('\r').unwrap_or(t))
                .unwrap_or(text);
            if text.is_empty() {
                return Err(ConfigError::new(
                    &key,
                    format!("{} is empty", path.display()),
                ));
            }
            Zeroizing::new(text.to_owned())
        }
        (None, Some(var)) => {
            let key = format!("{section}.{name}_env");
            match env.var(var) {
                Some(v) if !v.is_empty() => Zeroizing::new(v),
                Some(_) => {
                    return Err(ConfigError::new(
                        &key,
                        format!("the environment variable {var} is empty"),
                    ));
                }
                None => {
                    return Err(ConfigError::new(
                        &key,
                        format!("the environment variable {var} is not set"),
                    ));
                }
            }
        }
    };
    Ok(Some(value))
}

/// Reads a PEM file of CA certificates named by `<section>.ca_file`.
pub(crate) fn ca_file(
    env: &dyn Environment,
    section: &str,
    path: Option<&PathBuf>,
) -> Result<Option<Vec<u8>>, ConfigError> {
    let Some(path) = path else {
        return Ok(None);
    };
    let bytes = env.read_file(path).map_err(|e| {
        ConfigError::new(
            &format!("{section}.ca_file"),
            format!("cannot read {}: {e}", path.display()),
        )
    })?;
    if !bytes
        .windows(27)
        .any(|w| w == b"-----BEGIN CERTIFICATE-----")
    {
        return Err(ConfigError::new(
            &format!("{section}.ca_file"),
            format!("{} holds no PEM certificate", path.display()),
        ));
    }
    Ok(Some(bytes))
}
