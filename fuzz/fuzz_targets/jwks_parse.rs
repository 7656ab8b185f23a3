//! `JwkSet::from_json` on arbitrary input, then `KeySet::from_jwks` on what it accepts.
//!
//! Properties:
//! * neither panics (nor does `JwkSet::from_json_or_single`);
//! * a parsed set survives `to_json` → `from_json` unchanged, and the serialization is a fixed
//!   point;
//! * `from_json_or_single` gives the same set whenever `from_json` accepts;
//! * a key set built from it has one key per JWK that is not an encryption key (`"use": "enc"`),
//!   each found by its `kid` with the algorithm the JWK resolves to;
//! * `to_public`, when it succeeds, keeps every key's thumbprint and drops all private material.

#![no_main]

use libfuzzer_sys::fuzz_target;
use tessera_token::{JwkSet, KeySet};

fuzz_target!(|data: &[u8]| {
    let Ok(set) = JwkSet::from_json(data) else {
        let _ = JwkSet::from_json_or_single(data);
        return;
    };

    let json = set.to_json();
    let back = JwkSet::from_json(json.as_bytes())
        .unwrap_or_else(|e| panic!("to_json output does not parse ({e:?}): {json}"));
    assert!(back == set, "JSON round trip changed the set: {json}");
    assert_eq!(back.to_json(), json, "to_json is not a fixed point");

    let either = JwkSet::from_json_or_single(data).expect("from_json_or_single refused a set");
    assert!(either == set, "from_json_or_single gave a different set");

    if let Ok(keys) = KeySet::from_jwks(&set) {
        // Encryption keys (`"use": "enc"`) may sit in a set; the key set skips them.
        let signing: Vec<_> = set.keys.iter().filter(|k| !k.is_encryption_key()).collect();
        assert_eq!(
            keys.len(),
            signing.len(),
            "key set size is not the number of signature keys"
        );
        assert_eq!(keys.is_empty(), signing.is_empty());
        for jwk in signing {
            let kid = jwk.kid().expect("a key set accepted a JWK without kid");
            let key = keys
                .find(kid)
                .expect("a key of the set is not found by its kid");
            assert_eq!(key.kid(), Some(kid));
            assert_eq!(
                Ok(key.algorithm()),
                jwk.algorithm(),
                "key algorithm is not the JWK's"
            );
        }
    }

    if let Ok(public) = set.to_public() {
        assert_eq!(public.keys.len(), set.keys.len());
        for (p, k) in public.keys.iter().zip(&set.keys) {
            assert!(!p.is_private(), "to_public kept private material");
            assert_eq!(
                p.thumbprint(),
                k.thumbprint(),
                "to_public changed a thumbprint"
            );
        }
        let _ = KeySet::from_jwks(&public);
    }
});
