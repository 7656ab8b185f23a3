//! Strict base64url (RFC 7515 §2, RFC 4648 §5): no padding, no `+`/`/`, no whitespace, and no
//! non-canonical trailing bits, so every byte string has exactly one accepted encoding.

use base64::Engine as _;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};

const CONFIG: GeneralPurposeConfig = GeneralPurposeConfig::new()
    .with_encode_padding(false)
    .with_decode_padding_mode(DecodePaddingMode::RequireNone)
    .with_decode_allow_trailing_bits(false);

/// The one base64url engine of the crate.
pub(crate) const ENGINE: GeneralPurpose = GeneralPurpose::new(&base64::alphabet::URL_SAFE, CONFIG);

/// Encodes bytes as unpadded base64url.
pub fn encode(bytes: impl AsRef<[u8]>) -> String {
    ENGINE.encode(bytes)
}

/// Appends the unpadded base64url encoding of `bytes` to `out`.
pub(crate) fn encode_into(bytes: &[u8], out: &mut String) {
    ENGINE.encode_string(bytes, out);
}

/// Decodes strict unpadded base64url; `None` for anything else.
pub fn decode(text: impl AsRef<[u8]>) -> Option<Vec<u8>> {
    ENGINE.decode(text).ok()
}

/// The exact decoded length of `len` base64url characters, or `None` when no strict encoding has
/// that length (a remainder of 1 is impossible).
pub(crate) const fn decoded_len(len: usize) -> Option<usize> {
    match len % 4 {
        1 => None,
        r => Some(len / 4 * 3 + if r == 0 { 0 } else { r - 1 }),
    }
}

/// Decodes into `out`, which must be exactly [`decoded_len`] bytes long.
pub(crate) fn decode_exact(text: &[u8], out: &mut [u8]) -> Option<()> {
    match ENGINE.decode_slice(text, out) {
        Ok(n) if n == out.len() => Some(()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejects_padding_whitespace_std_alphabet_and_trailing_bits() {
        assert_eq!(decode("AQAB"), Some(vec![1, 0, 1]));
        assert_eq!(decode("YQ"), Some(b"a".to_vec()));
        for bad in ["YQ==", "Y Q", "YQ\n", "+/+/", "YR", "Y", "YQ=", "Ym9v\r\n"] {
            assert_eq!(decode(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn decoded_len_matches_engine() {
        for n in 0..40usize {
            let bytes = vec![7u8; n];
            let text = encode(&bytes);
            assert_eq!(decoded_len(text.len()), Some(n));
            let mut out = vec![0; n];
            assert_eq!(decode_exact(text.as_bytes(), &mut out), Some(()));
            assert_eq!(out, bytes);
        }
        assert_eq!(decoded_len(5), None);
    }
}
