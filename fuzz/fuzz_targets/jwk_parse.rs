//! `Jwk::from_json` and `Jwk::from_pem` on arbitrary input.
//!
//! Properties:
//! * neither parser panics;
//! * a parsed JWK survives `to_json` → `from_json` unchanged (equal, same thumbprint, and the
//!   serialization is a fixed point);
//! * `to_public` of an asymmetric key drops exactly the private part (same thumbprint, no private
//!   material, still round-trips); `oct` keys have no public half;
//! * a key imported from PEM gets its thumbprint as `kid` (and, unless RSA, the `alg` its curve
//!   implies), round-trips through JSON, and, when
//!   `to_pem` can export it, re-imports from that PEM unchanged.

#![no_main]

use libfuzzer_sys::fuzz_target;
use tessera_token::Jwk;

fn check_round_trip(jwk: &Jwk) {
    let json = jwk.to_json();
    let back = Jwk::from_json(json.as_bytes())
        .unwrap_or_else(|e| panic!("to_json output does not parse ({e:?}): {json}"));
    assert!(back == *jwk, "JSON round trip changed the key: {json}");
    assert_eq!(
        back.thumbprint(),
        jwk.thumbprint(),
        "thumbprint changed across the round trip"
    );
    assert_eq!(back.to_json(), json, "to_json is not a fixed point");
    assert_eq!(back.algorithm().ok(), jwk.algorithm().ok());
}

fn check_jwk(jwk: &Jwk) {
    check_round_trip(jwk);
    match jwk.to_public() {
        Ok(public) => {
            assert_ne!(jwk.kty(), "oct", "an oct key has a public half");
            assert!(!public.is_private(), "to_public kept private material");
            assert_eq!(
                public.thumbprint(),
                jwk.thumbprint(),
                "to_public changed the thumbprint"
            );
            assert_eq!(public.kid(), jwk.kid());
            assert_eq!(public.alg(), jwk.alg());
            check_round_trip(&public);
        }
        Err(_) => assert_eq!(jwk.kty(), "oct", "to_public failed for an asymmetric key"),
    }
}

fuzz_target!(|data: &[u8]| {
    if let Ok(jwk) = Jwk::from_json(data) {
        check_jwk(&jwk);
    }
    if let Ok(text) = std::str::from_utf8(data)
        && let Ok(jwk) = Jwk::from_pem(text, None, None)
    {
        assert_eq!(
            jwk.kid(),
            Some(jwk.thumbprint().as_str()),
            "PEM import kid is not the thumbprint"
        );
        // EC and Ed25519 keys take the algorithm their curve implies; RSA keys get none.
        match jwk.kty() {
            "RSA" => assert_eq!(jwk.alg(), None, "PEM import gave an RSA key an alg"),
            _ => assert_eq!(
                jwk.alg(),
                jwk.algorithm().ok(),
                "PEM import alg is not the curve's"
            ),
        }
        check_jwk(&jwk);
        if let Ok(pem) = jwk.to_pem() {
            let back = Jwk::from_pem(&pem, None, None)
                .unwrap_or_else(|e| panic!("to_pem output does not import ({e:?}):\n{pem}"));
            assert!(back == jwk, "PEM round trip changed the key");
        }
    }
});
