//! The attack suite: one test per rule of the strict verification policy (RFC 8725, RFC 7515
//! §4-5, RFC 7519 §4, §7). Each forges a token that breaks exactly one rule.

use tessera_token::{
    Algorithm, Error, JsonReason, Jwk, KeyError, KeySet, Part, Policy, SigningKey, VerifyingKey,
    b64, jwt,
};

use crate::fixtures::{NOW, claims, forge, header, keys};

fn policy() -> Policy {
    Policy::new().issuer("https://id.example").audience("api")
}

fn verify(token: &str) -> Result<tessera_token::Verified, Error> {
    jwt::verify(token, &keys().set(), &policy(), NOW)
}

#[test]
fn valid_tokens_of_every_fixture_key_are_accepted() {
    for kid in ["HS256", "RS256", "ES256", "EdDSA"] {
        let key = keys().signer(kid);
        let v =
            verify(&forge(&header(&key), &claims(), &key)).unwrap_or_else(|e| panic!("{kid}: {e}"));
        assert_eq!(v.subject(), Some("ada"));
        assert_eq!(v.issuer(), Some("https://id.example"));
        assert_eq!(v.algorithm().as_str(), kid);
    }
}

#[test]
fn alg_none_is_refused_in_every_casing() {
    for none in ["none", "None", "NONE", "nOnE"] {
        let h = format!(r#"{{"alg":"{none}","kid":"HS256"}}"#);
        let token = format!("{}.{}.", b64::encode(h), b64::encode(claims()));
        assert_eq!(verify(&token).unwrap_err(), Error::AlgorithmNone, "{none}");
        // Even with a plausible signature attached.
        let token = format!("{token}{}", b64::encode([0u8; 32]));
        assert_eq!(verify(&token).unwrap_err(), Error::AlgorithmNone, "{none}");
    }
}

#[test]
fn header_alg_must_equal_the_keys_alg() {
    let es = keys().signer("ES256");
    let h = r#"{"alg":"ES384","kid":"ES256"}"#;
    assert_eq!(
        verify(&forge(h, &claims(), &es)).unwrap_err(),
        Error::AlgorithmMismatch {
            expected: Algorithm::ES256
        }
    );
    // Unknown and wrongly-cased names are not algorithms at all.
    for alg in ["es256", "HS1", "RSA-OAEP", ""] {
        let h = format!(r#"{{"alg":"{alg}","kid":"ES256"}}"#);
        assert_eq!(
            verify(&forge(&h, &claims(), &es)).unwrap_err(),
            Error::UnsupportedAlgorithm,
            "{alg}"
        );
    }
}

#[test]
fn an_asymmetric_key_is_never_an_hmac_secret() {
    // The classic confusion: HS256 keyed with the RSA public key, under the RSA key's kid.
    let rsa_public_pem = keys()
        .jwk("RS256")
        .to_public()
        .expect("public")
        .to_pem()
        .expect("pem");
    let mut secret = Jwk::from_json(
        format!(
            r#"{{"kty":"oct","alg":"HS256","kid":"RS256","k":"{}"}}"#,
            b64::encode(rsa_public_pem.as_bytes())
        )
        .as_bytes(),
    )
    .expect("jwk");
    secret.set_kid("RS256");
    let attacker = SigningKey::from_jwk(&secret).expect("signer");
    let token = forge(r#"{"alg":"HS256","kid":"RS256"}"#, &claims(), &attacker);
    assert_eq!(
        verify(&token).unwrap_err(),
        Error::AlgorithmMismatch {
            expected: Algorithm::RS256
        }
    );
    // And a JWK cannot be made into one: an RSA key refuses HS256.
    let mut rsa = keys().jwk("RS256").clone();
    assert_eq!(
        rsa.set_alg(Algorithm::HS256),
        Err(Error::Key(KeyError::Mismatch("key type")))
    );
}

#[test]
fn kid_is_required_and_matched_exactly_without_fallback() {
    let hs = keys().signer("HS256");
    assert_eq!(
        verify(&forge(r#"{"alg":"HS256"}"#, &claims(), &hs)).unwrap_err(),
        Error::HeaderMember { name: "kid" }
    );
    for kid in ["hs256", "HS256 ", "", "RS256x", "HS\u{0}256"] {
        let h = serde_json::json!({"alg": "HS256", "kid": kid}).to_string();
        let err = verify(&forge(&h, &claims(), &hs)).unwrap_err();
        assert!(
            matches!(err, Error::UnknownKey | Error::AlgorithmMismatch { .. }),
            "{kid:?}: {err}"
        );
    }
    // A one-key set does not fall back to its only key either.
    let only = KeySet::new(vec![
        VerifyingKey::from_jwk(keys().jwk("HS256")).expect("key"),
    ])
    .expect("set");
    let h = r#"{"alg":"HS256","kid":"other"}"#;
    assert_eq!(
        jwt::verify(&forge(h, &claims(), &hs), &only, &policy(), NOW).unwrap_err(),
        Error::UnknownKey
    );
    // kid must be a string.
    let h = r#"{"alg":"HS256","kid":7}"#;
    assert_eq!(
        verify(&forge(h, &claims(), &hs)).unwrap_err(),
        Error::HeaderMember { name: "kid" }
    );
}

#[test]
fn embedded_key_headers_are_never_key_sources() {
    // The attacker signs with their own key and points at it with jwk/jku/x5u/x5c.
    let attacker_jwk = Jwk::generate(Algorithm::ES256, Some("ES256".into())).expect("gen");
    let attacker = SigningKey::from_jwk(&attacker_jwk).expect("signer");
    let public = attacker_jwk.to_public().expect("public").to_json();
    for extra in [
        format!(r#""jwk":{public}"#),
        r#""jku":"https://evil.example/jwks.json""#.to_owned(),
        r#""x5u":"https://evil.example/cert.pem""#.to_owned(),
        r#""x5c":["MIIB"]"#.to_owned(),
    ] {
        let h = format!(r#"{{"alg":"ES256","kid":"ES256",{extra}}}"#);
        assert_eq!(
            verify(&forge(&h, &claims(), &attacker)).unwrap_err(),
            Error::Signature,
            "{extra}"
        );
        // The same members on a genuine token are ignored, not trusted and not fatal.
        let genuine = keys().signer("ES256");
        verify(&forge(&h, &claims(), &genuine)).unwrap_or_else(|e| panic!("{extra}: {e}"));
    }
}

#[test]
fn crit_and_b64_are_refused() {
    let hs = keys().signer("HS256");
    for h in [
        r#"{"alg":"HS256","kid":"HS256","crit":["exp"],"exp":1}"#,
        r#"{"alg":"HS256","kid":"HS256","crit":["b64"],"b64":false}"#,
        r#"{"alg":"HS256","kid":"HS256","b64":false}"#,
        r#"{"alg":"HS256","kid":"HS256","b64":true}"#,
        r#"{"alg":"HS256","kid":"HS256","crit":[]}"#,
    ] {
        assert_eq!(
            verify(&forge(h, &claims(), &hs)).unwrap_err(),
            Error::CriticalExtension,
            "{h}"
        );
    }
}

#[test]
fn only_three_segment_compact_serialization() {
    let hs = keys().signer("HS256");
    let good = forge(&header(&hs), &claims(), &hs);
    let (a, rest) = good.split_once('.').expect("dot");
    for bad in [
        a.to_owned(),
        format!("{a}.{rest}.x"),
        format!("{a}.{rest}.x.y"),
        format!("{a}..{rest}"),
        String::new(),
        "..".to_owned(),
        format!("{{\"payload\":\"{a}\"}}"),
    ] {
        let err = verify(&bad).unwrap_err();
        assert!(
            matches!(
                err,
                Error::Segments | Error::Base64 { .. } | Error::Json { .. }
            ),
            "{bad}: {err}"
        );
    }
    assert_eq!(verify(&format!("{good}.AA")).unwrap_err(), Error::Segments);
    assert_eq!(verify("a.b.c.d.e").unwrap_err(), Error::Segments);
}

#[test]
fn base64url_must_be_strict_in_every_part() {
    let hs = keys().signer("HS256");
    let good = forge(&header(&hs), &claims(), &hs);
    let parts: Vec<&str> = good.split('.').collect();
    for (i, part) in [Part::Header, Part::Payload, Part::Signature]
        .into_iter()
        .enumerate()
    {
        for corrupt in [
            format!("{}=", parts[i]),
            format!("{} ", parts[i]),
            format!("{}\n", parts[i]),
            parts[i].replacen(|c: char| c.is_ascii_alphanumeric(), "+", 1),
            parts[i].replacen(|c: char| c.is_ascii_alphanumeric(), "/", 1),
        ] {
            let mut p = parts.clone();
            p[i] = &corrupt;
            let err = verify(&p.join(".")).unwrap_err();
            // A corrupt signature length is caught by the exact-length rule first, and a corrupt
            // payload by the signature, which covers the encoded text and is checked first.
            assert!(
                err == Error::Base64 { part }
                    || matches!(err, Error::SignatureLength { .. })
                    || (part == Part::Payload && err == Error::Signature),
                "{part}: {corrupt:?}: {err}"
            );
        }
    }
    // Non-canonical trailing bits (RFC 4648 §3.5): a segment whose length is not a multiple of
    // 4 ends in a character carrying unused low bits, which a lax decoder ignores, so two
    // texts decode to the same bytes. Each segment is given set trailing bits and the token
    // is signed over exactly that text, so the trailing bits are the only fault and must be
    // named (not a bad signature).
    let (head, payload) = (with_unused_bits(&header(&hs)), with_unused_bits(&claims()));
    for part in [Part::Header, Part::Payload, Part::Signature] {
        let mut segments = [b64::encode(&head), b64::encode(&payload), String::new()];
        let index = match part {
            Part::Header => 0,
            Part::Payload => 1,
            Part::Signature => 2,
        };
        if part != Part::Signature {
            segments[index] = with_trailing_bits(&segments[index]);
        }
        let input = format!("{}.{}", segments[0], segments[1]);
        let sig = b64::encode(hs.sign(input.as_bytes()).expect("sign"));
        // HS256: 32 bytes are 43 characters, whose last one has 2 unused bits.
        segments[2] = if part == Part::Signature {
            with_trailing_bits(&sig)
        } else {
            sig
        };
        let token = segments.join(".");
        assert_eq!(
            verify(&token).unwrap_err(),
            Error::Base64 { part },
            "{part}: {token}"
        );
    }
}

/// `json` (an object) with a padding member that makes its length 1 more than a multiple of 3,
/// so that its base64url form ends in a character with 4 unused bits.
fn with_unused_bits(json: &str) -> String {
    let body = json.strip_suffix('}').expect("an object");
    (0..3)
        .map(|n| format!(r#"{body},"pad":"{}"}}"#, "a".repeat(n)))
        .find(|padded| padded.len() % 3 == 1)
        .expect("one of three lengths")
}

/// `segment` (canonical unpadded base64url, length not a multiple of 4) with the unused low
/// bits of its last character set: the same bytes to a lax decoder, refused by a strict one.
fn with_trailing_bits(segment: &str) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let unused = match segment.len() % 4 {
        2 => 0b1111,
        3 => 0b11,
        other => panic!("a segment of length {other} mod 4 has no unused bits"),
    };
    let last = *segment.as_bytes().last().expect("non-empty");
    let value = ALPHABET.iter().position(|&c| c == last).expect("base64url");
    assert_eq!(
        value & unused,
        0,
        "canonical input has no trailing bits set"
    );
    let mut out = segment[..segment.len() - 1].to_owned();
    out.push(char::from(ALPHABET[value | unused]));
    // The property that makes it an attack: the bytes are unchanged for a lax decoder.
    assert_eq!(lax_decode(&out), lax_decode(segment));
    out
}

/// A deliberately lax base64url decoder (ignores unused trailing bits), for the test above.
fn lax_decode(text: &str) -> Vec<u8> {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut bits = 0u32;
    let mut count = 0;
    let mut out = Vec::new();
    for c in text.bytes() {
        let v = ALPHABET.iter().position(|&a| a == c).expect("base64url");
        bits = (bits << 6) | u32::try_from(v).expect("6 bits");
        count += 6;
        if count >= 8 {
            count -= 8;
            out.push(u8::try_from((bits >> count) & 0xff).expect("byte"));
        }
    }
    out
}

#[test]
fn json_must_be_strict_objects_without_duplicates() {
    let hs = keys().signer("HS256");
    let dup = Error::Json {
        part: Part::Header,
        reason: JsonReason::DuplicateMember,
    };
    let h = r#"{"alg":"HS256","kid":"HS256","alg":"none"}"#;
    assert_eq!(verify(&forge(h, &claims(), &hs)).unwrap_err(), dup);
    let h = r#"{"alg":"HS256","kid":"HS256","x":{"a":1,"a":2}}"#;
    assert_eq!(verify(&forge(h, &claims(), &hs)).unwrap_err(), dup);
    // Escapes do not hide a duplicate: "\u0061lg" is "alg".
    let h = r#"{"alg":"HS256","kid":"HS256","\u0061lg":"HS256"}"#;
    assert_eq!(verify(&forge(h, &claims(), &hs)).unwrap_err(), dup);

    let p = format!(r#"{{"exp":{},"exp":{}}}"#, NOW + 60, NOW + 6000);
    assert_eq!(
        verify(&forge(&header(&hs), &p, &hs)).unwrap_err(),
        Error::Json {
            part: Part::Payload,
            reason: JsonReason::DuplicateMember
        }
    );
    for (payload, reason) in [
        ("[1,2]".to_owned(), JsonReason::NotObject),
        ("\"text\"".to_owned(), JsonReason::NotObject),
        (format!(r#"{{"exp":{}}} x"#, NOW + 60), JsonReason::Syntax),
        (format!(r#"{{"exp":{},}}"#, NOW + 60), JsonReason::Syntax),
        (
            format!(r#"{{"exp":{},"a":"\ud800"}}"#, NOW + 60),
            JsonReason::Syntax,
        ),
        (
            format!(
                r#"{{"exp":{},"a":{}1{}}}"#,
                NOW + 60,
                "[".repeat(16),
                "]".repeat(16)
            ),
            JsonReason::TooDeep,
        ),
    ] {
        assert_eq!(
            verify(&forge(&header(&hs), &payload, &hs)).unwrap_err(),
            Error::Json {
                part: Part::Payload,
                reason
            },
            "{payload}"
        );
    }
    // Fifteen levels of arrays inside the top-level object is within the default cap of 16.
    let ok = format!(
        r#"{{"exp":{},"aud":"api","iss":"https://id.example","a":{}1{}}}"#,
        NOW + 60,
        "[".repeat(15),
        "]".repeat(15)
    );
    verify(&forge(&header(&hs), &ok, &hs)).expect("depth 16 accepted");
    // Invalid UTF-8 inside a string.
    let input = format!(
        "{}.{}",
        b64::encode(header(&hs)),
        b64::encode(b"{\"exp\":1,\"a\":\"\xff\"}")
    );
    let token = format!(
        "{input}.{}",
        b64::encode(hs.sign(input.as_bytes()).expect("sign"))
    );
    assert_eq!(
        verify(&token).unwrap_err(),
        Error::Json {
            part: Part::Payload,
            reason: JsonReason::Syntax
        }
    );
}

#[test]
fn size_cap_applies_before_any_decoding() {
    let huge = "A".repeat(16 * 1024 + 1);
    assert_eq!(
        verify(&huge).unwrap_err(),
        Error::TooLarge { limit: 16 * 1024 }
    );
    let hs = keys().signer("HS256");
    let big = format!(
        r#"{{"exp":{},"pad":"{}"}}"#,
        NOW + 60,
        "x".repeat(13 * 1024)
    );
    assert_eq!(
        verify(&forge(&header(&hs), &big, &hs)).unwrap_err(),
        Error::TooLarge { limit: 16 * 1024 }
    );
}

#[test]
fn signature_is_checked_before_claims_are_parsed() {
    let hs = keys().signer("HS256");
    let other =
        SigningKey::from_jwk(&Jwk::generate(Algorithm::HS256, Some("HS256".into())).expect("gen"))
            .expect("key");
    // Malformed claims under a wrong signature report the signature, not the JSON.
    assert_eq!(
        verify(&forge(&header(&hs), "{not json", &other)).unwrap_err(),
        Error::Signature
    );
    assert_eq!(
        verify(&forge(&header(&hs), r#"{"exp":"soon"}"#, &other)).unwrap_err(),
        Error::Signature
    );
}

#[test]
fn signature_encodings_must_be_exact() {
    let es = keys().signer("ES256");
    let good = forge(&header(&es), &claims(), &es);
    let (input, sig) = good.rsplit_once('.').expect("dot");
    let raw = b64::decode(sig).expect("b64");
    assert_eq!(raw.len(), 64);
    // A DER-encoded ECDSA signature (as some libraries emit) is refused by length.
    let mut der = vec![0x30, 0x44, 0x02, 0x20];
    der.extend_from_slice(&raw[..32]);
    der.extend_from_slice(&[0x02, 0x20]);
    der.extend_from_slice(&raw[32..]);
    let token = format!("{input}.{}", b64::encode(&der));
    assert_eq!(
        verify(&token).unwrap_err(),
        Error::SignatureLength {
            expected: 64,
            actual: 70
        }
    );
    // Padding is named as an encoding fault, not a length fault.
    assert_eq!(
        verify(&format!("{good}==")).unwrap_err(),
        Error::Base64 {
            part: Part::Signature
        }
    );
    // One byte short, or padded with a zero.
    for bad in [&raw[..63], &[&raw[..], &[0]].concat()[..]] {
        let token = format!("{input}.{}", b64::encode(bad));
        assert!(matches!(
            verify(&token).unwrap_err(),
            Error::SignatureLength { .. }
        ));
    }
    // RSA: the signature must be exactly the modulus length; a stripped leading byte is refused.
    let rs = keys().signer("RS256");
    let good = forge(&header(&rs), &claims(), &rs);
    let (input, sig) = good.rsplit_once('.').expect("dot");
    let raw = b64::decode(sig).expect("b64");
    let token = format!("{input}.{}", b64::encode(&raw[1..]));
    assert_eq!(
        verify(&token).unwrap_err(),
        Error::SignatureLength {
            expected: 256,
            actual: 255
        }
    );
    // HMAC: a truncated tag is refused, not compared as a prefix.
    let hs = keys().signer("HS256");
    let good = forge(&header(&hs), &claims(), &hs);
    let (input, sig) = good.rsplit_once('.').expect("dot");
    let raw = b64::decode(sig).expect("b64");
    let token = format!("{input}.{}", b64::encode(&raw[..16]));
    assert_eq!(
        verify(&token).unwrap_err(),
        Error::SignatureLength {
            expected: 32,
            actual: 16
        }
    );
    // A flipped bit fails the primitive.
    let mut flipped = raw.clone();
    flipped[0] ^= 1;
    let token = format!("{input}.{}", b64::encode(&flipped));
    assert_eq!(verify(&token).unwrap_err(), Error::Signature);
}

fn with_claims(payload: &str) -> Result<tessera_token::Verified, Error> {
    let hs = keys().signer("HS256");
    verify(&forge(&header(&hs), payload, &hs))
}

#[test]
fn exp_is_required_and_must_be_a_number() {
    let base = r#""iss":"https://id.example","aud":"api""#;
    assert_eq!(
        with_claims(&format!("{{{base}}}")).unwrap_err(),
        Error::MissingClaim { name: "exp" }
    );
    for exp in ["\"9999999999\"", "null", "true", "[9999999999]", "{}"] {
        assert_eq!(
            with_claims(&format!("{{{base},\"exp\":{exp}}}")).unwrap_err(),
            Error::ClaimType { name: "exp" },
            "{exp}"
        );
    }
    // Fractional NumericDate is a JSON number and is accepted (RFC 7519 §2).
    with_claims(&format!("{{{base},\"exp\":{}.5}}", NOW + 10)).expect("fractional exp");
}

#[test]
fn exp_and_nbf_honour_the_leeway() {
    let base = r#""iss":"https://id.example","aud":"api""#;
    // Default leeway is 60 s: expired 59 s ago is still fine, 60 s ago is not.
    with_claims(&format!("{{{base},\"exp\":{}}}", NOW - 59)).expect("within leeway");
    assert_eq!(
        with_claims(&format!("{{{base},\"exp\":{}}}", NOW - 60)).unwrap_err(),
        Error::Expired
    );
    with_claims(&format!(
        "{{{base},\"exp\":{},\"nbf\":{}}}",
        NOW + 600,
        NOW + 60
    ))
    .expect("nbf within leeway");
    assert_eq!(
        with_claims(&format!(
            "{{{base},\"exp\":{},\"nbf\":{}}}",
            NOW + 600,
            NOW + 61
        ))
        .unwrap_err(),
        Error::NotYetValid
    );
    assert_eq!(
        with_claims(&format!("{{{base},\"exp\":{},\"nbf\":\"0\"}}", NOW + 600)).unwrap_err(),
        Error::ClaimType { name: "nbf" }
    );
    // With zero leeway, now == exp is already expired (the time must be *before* exp).
    let hs = keys().signer("HS256");
    let strict = policy().leeway(0).expect("policy");
    let token = forge(&header(&hs), &format!("{{{base},\"exp\":{NOW}}}"), &hs);
    assert_eq!(
        jwt::verify(&token, &keys().set(), &strict, NOW).unwrap_err(),
        Error::Expired
    );
    jwt::verify(&token, &keys().set(), &strict, NOW - 1).expect("one second before exp");
}

#[test]
fn leeway_is_capped_at_300_seconds() {
    assert!(Policy::new().leeway(300).is_ok());
    assert_eq!(
        Policy::new().leeway(301).unwrap_err(),
        Error::Policy("leeway exceeds 300 seconds")
    );
}

#[test]
fn issuer_is_compared_exactly() {
    let exp = NOW + 60;
    for iss in [
        "https://id.example/",
        "HTTPS://id.example",
        "https://id.example ",
        "https://evil.example",
    ] {
        let p = format!(r#"{{"iss":"{iss}","aud":"api","exp":{exp}}}"#);
        assert_eq!(with_claims(&p).unwrap_err(), Error::Issuer, "{iss}");
    }
    assert_eq!(
        with_claims(&format!(r#"{{"aud":"api","exp":{exp}}}"#)).unwrap_err(),
        Error::MissingClaim { name: "iss" }
    );
    assert_eq!(
        with_claims(&format!(
            r#"{{"iss":["https://id.example"],"aud":"api","exp":{exp}}}"#
        ))
        .unwrap_err(),
        Error::ClaimType { name: "iss" }
    );
}

#[test]
fn audience_may_be_a_string_or_an_array() {
    let exp = NOW + 60;
    let iss = r#""iss":"https://id.example""#;
    with_claims(&format!(r#"{{{iss},"aud":["other","api"],"exp":{exp}}}"#))
        .expect("array with match");
    for aud in [r#""API""#, r#"["other"]"#, "[]", r#""api ""#] {
        assert_eq!(
            with_claims(&format!(r#"{{{iss},"aud":{aud},"exp":{exp}}}"#)).unwrap_err(),
            Error::Audience,
            "{aud}"
        );
    }
    for aud in ["1", r#"["api",1]"#, r#"{"api":true}"#] {
        assert_eq!(
            with_claims(&format!(r#"{{{iss},"aud":{aud},"exp":{exp}}}"#)).unwrap_err(),
            Error::ClaimType { name: "aud" },
            "{aud}"
        );
    }
    assert_eq!(
        with_claims(&format!(r#"{{{iss},"exp":{exp}}}"#)).unwrap_err(),
        Error::MissingClaim { name: "aud" }
    );
    // A token addressed to someone while the verifier names no audience is refused (RFC 7519 §4.1.3).
    let hs = keys().signer("HS256");
    let token = forge(
        &header(&hs),
        &format!(r#"{{"aud":"api","exp":{exp}}}"#),
        &hs,
    );
    assert_eq!(
        jwt::verify(&token, &keys().set(), &Policy::new(), NOW).unwrap_err(),
        Error::Audience
    );
}

#[test]
fn typ_is_checked_when_the_policy_asks() {
    let hs = keys().signer("HS256");
    let at = policy().typ("at+jwt");
    for (typ, ok) in [
        ("at+jwt", true),
        ("AT+JWT", true),
        ("application/at+jwt", true),
        ("JWT", false),
    ] {
        let h = format!(r#"{{"alg":"HS256","kid":"HS256","typ":"{typ}"}}"#);
        let result = jwt::verify(&forge(&h, &claims(), &hs), &keys().set(), &at, NOW);
        assert_eq!(result.is_ok(), ok, "{typ}");
    }
    let h = r#"{"alg":"HS256","kid":"HS256"}"#;
    assert_eq!(
        jwt::verify(&forge(h, &claims(), &hs), &keys().set(), &at, NOW).unwrap_err(),
        Error::Type
    );
}

#[test]
fn tessera_own_headers_take_the_same_decisions_as_parsed_ones() {
    // jwt::sign writes {"alg","kid","typ":"JWT"}: such tokens skip header parsing, which must not
    // skip any rule.
    let hs = keys().signer("HS256");
    let own = jwt::sign(
        &hs,
        &serde_json::from_str::<serde_json::Value>(&claims()).unwrap(),
    )
    .unwrap();
    assert!(own.starts_with(&b64::encode(header(&hs))));
    verify(&own).expect("own header accepted");
    let at = policy().typ("at+jwt");
    assert_eq!(
        jwt::verify(&own, &keys().set(), &at, NOW).unwrap_err(),
        Error::Type
    );
    let jwt_typ = policy().typ("application/JWT");
    jwt::verify(&own, &keys().set(), &jwt_typ, NOW).expect("typ JWT matches");
    // The same header under another key's kid set is just unknown.
    let other = KeySet::new(vec![
        VerifyingKey::from_jwk(keys().jwk("ES256").to_public().as_ref().unwrap()).unwrap(),
    ])
    .unwrap();
    assert_eq!(
        jwt::verify(&own, &other, &policy(), NOW).unwrap_err(),
        Error::UnknownKey
    );
    // A valid own header with a signature from another key still fails the signature.
    let impostor =
        SigningKey::from_jwk(&Jwk::generate(Algorithm::HS256, Some("HS256".into())).unwrap())
            .unwrap();
    let forged = jwt::sign(
        &impostor,
        &serde_json::from_str::<serde_json::Value>(&claims()).unwrap(),
    )
    .unwrap();
    assert_eq!(verify(&forged).unwrap_err(), Error::Signature);
}

#[test]
fn errors_never_echo_the_input() {
    let hs = keys().signer("HS256");
    let marker = "ATTACKER-CONTROLLED-MARKER";
    let cases = [
        forge(
            &format!(r#"{{"alg":"HS256","kid":"{marker}"}}"#),
            &claims(),
            &hs,
        ),
        forge(
            &format!(r#"{{"alg":"{marker}","kid":"HS256"}}"#),
            &claims(),
            &hs,
        ),
        forge(&header(&hs), &format!(r#"{{"exp":"{marker}"}}"#), &hs),
        forge(
            &header(&hs),
            &format!(r#"{{"exp":1,"iss":"{marker}","aud":"api"}}"#),
            &hs,
        ),
        format!("{marker}.{marker}.{marker}"),
    ];
    for token in cases {
        let message = verify(&token).unwrap_err().to_string();
        assert!(
            !message.contains(marker) && message.len() < 120,
            "{message}"
        );
    }
}

#[test]
fn tokens_must_not_be_reused_across_key_sets() {
    // A token signed by a key not in the set, under a kid that is, fails the signature.
    let impostor = Jwk::generate(Algorithm::EdDSA, Some("EdDSA".into())).expect("gen");
    let signer = SigningKey::from_jwk(&impostor).expect("key");
    assert_eq!(
        verify(&forge(&header(&signer), &claims(), &signer)).unwrap_err(),
        Error::Signature
    );
}
