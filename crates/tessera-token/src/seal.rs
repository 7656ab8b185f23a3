//! Sealing long-lived secrets at rest (TOTP/HOTP seeds, later signing keys) with AES-256-GCM
//! from aws-lc-rs under a master key that never enters the database (OWASP ASVS V6.4: keys
//! stored apart from the data they protect).
//!
//! A sealed value is `0x01 ‖ key id (8 bytes) ‖ nonce (12 bytes) ‖ ciphertext ‖ tag (16 bytes)`.
//! The key id (the first 8 bytes of SHA-256 over a label and the key) says which master key
//! sealed it, so a [`KeyRing`] holding the new and the previous keys opens both during a
//! rotation. The caller passes associated data binding the value to where it is stored (e.g.
//! the factor id and the column), so a sealed seed copied to another row does not open.
//! Nonces are random (96 bits): far below the 2^32 seals per key that NIST SP 800-38D §8.3
//! allows with random nonces.
//!
//! ```
//! use tessera_token::seal::{KeyRing, MasterKey};
//!
//! let (key, _text_for_the_key_file) = MasterKey::generate().unwrap();
//! let ring = KeyRing::new(key, vec![]);
//! let sealed = ring.seal(b"seed", b"factor:1").unwrap();
//! assert_eq!(&*ring.open(&sealed, b"factor:1").unwrap(), b"seed");
//! assert!(ring.open(&sealed, b"factor:2").is_err());
//! ```

use std::fmt;

use aws_lc_rs::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use aws_lc_rs::{digest, rand};
use zeroize::Zeroizing;

const VERSION: u8 = 1;
const ID_LEN: usize = 8;
const TAG_LEN: usize = 16;
const HEADER: usize = 1 + ID_LEN + NONCE_LEN;

/// The longest plaintext sealed or opened (a 4096-bit RSA key in PKCS#8 is about 2.4 KB).
pub const MAX_PLAINTEXT: usize = 16 * 1024;

/// Why sealing or opening failed. Never carries key material or plaintext.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum SealError {
    /// The master key text is not 32 bytes in hex or base64.
    KeyFormat,
    /// The sealed value is too short, too long or of an unknown version.
    Malformed,
    /// No key of the ring has the id the value was sealed under.
    UnknownKey,
    /// The value was altered, or the associated data differs from the one it was sealed with.
    Integrity,
    /// The plaintext is longer than [`MAX_PLAINTEXT`].
    TooLarge,
    /// The system random generator failed.
    Random,
}

impl fmt::Display for SealError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            SealError::KeyFormat => {
                "a master key must be 32 random bytes written as 64 hex digits or in base64"
            }
            SealError::Malformed => "the sealed value is malformed",
            SealError::UnknownKey => "the value was sealed under a master key that is not loaded",
            SealError::Integrity => "the sealed value does not open under its master key",
            SealError::TooLarge => "the value to seal is too large",
            SealError::Random => "the system random generator failed",
        })
    }
}

impl std::error::Error for SealError {}

/// A 256-bit master key. `Debug` shows only its id.
pub struct MasterKey {
    key: LessSafeKey,
    id: [u8; ID_LEN],
}

impl MasterKey {
    /// A key from 32 raw bytes.
    pub fn from_bytes(bytes: &[u8; 32]) -> Result<MasterKey, SealError> {
        let key = UnboundKey::new(&AES_256_GCM, bytes).map_err(|_| SealError::KeyFormat)?;
        let mut ctx = digest::Context::new(&digest::SHA256);
        ctx.update(b"tessera seal key id v1\0");
        ctx.update(bytes);
        let mut id = [0u8; ID_LEN];
        id.copy_from_slice(&ctx.finish().as_ref()[..ID_LEN]);
        Ok(MasterKey {
            key: LessSafeKey::new(key),
            id,
        })
    }

    /// A key from its text form, as in a key file or environment variable: 64 hex digits, or
    /// standard or URL-safe base64 (padding optional); surrounding whitespace is ignored.
    pub fn from_text(text: &str) -> Result<MasterKey, SealError> {
        use base64::Engine as _;
        let text = text.trim();
        let mut bytes = Zeroizing::new([0u8; 32]);
        if text.len() == 64 && text.bytes().all(|b| b.is_ascii_hexdigit()) {
            for (i, pair) in text.as_bytes().chunks_exact(2).enumerate() {
                let hex = std::str::from_utf8(pair).map_err(|_| SealError::KeyFormat)?;
                bytes[i] = u8::from_str_radix(hex, 16).map_err(|_| SealError::KeyFormat)?;
            }
            return MasterKey::from_bytes(&bytes);
        }
        let unpadded = text.trim_end_matches('=');
        let engine = if unpadded.contains(['-', '_']) {
            base64::engine::general_purpose::URL_SAFE_NO_PAD
        } else {
            base64::engine::general_purpose::STANDARD_NO_PAD
        };
        let decoded = Zeroizing::new(engine.decode(unpadded).map_err(|_| SealError::KeyFormat)?);
        if decoded.len() != 32 {
            return Err(SealError::KeyFormat);
        }
        bytes.copy_from_slice(&decoded);
        MasterKey::from_bytes(&bytes)
    }

    /// A fresh random key, with its text form (64 hex digits) to store in a file.
    pub fn generate() -> Result<(MasterKey, Zeroizing<String>), SealError> {
        let mut bytes = Zeroizing::new([0u8; 32]);
        rand::fill(&mut bytes[..]).map_err(|_| SealError::Random)?;
        let mut text = Zeroizing::new(String::with_capacity(64));
        for b in bytes.iter() {
            text.push(char::from(b"0123456789abcdef"[usize::from(b >> 4)]));
            text.push(char::from(b"0123456789abcdef"[usize::from(b & 15)]));
        }
        Ok((MasterKey::from_bytes(&bytes)?, text))
    }

    /// The key's public id in hex (16 digits), for logs and `keys` listings.
    pub fn id_hex(&self) -> String {
        self.id.iter().map(|b| format!("{b:02x}")).collect()
    }
}

impl fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "MasterKey({})", self.id_hex())
    }
}

/// The current master key, which seals, and older ones, which only open (during a rotation).
#[derive(Debug)]
pub struct KeyRing {
    current: MasterKey,
    previous: Vec<MasterKey>,
}

impl KeyRing {
    /// A ring sealing under `current` and opening under any of them.
    pub fn new(current: MasterKey, previous: Vec<MasterKey>) -> KeyRing {
        KeyRing { current, previous }
    }

    /// The key that seals.
    pub fn current(&self) -> &MasterKey {
        &self.current
    }

    /// Seals `plaintext` under the current key, bound to `aad`.
    pub fn seal(&self, plaintext: &[u8], aad: &[u8]) -> Result<Vec<u8>, SealError> {
        if plaintext.len() > MAX_PLAINTEXT {
            return Err(SealError::TooLarge);
        }
        let mut nonce = [0u8; NONCE_LEN];
        rand::fill(&mut nonce).map_err(|_| SealError::Random)?;
        let mut out = Vec::with_capacity(HEADER + plaintext.len() + TAG_LEN);
        out.push(VERSION);
        out.extend_from_slice(&self.current.id);
        out.extend_from_slice(&nonce);
        out.extend_from_slice(plaintext);
        let tag = self
            .current
            .key
            .seal_in_place_separate_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(aad),
                &mut out[HEADER..],
            )
            .map_err(|_| SealError::Integrity)?;
        out.extend_from_slice(tag.as_ref());
        Ok(out)
    }

    /// Opens a sealed value with the key it names, checking `aad`.
    pub fn open(&self, sealed: &[u8], aad: &[u8]) -> Result<Zeroizing<Vec<u8>>, SealError> {
        if sealed.len() < HEADER + TAG_LEN
            || sealed.len() > HEADER + MAX_PLAINTEXT + TAG_LEN
            || sealed[0] != VERSION
        {
            return Err(SealError::Malformed);
        }
        let id = &sealed[1..1 + ID_LEN];
        let key = std::iter::once(&self.current)
            .chain(&self.previous)
            .find(|k| k.id == id)
            .ok_or(SealError::UnknownKey)?;
        let mut nonce = [0u8; NONCE_LEN];
        nonce.copy_from_slice(&sealed[1 + ID_LEN..HEADER]);
        let mut buffer = Zeroizing::new(sealed[HEADER..].to_vec());
        let plain_len = key
            .key
            .open_in_place(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(aad),
                &mut buffer,
            )
            .map_err(|_| SealError::Integrity)?
            .len();
        buffer.truncate(plain_len);
        Ok(buffer)
    }

    /// Whether `sealed` was sealed under the current key (a rotation re-seals the others).
    pub fn is_current(&self, sealed: &[u8]) -> bool {
        sealed.get(1..1 + ID_LEN) == Some(&self.current.id[..])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_binding_and_tamper() {
        let (key, text) = MasterKey::generate().expect("key");
        assert_eq!(
            MasterKey::from_text(&text).expect("text").id_hex(),
            key.id_hex()
        );
        let ring = KeyRing::new(key, vec![]);
        let sealed = ring.seal(b"secret seed", b"aad").expect("seal");
        assert_eq!(sealed.len(), HEADER + 11 + TAG_LEN);
        assert_eq!(&*ring.open(&sealed, b"aad").expect("open"), b"secret seed");
        assert_ne!(ring.seal(b"secret seed", b"aad").expect("seal"), sealed);
        assert_eq!(ring.open(&sealed, b"other"), Err(SealError::Integrity));
        for i in 0..sealed.len() {
            let mut bad = sealed.clone();
            bad[i] ^= 1;
            assert!(ring.open(&bad, b"aad").is_err(), "byte {i}");
        }
        assert_eq!(ring.open(&sealed[..10], b"aad"), Err(SealError::Malformed));
    }

    #[test]
    fn rotation_opens_old_values_and_reports_them() {
        let (old, _) = MasterKey::generate().expect("key");
        let (new, _) = MasterKey::generate().expect("key");
        let old_ring = KeyRing::new(old, vec![]);
        let sealed = old_ring.seal(b"x", b"").expect("seal");
        let (old_again, _) = (MasterKey::from_bytes(&[0; 32]).expect("k"), ());
        assert_eq!(
            KeyRing::new(old_again, vec![]).open(&sealed, b""),
            Err(SealError::UnknownKey)
        );
        let KeyRing { current: old, .. } = old_ring;
        let ring = KeyRing::new(new, vec![old]);
        assert!(!ring.is_current(&sealed));
        assert_eq!(&*ring.open(&sealed, b"").expect("open"), b"x");
        assert!(ring.is_current(&ring.seal(b"x", b"").expect("seal")));
    }

    #[test]
    fn key_text_forms() {
        let hex = "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f";
        let id = MasterKey::from_text(hex).expect("hex").id_hex();
        let b64 = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";
        assert_eq!(MasterKey::from_text(b64).expect("b64").id_hex(), id);
        assert_eq!(
            MasterKey::from_text(&format!(" {}\n", b64.trim_end_matches('=')))
                .expect("b64")
                .id_hex(),
            id
        );
        for bad in [
            "",
            "00",
            &hex[..62],
            "not a key at all",
            &format!("{hex}00"),
        ] {
            assert_eq!(
                MasterKey::from_text(bad).map(|_| ()),
                Err(SealError::KeyFormat),
                "{bad}"
            );
        }
        assert_eq!(
            format!("{:?}", MasterKey::from_text(hex).expect("k")),
            format!("MasterKey({id})")
        );
    }
}
