//! Sends tessera's one-time codes: the adapters behind `tessera_domain::delivery::CodeSender`.
//!
//! It owns the channels that leave the process and their configuration:
//! - [`email::SmtpSender`]: email over SMTP with lettre (STARTTLS, implicit TLS, or plain on a
//!   loopback relay only), rustls on aws-lc-rs, optional authentication and extra CA;
//! - [`webhook::WebhookSender`]: SMS through an HTTP gateway (JSON or form body built from a
//!   template by substituting into parsed values, an HMAC-SHA256 signature header, retries with
//!   exponential backoff and `Retry-After`);
//! - [`log::LogSender`]: the development channel that writes the code to the log, which exists
//!   only when `[delivery.log] enabled = true`;
//! - [`DeliveryConfig`]: the `[delivery]` section, validated into a routing
//!   `tessera_domain::delivery::Senders` by [`DeliveryConfig::build`].
//!
//! It reads no environment variable, file or clock of its own: secrets named by `*_env` and
//! `*_file` keys come through an [`Environment`] and the signature's time from the injected
//! `Clock`, both supplied by the composition root (tessera-cli). No error string and no log
//! line carries a code, a password or a signing secret (the development log channel excepted:
//! writing the code is its purpose).

pub mod config;
pub mod email;
pub mod log;
mod retry;
mod template;
pub mod webhook;

pub use config::{ConfigError, DeliveryConfig, EmailConfig, LogConfig, SmsConfig, TlsMode};

use std::path::Path;

/// Where `*_env` and `*_file` settings are read from: the process environment and file system
/// in the binary, a map in tests.
pub trait Environment {
    /// The value of the environment variable `name`, if set and valid UTF-8.
    fn var(&self, name: &str) -> Option<String>;
    /// The contents of the file at `path`.
    fn read_file(&self, path: &Path) -> std::io::Result<Vec<u8>>;
}

/// Removes every occurrence of `code` from `text` (a gateway or relay may echo the request in
/// its error), and control characters, and keeps at most `max` characters.
pub(crate) fn scrub(text: &str, code: &str, max: usize) -> String {
    let text = if code.is_empty() {
        text.to_owned()
    } else {
        text.replace(code, "[code]")
    };
    let mut out: String = text
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .take(max)
        .collect();
    if text.chars().count() > max {
        out.push('…');
    }
    out.trim().to_owned()
}

/// An error and its causes on one line, `a: b: c`, skipping causes already in the text and
/// repeated parts (lettre nests "Connection error: Connection error: …").
pub(crate) fn chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut out = error.to_string();
    let mut next = error.source();
    while let Some(e) = next {
        let s = e.to_string();
        if !out.contains(&s) {
            out.push_str(": ");
            out.push_str(&s);
        }
        next = e.source();
    }
    let mut parts: Vec<&str> = out.split(": ").collect();
    parts.dedup();
    parts.join(": ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scrub_removes_the_code_and_controls_and_truncates() {
        assert_eq!(
            scrub("bad body {\"code\":\"123456\"}\r\n", "123456", 100),
            "bad body {\"code\":\"[code]\"}"
        );
        assert_eq!(scrub("abcdef", "zz", 3), "abc…");
    }

    #[test]
    fn chain_joins_causes_once() {
        #[derive(Debug)]
        struct E(&'static str, Option<Box<E>>);
        impl std::fmt::Display for E {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.0)
            }
        }
        impl std::error::Error for E {
            fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
                self.1.as_deref().map(|e| e as _)
            }
        }
        let e = E(
            "Connection error: Connection error",
            Some(Box::new(E("invalid peer certificate", None))),
        );
        assert_eq!(chain(&e), "Connection error: invalid peer certificate");
    }
}
