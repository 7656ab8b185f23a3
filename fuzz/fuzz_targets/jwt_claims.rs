//! The part of `tessera_token::jwt::verify` that `jwt_verify` cannot reach: what happens after a
//! good signature. The input is signed here with an HS256 key (as `payload`, or as
//! `header NUL payload` to choose the protected header too), then verified under two policies,
//! and the verdict is compared with an independent model of RFC 7519 / RFC 8725 written with
//! `serde_json::Value`.
//!
//! Properties:
//! * neither `jws::sign` nor `jwt::verify` panics;
//! * `verify` accepts exactly when the model does: strict JSON object (as `insecure_decode`
//!   reads it), header `kid` names the key (and `typ` matches when the policy wants one), numeric
//!   `exp` not past, numeric `nbf` reached, numeric `iat`, string `iss`/`sub`/`jti`, `aud` a
//!   string or array of strings that contains a configured audience (and is absent when none is
//!   configured), `iss` equal to the configured issuer;
//! * an accepted token's `Verified` agrees with that JSON (`exp`, `nbf`, `iat`, `iss`, `sub`,
//!   `jti`, `claims_json`);
//! * `jwt::verify_into` (the single-pass typed path) agrees with `verify` + plain serde_json:
//!   into `serde_json::Value` it accepts exactly when `verify` does and yields the same claims;
//!   into a rich derived type (registered claims as `f64`/`u64`/`Number`/newtype/untagged enum,
//!   externally tagged enums, nested structs, tuples, maps, `char`) and into a type with
//!   `#[serde(flatten)]`, it accepts exactly when `verify` accepts and
//!   `serde_json::from_slice::<T>(payload)` succeeds, with an equal value and an identical
//!   `Verified`.

#![no_main]

use std::collections::BTreeMap;
use std::fmt::Debug;
use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::{Map, Number, Value};
use tessera_token::{Jwk, KeySet, Policy, SigningKey, Verified, VerifyingKey, danger, jws, jwt};

const NOW: u64 = 1_700_000_000;
const ISSUER: &str = "https://issuer.example";
const AUDIENCE: &str = "api";
const TYP: &str = "at+jwt";
const STRICT_LEEWAY: u64 = 0;

/// RFC 7520 §3.5 (the HS256 key of `jwt_verify`), with a short `kid`.
const JWK: &str =
    r#"{"kty":"oct","kid":"k","alg":"HS256","k":"hJtXIZ2uSN5kbQfbtTNWbpdmhkV8FJG-Onbc6mxCcYg"}"#;
const DEFAULT_HEADER: &[u8] = br#"{"alg":"HS256","kid":"k","typ":"at+jwt"}"#;

struct Fixture {
    signer: SigningKey,
    keys: KeySet,
    /// `Policy::new()`: no issuer, no audience, no typ, 60 s leeway.
    lax: Policy,
    /// Issuer, audience and typ required, no leeway.
    strict: Policy,
}

fn fixture() -> &'static Fixture {
    static FIXTURE: OnceLock<Fixture> = OnceLock::new();
    FIXTURE.get_or_init(|| {
        let jwk = Jwk::from_json(JWK.as_bytes()).expect("fixture JWK parses");
        Fixture {
            signer: SigningKey::from_jwk(&jwk).expect("signing key"),
            keys: KeySet::new(vec![VerifyingKey::from_jwk(&jwk).expect("verifying key")])
                .expect("key set"),
            lax: Policy::new(),
            strict: Policy::new()
                .issuer(ISSUER)
                .audience(AUDIENCE)
                .typ(TYP)
                .leeway(STRICT_LEEWAY)
                .expect("leeway"),
        }
    })
}

/// What the policy under test requires, for the model.
struct Want {
    leeway: u64,
    issuer: Option<&'static str>,
    audience: Option<&'static str>,
    typ: Option<&'static str>,
}

fn typ_matches(got: &str, want: &str) -> bool {
    // RFC 7515 §4.1.9: compared case-insensitively; "application/" may be omitted.
    fn strip(t: &str) -> &str {
        match t.get(..12) {
            Some(p) if p.eq_ignore_ascii_case("application/") => &t[12..],
            _ => t,
        }
    }
    strip(got).eq_ignore_ascii_case(strip(want))
}

/// The model: should a token with this (strictly parsed) header and claims be accepted?
fn model_accepts(header: &Map<String, Value>, claims: &Map<String, Value>, want: &Want) -> bool {
    if header.get("kid").and_then(Value::as_str) != Some("k") {
        return false;
    }
    if let Some(typ) = want.typ {
        match header.get("typ").and_then(Value::as_str) {
            Some(t) if typ_matches(t, typ) => {}
            _ => return false,
        }
    }
    let now = NOW as f64;
    let leeway = want.leeway as f64;
    let number = |name: &str| -> Result<Option<f64>, ()> {
        match claims.get(name) {
            None => Ok(None),
            Some(v) => v.as_f64().map(Some).ok_or(()),
        }
    };
    let string = |name: &str| -> Result<Option<&str>, ()> {
        match claims.get(name) {
            None => Ok(None),
            Some(v) => v.as_str().map(Some).ok_or(()),
        }
    };
    let (Ok(exp), Ok(nbf), Ok(_iat)) = (number("exp"), number("nbf"), number("iat")) else {
        return false;
    };
    let (Ok(iss), Ok(_sub), Ok(_jti)) = (string("iss"), string("sub"), string("jti")) else {
        return false;
    };
    let Some(exp) = exp else { return false };
    if now >= exp + leeway {
        return false;
    }
    if nbf.is_some_and(|nbf| now + leeway < nbf) {
        return false;
    }
    if want.issuer.is_some() && iss != want.issuer {
        return false;
    }
    let aud: Option<Vec<&str>> = match claims.get("aud") {
        None => None,
        Some(Value::String(s)) => Some(vec![s.as_str()]),
        Some(Value::Array(items)) => {
            let strings: Option<Vec<&str>> = items.iter().map(Value::as_str).collect();
            match strings {
                Some(s) => Some(s),
                None => return false,
            }
        }
        Some(_) => return false,
    };
    match (aud, want.audience) {
        (None, None) => true,
        (None, Some(_)) => false,
        (Some(list), wanted) => wanted.is_some_and(|w| list.contains(&w)),
    }
}

/// A caller's claims type that touches many `Deserialize` paths of the typed pass.
#[derive(Debug, PartialEq, Deserialize)]
struct Rich {
    exp: f64,
    iat: Option<u64>,
    nbf: Option<Number>,
    sub: Option<String>,
    iss: Option<Box<str>>,
    jti: Option<Wrapped>,
    aud: Option<Aud>,
    roles: Option<Vec<Role>>,
    nested: Option<Nested>,
    pair: Option<(i32, bool)>,
    #[serde(default)]
    flags: BTreeMap<String, bool>,
    ch: Option<char>,
    #[serde(rename = "x-any")]
    any: Option<Value>,
}

#[derive(Debug, PartialEq, Deserialize)]
struct Wrapped(String);

#[derive(Debug, PartialEq, Deserialize)]
#[serde(untagged)]
enum Aud {
    One(String),
    Many(Vec<String>),
}

#[derive(Debug, PartialEq, Deserialize)]
enum Role {
    Admin,
    User(String),
    Pair(u8, u8),
    Named { level: u8 },
}

#[derive(Debug, PartialEq, Deserialize)]
struct Nested {
    a: Option<i64>,
    b: Option<Vec<Nested>>,
    c: Option<Value>,
}

/// A claims type that buffers everything it does not name (`flatten`).
#[derive(Debug, PartialEq, Deserialize)]
struct Flat {
    sub: Option<String>,
    #[serde(flatten)]
    rest: BTreeMap<String, Value>,
}

/// Everything observable about a `Verified`, for comparing two of them.
fn snapshot(v: &Verified) -> impl PartialEq + Debug + '_ {
    (
        v.algorithm(),
        v.payload(),
        v.expires_at().to_bits(),
        v.not_before().map(f64::to_bits),
        v.issued_at().map(f64::to_bits),
        v.issuer(),
        v.subject(),
        v.jwt_id(),
    )
}

/// `verify_into::<T>` must accept exactly when `verify` accepts and plain serde_json can read
/// the payload as `T`, and then give the same value and the same `Verified`.
fn check_typed<T: DeserializeOwned + PartialEq + Debug>(
    token: &str,
    policy: &Policy,
    plain: &Result<Verified, tessera_token::Error>,
) {
    let f = fixture();
    let typed = jwt::verify_into::<T>(token, &f.keys, policy, NOW);
    let expected: Option<T> = plain
        .as_ref()
        .ok()
        .and_then(|v| serde_json::from_slice::<T>(v.payload()).ok());
    match (&typed, expected, plain) {
        (Ok((value, verified)), Some(want), Ok(v)) => {
            assert_eq!(
                value, &want,
                "verify_into gave a different value than serde_json"
            );
            assert_eq!(
                snapshot(verified),
                snapshot(v),
                "verify_into gave a different Verified"
            );
        }
        (Err(_), None, _) => {}
        (typed, expected, plain) => panic!(
            "verify_into::<{}> disagrees: verify_into = {:?}, serde_json = {:?}, verify = {:?}",
            std::any::type_name::<T>(),
            typed.as_ref().map(|(v, _)| v),
            expected,
            plain.as_ref().map(|v| v.claims_json())
        ),
    }
}

fn check_verified(v: &Verified, claims: &Map<String, Value>) {
    let parsed: Value = serde_json::from_str(v.claims_json()).expect("claims_json is not JSON");
    assert_eq!(
        parsed.as_object(),
        Some(claims),
        "claims_json differs from the signed claims"
    );
    let num = |name: &str| claims.get(name).and_then(Value::as_f64).map(f64::to_bits);
    let text = |name: &str| claims.get(name).and_then(Value::as_str);
    assert_eq!(Some(v.expires_at().to_bits()), num("exp"), "exp disagrees");
    assert_eq!(
        v.not_before().map(f64::to_bits),
        num("nbf"),
        "nbf disagrees"
    );
    assert_eq!(v.issued_at().map(f64::to_bits), num("iat"), "iat disagrees");
    assert_eq!(v.issuer(), text("iss"), "iss disagrees");
    assert_eq!(v.subject(), text("sub"), "sub disagrees");
    assert_eq!(v.jwt_id(), text("jti"), "jti disagrees");
}

fuzz_target!(|data: &[u8]| {
    let f = fixture();
    let (header, payload) = match data.iter().position(|&b| b == 0) {
        Some(i) => (&data[..i], &data[i + 1..]),
        None => (DEFAULT_HEADER, data),
    };
    let Ok(token) = jws::sign(&f.signer, header, payload) else {
        return;
    };

    // The model reads what insecure_decode reads: the strict parse, then serde_json::Value.
    let decoded = danger::insecure_decode(&token);
    let parts = decoded
        .as_ref()
        .ok()
        .and_then(|u| Some((u.header.as_object()?, u.claims.as_object()?)));

    let policies = [
        (
            &f.lax,
            Want {
                leeway: jwt::DEFAULT_LEEWAY,
                issuer: None,
                audience: None,
                typ: None,
            },
        ),
        (
            &f.strict,
            Want {
                leeway: STRICT_LEEWAY,
                issuer: Some(ISSUER),
                audience: Some(AUDIENCE),
                typ: Some(TYP),
            },
        ),
    ];
    for (policy, want) in &policies {
        let result = jwt::verify(&token, &f.keys, policy, NOW);
        let expected = parts.is_some_and(|(h, c)| model_accepts(h, c, want));
        assert_eq!(
            result.is_ok(),
            expected,
            "verify and the model disagree (issuer {:?}): verify = {:?}, insecure_decode = {:?}",
            want.issuer,
            result.as_ref().map(|v| v.claims_json()),
            decoded
        );
        if let (Ok(v), Some((_, claims))) = (&result, parts) {
            check_verified(v, claims);
        }
        check_typed::<Value>(&token, policy, &result);
        check_typed::<Rich>(&token, policy, &result);
        check_typed::<Flat>(&token, policy, &result);
    }
});
