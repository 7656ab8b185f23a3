//! Email over SMTP with lettre: STARTTLS (required, RFC 3207), implicit TLS (RFC 8314 §3.3),
//! or a plain connection to a relay on a loopback address only. rustls on aws-lc-rs verifies
//! the server's certificate against the system's roots plus an optional extra CA file.
//!
//! lettre is built without its `tracing` feature: at debug level it logs every byte written
//! to the server, which would put the code (and the AUTH password) in the log.

use std::sync::Arc;
use std::time::{Duration, UNIX_EPOCH};

use async_trait::async_trait;
use lettre::message::header::ContentType;
use lettre::message::{Mailbox, Message};
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Certificate, Tls, TlsParameters};
use lettre::{Address, AsyncSmtpTransport, AsyncTransport, Tokio1Executor};
use tessera_domain::clock::Clock;
use tessera_domain::delivery::{Channel, CodeSender, DeliveryError, Destination, OutgoingCode};
use zeroize::Zeroizing;

use crate::config::{
    ConfigError, EmailConfig, TlsMode, ca_file, is_loopback, retry_policy, secret, timeout,
};
use crate::retry::RetryPolicy;
use crate::{Environment, chain, scrub};

/// How much of a failure is quoted in the error.
const QUOTE: usize = 300;

/// Sends codes to email addresses through one SMTP server (connections pooled).
pub struct SmtpSender {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    from: Mailbox,
    host: String,
    retry: RetryPolicy,
    clock: Arc<dyn Clock>,
}

impl std::fmt::Debug for SmtpSender {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SmtpSender")
            .field("host", &self.host)
            .field("from", &self.from.to_string())
            .finish_non_exhaustive()
    }
}

impl SmtpSender {
    /// Checks `config`, reads the password and CA file through `env`, and prepares the
    /// connection pool. Must run inside a Tokio runtime (the pool starts a task).
    pub fn new(
        config: &EmailConfig,
        env: &dyn Environment,
        clock: Arc<dyn Clock>,
    ) -> Result<SmtpSender, ConfigError> {
        let host = config.host.trim();
        if host.is_empty() || host.contains(|c: char| c.is_whitespace() || c == '/') {
            return Err(ConfigError::new(
                "email.host",
                format!("{:?} is not a host name or IP address", config.host),
            ));
        }
        let from: Mailbox = config.from.parse().map_err(|e| {
            ConfigError::new(
                "email.from",
                format!(
                    "{:?} is not an address like no-reply@example.com or \
                     \"Example <no-reply@example.com>\": {e}",
                    config.from
                ),
            )
        })?;
        let port = config.port.unwrap_or(match config.tls {
            TlsMode::Starttls => 587,
            TlsMode::Tls => 465,
            TlsMode::None => 25,
        });
        if port == 0 {
            return Err(ConfigError::new("email.port", "0 is not a port"));
        }
        let tls = match config.tls {
            TlsMode::None if !is_loopback(host) => {
                return Err(ConfigError::new(
                    "email.tls",
                    format!(
                        "\"none\" would send codes (and the password) in clear to {host}: it is \
                         allowed only for a relay on a loopback address (127.0.0.1, ::1, \
                         localhost). Use \"starttls\" (port 587) or \"tls\" (port 465)"
                    ),
                ));
            }
            TlsMode::None => Tls::None,
            mode => {
                let mut params = TlsParameters::builder(host.to_owned());
                if let Some(pem) = ca_file(env, "email", config.ca_file.as_ref())? {
                    let cert = Certificate::from_pem(&pem).map_err(|e| {
                        ConfigError::new("email.ca_file", format!("not PEM certificates: {e}"))
                    })?;
                    params = params.add_root_certificate(cert);
                }
                let params = params.build_rustls().map_err(|e| {
                    ConfigError::new("email", format!("cannot set up TLS: {}", chain(&e)))
                })?;
                if mode == TlsMode::Tls {
                    Tls::Wrapper(params)
                } else {
                    Tls::Required(params)
                }
            }
        };
        if config.tls == TlsMode::None && config.ca_file.is_some() {
            return Err(ConfigError::new(
                "email.ca_file",
                "has no use with tls = \"none\"",
            ));
        }
        let password = secret(
            env,
            "email",
            "password",
            config.password_file.as_ref(),
            config.password_env.as_ref(),
        )?;
        let credentials = match (&config.username, password) {
            (Some(user), Some(password)) => {
                Some(Credentials::new(user.clone(), password.to_string()))
            }
            (None, None) => None,
            (Some(_), None) => {
                return Err(ConfigError::new(
                    "email.username",
                    "needs email.password_env or email.password_file",
                ));
            }
            (None, Some(_)) => {
                return Err(ConfigError::new(
                    "email.password_env",
                    "a password needs email.username",
                ));
            }
        };
        let retry = retry_policy("email", config.attempts, config.retry_delay_ms, 0)?;
        let timeout = timeout("email", config.timeout_secs)?;
        if tokio::runtime::Handle::try_current().is_err() {
            return Err(ConfigError::new(
                "email",
                "the SMTP sender must be made inside a Tokio runtime",
            ));
        }
        let mut builder = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(host)
            .port(port)
            .tls(tls)
            .timeout(Some(timeout));
        if let Some(credentials) = credentials {
            builder = builder.credentials(credentials);
        }
        Ok(SmtpSender {
            transport: builder.build(),
            from,
            host: host.to_owned(),
            retry,
            clock,
        })
    }

    /// The message for `msg`, formatted, and its envelope.
    fn message(&self, msg: &OutgoingCode, to: &str) -> Result<Message, DeliveryError> {
        let rejected = |reason: String| DeliveryError::Rejected {
            channel: Channel::Email,
            reason,
        };
        let address: Address = to
            .parse()
            .map_err(|e| rejected(format!("the recipient address is not accepted: {e}")))?;
        let date =
            UNIX_EPOCH + Duration::from_secs(u64::try_from(self.clock.now().0).unwrap_or_default());
        let text = msg.text();
        Message::builder()
            .from(self.from.clone())
            .to(Mailbox::new(None, address))
            .subject(msg.subject())
            .date(date)
            .header(ContentType::TEXT_PLAIN)
            .body(text.to_string())
            .map_err(|e| rejected(format!("cannot build the message: {e}")))
    }
}

#[async_trait]
impl CodeSender for SmtpSender {
    async fn send(&self, msg: &OutgoingCode) -> Result<(), DeliveryError> {
        let Destination::Email(email) = msg.destination() else {
            return Err(DeliveryError::Rejected {
                channel: Channel::Email,
                reason: "the email sender sends to email addresses only".into(),
            });
        };
        let message = self.message(msg, email.as_str())?;
        let envelope = message.envelope().clone();
        let raw = Zeroizing::new(message.formatted());
        drop(message);
        let code = msg.code().expose();
        let mut n = 1;
        loop {
            let error = match self.transport.send_raw(&envelope, &raw).await {
                Ok(_) => return Ok(()),
                Err(e) => e,
            };
            let reason = scrub(&chain(&error), code, QUOTE);
            // A 5xx reply is final (RFC 5321 §4.2.1), and so are a TLS failure (an untrusted
            // certificate shows as a connection error carrying rustls's "invalid peer
            // certificate") and a message lettre itself refuses; a 4xx reply, a dropped
            // connection or a timeout may pass.
            if error.is_permanent()
                || error.is_tls()
                || error.is_client()
                || reason.contains("invalid peer certificate")
            {
                return Err(DeliveryError::Rejected {
                    channel: Channel::Email,
                    reason,
                });
            }
            if n >= self.retry.attempts {
                return Err(DeliveryError::Unavailable {
                    channel: Channel::Email,
                    attempts: n,
                    reason,
                });
            }
            let wait = self.retry.delay(n, None);
            tracing::warn!(
                to = %msg.destination().masked(),
                host = %self.host,
                attempt = n,
                retry_in_ms = u64::try_from(wait.as_millis()).unwrap_or(u64::MAX),
                reason = %reason,
                "SMTP attempt failed; retrying"
            );
            tokio::time::sleep(wait).await;
            n += 1;
        }
    }
}
