//! RFC test vectors, read from `tests/vectors/` (see the README there for their origin).

use std::path::{Path, PathBuf};

use serde_json::Value;
use tessera_token::{Error, Jwk, Limits, SigningKey, VerifyingKey, jws};

fn vectors(dir: &str) -> Vec<(PathBuf, Value)> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/vectors")
        .join(dir);
    let mut files: Vec<_> = std::fs::read_dir(&root)
        .expect("vector directory")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    files.sort();
    files
        .into_iter()
        .map(|p| {
            let v = serde_json::from_slice(&std::fs::read(&p).expect("read")).expect("json");
            (p, v)
        })
        .collect()
}

/// Checks one signature vector: verify, payload, and (when deterministic) exact re-signing.
fn check(path: &Path, v: &Value) {
    let name = path.display();
    let token = v["token"].as_str().expect("token");
    let jwk =
        Jwk::from_json(v["jwk"].to_string().as_bytes()).unwrap_or_else(|e| panic!("{name}: {e}"));
    let public = jwk.to_public().unwrap_or_else(|_| jwk.clone());
    for key in [&jwk, &public] {
        let verifier = VerifyingKey::from_jwk(key).unwrap_or_else(|e| panic!("{name}: {e}"));
        let payload = jws::verify(token, &verifier, &Limits::default())
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(
            payload,
            v["payload_text"].as_str().expect("payload").as_bytes(),
            "{name}"
        );
    }
    let signer = SigningKey::from_jwk(&jwk).unwrap_or_else(|e| panic!("{name}: {e}"));
    let (header_b64, rest) = token.split_once('.').expect("dot");
    let header = tessera_token::b64::decode(header_b64).expect("header b64");
    let payload = v["payload_text"].as_str().expect("payload").as_bytes();
    let resigned = jws::sign(&signer, &header, payload).unwrap_or_else(|e| panic!("{name}: {e}"));
    if v["deterministic"].as_bool() == Some(true) {
        assert_eq!(resigned, token, "{name}: deterministic re-signing differs");
    } else {
        assert!(
            resigned.starts_with(&token[..token.len() - rest.len()]),
            "{name}"
        );
        let verifier = VerifyingKey::from_jwk(&public).expect("verifier");
        jws::verify(&resigned, &verifier, &Limits::default())
            .unwrap_or_else(|e| panic!("{name}: {e}"));
    }
}

#[test]
fn rfc7515_appendix_a() {
    let all = vectors("rfc7515");
    assert_eq!(all.len(), 5);
    let (mut checked, mut refused) = (0, 0);
    for (path, v) in &all {
        if v["expect"] == "reject" {
            // A.5: the unsecured JWS must be refused with any key.
            let a1 = &all
                .iter()
                .find(|(p, _)| p.ends_with("a1_hs256.json"))
                .expect("a1")
                .1;
            let key = VerifyingKey::from_jwk(
                &Jwk::from_json(a1["jwk"].to_string().as_bytes()).expect("jwk"),
            )
            .expect("key");
            let token = v["token"].as_str().expect("token");
            assert_eq!(
                jws::verify(token, &key, &Limits::default()),
                Err(Error::AlgorithmNone)
            );
            refused += 1;
        } else {
            check(path, v);
            checked += 1;
        }
    }
    // A.1-A.4 verified and re-signed, A.5 refused: a vector file that stops matching either
    // branch (a renamed field, a lost file) fails here instead of passing unseen.
    assert_eq!((checked, refused), (4, 1));
}

#[test]
fn rfc7520_section_4() {
    let all = vectors("rfc7520");
    assert_eq!(all.len(), 4);
    let mut checked = 0;
    for (path, v) in &all {
        check(path, v);
        checked += 1;
    }
    assert_eq!(checked, 4);
}

#[test]
fn rfc8037_ed25519() {
    let mut checked = 0;
    for (path, v) in vectors("rfc8037") {
        if v.get("token").is_some() {
            check(&path, &v);
            checked += 1;
        }
    }
    // A.4, the one signature vector of RFC 8037 (A.3 is a thumbprint, checked below).
    assert_eq!(
        checked, 1,
        "RFC 8037 A.4 not found in tests/vectors/rfc8037"
    );
}

#[test]
fn rfc7638_and_rfc8037_thumbprints() {
    let mut n = 0;
    for dir in ["rfc7638", "rfc8037"] {
        for (path, v) in vectors(dir) {
            if let Some(want) = v.get("thumbprint_sha256") {
                let jwk = Jwk::from_json(v["jwk"].to_string().as_bytes()).expect("jwk");
                assert_eq!(
                    jwk.thumbprint(),
                    want.as_str().expect("str"),
                    "{}",
                    path.display()
                );
                n += 1;
            }
        }
    }
    assert_eq!(n, 2);
}
