//! `tessera_token::jwt::verify` on arbitrary input, against a fixed key set holding one key for
//! each of HS256, ES256, ES512, EdDSA and RS256 (all from the RFC vectors in
//! `crates/tessera-token/tests/vectors/`), under `Policy::new()` at a fixed `now`.
//!
//! Properties:
//! * `verify` never panics (neither does `danger::insecure_decode`);
//! * an accepted token is accepted again with an identical `Verified`;
//! * `Verified::claims_json()` is a JSON object with a numeric `exp`, and every accessor agrees
//!   with that JSON (`exp`, `nbf`, `iat`, `iss`, `sub`, `jti`);
//! * whenever `verify` accepts, `insecure_decode` accepts too, with the same claims, and the
//!   header names the key's `alg` and `kid` (the two parse paths agree);
//! * the accepted token also passes `jws::verify` with the key its `kid` names, with the same
//!   payload;
//! * the signature encoding is not malleable: changing any one character of the signature
//!   segment, or appending `=`/whitespace, makes `verify` fail.
//!
//! Only inputs that carry a valid signature reach the claims checks; the seed corpus
//! (`fuzz/corpus/jwt_verify/seed-*`, from `fuzz/make-seeds.py`) holds such tokens.

#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use serde_json::Value;
use tessera_token::{JwkSet, KeySet, Limits, Policy, Verified, danger, jws, jwt};

/// The fixed clock: 2023-11-14T22:13:20Z. Seed tokens expire at 2_000_000_000.
const NOW: u64 = 1_700_000_000;

/// Public halves (and the HMAC secret) of RFC vector keys. Each `kid` is the RFC's where it has
/// one, otherwise a name given here; `fuzz/make-seeds.py` signs seed tokens with the matching
/// private keys and checks that this list is still in step with it.
const JWKS: &str = r#"{"keys":[
  {"kty":"oct","kid":"018c0ae5-4d9b-471b-bfd6-eef314bc7037","use":"sig","alg":"HS256",
   "k":"hJtXIZ2uSN5kbQfbtTNWbpdmhkV8FJG-Onbc6mxCcYg"},
  {"kty":"EC","crv":"P-256","kid":"rfc7515-a3-es256","alg":"ES256",
   "x":"f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU",
   "y":"x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0"},
  {"kty":"EC","crv":"P-521","kid":"bilbo.baggins@hobbiton.example","use":"sig","alg":"ES512",
   "x":"AHKZLLOsCOzz5cY97ewNUajB957y-C-U88c3v13nmGZx6sYl_oJXu9A5RkTKqjqvjyekWF-7ytDyRXYgCF5cj0Kt",
   "y":"AdymlHvOiLxXkEhayXQnNCvDX4h9htZaCJN34kfmC6pV5OhQHiraVySsUdaQkAgDPrwQrJmbnX9cwlGfP-HqHZR1"},
  {"kty":"OKP","crv":"Ed25519","kid":"rfc8037-a1-ed25519","alg":"EdDSA",
   "x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"},
  {"kty":"RSA","kid":"rfc7515-a2-rs256","alg":"RS256","e":"AQAB",
   "n":"ofgWCuLjybRlzo0tZWJjNiuSfb4p4fAkd_wWJcyQoTbji9k0l8W26mPddxHmfHQp-Vaw-4qPCJrcS2mJPMEzP1Pt0Bm4d4QlL-yRT-SFd2lZS-pCgNMsD1W_YpRPEwOWvG6b32690r2jZ47soMZo9wGzjb_7OMg0LOL-bSf63kpaSHSXndS5z5rexMdbBYUsLA9e-KXBdQOS-UTo7WTBEMa2R2CapHg665xsmtdVMTBQY4uDZlxvb3qCo5ZwKh9kG4LT6_I5IhlJH7aGhyxXFvUK-DWNmoudF8NAco9_h9iaGNj8q2ethFkMLs91kzk2PAcDTW9gb54h4FRWyuXpoQ"}
]}"#;

struct Fixture {
    keys: KeySet,
    policy: Policy,
}

fn fixture() -> &'static Fixture {
    static FIXTURE: OnceLock<Fixture> = OnceLock::new();
    FIXTURE.get_or_init(|| {
        let set = JwkSet::from_json(JWKS.as_bytes()).expect("fixture JWKS parses");
        let keys = KeySet::from_jwks(&set).expect("fixture JWKS gives a key set");
        assert_eq!(keys.len(), 5);
        Fixture {
            keys,
            policy: Policy::new(),
        }
    })
}

const B64URL: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/// Everything observable about a `Verified`, for comparing two of them.
fn snapshot(v: &Verified) -> impl PartialEq + std::fmt::Debug + '_ {
    (
        v.algorithm(),
        v.payload(),
        v.claims_json(),
        v.expires_at().to_bits(),
        v.not_before().map(f64::to_bits),
        v.issued_at().map(f64::to_bits),
        v.issuer(),
        v.subject(),
        v.jwt_id(),
    )
}

fn check_accepted(token: &str, v: &Verified) {
    let f = fixture();

    let again = jwt::verify(token, &f.keys, &f.policy, NOW).expect("verify is not repeatable");
    assert_eq!(
        snapshot(v),
        snapshot(&again),
        "verify gave a different result the second time"
    );

    // The claims: a JSON object with a numeric `exp`, matching the accessors.
    assert_eq!(v.claims_json().as_bytes(), v.payload());
    let claims: Value = serde_json::from_str(v.claims_json()).expect("claims_json is not JSON");
    let obj = claims
        .as_object()
        .expect("claims_json is not a JSON object");
    let exp = obj
        .get("exp")
        .and_then(Value::as_f64)
        .expect("accepted token without numeric exp");
    assert_eq!(
        exp.to_bits(),
        v.expires_at().to_bits(),
        "expires_at disagrees with the JSON"
    );
    let leeway = jwt::DEFAULT_LEEWAY as f64;
    assert!((NOW as f64) < exp + leeway, "expired token accepted");
    if let Some(nbf) = v.not_before() {
        assert!(NOW as f64 + leeway >= nbf, "token used before nbf accepted");
    }
    let num = |name: &str| obj.get(name).and_then(Value::as_f64).map(f64::to_bits);
    let text = |name: &str| obj.get(name).and_then(Value::as_str);
    assert_eq!(
        v.not_before().map(f64::to_bits),
        num("nbf"),
        "nbf disagrees"
    );
    assert_eq!(v.issued_at().map(f64::to_bits), num("iat"), "iat disagrees");
    assert_eq!(v.issuer(), text("iss"), "iss disagrees");
    assert_eq!(v.subject(), text("sub"), "sub disagrees");
    assert_eq!(v.jwt_id(), text("jti"), "jti disagrees");
    assert!(
        obj.get("aud").is_none(),
        "aud accepted without a configured audience"
    );
    let typed: serde_json::Map<String, Value> = v.claims().expect("claims::<Map> failed");
    assert_eq!(&typed, obj);

    // The insecure path must accept what the verifying path accepted, and see the same thing.
    let unverified =
        danger::insecure_decode(token).expect("verify accepted, insecure_decode refused");
    assert_eq!(
        unverified.claims, claims,
        "insecure_decode saw different claims"
    );
    assert_eq!(
        unverified.header["alg"],
        v.algorithm().as_str(),
        "header alg is not the key's"
    );
    let kid = unverified.header["kid"]
        .as_str()
        .expect("accepted token without a string kid");
    let key = f.keys.find(kid).expect("accepted token names no key");
    assert_eq!(key.algorithm(), v.algorithm());

    // Plain JWS verification with the named key agrees.
    let payload = jws::verify(token, key, &Limits::default()).expect("jws::verify refused a JWT");
    assert_eq!(
        payload,
        v.payload(),
        "jws::verify returned a different payload"
    );

    // Non-malleability of the signature segment.
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
            assert!(
                jwt::verify(s, &f.keys, &f.policy, NOW).is_err(),
                "changed signature accepted: {s}"
            );
        }
        changed[sig_at + i] = sig[i];
    }
    for suffix in ["=", "==", " ", "\n", "."] {
        let s = format!("{token}{suffix}");
        assert!(
            jwt::verify(&s, &f.keys, &f.policy, NOW).is_err(),
            "token with {suffix:?} accepted"
        );
    }
}

fuzz_target!(|data: &[u8]| {
    let f = fixture();
    let token = String::from_utf8_lossy(data);
    let verified = jwt::verify(&token, &f.keys, &f.policy, NOW);
    let decoded = danger::insecure_decode(&token);
    if let Ok(v) = &verified {
        assert!(
            decoded.is_ok(),
            "verify accepted, insecure_decode refused: {decoded:?}"
        );
        check_accepted(&token, v);
    }
});
