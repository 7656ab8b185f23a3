//! The `otpauth://` Key URI that authenticator apps scan from a QR code (Google Authenticator's
//! "Key Uri Format", which every app follows): `otpauth://TYPE/ISSUER:ACCOUNT?secret=…&issuer=…
//! &algorithm=…&digits=…&period=…` (TOTP) or `…&counter=…` (HOTP).
//!
//! [`KeyUri::to_uri`] writes every parameter explicitly, so an app never falls back on a default
//! that differs from the server's; [`KeyUri::parse`] reads what apps and fob vendors export. The
//! URI holds the secret: it is returned in a [`Zeroizing`] string and never shown by `Debug`.

use std::fmt::Write as _;

use zeroize::Zeroizing;

use super::{OtpAlgorithm, OtpError, OtpParams, OtpSecret, Totp};

/// The longest URI [`KeyUri::parse`] looks at.
pub const MAX_URI: usize = 2048;

/// The longest issuer or account name, in bytes after decoding.
pub const MAX_LABEL: usize = 256;

/// Time- or counter-based, with the parameter that goes with each.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OtpKind {
    /// TOTP (RFC 6238) with its period in seconds.
    Totp {
        /// Seconds per step.
        period: u32,
    },
    /// HOTP (RFC 4226) with the first counter value to accept.
    Hotp {
        /// The next counter.
        counter: u64,
    },
}

/// A parsed or to-be-written Key URI. The issuer and account must not contain a colon (the
/// label's separator) nor control characters: [`KeyUri::parse`] refuses them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyUri {
    /// TOTP or HOTP.
    pub kind: OtpKind,
    /// Who issued the key (the service name shown by the app), if any.
    pub issuer: Option<String>,
    /// The account name shown by the app (e.g. the username).
    pub account: String,
    /// The shared secret.
    pub secret: OtpSecret,
    /// Algorithm and digits.
    pub params: OtpParams,
}

impl KeyUri {
    /// The URI, with every parameter spelled out and the label and issuer percent-encoded
    /// (RFC 3986 §2.3 unreserved characters kept).
    pub fn to_uri(&self) -> Zeroizing<String> {
        let mut out = Zeroizing::new(String::with_capacity(160));
        let kind = match self.kind {
            OtpKind::Totp { .. } => "totp",
            OtpKind::Hotp { .. } => "hotp",
        };
        out.push_str("otpauth://");
        out.push_str(kind);
        out.push('/');
        if let Some(issuer) = &self.issuer {
            encode(issuer, &mut out);
            out.push(':');
        }
        encode(&self.account, &mut out);
        out.push_str("?secret=");
        out.push_str(&self.secret.to_base32());
        if let Some(issuer) = &self.issuer {
            out.push_str("&issuer=");
            encode(issuer, &mut out);
        }
        let _ = write!(
            out,
            "&algorithm={}&digits={}",
            self.params.algorithm().as_str(),
            self.params.digits()
        );
        let _ = match self.kind {
            OtpKind::Totp { period } => write!(out, "&period={period}"),
            OtpKind::Hotp { counter } => write!(out, "&counter={counter}"),
        };
        out
    }

    /// Parses a Key URI. Unknown parameters (e.g. `image`) are ignored; a repeated parameter,
    /// a missing secret, an HOTP URI without a counter, or an issuer parameter that contradicts
    /// the label's issuer prefix are errors. Defaults: SHA1, 6 digits, 30 s.
    pub fn parse(text: &str) -> Result<KeyUri, OtpError> {
        if text.len() > MAX_URI {
            return Err(OtpError::Uri("longer than 2048 bytes"));
        }
        let rest = strip_prefix_ignore_case(text, "otpauth://")
            .ok_or(OtpError::Uri("scheme must be otpauth://"))?;
        let (kind, rest) = rest.split_once('/').ok_or(OtpError::Uri("missing label"))?;
        let is_totp = match kind.to_ascii_lowercase().as_str() {
            "totp" => true,
            "hotp" => false,
            _ => return Err(OtpError::Uri("type must be totp or hotp")),
        };
        let (label, query) = rest.split_once('?').unwrap_or((rest, ""));
        let label = decode(label).ok_or(OtpError::Uri("label is not valid percent-encoding"))?;
        // "Optional spaces may precede the account name": dropped, with or without an issuer.
        let (label_issuer, account) = match label.split_once(':') {
            Some((issuer, account)) => (
                Some(issuer.to_owned()),
                account.trim_start_matches(' ').to_owned(),
            ),
            None => (None, label.trim_start_matches(' ').to_owned()),
        };
        let mut secret = None;
        let mut issuer = None;
        let mut algorithm = None;
        let mut digits = None;
        let mut period = None;
        let mut counter = None;
        for pair in query.split('&').filter(|p| !p.is_empty()) {
            let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
            let value =
                decode(value).ok_or(OtpError::Uri("parameter is not valid percent-encoding"))?;
            let slot = match name {
                "secret" => &mut secret,
                "issuer" => &mut issuer,
                "algorithm" => &mut algorithm,
                "digits" => &mut digits,
                "period" => &mut period,
                "counter" => &mut counter,
                _ => continue,
            };
            if slot.replace(Zeroizing::new(value)).is_some() {
                return Err(OtpError::Uri("a parameter is repeated"));
            }
        }
        let secret = OtpSecret::from_base32(&secret.ok_or(OtpError::Uri("missing secret"))?)?;
        let issuer = match (label_issuer, issuer) {
            (Some(a), Some(b)) if a != *b => {
                return Err(OtpError::Uri("issuer differs from the label's issuer"));
            }
            (Some(a), _) => Some(a),
            (None, b) => b.map(|b| b.to_string()),
        };
        if account.is_empty() {
            return Err(OtpError::Uri("empty account name"));
        }
        if account.len() > MAX_LABEL || issuer.as_ref().is_some_and(|i| i.len() > MAX_LABEL) {
            return Err(OtpError::Uri("issuer or account longer than 256 bytes"));
        }
        // The Key URI format: "neither issuer nor account name may themselves contain a colon".
        if account.contains(':') || issuer.as_ref().is_some_and(|i| i.contains(':')) {
            return Err(OtpError::Uri("a colon in the issuer or account"));
        }
        if account
            .chars()
            .chain(issuer.iter().flat_map(|i| i.chars()))
            .any(char::is_control)
        {
            return Err(OtpError::Uri("control character in the issuer or account"));
        }
        let alg = match algorithm {
            Some(a) => OtpAlgorithm::parse(&a)?,
            None => OtpAlgorithm::Sha1,
        };
        let digits = match digits {
            Some(d) => d.parse::<u8>().map_err(|_| OtpError::Digits)?,
            None => 6,
        };
        let params = OtpParams::new(alg, digits)?;
        let kind = if is_totp {
            let period = match period {
                Some(p) => p.parse::<u32>().map_err(|_| OtpError::Period)?,
                None => Totp::DEFAULT_PERIOD,
            };
            if !(1..=300).contains(&period) {
                return Err(OtpError::Period);
            }
            OtpKind::Totp { period }
        } else {
            let counter = counter.ok_or(OtpError::Uri("an hotp URI needs a counter"))?;
            OtpKind::Hotp {
                counter: counter.parse::<u64>().map_err(|_| OtpError::Counter)?,
            }
        };
        Ok(KeyUri {
            kind,
            issuer,
            account,
            secret,
            params,
        })
    }
}

fn strip_prefix_ignore_case<'a>(text: &'a str, prefix: &str) -> Option<&'a str> {
    let head = text.get(..prefix.len())?;
    head.eq_ignore_ascii_case(prefix)
        .then(|| &text[prefix.len()..])
}

fn encode(text: &str, out: &mut String) {
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(b));
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
}

/// Percent-decodes (`+` stays a plus, as in RFC 3986); `None` for a bad escape or non-UTF-8.
fn decode(text: &str) -> Option<String> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = bytes.get(i + 1..i + 3)?;
            let hi = super::hex_value(hex[0])?;
            let lo = super::hex_value(hex[1])?;
            out.push(hi << 4 | lo);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn uri(kind: OtpKind) -> KeyUri {
        KeyUri {
            kind,
            issuer: Some("Example Co".into()),
            account: "ada@example.com".into(),
            secret: OtpSecret::new(b"12345678901234567890".to_vec()).expect("secret"),
            params: OtpParams::DEFAULT,
        }
    }

    #[test]
    fn writes_every_parameter_and_reads_it_back() {
        let totp = uri(OtpKind::Totp { period: 30 });
        assert_eq!(
            &*totp.to_uri(),
            "otpauth://totp/Example%20Co:ada%40example.com?secret=GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ\
             &issuer=Example%20Co&algorithm=SHA1&digits=6&period=30"
        );
        assert_eq!(KeyUri::parse(&totp.to_uri()), Ok(totp));
        let hotp = uri(OtpKind::Hotp { counter: 7 });
        assert_eq!(KeyUri::parse(&hotp.to_uri()), Ok(hotp));
    }

    #[test]
    fn reads_what_apps_export() {
        let parsed = KeyUri::parse(
            "OTPAUTH://TOTP/ACME%3Ajohn?secret=gezdgnbvgy3tqojqgezdgnbvgy3tqojq&image=x&digits=8",
        )
        .expect("parse");
        assert_eq!(parsed.issuer.as_deref(), Some("ACME"));
        assert_eq!(parsed.account, "john");
        assert_eq!(parsed.params.digits(), 8);
        assert_eq!(parsed.kind, OtpKind::Totp { period: 30 });
    }

    #[test]
    fn refuses_what_it_cannot_honour() {
        let s = "secret=GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ";
        for (bad, why) in [
            (format!("http://totp/a?{s}"), "scheme"),
            (format!("otpauth://motp/a?{s}"), "type"),
            ("otpauth://totp/a?issuer=x".into(), "no secret"),
            (format!("otpauth://hotp/a?{s}"), "hotp without counter"),
            (format!("otpauth://totp/a?{s}&{s}"), "repeat"),
            (
                format!("otpauth://totp/A:a?{s}&issuer=B"),
                "issuer mismatch",
            ),
            (format!("otpauth://totp/a?{s}&digits=9"), "digits"),
            (format!("otpauth://totp/a?{s}&period=0"), "period"),
            (format!("otpauth://totp/a?{s}&algorithm=MD5"), "alg"),
            (format!("otpauth://totp/a%zz?{s}"), "escape"),
            (format!("otpauth://totp/?{s}"), "empty account"),
            (
                format!("otpauth://totp/a?{s}&issuer=B%3Ab"),
                "colon in issuer",
            ),
            (format!("otpauth://totp/A:a:b?{s}"), "colon in account"),
            (format!("otpauth://totp/%20%20?{s}"), "blank account"),
            ("otpauth://totp/a?secret=GEZDG".into(), "short secret"),
            (
                format!("otpauth://totp/{}?{s}", "a".repeat(MAX_URI)),
                "long",
            ),
        ] {
            assert!(KeyUri::parse(&bad).is_err(), "{why}: {bad}");
        }
    }
}
