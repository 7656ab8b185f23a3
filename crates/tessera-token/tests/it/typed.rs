//! `jwt::verify_into`: one pass that both enforces the strict rules and fills the caller's type.
//! It must take exactly the decisions `jwt::verify` takes.

use std::collections::BTreeMap;

use proptest::prelude::*;
use serde::Deserialize;
use tessera_token::{Error, JsonReason, Part, Policy, jwt};

use crate::fixtures::{NOW, forge, header, keys};

fn policy() -> Policy {
    Policy::new().issuer("https://id.example").audience("api")
}

#[derive(Debug, Deserialize, PartialEq)]
struct Claims {
    iss: String,
    sub: String,
    aud: Vec<String>,
    exp: u64,
    #[serde(default)]
    nbf: Option<i64>,
    scope: String,
    roles: Vec<String>,
    profile: Profile,
    kind: Kind,
}

#[derive(Debug, Deserialize, PartialEq)]
struct Profile {
    email: String,
    #[serde(default)]
    extra: BTreeMap<String, u32>,
}

#[derive(Debug, Deserialize, PartialEq)]
#[serde(rename_all = "lowercase")]
enum Kind {
    Human { name: String },
    Robot(u8),
    Service,
}

fn payload(extra: &str) -> String {
    format!(
        r#"{{"iss":"https://id.example","sub":"ada","aud":["api","web"],"exp":{},"nbf":{},"scope":"read write","roles":["admin"],"profile":{{"email":"ada@example.com","extra":{{"a":1}}}},"kind":{{"human":{{"name":"Ada"}}}}{extra}}}"#,
        NOW + 600,
        NOW - 10
    )
}

#[test]
fn fills_a_typed_struct_in_one_pass() {
    let hs = keys().signer("HS256");
    let token = forge(
        &header(&hs),
        &payload(r#","unknown":{"deep":[1,2,{"x":null}]}"#),
        &hs,
    );
    let (claims, verified): (Claims, _) =
        jwt::verify_into(&token, &keys().set(), &policy(), NOW).unwrap();
    assert_eq!(claims.sub, "ada");
    assert_eq!(claims.aud, ["api", "web"]);
    assert_eq!(claims.exp, NOW + 600);
    assert_eq!(claims.nbf, Some((NOW - 10) as i64));
    assert_eq!(claims.profile.extra["a"], 1);
    assert_eq!(claims.kind, Kind::Human { name: "Ada".into() });
    assert_eq!(verified.subject(), Some("ada"));
    assert_eq!(verified.expires_at(), (NOW + 600) as f64);
    // The same token through the two-pass path gives the same claims.
    let two_pass: Claims = jwt::verify(&token, &keys().set(), &policy(), NOW)
        .unwrap()
        .claims()
        .unwrap();
    assert_eq!(two_pass, claims);
}

#[test]
fn strict_rules_hold_inside_members_the_type_ignores_or_reads() {
    let hs = keys().signer("HS256");
    let dup = Error::Json {
        part: Part::Payload,
        reason: JsonReason::DuplicateMember,
    };
    for extra in [
        r#","unknown":{"a":1,"a":2}"#,
        r#","unknown":[{"x":1,"\u0078":2}]"#,
        r#","sub":"eve""#,
    ] {
        let token = forge(&header(&hs), &payload(extra), &hs);
        assert_eq!(
            jwt::verify_into::<Claims>(&token, &keys().set(), &policy(), NOW).unwrap_err(),
            dup,
            "{extra}"
        );
        assert_eq!(
            jwt::verify(&token, &keys().set(), &policy(), NOW).unwrap_err(),
            dup,
            "{extra}"
        );
    }
    // Inside the caller's own nested types too.
    let inner = payload("").replace(r#""extra":{"a":1}"#, r#""extra":{"a":1,"a":2}"#);
    let token = forge(&header(&hs), &inner, &hs);
    assert_eq!(
        jwt::verify_into::<Claims>(&token, &keys().set(), &policy(), NOW).unwrap_err(),
        dup
    );
    let deep = payload(&format!(
        r#","unknown":{}1{}"#,
        "[".repeat(16),
        "]".repeat(16)
    ));
    let token = forge(&header(&hs), &deep, &hs);
    assert_eq!(
        jwt::verify_into::<Claims>(&token, &keys().set(), &policy(), NOW).unwrap_err(),
        Error::Json {
            part: Part::Payload,
            reason: JsonReason::TooDeep
        }
    );
}

#[test]
fn policy_rules_and_shape_errors() {
    let hs = keys().signer("HS256");
    let expired = payload("").replace(
        &format!(r#""exp":{}"#, NOW + 600),
        &format!(r#""exp":{}"#, NOW - 600),
    );
    let token = forge(&header(&hs), &expired, &hs);
    assert_eq!(
        jwt::verify_into::<Claims>(&token, &keys().set(), &policy(), NOW).unwrap_err(),
        Error::Expired
    );
    let wrong_type = payload("").replace(r#""sub":"ada""#, r#""sub":5"#);
    let token = forge(&header(&hs), &wrong_type, &hs);
    assert_eq!(
        jwt::verify_into::<Claims>(&token, &keys().set(), &policy(), NOW).unwrap_err(),
        Error::ClaimType { name: "sub" }
    );
    let missing_field = payload("").replace(r#""scope":"read write","#, "");
    let token = forge(&header(&hs), &missing_field, &hs);
    assert_eq!(
        jwt::verify_into::<Claims>(&token, &keys().set(), &policy(), NOW).unwrap_err(),
        Error::ClaimsShape
    );
    // A single-string aud reaches a String field as a string.
    #[derive(Deserialize)]
    struct One {
        aud: String,
    }
    let one = format!(
        r#"{{"iss":"https://id.example","aud":"api","exp":{}}}"#,
        NOW + 60
    );
    let token = forge(&header(&hs), &one, &hs);
    assert_eq!(
        jwt::verify_into::<One>(&token, &keys().set(), &policy(), NOW)
            .unwrap()
            .0
            .aud,
        "api"
    );
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    /// The one-pass and two-pass paths take the same decision on arbitrary payloads.
    #[test]
    fn one_pass_agrees_with_verify(payload in crate::props::json_object()) {
        let hs = keys().signer("HS256");
        let token = forge(&header(&hs), &payload, &hs);
        let lenient = Policy::new();
        let a = jwt::verify(&token, &keys().set(), &lenient, NOW).map(|v| v.claims::<serde_json::Value>().ok());
        let b = jwt::verify_into::<serde_json::Value>(&token, &keys().set(), &lenient, NOW).map(|(v, _)| Some(v));
        prop_assert_eq!(a, b);
    }
}
