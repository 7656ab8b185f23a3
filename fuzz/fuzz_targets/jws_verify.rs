//! `tessera_token::jws::verify` on arbitrary input with one explicitly chosen key: the HS256
//! secret of RFC 7515 Appendix A.1, given the `kid` `rfc7515-a1` (the RFC's token has no `kid`,
//! so it verifies as printed; seeds signed by `fuzz/make-seeds.py` carry this `kid`).
//!
//! Properties:
//! * `verify` never panics (neither does `danger::insecure_decode`);
//! * an accepted token is accepted again with the same payload;
//! * the payload returned is exactly the base64url decoding of the second segment;
//! * when `insecure_decode` also accepts the token, its header has the key's `alg` (and the
//!   key's `kid`, if any) and its claims equal the payload parsed as JSON;
//! * the signature encoding is not malleable: changing any one character of the signature
//!   segment, or appending `=`/whitespace, makes `verify` fail.

#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use serde_json::Value;
use tessera_token::{Jwk, Limits, VerifyingKey, b64, danger, jws};

/// RFC 7515 Appendix A.1.1, with `alg` and a `kid` added.
const JWK: &str = r#"{"kty":"oct","kid":"rfc7515-a1","alg":"HS256",
  "k":"AyM1SysPpbyDfgZld3umj1qzKObwVMkoqQ-EstJQLr_T-1qS0gZH75aKtMN3Yj0iPS4hcgUuTwjAzZr1Z9CAow"}"#;

fn key() -> &'static VerifyingKey {
    static KEY: OnceLock<VerifyingKey> = OnceLock::new();
    KEY.get_or_init(|| {
        let jwk = Jwk::from_json(JWK.as_bytes()).expect("fixture JWK parses");
        VerifyingKey::from_jwk(&jwk).expect("fixture JWK gives a verifying key")
    })
}

const B64URL: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

fn verify(token: &str) -> bool {
    jws::verify(token, key(), &Limits::default()).is_ok()
}

fn check_accepted(token: &str, payload: &[u8]) {
    let again = jws::verify(token, key(), &Limits::default()).expect("verify is not repeatable");
    assert_eq!(
        again, payload,
        "verify gave a different payload the second time"
    );

    let mut segments = token.split('.');
    let (_, second) = (segments.next(), segments.next().expect("three segments"));
    assert_eq!(
        b64::decode(second).as_deref(),
        Some(payload),
        "payload is not segment 2 decoded"
    );

    if let Ok(unverified) = danger::insecure_decode(token) {
        assert_eq!(
            unverified.header["alg"], "HS256",
            "header alg is not the key's"
        );
        if let Some(kid) = unverified.header.get("kid") {
            assert_eq!(kid, "rfc7515-a1", "header kid is not the key's");
        }
        let parsed: Value = serde_json::from_slice(payload).expect("insecure_decode took non-JSON");
        assert_eq!(
            unverified.claims, parsed,
            "insecure_decode saw different claims"
        );
    }

    let sig_at = token.rfind('.').expect("three segments") + 1;
    let sig = &token.as_bytes()[sig_at..];
    let mut changed = token.as_bytes().to_vec();
    for i in 0..sig.len() {
        let alternatives: Vec<u8> = if i + 1 == sig.len() {
            B64URL.iter().copied().filter(|&c| c != sig[i]).collect()
        } else {
            vec![B64URL[(B64URL.iter().position(|&c| c == sig[i]).unwrap_or(0) + 1) % 64]]
        };
        for c in alternatives {
            changed[sig_at + i] = c;
            let s = std::str::from_utf8(&changed).expect("ASCII");
            assert!(!verify(s), "changed signature accepted: {s}");
        }
        changed[sig_at + i] = sig[i];
    }
    for suffix in ["=", "==", " ", "\n", "."] {
        assert!(
            !verify(&format!("{token}{suffix}")),
            "token with {suffix:?} accepted"
        );
    }
}

fuzz_target!(|data: &[u8]| {
    let token = String::from_utf8_lossy(data);
    let result = jws::verify(&token, key(), &Limits::default());
    let _ = danger::insecure_decode(&token);
    if let Ok(payload) = result {
        check_accepted(&token, &payload);
    }
});
