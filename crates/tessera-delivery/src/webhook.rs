//! SMS through an HTTP webhook: one request per code to a gateway (or to the operator's own
//! service in front of one), with a body built from a template, an optional HTTP Basic login
//! (Twilio's API takes one), and an HMAC-SHA256 signature header.
//!
//! The signature: `Tessera-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>`,
//! computed over the exact body bytes sent. A receiver recomputes it with the shared secret,
//! compares in constant time, and refuses a `t` more than 5 minutes from its own clock
//! (docs/delivery.md has the recipe). Every attempt is signed afresh.
//!
//! Retries: a connection error, a timeout, 408, 429 and 5xx are tried again, up to `attempts`
//! in all, after an exponential backoff or the server's `Retry-After` (capped); any other 4xx
//! and any 3xx are final (redirects are not followed: they would carry the code elsewhere).

use std::sync::Arc;

use async_trait::async_trait;
use aws_lc_rs::hmac;
use reqwest::header::{CONTENT_TYPE, HeaderMap, HeaderName, HeaderValue, RETRY_AFTER};
use reqwest::{Method, StatusCode, Url};
use tessera_domain::clock::Clock;
use tessera_domain::delivery::{Channel, CodeSender, DeliveryError, Destination, OutgoingCode};
use zeroize::Zeroizing;

use crate::config::{
    ConfigError, DEFAULT_JSON_BODY, SmsConfig, ca_file, is_loopback, retry_policy, secret, timeout,
};
use crate::retry::{RetryPolicy, parse_retry_after};
use crate::template::{Field, Json, PLACEHOLDERS, Text, Values};
use crate::{Environment, chain, scrub};

/// The shortest signing secret accepted: 256 bits, the HMAC-SHA256 output size (RFC 2104 §3
/// recommends a key no shorter than the output).
pub const MIN_SECRET_LEN: usize = 32;

/// How much of an error response is quoted in the error.
const QUOTE: usize = 300;

/// The body format.
#[derive(Debug)]
enum Body {
    Json(Json),
    Form(Vec<(String, Text)>),
}

/// Sends codes to phone numbers through the configured webhook.
pub struct WebhookSender {
    client: reqwest::Client,
    url: Url,
    method: Method,
    headers: HeaderMap,
    body: Body,
    basic: Option<(String, Zeroizing<String>)>,
    signing: Option<(HeaderName, hmac::Key)>,
    retry: RetryPolicy,
    clock: Arc<dyn Clock>,
}

impl std::fmt::Debug for WebhookSender {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebhookSender")
            .field("url", &redacted(&self.url))
            .field("method", &self.method)
            .field("signed", &self.signing.is_some())
            .finish_non_exhaustive()
    }
}

/// The URL without credentials, query or fragment (an API key may sit in the query).
fn redacted(url: &Url) -> String {
    let mut u = url.clone();
    u.set_query(None);
    u.set_fragment(None);
    let _ = u.set_username("");
    let _ = u.set_password(None);
    u.to_string()
}

impl WebhookSender {
    /// Checks `config`, reads its secrets through `env`, and makes the HTTP client.
    pub fn new(
        config: &SmsConfig,
        env: &dyn Environment,
        clock: Arc<dyn Clock>,
    ) -> Result<WebhookSender, ConfigError> {
        let url = Url::parse(&config.url).map_err(|e| {
            ConfigError::new("sms.url", format!("{:?} is not a URL: {e}", config.url))
        })?;
        let host = url.host_str().unwrap_or("");
        match url.scheme() {
            "https" => {}
            "http" if is_loopback(host) => {}
            "http" => {
                return Err(ConfigError::new(
                    "sms.url",
                    format!(
                        "http:// would send the code in clear to {host}: use https:// \
                         (http:// is allowed for a loopback host only)"
                    ),
                ));
            }
            other => {
                return Err(ConfigError::new(
                    "sms.url",
                    format!("scheme {other}:// is not https://"),
                ));
            }
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err(ConfigError::new(
                "sms.url",
                "the URL holds a user name or password: use sms.username and \
                 sms.password_env (or password_file) instead",
            ));
        }
        let method = match config.method.to_ascii_uppercase().as_str() {
            "POST" => Method::POST,
            "PUT" => Method::PUT,
            other => {
                return Err(ConfigError::new(
                    "sms.method",
                    format!("{other:?} is not POST or PUT"),
                ));
            }
        };

        let body = match (&config.json_body, &config.form) {
            (Some(_), Some(_)) => {
                return Err(ConfigError::new(
                    "sms.json_body",
                    "give json_body or form, not both",
                ));
            }
            (None, Some(form)) => {
                let mut fields = Vec::with_capacity(form.len());
                for (name, value) in form {
                    let text = Text::parse(value)
                        .map_err(|e| ConfigError::new(&format!("sms.form.{name}"), e))?;
                    fields.push((name.clone(), text));
                }
                Body::Form(fields)
            }
            (json, None) => Body::Json(
                Json::parse(json.as_deref().unwrap_or(DEFAULT_JSON_BODY))
                    .map_err(|e| ConfigError::new("sms.json_body", e))?,
            ),
        };
        let uses = |f: Field| match &body {
            Body::Json(j) => j.uses(f),
            Body::Form(fields) => fields.iter().any(|(_, t)| t.uses(f)),
        };
        let key = if config.form.is_some() {
            "sms.form"
        } else {
            "sms.json_body"
        };
        if !uses(Field::To) {
            return Err(ConfigError::new(
                key,
                format!(
                    "never uses {{to}}: the gateway would not know the number ({PLACEHOLDERS})"
                ),
            ));
        }
        if !uses(Field::Code) && !uses(Field::Message) {
            return Err(ConfigError::new(
                key,
                format!(
                    "uses neither {{message}} nor {{code}}: the code would not be sent ({PLACEHOLDERS})"
                ),
            ));
        }

        let signature_header =
            HeaderName::from_bytes(config.signature_header.as_bytes()).map_err(|_| {
                ConfigError::new(
                    "sms.signature_header",
                    format!("{:?} is not a header name", config.signature_header),
                )
            })?;
        let mut headers = HeaderMap::new();
        let reserved = |name: &HeaderName| {
            name == reqwest::header::CONTENT_LENGTH
                || name == reqwest::header::HOST
                || name == reqwest::header::TRANSFER_ENCODING
                || *name == signature_header
        };
        for (name, value, from_env) in config
            .headers
            .iter()
            .map(|(n, v)| (n, Zeroizing::new(v.clone()), None::<&String>))
            .chain(config.headers_env.iter().map(|(n, var)| {
                (
                    n,
                    Zeroizing::new(env.var(var).unwrap_or_default()),
                    Some(var),
                )
            }))
        {
            let key = match from_env {
                Some(_) => format!("sms.headers_env.{name}"),
                None => format!("sms.headers.{name}"),
            };
            let header = HeaderName::from_bytes(name.as_bytes())
                .map_err(|_| ConfigError::new(&key, format!("{name:?} is not a header name")))?;
            if reserved(&header) {
                return Err(ConfigError::new(&key, "this header is set by tessera"));
            }
            if let Some(var) = from_env
                && value.is_empty()
            {
                return Err(ConfigError::new(
                    &key,
                    format!("the environment variable {var} is not set or empty"),
                ));
            }
            let mut value = HeaderValue::from_str(&value).map_err(|_| {
                ConfigError::new(&key, "the value has a character not allowed in a header")
            })?;
            value.set_sensitive(from_env.is_some());
            headers.insert(header, value);
        }

        let password = secret(
            env,
            "sms",
            "password",
            config.password_file.as_ref(),
            config.password_env.as_ref(),
        )?;
        let basic = match (&config.username, password) {
            (Some(user), Some(password)) => Some((user.clone(), password)),
            (None, None) => None,
            (Some(_), None) => {
                return Err(ConfigError::new(
                    "sms.username",
                    "needs sms.password_env or sms.password_file",
                ));
            }
            (None, Some(_)) => {
                return Err(ConfigError::new(
                    "sms.password_env",
                    "a password needs sms.username",
                ));
            }
        };
        let signing = match secret(
            env,
            "sms",
            "signing_secret",
            config.signing_secret_file.as_ref(),
            config.signing_secret_env.as_ref(),
        )? {
            Some(s) if s.len() < MIN_SECRET_LEN => {
                return Err(ConfigError::new(
                    "sms.signing_secret",
                    format!(
                        "is {} bytes; use at least {MIN_SECRET_LEN} random bytes \
                         (e.g. `openssl rand -hex 32`)",
                        s.len()
                    ),
                ));
            }
            Some(s) => Some((
                signature_header,
                hmac::Key::new(hmac::HMAC_SHA256, s.as_bytes()),
            )),
            None => None,
        };

        let retry = retry_policy(
            "sms",
            config.attempts,
            config.retry_delay_ms,
            config.retry_after_max_secs,
        )?;
        let timeout = timeout("sms", config.timeout_secs)?;
        let mut builder = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(timeout)
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("tessera/", env!("CARGO_PKG_VERSION")));
        builder = match &config.proxy {
            Some(proxy) => builder.proxy(reqwest::Proxy::all(proxy).map_err(|e| {
                ConfigError::new("sms.proxy", format!("{proxy:?} is not a proxy URL: {e}"))
            })?),
            None => builder.no_proxy(),
        };
        if let Some(pem) = ca_file(env, "sms", config.ca_file.as_ref())? {
            let certs = reqwest::Certificate::from_pem_bundle(&pem).map_err(|e| {
                ConfigError::new("sms.ca_file", format!("not a PEM certificate bundle: {e}"))
            })?;
            builder = builder.tls_certs_merge(certs);
        }
        let client = builder.build().map_err(|e| {
            ConfigError::new("sms", format!("cannot make the HTTP client: {}", chain(&e)))
        })?;
        Ok(WebhookSender {
            client,
            url,
            method,
            headers,
            body,
            basic,
            signing,
            retry,
            clock,
        })
    }

    /// The body for `msg`, and its content type.
    fn body(
        &self,
        msg: &OutgoingCode,
        to: &str,
    ) -> Result<(Zeroizing<Vec<u8>>, &'static str), DeliveryError> {
        let text = msg.text();
        let values = Values {
            to,
            code: msg.code().expose(),
            message: &text,
            purpose: msg.purpose().as_str(),
        };
        Ok(match &self.body {
            Body::Json(json) => (json.render(&values), "application/json"),
            Body::Form(fields) => {
                let pairs: Vec<(&str, Zeroizing<String>)> = fields
                    .iter()
                    .map(|(name, t)| (name.as_str(), t.render(&values)))
                    .collect();
                let pairs: Vec<(&str, &str)> =
                    pairs.iter().map(|(n, v)| (*n, v.as_str())).collect();
                let encoded =
                    serde_urlencoded::to_string(&pairs).map_err(|e| DeliveryError::Rejected {
                        channel: Channel::Sms,
                        reason: format!("cannot encode the form body: {e}"),
                    })?;
                (
                    Zeroizing::new(encoded.into_bytes()),
                    "application/x-www-form-urlencoded",
                )
            }
        })
    }

    /// The signature header's value for `body` at unix time `t`.
    fn signature(key: &hmac::Key, t: i64, body: &[u8]) -> String {
        let mut ctx = hmac::Context::with_key(key);
        ctx.update(t.to_string().as_bytes());
        ctx.update(b".");
        ctx.update(body);
        let tag = ctx.sign();
        let mut hex = String::with_capacity(64);
        for b in tag.as_ref() {
            hex.push_str(&format!("{b:02x}"));
        }
        format!("t={t},v1={hex}")
    }

    /// One attempt: `Ok` when delivered, `Err((retry?, reason, retry-after))` otherwise.
    async fn attempt(
        &self,
        body: &[u8],
        content_type: &'static str,
        code: &str,
    ) -> Result<(), Attempt> {
        let mut request = self
            .client
            .request(self.method.clone(), self.url.clone())
            .header(CONTENT_TYPE, content_type)
            .headers(self.headers.clone())
            .body(body.to_vec());
        if let Some((user, password)) = &self.basic {
            request = request.basic_auth(user, Some(password.as_str()));
        }
        if let Some((name, key)) = &self.signing {
            let mut value = HeaderValue::from_str(&Self::signature(key, self.clock.now().0, body))
                .map_err(|_| Attempt::fatal("cannot make the signature header".into()))?;
            value.set_sensitive(true);
            request = request.header(name, value);
        }
        let mut response = match request.send().await {
            Ok(r) => r,
            Err(e) => {
                return Err(Attempt::retry(
                    scrub(&chain(&e.without_url()), code, QUOTE),
                    None,
                ));
            }
        };
        let status = response.status();
        if status.is_success() {
            return Ok(());
        }
        let retry_after = response
            .headers()
            .get(RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| parse_retry_after(v, self.clock.now()));
        let mut quoted = Vec::new();
        while quoted.len() < QUOTE {
            match response.chunk().await {
                Ok(Some(chunk)) => quoted.extend_from_slice(&chunk),
                _ => break,
            }
        }
        let said = scrub(&String::from_utf8_lossy(&quoted), code, QUOTE);
        let reason = if said.is_empty() {
            format!("HTTP {status}")
        } else {
            format!("HTTP {status}: {said}")
        };
        if status.is_server_error()
            || status == StatusCode::TOO_MANY_REQUESTS
            || status == StatusCode::REQUEST_TIMEOUT
        {
            Err(Attempt::retry(reason, retry_after))
        } else if status.is_redirection() {
            Err(Attempt::fatal(format!(
                "{reason} (a redirect, not followed: set delivery.sms.url to the final address)"
            )))
        } else {
            Err(Attempt::fatal(reason))
        }
    }
}

/// A failed attempt.
struct Attempt {
    retry: bool,
    reason: String,
    retry_after: Option<std::time::Duration>,
}

impl Attempt {
    fn retry(reason: String, retry_after: Option<std::time::Duration>) -> Attempt {
        Attempt {
            retry: true,
            reason,
            retry_after,
        }
    }
    fn fatal(reason: String) -> Attempt {
        Attempt {
            retry: false,
            reason,
            retry_after: None,
        }
    }
}

#[async_trait]
impl CodeSender for WebhookSender {
    async fn send(&self, msg: &OutgoingCode) -> Result<(), DeliveryError> {
        let Destination::Phone(phone) = msg.destination() else {
            return Err(DeliveryError::Rejected {
                channel: Channel::Sms,
                reason: "the SMS webhook sends to phone numbers only".into(),
            });
        };
        let (body, content_type) = self.body(msg, phone.as_str())?;
        let code = msg.code().expose();
        let mut n = 1;
        loop {
            match self.attempt(&body, content_type, code).await {
                Ok(()) => return Ok(()),
                Err(failed) if !failed.retry => {
                    return Err(DeliveryError::Rejected {
                        channel: Channel::Sms,
                        reason: failed.reason,
                    });
                }
                Err(failed) if n >= self.retry.attempts => {
                    return Err(DeliveryError::Unavailable {
                        channel: Channel::Sms,
                        attempts: n,
                        reason: failed.reason,
                    });
                }
                Err(failed) => {
                    let wait = self.retry.delay(n, failed.retry_after);
                    tracing::warn!(
                        to = %msg.destination().masked(),
                        url = %redacted(&self.url),
                        attempt = n,
                        retry_in_ms = u64::try_from(wait.as_millis()).unwrap_or(u64::MAX),
                        reason = %failed.reason,
                        "SMS webhook attempt failed; retrying"
                    );
                    tokio::time::sleep(wait).await;
                    n += 1;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The signature is HMAC-SHA256 over "<t>.<body>" in lower-case hex; the expected value
    /// was computed independently, with Python's hmac module.
    #[test]
    fn signature_format() {
        let key = hmac::Key::new(hmac::HMAC_SHA256, &[b'k'; 32]);
        let sig = WebhookSender::signature(&key, 1_700_000_000, b"{\"to\":\"+447700900123\"}");
        // python3 -c 'import hmac,hashlib;print(hmac.new(b"k"*32,b"1700000000.{\"to\":\"+447700900123\"}",hashlib.sha256).hexdigest())'
        assert_eq!(
            sig,
            "t=1700000000,v1=7fdb8cc96d205781761265e0e510612ee50db71bba801b00e44808ecc39bf9e0"
        );
    }
}
