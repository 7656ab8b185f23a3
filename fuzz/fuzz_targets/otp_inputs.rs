//! The OTP and sealing parsers of `tessera_token` on arbitrary input.
//!
//! Properties:
//! * `otp::uri::KeyUri::parse`, `otp::base32::decode`, `OtpSecret::from_hex`,
//!   `otp::normalize_code`, `Totp::check`, `Hotp::check`/`resync`, `seal::MasterKey::from_text`
//!   and `seal::KeyRing::open` never panic;
//! * a parsed Key URI is written back by `to_uri` into a URI that parses to the same value;
//! * base32 that decodes re-encodes to a spelling that decodes to the same bytes;
//! * a normalised code is exactly the requested number of ASCII digits;
//! * a TOTP check that accepts a code never accepts it again once its step is recorded;
//! * `open` never accepts a value that was not sealed under the ring's key (the fuzzer's bytes).

#![no_main]

use libfuzzer_sys::fuzz_target;
use tessera_token::otp::{self, Hotp, KeyUri, OtpParams, OtpSecret, Totp, base32};
use tessera_token::seal::{KeyRing, MasterKey};

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    if let Ok(uri) = KeyUri::parse(&text) {
        let written = uri.to_uri();
        let back = KeyUri::parse(&written)
            .unwrap_or_else(|e| panic!("to_uri output does not parse ({e}): {}", &*written));
        assert!(back == uri, "Key URI round trip changed the value");
    }
    if let Some(bytes) = base32::decode(&text) {
        assert_eq!(base32::decode(&base32::encode(&bytes)), Some(bytes));
    }
    let _ = OtpSecret::from_hex(&text);
    for digits in 6..=8u8 {
        if let Ok(code) = otp::normalize_code(&text, digits) {
            assert_eq!(code.len(), usize::from(digits));
            assert!(code.bytes().all(|b| b.is_ascii_digit()));
        }
    }
    let secret = match OtpSecret::new(data.get(..20).unwrap_or(&[7; 20]).to_vec()) {
        Ok(s) => s,
        Err(_) => return,
    };
    let now = data
        .get(..8)
        .map(|b| i64::from_le_bytes(b.try_into().unwrap_or([0; 8])))
        .unwrap_or(0);
    let totp = Totp::new(secret.clone(), OtpParams::DEFAULT, 30).expect("valid parameters");
    if let Ok(step) = totp.check(&text, now, 2, None) {
        assert!(totp.check(&text, now, 2, Some(step)).is_err(), "replay accepted");
    }
    let hotp = Hotp::new(secret, OtpParams::DEFAULT);
    let next = u64::try_from(now).unwrap_or(0);
    let _ = hotp.check(&text, next, 10);
    let middle = text
        .char_indices()
        .nth(text.chars().count() / 2)
        .map_or(text.len(), |(i, _)| i);
    let (a, b) = text.split_at(middle);
    let _ = hotp.resync(a, b, next, 100);
    let _ = MasterKey::from_text(&text);
    let ring = KeyRing::new(MasterKey::from_bytes(&[9; 32]).expect("key"), vec![]);
    assert!(ring.open(data, b"aad").is_err(), "opened bytes it never sealed");
});
