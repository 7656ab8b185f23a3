//! Property tests: no input panics, sign→verify round-trips, and no mutation of a valid token is
//! ever accepted.

use proptest::prelude::*;
use tessera_token::{Culprit, Jwk, JwkSet, Policy, danger, jwt};

use crate::fixtures::{NOW, claims, forge, header, keys};

fn policy() -> Policy {
    Policy::new().issuer("https://id.example").audience("api")
}

/// Raw JSON object text whose members come from the names the verifier interprets, so that
/// duplicates, wrong types and odd values all occur.
pub(crate) fn json_object() -> impl Strategy<Value = String> {
    let name = prop::sample::select(vec![
        "alg", "kid", "typ", "crit", "b64", "jku", "exp", "nbf", "iss", "aud", "x",
    ]);
    let leaf = prop_oneof![
        Just("null".to_owned()),
        any::<bool>().prop_map(|b| b.to_string()),
        any::<i64>().prop_map(|n| n.to_string()),
        any::<f64>().prop_map(|n| if n.is_finite() {
            n.to_string()
        } else {
            "1e999".to_owned()
        }),
        prop::sample::select(vec![
            "HS256",
            "ES256",
            "none",
            "EdDSA",
            "api",
            "https://id.example",
            ""
        ])
        .prop_map(|s| format!("{s:?}")),
        "\\PC{0,12}".prop_map(|s| serde_json::Value::String(s).to_string()),
    ];
    let value = leaf.prop_recursive(4, 24, 4, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..4)
                .prop_map(|v| format!("[{}]", v.join(","))),
            proptest::collection::vec(("[a-z]{1,3}", inner), 0..4).prop_map(|v| {
                format!(
                    "{{{}}}",
                    v.iter()
                        .map(|(k, v)| format!("{k:?}:{v}"))
                        .collect::<Vec<_>>()
                        .join(",")
                )
            }),
        ]
    });
    proptest::collection::vec((name, value), 0..8).prop_map(|members| {
        format!(
            "{{{}}}",
            members
                .iter()
                .map(|(k, v)| format!("{k:?}:{v}"))
                .collect::<Vec<_>>()
                .join(",")
        )
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_strings_never_panic_and_blame_the_token(token in ".{0,400}") {
        let set = keys().set();
        if let Err(e) = jwt::verify(&token, &set, &policy(), NOW) {
            prop_assert_eq!(e.culprit(), Culprit::Token);
        }
        let _ = danger::insecure_decode(&token);
    }

    #[test]
    fn token_shaped_garbage_never_panics(h in "[A-Za-z0-9_-]{0,80}", p in "[A-Za-z0-9_-]{0,80}", s in "[A-Za-z0-9_-]{0,90}") {
        let token = format!("{h}.{p}.{s}");
        prop_assert!(jwt::verify(&token, &keys().set(), &policy(), NOW).is_err());
    }

    #[test]
    fn arbitrary_json_headers_and_payloads_never_panic(header in json_object(), payload in json_object()) {
        let key = keys().signer("HS256");
        let _ = jwt::verify(&forge(&header, &payload, &key), &keys().set(), &policy(), NOW);
    }

    #[test]
    fn arbitrary_bytes_as_keys_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
        let _ = Jwk::from_json(&bytes);
        let _ = JwkSet::from_json(&bytes);
        if let Ok(text) = std::str::from_utf8(&bytes) {
            let _ = Jwk::from_pem(text, None, None);
        }
    }

    #[test]
    fn sign_then_verify_round_trips(
        sub in "\\PC{0,40}",
        extra in proptest::collection::btree_map("[a-z]{1,8}", "\\PC{0,20}", 0..6),
        kid in prop::sample::select(vec!["HS256", "RS256", "ES256", "EdDSA"]),
        ttl in 1u64..100_000,
    ) {
        let key = keys().signer(kid);
        let mut claims = serde_json::Map::new();
        for (k, v) in &extra {
            claims.insert(format!("x_{k}"), v.clone().into());
        }
        claims.insert("sub".into(), sub.clone().into());
        claims.insert("iss".into(), "https://id.example".into());
        claims.insert("aud".into(), serde_json::json!(["other", "api"]));
        claims.insert("exp".into(), (NOW + ttl).into());
        let token = jwt::sign(&key, &claims).expect("sign");
        let verified = jwt::verify(&token, &keys().set(), &policy(), NOW).expect("verify");
        prop_assert_eq!(verified.subject(), Some(sub.as_str()));
        let back: serde_json::Map<String, serde_json::Value> = verified.claims().expect("claims");
        prop_assert_eq!(back, claims);
    }

    #[test]
    fn no_single_character_change_is_accepted(
        kid in prop::sample::select(vec!["HS256", "ES256", "EdDSA"]),
        index in any::<prop::sample::Index>(),
        replacement in "[A-Za-z0-9_.=+/ -]",
    ) {
        let key = keys().signer(kid);
        let token = forge(&header(&key), &claims(), &key);
        let i = index.index(token.len());
        let mut mutated = token.clone();
        mutated.replace_range(i..=i, &replacement);
        prop_assume!(mutated != token);
        prop_assert!(jwt::verify(&mutated, &keys().set(), &policy(), NOW).is_err());
    }
}
