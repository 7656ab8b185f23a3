//! Key rules: which JWKs are accepted, how `alg` is resolved, and import/export round trips.

use tessera_token::{
    Algorithm, Error, Jwk, JwkSet, KeyError, KeySet, Policy, SigningKey, VerifyingKey, b64, jwt,
};

fn parse(json: &str) -> Result<Jwk, Error> {
    Jwk::from_json(json.as_bytes())
}

fn verifying(json: &str) -> Result<VerifyingKey, Error> {
    VerifyingKey::from_jwk(&parse(json)?)
}

fn ec_public() -> Jwk {
    Jwk::generate(Algorithm::ES256, Some("ec".into()))
        .expect("gen")
        .to_public()
        .expect("public")
}

#[test]
fn alg_is_inferred_only_where_unambiguous() {
    let mut ec = serde_json::from_str::<serde_json::Value>(&ec_public().to_json()).expect("json");
    ec.as_object_mut().expect("obj").remove("alg");
    assert_eq!(
        verifying(&ec.to_string()).expect("ec").algorithm(),
        Algorithm::ES256
    );

    let ed = Jwk::generate(Algorithm::EdDSA, None)
        .expect("gen")
        .to_public()
        .expect("public");
    let mut ed = serde_json::from_str::<serde_json::Value>(&ed.to_json()).expect("json");
    ed.as_object_mut().expect("obj").remove("alg");
    assert_eq!(
        verifying(&ed.to_string()).expect("okp").algorithm(),
        Algorithm::EdDSA
    );

    let oct = format!(
        r#"{{"kty":"oct","kid":"h","k":"{}"}}"#,
        b64::encode([7u8; 32])
    );
    assert_eq!(
        verifying(&oct).unwrap_err(),
        Error::Key(KeyError::AmbiguousAlgorithm)
    );
    let rsa = Jwk::generate(Algorithm::RS256, None)
        .expect("gen")
        .to_public()
        .expect("public");
    let mut rsa = serde_json::from_str::<serde_json::Value>(&rsa.to_json()).expect("json");
    rsa.as_object_mut().expect("obj").remove("alg");
    assert_eq!(
        verifying(&rsa.to_string()).unwrap_err(),
        Error::Key(KeyError::AmbiguousAlgorithm)
    );
}

#[test]
fn alg_must_fit_the_key_type_and_curve() {
    let ec = ec_public().to_json();
    for (from, to) in [
        (r#""alg":"ES256""#, r#""alg":"ES384""#),
        (r#""alg":"ES256""#, r#""alg":"RS256""#),
        (r#""alg":"ES256""#, r#""alg":"HS256""#),
    ] {
        let bad = ec.replace(from, to);
        assert!(
            matches!(parse(&bad).unwrap_err(), Error::Key(KeyError::Mismatch(_))),
            "{to}"
        );
    }
    assert_eq!(
        parse(&ec.replace(r#""alg":"ES256""#, r#""alg":"none""#)).unwrap_err(),
        Error::Key(KeyError::Unsupported("alg"))
    );
}

#[test]
fn short_hmac_secrets_are_refused() {
    for (alg, min) in [("HS256", 32), ("HS384", 48), ("HS512", 64)] {
        let short = format!(
            r#"{{"kty":"oct","kid":"h","alg":"{alg}","k":"{}"}}"#,
            b64::encode(vec![1u8; min - 1])
        );
        assert_eq!(
            verifying(&short).unwrap_err(),
            Error::Key(KeyError::HmacTooShort { min })
        );
        assert_eq!(
            SigningKey::from_jwk(&parse(&short).expect("parse")).unwrap_err(),
            Error::Key(KeyError::HmacTooShort { min })
        );
        let ok = format!(
            r#"{{"kty":"oct","kid":"h","alg":"{alg}","k":"{}"}}"#,
            b64::encode(vec![1u8; min])
        );
        verifying(&ok).expect("full-length secret");
    }
}

#[test]
fn rsa_keys_under_2048_bits_are_refused() {
    let mut n = vec![0xc5u8; 128];
    n[127] |= 1;
    let small = format!(
        r#"{{"kty":"RSA","kid":"r","alg":"RS256","n":"{}","e":"AQAB"}}"#,
        b64::encode(&n)
    );
    assert_eq!(
        verifying(&small).unwrap_err(),
        Error::Key(KeyError::RsaSize { bits: 1024 })
    );
    // 2047 bits: 256 bytes whose top bit is clear.
    let mut n = vec![0x45u8; 256];
    n[255] |= 1;
    let almost = format!(
        r#"{{"kty":"RSA","kid":"r","alg":"PS256","n":"{}","e":"AQAB"}}"#,
        b64::encode(&n)
    );
    assert_eq!(
        verifying(&almost).unwrap_err(),
        Error::Key(KeyError::RsaSize { bits: 2047 })
    );
}

#[test]
fn use_and_key_ops_are_honoured() {
    let ec = ec_public().to_json();
    let enc = ec.replacen('{', r#"{"use":"enc","#, 1);
    assert_eq!(verifying(&enc).unwrap_err(), Error::Key(KeyError::Usage));
    let sign_only = ec.replacen('{', r#"{"key_ops":["sign"],"#, 1);
    assert_eq!(
        verifying(&sign_only).unwrap_err(),
        Error::Key(KeyError::Usage)
    );
    let verify_ok = ec.replacen('{', r#"{"use":"sig","key_ops":["verify"],"#, 1);
    verifying(&verify_ok).expect("sig/verify allowed");
}

#[test]
fn malformed_key_material_is_refused() {
    let ec = ec_public();
    let json = ec.to_json();
    let v: serde_json::Value = serde_json::from_str(&json).expect("json");
    let x = v["x"].as_str().expect("x");
    for (bad, why) in [
        (json.replace(x, &x[..x.len() - 2]), "short coordinate"),
        (json.replace(x, &format!("{x}=")), "padded base64"),
        (
            json.replace(r#""kty":"EC""#, r#""kty":"ec""#),
            "kty is case-sensitive",
        ),
        (
            json.replace(r#""crv":"P-256""#, r#""crv":"secp256k1""#),
            "unsupported curve",
        ),
        (json.replacen('{', r#"{"kty":"EC","#, 1), "duplicate member"),
        (
            r#"{"kty":"OKP","crv":"X25519","x":"AAAA"}"#.to_owned(),
            "X25519 is not a signature key",
        ),
        (
            r#"{"kty":"RSA","n":"AQAB","e":"AQAB","d":"AQAB"}"#.to_owned(),
            "RSA d without CRT members",
        ),
        (
            r#"{"kty":"RSA","n":"AQAB","e":"AQAB","oth":[]}"#.to_owned(),
            "multi-prime",
        ),
        (r#"{"kty":"oct","k":""}"#.to_owned(), "empty secret"),
        (r#"[]"#.to_owned(), "not an object"),
        (r#"{"kty":7}"#.to_owned(), "wrong type"),
    ] {
        assert!(parse(&bad).is_err(), "{why}");
    }
    // A point that is not on the curve parses as data but is refused as a key.
    let off_curve = json.replace(x, &b64::encode([0x11u8; 32]));
    assert_eq!(
        verifying(&off_curve).unwrap_err(),
        Error::Key(KeyError::Invalid("EC point is not on the curve"))
    );
}

#[test]
fn private_parts_must_match_public_parts() {
    let a = Jwk::generate(Algorithm::ES256, Some("a".into())).expect("gen");
    let b = Jwk::generate(Algorithm::ES256, Some("b".into())).expect("gen");
    let va: serde_json::Value = serde_json::from_str(&a.to_json()).expect("json");
    let mut vb: serde_json::Value = serde_json::from_str(&b.to_json()).expect("json");
    vb["d"] = va["d"].clone();
    let mixed = Jwk::from_json(vb.to_string().as_bytes()).expect("parses as data");
    assert!(SigningKey::from_jwk(&mixed).is_err());
    assert_eq!(
        SigningKey::from_jwk(&b.to_public().expect("public")).unwrap_err(),
        Error::Key(KeyError::NotPrivate)
    );
}

#[test]
fn encryption_keys_in_a_set_are_skipped_not_fatal() {
    let sig = ec_public().to_json();
    let enc = r#"{"kty":"RSA","use":"enc","alg":"RSA-OAEP","kid":"e","n":"AQAB","e":"AQAB"}"#;
    let set = JwkSet::from_json(format!(r#"{{"keys":[{enc},{sig}]}}"#).as_bytes()).expect("set");
    let keys = KeySet::from_jwks(&set).expect("key set");
    assert_eq!(keys.len(), 1);
    assert!(keys.find("ec").is_some() && keys.find("e").is_none());
    // A set of nothing but encryption keys (or nothing at all) cannot verify anything.
    let only_enc = JwkSet::from_json(format!(r#"{{"keys":[{enc}]}}"#).as_bytes()).expect("set");
    assert_eq!(
        KeySet::from_jwks(&only_enc).unwrap_err(),
        Error::Key(KeyError::NoSignatureKeys)
    );
    let empty = JwkSet::from_json(br#"{"keys":[]}"#).expect("set");
    assert_eq!(
        KeySet::from_jwks(&empty).unwrap_err(),
        Error::Key(KeyError::NoSignatureKeys)
    );
    // An unknown alg is still an error for a key that claims to be for signatures.
    let bad =
        r#"{"keys":[{"kty":"RSA","use":"sig","alg":"RSA-OAEP","kid":"e","n":"AQAB","e":"AQAB"}]}"#;
    assert!(JwkSet::from_json(bad.as_bytes()).is_err());
}

#[test]
fn key_sets_need_unique_kids() {
    let a = VerifyingKey::from_jwk(&ec_public()).expect("key");
    let b = VerifyingKey::from_jwk(&ec_public()).expect("key");
    assert_eq!(
        KeySet::new(vec![a, b]).unwrap_err(),
        Error::Key(KeyError::DuplicateKid)
    );
    let mut anon = Jwk::generate(Algorithm::ES256, None)
        .expect("gen")
        .to_public()
        .expect("public");
    let json = anon.to_json();
    let v: serde_json::Value = serde_json::from_str(&json).expect("json");
    let kid = v["kid"].as_str().expect("kid").to_owned();
    anon =
        Jwk::from_json(json.replace(&format!(r#""kid":"{kid}","#), "").as_bytes()).expect("no kid");
    assert_eq!(
        KeySet::new(vec![VerifyingKey::from_jwk(&anon).expect("key")]).unwrap_err(),
        Error::Key(KeyError::MissingKid)
    );
    // The set error names the bad key's position.
    let set = JwkSet::from_json(br#"{"keys":[{"kty":"oct","k":"AA","alg":"HS256","kid":"x"}]}"#)
        .expect("set");
    assert_eq!(
        KeySet::from_jwks(&set).unwrap_err(),
        Error::Key(KeyError::InSet {
            index: 0,
            reason: Box::new(KeyError::HmacTooShort { min: 32 })
        })
    );
}

#[test]
fn every_algorithm_generates_signs_verifies_and_round_trips() {
    for alg in Algorithm::ALL {
        let jwk = Jwk::generate(alg, None).expect("gen");
        assert_eq!(
            jwk.kid(),
            Some(jwk.thumbprint().as_str()),
            "{alg}: kid defaults to the thumbprint"
        );
        assert_eq!(
            Jwk::from_json(jwk.to_json().as_bytes()).expect("reparse"),
            jwk,
            "{alg}"
        );
        let public = jwk.to_public().unwrap_or_else(|_| jwk.clone());
        assert_eq!(public.thumbprint(), jwk.thumbprint());
        let signer = SigningKey::from_jwk(&jwk).expect("signer");
        let token = jwt::sign(
            &signer,
            &serde_json::json!({"exp": 4_000_000_000u64, "sub": "s"}),
        )
        .expect("sign");
        let set =
            KeySet::new(vec![VerifyingKey::from_jwk(&public).expect("verifier")]).expect("set");
        let verified = jwt::verify(&token, &set, &Policy::new(), 1_800_000_000).expect("verify");
        assert_eq!(verified.subject(), Some("s"));
        assert_eq!(verified.algorithm(), alg);
        if alg.hmac_len().is_none() {
            // PEM round trip, private and public.
            let pem = jwk.to_pem().expect("pem");
            assert!(pem.starts_with("-----BEGIN PRIVATE KEY-----"));
            let back =
                Jwk::from_pem(&pem, Some(alg), jwk.kid().map(str::to_owned)).expect("from pem");
            assert_eq!(back, jwk, "{alg}: PKCS#8 round trip");
            let spki = public.to_pem().expect("spki");
            assert!(spki.starts_with("-----BEGIN PUBLIC KEY-----"));
            let back = Jwk::from_pem(&spki, Some(alg), public.kid().map(str::to_owned))
                .expect("from spki");
            assert_eq!(back, public, "{alg}: SPKI round trip");
        } else {
            assert!(jwk.to_pem().is_err());
            assert!(jwk.to_public().is_err(), "HMAC secrets have no public half");
        }
    }
}

#[test]
fn spki_points_off_the_curve_are_refused_at_import() {
    let good = Jwk::generate(Algorithm::ES256, None)
        .expect("gen")
        .to_public()
        .expect("public")
        .to_pem()
        .expect("pem");
    let (_, mut der) = tessera_token::pem::decode(&good).expect("pem");
    // The last byte of the DER is the last byte of y: change it and the point leaves the curve.
    let last = der.len() - 1;
    der[last] ^= 1;
    let bad = tessera_token::pem::encode(tessera_token::pem::Label::PublicKey, &der);
    assert!(Jwk::from_pem(&bad, None, None).is_err());
}

#[test]
fn rsa_pem_needs_an_explicit_algorithm() {
    let jwk = Jwk::generate(Algorithm::PS384, None).expect("gen");
    let imported = Jwk::from_pem(&jwk.to_pem().expect("pem"), None, None).expect("import");
    assert_eq!(
        imported.algorithm().unwrap_err(),
        KeyError::AmbiguousAlgorithm
    );
    // An EC PEM takes its algorithm from its curve and refuses a contradicting one.
    let ec = Jwk::generate(Algorithm::ES384, None)
        .expect("gen")
        .to_pem()
        .expect("pem");
    assert_eq!(
        Jwk::from_pem(&ec, None, None).expect("import").algorithm(),
        Ok(Algorithm::ES384)
    );
    assert!(Jwk::from_pem(&ec, Some(Algorithm::ES256), None).is_err());
}

#[test]
fn debug_output_never_shows_key_material() {
    let jwk = Jwk::generate(Algorithm::HS256, Some("k".into())).expect("gen");
    let v: serde_json::Value = serde_json::from_str(&jwk.to_json()).expect("json");
    let secret = v["k"].as_str().expect("k");
    let shown = format!("{jwk:?} {:?}", SigningKey::from_jwk(&jwk).expect("key"));
    assert!(
        !shown.contains(secret) && shown.contains("HS256"),
        "{shown}"
    );
}
