//! PEM text armour (RFC 7468) for PKCS#8 private keys and SPKI public keys.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;

use crate::error::KeyError;

/// The largest PEM document accepted (an RSA-8192 PKCS#8 key is about 6.5 KiB).
pub const MAX_PEM_LEN: usize = 16 * 1024;

/// The label of a PEM block.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Label {
    /// `PRIVATE KEY`: PKCS#8 (RFC 5208/5958).
    PrivateKey,
    /// `PUBLIC KEY`: SubjectPublicKeyInfo (RFC 5280).
    PublicKey,
}

impl Label {
    fn as_str(self) -> &'static str {
        match self {
            Label::PrivateKey => "PRIVATE KEY",
            Label::PublicKey => "PUBLIC KEY",
        }
    }
}

/// Decodes the one PEM block in `text` (RFC 7468 §3, strict form, surrounding whitespace allowed).
pub fn decode(text: &str) -> Result<(Label, Vec<u8>), KeyError> {
    if text.len() > MAX_PEM_LEN {
        return Err(KeyError::Pem("document too large"));
    }
    let text = text.trim();
    let (label, body) = [Label::PrivateKey, Label::PublicKey]
        .into_iter()
        .find_map(|label| {
            let begin = format!("-----BEGIN {}-----", label.as_str());
            let end = format!("-----END {}-----", label.as_str());
            let body = text.strip_prefix(&begin)?.strip_suffix(&end)?;
            Some((label, body))
        })
        .ok_or(KeyError::Pem(
            "expected one `PRIVATE KEY` (PKCS#8) or `PUBLIC KEY` (SPKI) block",
        ))?;
    let mut b64 = String::with_capacity(body.len());
    for line in body.lines() {
        let line = line.trim_end_matches('\r');
        if line.contains(':') {
            return Err(KeyError::Pem("encrypted or annotated PEM is not supported"));
        }
        b64.push_str(line.trim());
    }
    let der = STANDARD
        .decode(b64.as_bytes())
        .map_err(|_| KeyError::Pem("body is not base64"))?;
    Ok((label, der))
}

/// Encodes DER as a PEM block with 64-character lines.
pub fn encode(label: Label, der: &[u8]) -> String {
    let b64 = STANDARD.encode(der);
    let mut out = format!("-----BEGIN {}-----\n", label.as_str());
    for chunk in b64.as_bytes().chunks(64) {
        // Chunks of ASCII base64 are valid UTF-8.
        out.push_str(std::str::from_utf8(chunk).unwrap_or_default());
        out.push('\n');
    }
    out.push_str(&format!("-----END {}-----\n", label.as_str()));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_rejects_other_labels() {
        let der: Vec<u8> = (0..=255).collect();
        let text = encode(Label::PublicKey, &der);
        assert_eq!(decode(&text), Ok((Label::PublicKey, der)));
        assert!(
            decode("-----BEGIN RSA PRIVATE KEY-----\nAA==\n-----END RSA PRIVATE KEY-----").is_err()
        );
        assert!(decode("-----BEGIN PRIVATE KEY-----\nProc-Type: 4,ENCRYPTED\nAA==\n-----END PRIVATE KEY-----").is_err());
        assert!(decode("-----BEGIN PRIVATE KEY-----\n!!\n-----END PRIVATE KEY-----").is_err());
    }
}
