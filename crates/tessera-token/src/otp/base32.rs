//! Base32 (RFC 4648 §6), the encoding authenticator apps use for secrets: encoded upper case
//! without padding; decoded in any case, ignoring spaces, dashes and trailing `=` padding (as
//! people type or vendors print keys), and refusing any other character or non-zero leftover bits.

const ALPHABET: &[u8; 32] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";

/// The longest text [`decode`] looks at (a 128-byte secret is 205 characters).
pub const MAX_INPUT: usize = 1024;

/// Encodes bytes as unpadded upper-case base32.
pub fn encode(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len().div_ceil(5) * 8);
    let mut buffer: u16 = 0;
    let mut bits = 0u32;
    for &b in bytes {
        buffer = (buffer << 8) | u16::from(b);
        bits += 8;
        while bits >= 5 {
            bits -= 5;
            out.push(char::from(ALPHABET[usize::from((buffer >> bits) & 31)]));
        }
        buffer &= (1 << bits) - 1;
    }
    if bits > 0 {
        out.push(char::from(
            ALPHABET[usize::from((buffer << (5 - bits)) & 31)],
        ));
    }
    out
}

/// Decodes base32; `None` for any character outside the alphabet (after removing spaces, dashes
/// and trailing padding), for a length no encoding has, for non-zero leftover bits, or for input
/// longer than [`MAX_INPUT`].
pub fn decode(text: &str) -> Option<Vec<u8>> {
    if text.len() > MAX_INPUT {
        return None;
    }
    let trimmed = text.trim_end_matches(|c: char| c == '=' || c.is_ascii_whitespace());
    let mut out = Vec::with_capacity(trimmed.len() * 5 / 8);
    let mut buffer: u16 = 0;
    let mut bits = 0u32;
    let mut count = 0usize;
    for c in trimmed.bytes() {
        let value = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a',
            b'2'..=b'7' => c - b'2' + 26,
            b' ' | b'-' | b'\t' => continue,
            _ => return None,
        };
        count += 1;
        buffer = (buffer << 5) | u16::from(value);
        bits += 5;
        if bits >= 8 {
            bits -= 8;
            out.push((buffer >> bits) as u8);
            buffer &= (1 << bits) - 1;
        }
    }
    // RFC 4648 §6: a final quantum has 2, 4, 5 or 7 characters; the leftover bits must be zero
    // so that every byte string has one accepted spelling.
    if matches!(count % 8, 1 | 3 | 6) || buffer != 0 {
        return None;
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc4648_section_10_vectors() {
        for (plain, encoded) in [
            ("", ""),
            ("f", "MY"),
            ("fo", "MZXQ"),
            ("foo", "MZXW6"),
            ("foob", "MZXW6YQ"),
            ("fooba", "MZXW6YTB"),
            ("foobar", "MZXW6YTBOI"),
        ] {
            assert_eq!(encode(plain.as_bytes()), encoded);
            assert_eq!(decode(encoded).as_deref(), Some(plain.as_bytes()));
            let padded = format!("{encoded}{}", "=".repeat((8 - encoded.len() % 8) % 8));
            assert_eq!(decode(&padded).as_deref(), Some(plain.as_bytes()));
        }
    }

    #[test]
    fn lenient_spelling_strict_content() {
        assert_eq!(decode("mzxw 6ytb-oi").as_deref(), Some(&b"foobar"[..]));
        for bad in ["MZXW1", "MZX", "M", "MZXW6YTBO", "MZ", "MZ=X", "ÄÖ"] {
            // `MZ` decodes to "f" only with zero leftover bits: `MY` is the canonical spelling.
            assert_eq!(decode(bad), None, "{bad}");
        }
        assert_eq!(decode(&"A".repeat(MAX_INPUT + 8)), None);
    }
}
