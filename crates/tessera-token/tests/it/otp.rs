//! HOTP and TOTP against the RFC vectors in `tests/vectors/rfc4226` and `rfc6238`, and
//! property tests of the OTP parsers (base32, `otpauth://` URIs, typed codes).

use std::path::Path;

use proptest::prelude::*;
use serde_json::Value;
use tessera_token::otp::{
    self, Hotp, KeyUri, OtpAlgorithm, OtpKind, OtpParams, OtpSecret, Totp, base32,
};

fn vector(name: &str) -> Value {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/vectors")
        .join(name);
    serde_json::from_slice(&std::fs::read(&path).expect("read vector")).expect("json")
}

#[test]
fn rfc4226_appendix_d() {
    let v = vector("rfc4226/appendix_d.json");
    let secret = OtpSecret::new(v["secret_ascii"].as_str().unwrap().as_bytes().to_vec()).unwrap();
    let params = OtpParams::new(
        OtpAlgorithm::parse(v["algorithm"].as_str().unwrap()).unwrap(),
        6,
    )
    .unwrap();
    let hotp = Hotp::new(secret.clone(), params);
    let cases = v["cases"].as_array().unwrap();
    assert_eq!(cases.len(), 10);
    for case in cases {
        let counter = case["counter"].as_u64().unwrap();
        let code = case["hotp"].as_str().unwrap();
        let truncated = case["truncated_dec"].as_u64().unwrap();
        assert_eq!(hotp.code(counter), code, "counter {counter}");
        // The 31-bit truncation itself: the code is its value modulo 10^6.
        assert_eq!(
            u64::from(otp::hotp_value(&secret, counter, params)),
            truncated % 1_000_000
        );
        assert_eq!(
            u64::from_str_radix(case["truncated_hex"].as_str().unwrap(), 16).unwrap(),
            truncated
        );
        assert_eq!(hotp.check(code, 0, 10), Ok(counter));
    }
}

#[test]
fn rfc6238_appendix_b() {
    let v = vector("rfc6238/appendix_b.json");
    let period = u32::try_from(v["period"].as_u64().unwrap()).unwrap();
    let digits = u8::try_from(v["digits"].as_u64().unwrap()).unwrap();
    let cases = v["cases"].as_array().unwrap();
    assert_eq!(cases.len(), 18);
    for case in cases {
        let mode = case["mode"].as_str().unwrap();
        let alg = OtpAlgorithm::parse(mode).unwrap();
        let seed = v["seeds_ascii"][mode].as_str().unwrap();
        let totp = Totp::new(
            OtpSecret::new(seed.as_bytes().to_vec()).unwrap(),
            OtpParams::new(alg, digits).unwrap(),
            period,
        )
        .unwrap();
        let time = case["time"].as_i64().unwrap();
        let step = u64::from_str_radix(case["step_hex"].as_str().unwrap(), 16).unwrap();
        let code = case["totp"].as_str().unwrap();
        assert_eq!(totp.step_at(time), Some(step), "{mode} at {time}");
        assert_eq!(totp.code_at(time).unwrap(), code, "{mode} at {time}");
        assert_eq!(totp.check(code, time, 0, None), Ok(step));
        assert_eq!(
            totp.check(code, time, 1, Some(step)),
            Err(otp::OtpError::Replayed)
        );
    }
}

fn any_params() -> impl Strategy<Value = OtpParams> {
    (
        prop_oneof![
            Just(OtpAlgorithm::Sha1),
            Just(OtpAlgorithm::Sha256),
            Just(OtpAlgorithm::Sha512)
        ],
        6u8..=8,
    )
        .prop_map(|(alg, digits)| OtpParams::new(alg, digits).unwrap())
}

proptest! {
    #[test]
    fn base32_round_trips(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
        let text = base32::encode(&bytes);
        prop_assert_eq!(base32::decode(&text), Some(bytes.clone()));
        prop_assert_eq!(base32::decode(&text.to_lowercase()), Some(bytes));
    }

    #[test]
    fn base32_decode_never_panics(text in ".{0,300}") {
        let _ = base32::decode(&text);
    }

    #[test]
    fn key_uri_round_trips(
        secret in proptest::collection::vec(any::<u8>(), 16..80),
        params in any_params(),
        issuer in proptest::option::of("[^:\\p{Cc}]{1,40}"),
        account in "[^ :\\p{Cc}][^:\\p{Cc}]{0,40}",
        totp in any::<bool>(),
        n in 1u32..=300,
    ) {
        let uri = KeyUri {
            kind: if totp { OtpKind::Totp { period: n } } else { OtpKind::Hotp { counter: u64::from(n) } },
            issuer,
            account,
            secret: OtpSecret::new(secret).unwrap(),
            params,
        };
        prop_assert_eq!(KeyUri::parse(&uri.to_uri()), Ok(uri));
    }

    #[test]
    fn key_uri_parse_never_panics(text in "(otpauth://(totp|hotp)/)?.{0,200}") {
        let _ = KeyUri::parse(&text);
    }

    #[test]
    fn totp_accepts_its_own_codes_once(
        secret in proptest::collection::vec(any::<u8>(), 16..64),
        params in any_params(),
        now in 0i64..4_000_000_000,
        offset in -1i64..=1,
    ) {
        let totp = Totp::new(OtpSecret::new(secret).unwrap(), params, 30).unwrap();
        let code = totp.code_at(now + offset * 30).unwrap();
        let step = totp.check(&code, now, 1, None).unwrap();
        prop_assert!(totp.check(&code, now, 1, Some(step)).is_err());
    }

    #[test]
    fn code_checks_never_panic(code in ".{0,40}", now in any::<i64>(), next in any::<u64>()) {
        let secret = OtpSecret::new(vec![7; 20]).unwrap();
        let totp = Totp::new(secret.clone(), OtpParams::DEFAULT, 30).unwrap();
        let _ = totp.check(&code, now, 5, None);
        let _ = Hotp::new(secret, OtpParams::DEFAULT).check(&code, next, 10);
    }
}
