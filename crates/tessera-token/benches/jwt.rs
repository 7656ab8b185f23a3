//! JWT sign and verify+decode: tessera-token against `jsonwebtoken` (aws-lc-rs backend),
//! `jwt-simple` (pure Rust) and the bare aws-lc-rs primitive, for HS256, RS256, PS256, ES256 and
//! EdDSA, over one realistic 348-byte claim set.
//!
//! Run with `cargo bench -p tessera-token --bench jwt` (about 10 minutes). After criterion has
//! measured, `main` reads the `estimates.json` files this run wrote and prints a ratio table,
//! then runs an interleaved cross-check of the same calls (robust to drifting machine load) and
//! prints its table, a verdict for each performance target and a breakdown of tessera's sign
//! and verify overhead. Method and results: `docs/benchmarks.md`.

use std::collections::HashSet;
use std::hint::black_box;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use aws_lc_rs::hmac;
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{
    self, EcdsaKeyPair, Ed25519KeyPair, ParsedPublicKey, RsaEncoding, RsaKeyPair,
};
use criterion::{BatchSize, Criterion, SamplingMode};
use jwt_simple::prelude as js;
use jwt_simple::prelude::{
    ECDSAP256KeyPairLike as _, ECDSAP256PublicKeyLike as _, EdDSAKeyPairLike as _,
    EdDSAPublicKeyLike as _, MACLike as _, RSAKeyPairLike as _, RSAPublicKeyLike as _,
};
use serde::{Deserialize, Serialize};
use tessera_token::{Algorithm, Jwk, KeySet, Limits, Policy, SigningKey, VerifyingKey, jws, jwt};

const ISSUER: &str = "https://auth.tessera.example.com";
const AUDIENCE: &str = "https://api.tessera.example.com";
/// Leeway for `exp`/`nbf`, the same for every library.
const LEEWAY: u64 = 60;

/// The claim set every library signs and decodes into.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
struct Claims {
    iss: String,
    sub: String,
    aud: String,
    exp: u64,
    nbf: u64,
    iat: u64,
    jti: String,
    scope: String,
    roles: Vec<String>,
    email: String,
}

/// The non-registered part of [`Claims`], as jwt-simple wants it (`JWTClaims<Extra>`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
struct Extra {
    scope: String,
    roles: Vec<String>,
    email: String,
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or_default()
}

fn claims(now: u64) -> Claims {
    Claims {
        iss: ISSUER.into(),
        sub: "user_01J9ZK3M7Q8W4X5R2T".into(),
        aud: AUDIENCE.into(),
        exp: now + 3600,
        nbf: now,
        iat: now,
        jti: "4f1c2b9a-7e3d-4a6b-9c8e-2d5f0a1b3c7e".into(),
        scope: "openid profile email orders:read orders:write".into(),
        roles: vec!["customer".into(), "support-agent".into(), "billing".into()],
        email: "ada.lovelace@example.com".into(),
    }
}

fn simple_claims(c: &Claims) -> js::JWTClaims<Extra> {
    js::JWTClaims {
        issued_at: Some(js::Duration::from_secs(c.iat)),
        expires_at: Some(js::Duration::from_secs(c.exp)),
        invalid_before: Some(js::Duration::from_secs(c.nbf)),
        issuer: Some(c.iss.clone()),
        subject: Some(c.sub.clone()),
        audiences: Some(js::Audiences::AsString(c.aud.clone())),
        jwt_id: Some(c.jti.clone()),
        nonce: None,
        custom: Extra {
            scope: c.scope.clone(),
            roles: c.roles.clone(),
            email: c.email.clone(),
        },
    }
}

/// jwt-simple's keys: one type per algorithm.
enum Simple {
    Hs(js::HS256Key),
    Rs(js::RS256KeyPair, js::RS256PublicKey),
    Ps(js::PS256KeyPair, js::PS256PublicKey),
    Es(js::ES256KeyPair, js::ES256PublicKey),
    Ed(js::Ed25519KeyPair, js::Ed25519PublicKey),
}

impl Simple {
    fn new(
        alg: Algorithm,
        kid: &str,
        secret: &[u8],
        private_pem: &str,
        public_pem: &str,
    ) -> Simple {
        let bad = "jwt-simple rejected the tessera key";
        match alg {
            Algorithm::HS256 => Simple::Hs(js::HS256Key::from_bytes(secret).with_key_id(kid)),
            Algorithm::RS256 => Simple::Rs(
                js::RS256KeyPair::from_pem(private_pem)
                    .expect(bad)
                    .with_key_id(kid),
                js::RS256PublicKey::from_pem(public_pem).expect(bad),
            ),
            Algorithm::PS256 => Simple::Ps(
                js::PS256KeyPair::from_pem(private_pem)
                    .expect(bad)
                    .with_key_id(kid),
                js::PS256PublicKey::from_pem(public_pem).expect(bad),
            ),
            Algorithm::ES256 => Simple::Es(
                js::ES256KeyPair::from_pem(private_pem)
                    .expect(bad)
                    .with_key_id(kid),
                js::ES256PublicKey::from_pem(public_pem).expect(bad),
            ),
            Algorithm::EdDSA => Simple::Ed(
                js::Ed25519KeyPair::from_pem(private_pem)
                    .expect(bad)
                    .with_key_id(kid),
                js::Ed25519PublicKey::from_pem(public_pem).expect(bad),
            ),
            other => panic!("{other:?} is not benchmarked"),
        }
    }

    fn sign(&self, claims: js::JWTClaims<Extra>) -> String {
        let token = match self {
            Simple::Hs(k) => k.authenticate(claims),
            Simple::Rs(k, _) => k.sign(claims),
            Simple::Ps(k, _) => k.sign(claims),
            Simple::Es(k, _) => k.sign(claims),
            Simple::Ed(k, _) => k.sign(claims),
        };
        token.expect("jwt-simple sign")
    }

    fn verify(
        &self,
        token: &str,
        options: js::VerificationOptions,
    ) -> Result<js::JWTClaims<Extra>, jwt_simple::Error> {
        let options = Some(options);
        match self {
            Simple::Hs(k) => k.verify_token::<Extra>(token, options),
            Simple::Rs(_, k) => k.verify_token::<Extra>(token, options),
            Simple::Ps(_, k) => k.verify_token::<Extra>(token, options),
            Simple::Es(_, k) => k.verify_token::<Extra>(token, options),
            Simple::Ed(_, k) => k.verify_token::<Extra>(token, options),
        }
    }
}

/// The bare aws-lc-rs primitives.
enum Raw {
    Hmac(Box<hmac::Key>),
    Rsa(RsaKeyPair, &'static dyn RsaEncoding, ParsedPublicKey),
    Ec(EcdsaKeyPair, ParsedPublicKey),
    Ed(Ed25519KeyPair, ParsedPublicKey),
}

impl Raw {
    fn new(alg: Algorithm, secret: &[u8], private_der: &[u8], public: &Public) -> Raw {
        let bad = "aws-lc rejected the tessera key";
        match alg {
            Algorithm::HS256 => Raw::Hmac(Box::new(hmac::Key::new(hmac::HMAC_SHA256, secret))),
            Algorithm::RS256 | Algorithm::PS256 => {
                let (encoding, params): (&'static dyn RsaEncoding, _) = if alg == Algorithm::RS256 {
                    (
                        &signature::RSA_PKCS1_SHA256,
                        &signature::RSA_PKCS1_2048_8192_SHA256,
                    )
                } else {
                    (
                        &signature::RSA_PSS_SHA256,
                        &signature::RSA_PSS_2048_8192_SHA256,
                    )
                };
                Raw::Rsa(
                    RsaKeyPair::from_pkcs8(private_der).expect(bad),
                    encoding,
                    ParsedPublicKey::new(params, &public.spki_der).expect(bad),
                )
            }
            Algorithm::ES256 => Raw::Ec(
                EcdsaKeyPair::from_pkcs8(&signature::ECDSA_P256_SHA256_FIXED_SIGNING, private_der)
                    .expect(bad),
                ParsedPublicKey::new(&signature::ECDSA_P256_SHA256_FIXED, &public.raw).expect(bad),
            ),
            Algorithm::EdDSA => Raw::Ed(
                Ed25519KeyPair::from_pkcs8(private_der).expect(bad),
                ParsedPublicKey::new(&signature::ED25519, &public.raw).expect(bad),
            ),
            other => panic!("{other:?} is not benchmarked"),
        }
    }

    /// Signs into `out` (RSA) or returns the length of a stack signature; either way, only the
    /// primitive runs.
    fn sign(&self, rng: &SystemRandom, message: &[u8], out: &mut [u8]) -> usize {
        match self {
            Raw::Hmac(key) => hmac::sign(key, message).as_ref().len(),
            Raw::Rsa(pair, encoding, _) => {
                pair.sign(*encoding, rng, message, out).expect("RSA sign");
                out.len()
            }
            Raw::Ec(pair, _) => pair.sign(rng, message).expect("ECDSA sign").as_ref().len(),
            Raw::Ed(pair, _) => pair.sign(message).as_ref().len(),
        }
    }

    fn verify(&self, message: &[u8], sig: &[u8]) -> bool {
        match self {
            Raw::Hmac(key) => hmac::verify(key, message, sig).is_ok(),
            Raw::Rsa(_, _, public) | Raw::Ec(_, public) | Raw::Ed(_, public) => {
                public.verify_sig(message, sig).is_ok()
            }
        }
    }

    fn signature_len(&self) -> usize {
        match self {
            Raw::Rsa(pair, ..) => pair.public_modulus_len(),
            _ => 0,
        }
    }
}

/// Public key bytes in the two forms aws-lc takes.
struct Public {
    spki_der: Vec<u8>,
    /// EC uncompressed point or Ed25519 `x`.
    raw: Vec<u8>,
}

/// Everything one algorithm needs, built once, outside every measured loop.
struct Fixture {
    alg: Algorithm,
    name: &'static str,
    claims: Claims,
    tessera_signer: SigningKey,
    tessera_keys: KeySet,
    tessera_key: VerifyingKey,
    policy: Policy,
    jwt_header: jsonwebtoken::Header,
    jwt_encoding: jsonwebtoken::EncodingKey,
    jwt_decoding: jsonwebtoken::DecodingKey,
    jwt_validation: jsonwebtoken::Validation,
    simple: Simple,
    simple_claims: js::JWTClaims<Extra>,
    simple_options: js::VerificationOptions,
    raw: Raw,
    tessera_token: String,
    jwt_token: String,
    simple_token: String,
    /// `header '.' payload` of the tessera token: what the raw primitive signs and verifies.
    signing_input: Vec<u8>,
    signature: Vec<u8>,
}

fn json_member(jwk: &Jwk, name: &str) -> Vec<u8> {
    let json: serde_json::Value = serde_json::from_str(&jwk.to_json()).expect("JWK JSON");
    let text = json[name].as_str().expect("JWK member");
    tessera_token::b64::decode(text).expect("JWK base64url")
}

impl Fixture {
    fn new(alg: Algorithm, now: u64) -> Fixture {
        let name = alg.as_str();
        let kid = format!("bench-{}", name.to_ascii_lowercase());
        let jwk = Jwk::generate(alg, Some(kid.clone())).expect("generate");

        // One key per algorithm, exported to each library's format.
        let (secret, private_pem, public_pem, public_jwk) = if alg == Algorithm::HS256 {
            let k = json_member(&jwk, "k");
            (k, String::new(), String::new(), jwk.clone())
        } else {
            let public = jwk.to_public().expect("public half");
            let private_pem = jwk.to_pem().expect("private PEM");
            let public_pem = public.to_pem().expect("public PEM");
            (Vec::new(), private_pem, public_pem, public)
        };
        let private_der = if private_pem.is_empty() {
            Vec::new()
        } else {
            tessera_token::pem::decode(&private_pem).expect("PEM").1
        };
        let public = Public {
            spki_der: if public_pem.is_empty() {
                Vec::new()
            } else {
                tessera_token::pem::decode(&public_pem).expect("PEM").1
            },
            raw: match alg {
                Algorithm::ES256 => {
                    [&[4u8][..], &json_member(&jwk, "x"), &json_member(&jwk, "y")].concat()
                }
                Algorithm::EdDSA => json_member(&jwk, "x"),
                _ => Vec::new(),
            },
        };

        let claims = claims(now);
        let tessera_signer = SigningKey::from_jwk(&jwk).expect("tessera signing key");
        let tessera_keys = KeySet::new(vec![
            VerifyingKey::from_jwk(&public_jwk).expect("tessera key"),
        ])
        .expect("key set");
        let tessera_key = VerifyingKey::from_jwk(&public_jwk).expect("tessera key");
        let policy = Policy::new()
            .issuer(ISSUER)
            .audience(AUDIENCE)
            .leeway(LEEWAY)
            .expect("leeway");

        let jwt_alg = match alg {
            Algorithm::HS256 => jsonwebtoken::Algorithm::HS256,
            Algorithm::RS256 => jsonwebtoken::Algorithm::RS256,
            Algorithm::PS256 => jsonwebtoken::Algorithm::PS256,
            Algorithm::ES256 => jsonwebtoken::Algorithm::ES256,
            Algorithm::EdDSA => jsonwebtoken::Algorithm::EdDSA,
            other => panic!("{other:?} is not benchmarked"),
        };
        let mut jwt_header = jsonwebtoken::Header::new(jwt_alg);
        jwt_header.kid = Some(kid.clone());
        let bad = "jsonwebtoken rejected the tessera key";
        let (jwt_encoding, jwt_decoding) = match alg {
            Algorithm::HS256 => (
                jsonwebtoken::EncodingKey::from_secret(&secret),
                jsonwebtoken::DecodingKey::from_secret(&secret),
            ),
            Algorithm::RS256 | Algorithm::PS256 => (
                jsonwebtoken::EncodingKey::from_rsa_pem(private_pem.as_bytes()).expect(bad),
                jsonwebtoken::DecodingKey::from_rsa_pem(public_pem.as_bytes()).expect(bad),
            ),
            Algorithm::ES256 => (
                jsonwebtoken::EncodingKey::from_ec_pem(private_pem.as_bytes()).expect(bad),
                jsonwebtoken::DecodingKey::from_ec_pem(public_pem.as_bytes()).expect(bad),
            ),
            _ => (
                jsonwebtoken::EncodingKey::from_ed_pem(private_pem.as_bytes()).expect(bad),
                jsonwebtoken::DecodingKey::from_ed_pem(public_pem.as_bytes()).expect(bad),
            ),
        };
        let mut jwt_validation = jsonwebtoken::Validation::new(jwt_alg);
        jwt_validation.set_issuer(&[ISSUER]);
        jwt_validation.set_audience(&[AUDIENCE]);
        jwt_validation.validate_nbf = true;
        jwt_validation.leeway = LEEWAY;

        let simple = Simple::new(alg, &kid, &secret, &private_pem, &public_pem);
        let simple_options = js::VerificationOptions {
            allowed_issuers: Some(HashSet::from([ISSUER.to_owned()])),
            allowed_audiences: Some(HashSet::from([AUDIENCE.to_owned()])),
            time_tolerance: Some(js::Duration::from_secs(LEEWAY)),
            ..Default::default()
        };
        let simple_claims = simple_claims(&claims);

        let raw = Raw::new(alg, &secret, &private_der, &public);

        let tessera_token = jwt::sign(&tessera_signer, &claims).expect("tessera sign");
        let jwt_token = jsonwebtoken::encode(&jwt_header, &claims, &jwt_encoding).expect("encode");
        let simple_token = simple.sign(simple_claims.clone());
        let (signing_input, sig_text) = tessera_token.rsplit_once('.').expect("three segments");
        let signing_input = signing_input.as_bytes().to_vec();
        let signature = tessera_token::b64::decode(sig_text).expect("signature base64url");

        let fixture = Fixture {
            alg,
            name,
            claims,
            tessera_signer,
            tessera_keys,
            tessera_key,
            policy,
            jwt_header,
            jwt_encoding,
            jwt_decoding,
            jwt_validation,
            simple,
            simple_claims,
            simple_options,
            raw,
            tessera_token,
            jwt_token,
            simple_token,
            signing_input,
            signature,
        };
        fixture.check();
        fixture
    }

    fn tessera_verify(&self, token: &str) -> Result<Claims, String> {
        jwt::verify_into::<Claims>(token, &self.tessera_keys, &self.policy, unix_now())
            .map(|(claims, _)| claims)
            .map_err(|e| e.to_string())
    }

    fn jwt_verify(&self, token: &str) -> Result<Claims, jsonwebtoken::errors::Error> {
        jsonwebtoken::decode::<Claims>(token, &self.jwt_decoding, &self.jwt_validation)
            .map(|data| data.claims)
    }

    /// Every library accepts every library's token (so all use the same key), decodes the same
    /// claims, and the raw primitive accepts tessera's signature.
    fn check(&self) {
        let alg = self.name;
        for (producer, token) in [
            ("tessera", &self.tessera_token),
            ("jsonwebtoken", &self.jwt_token),
            ("jwt-simple", &self.simple_token),
        ] {
            assert_eq!(
                self.tessera_verify(token).as_ref(),
                Ok(&self.claims),
                "{alg}: tessera on {producer}'s token"
            );
            assert_eq!(
                self.jwt_verify(token).ok().as_ref(),
                Some(&self.claims),
                "{alg}: jsonwebtoken on {producer}'s token"
            );
            let simple = self
                .simple
                .verify(token, self.simple_options.clone())
                .unwrap_or_else(|e| panic!("{alg}: jwt-simple on {producer}'s token: {e}"));
            assert_eq!(
                simple.custom, self.simple_claims.custom,
                "{alg}: jwt-simple custom"
            );
            assert_eq!(
                simple.subject, self.simple_claims.subject,
                "{alg}: jwt-simple sub"
            );
        }
        let payload = jws::verify(&self.tessera_token, &self.tessera_key, &Limits::default())
            .expect("jws::verify");
        assert_eq!(payload, serde_json::to_vec(&self.claims).expect("json"));
        assert!(
            self.raw.verify(&self.signing_input, &self.signature),
            "{alg}: raw verify of tessera's signature"
        );
        assert_eq!(self.tessera_signer.algorithm(), self.alg);
    }
}

const LIBS: [&str; 4] = ["tessera", "jsonwebtoken", "jwt-simple", "aws-lc-raw"];
const VERIFY_PARTS: [&str; 3] = ["verifyingkey-verify", "jws-verify", "jwt-verify-no-decode"];
const PIECES: [&str; 7] = [
    "b64-header",
    "b64-payload",
    "serde-claims",
    "serde-value-claims",
    "serde-to-vec-claims",
    "b64-encode-payload",
    "clock",
];
const ALGS: [Algorithm; 5] = [
    Algorithm::HS256,
    Algorithm::RS256,
    Algorithm::PS256,
    Algorithm::ES256,
    Algorithm::EdDSA,
];

/// The measured operations, shared by criterion and the interleaved cross-check so that both
/// time exactly the same calls.
impl Fixture {
    fn sign_tessera(&self) -> String {
        jwt::sign(&self.tessera_signer, black_box(&self.claims)).expect("sign")
    }

    fn sign_jwt(&self) -> String {
        jsonwebtoken::encode(
            &self.jwt_header,
            black_box(&self.claims),
            &self.jwt_encoding,
        )
        .expect("encode")
    }

    /// jwt-simple takes its claims by value: callers clone them outside the timing.
    fn sign_simple(&self, claims: js::JWTClaims<Extra>) -> String {
        self.simple.sign(black_box(claims))
    }

    fn sign_raw(&self, rng: &SystemRandom, out: &mut [u8]) -> usize {
        self.raw.sign(rng, black_box(&self.signing_input), out)
    }

    fn verify_tessera(&self) -> Claims {
        // The clock is read per call, as jsonwebtoken and jwt-simple do internally. One pass:
        // the strict rules and the typed decode together (`jwt::verify_into`).
        jwt::verify_into::<Claims>(
            black_box(&self.tessera_token),
            &self.tessera_keys,
            &self.policy,
            unix_now(),
        )
        .expect("verify")
        .0
    }

    fn verify_jwt(&self) -> jsonwebtoken::TokenData<Claims> {
        jsonwebtoken::decode::<Claims>(
            black_box(&self.jwt_token),
            &self.jwt_decoding,
            &self.jwt_validation,
        )
        .expect("decode")
    }

    /// verify_token takes its options by value: callers clone them outside the timing.
    fn verify_simple(&self, options: js::VerificationOptions) -> js::JWTClaims<Extra> {
        self.simple
            .verify(black_box(&self.simple_token), options)
            .expect("verify")
    }

    fn verify_raw(&self) -> bool {
        let ok = self
            .raw
            .verify(black_box(&self.signing_input), black_box(&self.signature));
        assert!(ok, "raw verify");
        ok
    }

    fn slow_sign(&self) -> bool {
        matches!(self.alg, Algorithm::RS256 | Algorithm::PS256)
    }
}

fn bench_sign(c: &mut Criterion, f: &Fixture) {
    let mut group = c.benchmark_group(format!("{}-sign", f.name));
    if f.slow_sign() {
        // Milliseconds per call: linear sampling would need thousands of iterations.
        group.sampling_mode(SamplingMode::Flat);
    }
    group.bench_function(LIBS[0], |b| b.iter(|| f.sign_tessera()));
    group.bench_function(LIBS[1], |b| b.iter(|| f.sign_jwt()));
    group.bench_function(LIBS[2], |b| {
        // The token is dropped inside the timing, like the other libraries'.
        b.iter_batched(
            || f.simple_claims.clone(),
            |claims| {
                black_box(f.sign_simple(claims));
            },
            BatchSize::SmallInput,
        )
    });
    let rng = SystemRandom::new();
    let mut out = vec![0u8; f.raw.signature_len()];
    group.bench_function(LIBS[3], |b| b.iter(|| f.sign_raw(&rng, &mut out)));
    group.finish();

    // tessera's key object alone over the same signing input: jwt::sign minus this is the JWT
    // assembly (claims to JSON, base64url, concatenation).
    let mut group = c.benchmark_group(format!("{}-sign-parts", f.name));
    if f.slow_sign() {
        group.sampling_mode(SamplingMode::Flat);
    }
    group.bench_function("signingkey-sign", |b| {
        b.iter(|| {
            f.tessera_signer
                .sign(black_box(&f.signing_input))
                .expect("sign")
        })
    });
    group.finish();
}

fn bench_verify(c: &mut Criterion, f: &Fixture) {
    let mut group = c.benchmark_group(format!("{}-verify", f.name));
    group.bench_function(LIBS[0], |b| b.iter(|| f.verify_tessera()));
    group.bench_function(LIBS[1], |b| b.iter(|| f.verify_jwt()));
    group.bench_function(LIBS[2], |b| {
        b.iter_batched(
            || f.simple_options.clone(),
            |options| {
                black_box(f.verify_simple(options));
            },
            BatchSize::SmallInput,
        )
    });
    group.bench_function(LIBS[3], |b| b.iter(|| f.verify_raw()));
    group.finish();

    // Where tessera's verify time goes: tessera's key object alone, the bare JWS check (split,
    // header, signature, payload base64url; no claims), and jwt::verify without the typed decode.
    let mut group = c.benchmark_group(format!("{}-verify-parts", f.name));
    group.bench_function("jwt-verify-no-decode", |b| {
        b.iter(|| {
            jwt::verify(
                black_box(&f.tessera_token),
                &f.tessera_keys,
                &f.policy,
                unix_now(),
            )
            .expect("verify")
        })
    });
    group.bench_function("jws-verify", |b| {
        b.iter(|| {
            jws::verify(
                black_box(&f.tessera_token),
                &f.tessera_key,
                &Limits::default(),
            )
            .expect("jws verify")
        })
    });
    group.bench_function("verifyingkey-verify", |b| {
        b.iter(|| {
            f.tessera_key
                .verify(black_box(&f.signing_input), black_box(&f.signature))
                .expect("key verify")
        })
    });
    group.finish();
}

/// Runs `n` calls and returns the elapsed time; inputs a library takes by value are prepared
/// before the clock starts.
type Timed<'a> = Box<dyn FnMut(u64) -> Duration + 'a>;

fn timed<'a, O>(mut op: impl FnMut() -> O + 'a) -> Timed<'a> {
    Box::new(move |n| {
        let start = Instant::now();
        for _ in 0..n {
            black_box(op());
        }
        start.elapsed()
    })
}

fn timed_with<'a, I, O>(
    mut setup: impl FnMut() -> I + 'a,
    mut op: impl FnMut(I) -> O + 'a,
) -> Timed<'a> {
    Box::new(move |n| {
        let inputs: Vec<I> = (0..n).map(|_| setup()).collect();
        let start = Instant::now();
        for input in inputs {
            black_box(op(input));
        }
        start.elapsed()
    })
}

/// Per-library medians (ns per call) from interleaved batches: every round runs each library
/// for about `BATCH` in turn (rotating the order), so slow drifts in machine load hit all four
/// alike. A cross-check for criterion's means, which measure each library minutes apart.
fn interleaved(mut ops: Vec<Timed<'_>>, budget: Duration) -> Vec<f64> {
    const BATCH: Duration = Duration::from_micros(400);
    let iters: Vec<u64> = ops
        .iter_mut()
        .map(|op| {
            op(1); // warm
            let once = op(3).as_nanos().max(1) as f64 / 3.0;
            ((BATCH.as_nanos() as f64 / once) as u64).max(1)
        })
        .collect();
    let mut samples = vec![Vec::new(); ops.len()];
    let start = Instant::now();
    let mut round = 0;
    while start.elapsed() < budget || round < 15 {
        for k in 0..ops.len() {
            let i = (k + round) % ops.len();
            let t = ops[i](iters[i]);
            samples[i].push(t.as_nanos() as f64 / iters[i] as f64);
        }
        round += 1;
    }
    samples
        .into_iter()
        .map(|mut s| {
            s.sort_by(f64::total_cmp);
            s[s.len() / 2]
        })
        .collect()
}

/// The interleaved cross-check for every algorithm and operation: (group, per-library medians).
fn cross_check(fixtures: &[Fixture]) -> Vec<(String, Vec<f64>)> {
    let budget = Duration::from_millis(2500);
    let mut out = Vec::new();
    for f in fixtures {
        let rng = SystemRandom::new();
        let mut buf = vec![0u8; f.raw.signature_len()];
        let sign: Vec<Timed<'_>> = vec![
            timed(|| f.sign_tessera()),
            timed(|| f.sign_jwt()),
            timed_with(|| f.simple_claims.clone(), |c| f.sign_simple(c)),
            timed(move || f.sign_raw(&rng, &mut buf)),
        ];
        out.push((format!("{}-sign", f.name), interleaved(sign, budget)));
        let verify: Vec<Timed<'_>> = vec![
            timed(|| f.verify_tessera()),
            timed(|| f.verify_jwt()),
            timed_with(|| f.simple_options.clone(), |o| f.verify_simple(o)),
            timed(|| f.verify_raw()),
        ];
        out.push((format!("{}-verify", f.name), interleaved(verify, budget)));
    }
    out
}

/// The algorithm-independent pieces of a verify, on the HS256 token.
fn bench_pieces(c: &mut Criterion, f: &Fixture) {
    let mut segments = f.tessera_token.split('.');
    let header = segments.next().expect("header").to_owned();
    let payload_b64 = segments.next().expect("payload").to_owned();
    let payload = tessera_token::b64::decode(&payload_b64).expect("payload");
    let mut group = c.benchmark_group("verify-pieces");
    group.bench_function("b64-header", |b| {
        b.iter(|| tessera_token::b64::decode(black_box(&header)).expect("b64"))
    });
    group.bench_function("b64-payload", |b| {
        b.iter(|| tessera_token::b64::decode(black_box(&payload_b64)).expect("b64"))
    });
    group.bench_function("serde-claims", |b| {
        b.iter(|| serde_json::from_slice::<Claims>(black_box(&payload)).expect("claims"))
    });
    group.bench_function("serde-value-claims", |b| {
        b.iter(|| serde_json::from_slice::<serde_json::Value>(black_box(&payload)).expect("json"))
    });
    group.bench_function("serde-to-vec-claims", |b| {
        b.iter(|| serde_json::to_vec(black_box(&f.claims)).expect("json"))
    });
    group.bench_function("b64-encode-payload", |b| {
        b.iter(|| tessera_token::b64::encode(black_box(&payload)))
    });
    group.bench_function("clock", |b| b.iter(unix_now));
    group.finish();
}

fn criterion_dir() -> PathBuf {
    // Criterion's own order: $CRITERION_HOME, $CARGO_TARGET_DIR/criterion, the workspace target.
    if let Some(home) = std::env::var_os("CRITERION_HOME") {
        return PathBuf::from(home);
    }
    if let Some(target) = std::env::var_os("CARGO_TARGET_DIR") {
        return PathBuf::from(target).join("criterion");
    }
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/criterion")
}

/// The mean (ns) and its 95% confidence interval from one benchmark's `estimates.json`, if
/// this run wrote it.
fn estimate(dir: &Path, group: &str, bench: &str, since: SystemTime) -> Option<(f64, f64, f64)> {
    let path = dir.join(group).join(bench).join("new/estimates.json");
    let modified = std::fs::metadata(&path).and_then(|m| m.modified()).ok()?;
    if modified < since {
        return None; // left over from an earlier run (e.g. filtered out this time)
    }
    let json: serde_json::Value = serde_json::from_slice(&std::fs::read(&path).ok()?).ok()?;
    let mean = &json["mean"];
    Some((
        mean["point_estimate"].as_f64()?,
        mean["confidence_interval"]["lower_bound"].as_f64()?,
        mean["confidence_interval"]["upper_bound"].as_f64()?,
    ))
}

fn fmt_ns(ns: f64) -> String {
    if ns >= 1_000_000.0 {
        format!("{:.3} ms", ns / 1_000_000.0)
    } else if ns >= 1_000.0 {
        format!("{:.2} µs", ns / 1_000.0)
    } else {
        format!("{ns:.0} ns")
    }
}

fn report(dir: &Path, since: SystemTime, cross: &[(String, Vec<f64>)]) {
    let mean = |group: &str, bench: &str| estimate(dir, group, bench, since).map(|e| e.0);
    let median = |group: &str, bench: &str| {
        let lib = LIBS.iter().position(|l| *l == bench)?;
        cross.iter().find(|(g, _)| g == group).map(|(_, v)| v[lib])
    };
    let cell = |v: Option<f64>, raw: Option<f64>| match (v, raw) {
        (Some(v), Some(r)) => format!("{} ({:.2}x)", fmt_ns(v), v / r),
        (Some(v), None) => fmt_ns(v),
        _ => "n/a".into(),
    };
    let speedup = |other: Option<f64>, tessera: Option<f64>| match (other, tessera) {
        (Some(o), Some(t)) => format!("{:.2}x", o / t),
        _ => "n/a".into(),
    };
    let table = |value: &dyn Fn(&str, &str) -> Option<f64>| {
        println!(
            "| alg | op | aws-lc raw | tessera | jsonwebtoken | jwt-simple | tessera speed-up vs jsonwebtoken | vs jwt-simple |"
        );
        println!("|---|---|---:|---:|---:|---:|---:|---:|");
        for op in ["sign", "verify"] {
            for alg in ALGS {
                let group = format!("{}-{op}", alg.as_str());
                let [t, j, s, r] = LIBS.map(|lib| value(&group, lib));
                println!(
                    "| {} | {op} | {} | {} | {} | {} | {} | {} |",
                    alg.as_str(),
                    r.map_or("n/a".into(), fmt_ns),
                    cell(t, r),
                    cell(j, r),
                    cell(s, r),
                    speedup(j, t),
                    speedup(s, t),
                );
            }
        }
    };

    println!("\n## Criterion: mean time per call (ratio to the raw aws-lc-rs primitive)\n");
    table(&mean);
    println!("\n## Cross-check: median of interleaved batches, same process, after criterion\n");
    table(&median);

    println!("\n## Targets (criterion mean; interleaved median)\n");
    let verdict = |what: &str, a: &str, b: &str, group: &str, limit: f64, at_most: bool| {
        let judge = |v: Option<f64>| match v {
            None => "n/a".to_string(),
            Some(v) if (at_most && v <= limit) || (!at_most && v >= limit) => {
                format!("{v:.3}x met")
            }
            Some(v) => {
                let miss = if at_most {
                    v / limit - 1.0
                } else {
                    1.0 - v / limit
                };
                format!("{v:.3}x MISSED by {:.1}%", miss * 100.0)
            }
        };
        let criterion = mean(group, a).zip(mean(group, b)).map(|(x, y)| x / y);
        let interleaved = median(group, a).zip(median(group, b)).map(|(x, y)| x / y);
        let sign = if at_most { "≤" } else { "≥" };
        println!(
            "- {what} {sign} {limit}x: {}; {}",
            judge(criterion),
            judge(interleaved)
        );
    };
    for alg in ["RS256", "PS256", "ES256", "EdDSA"] {
        verdict(
            &format!("{alg} verify, tessera / raw"),
            "tessera",
            "aws-lc-raw",
            &format!("{alg}-verify"),
            1.05,
            true,
        );
    }
    verdict(
        "HS256 verify, tessera / raw HMAC",
        "tessera",
        "aws-lc-raw",
        "HS256-verify",
        3.0,
        true,
    );
    verdict(
        "HS256 verify, jsonwebtoken / tessera (speed-up)",
        "jsonwebtoken",
        "tessera",
        "HS256-verify",
        2.5,
        false,
    );
    for alg in ["RS256", "PS256", "ES256", "EdDSA"] {
        verdict(
            &format!("{alg} sign, tessera / raw"),
            "tessera",
            "aws-lc-raw",
            &format!("{alg}-sign"),
            1.10,
            true,
        );
    }

    let delta = |a: Option<f64>, b: Option<f64>| match (a, b) {
        (Some(a), Some(b)) if a >= b => format!("{} (+{})", fmt_ns(a), fmt_ns(a - b)),
        (Some(a), Some(b)) => format!("{} (−{})", fmt_ns(a), fmt_ns(b - a)),
        (Some(a), None) => fmt_ns(a),
        _ => "n/a".into(),
    };

    println!("\n## Where tessera's sign time goes (mean; in brackets: minus the column before)\n");
    println!("| alg | aws-lc raw | SigningKey::sign | jwt::sign |");
    println!("|---|---:|---:|---:|");
    for alg in ALGS {
        let name = alg.as_str();
        let raw = mean(&format!("{name}-sign"), "aws-lc-raw");
        let key = mean(&format!("{name}-sign-parts"), "signingkey-sign");
        let full = mean(&format!("{name}-sign"), "tessera");
        println!(
            "| {name} | {} | {} | {} |",
            raw.map_or("n/a".into(), fmt_ns),
            delta(key, raw),
            delta(full, key),
        );
    }

    println!(
        "\n## Where tessera's verify time goes (mean; in brackets: minus the column before)\n"
    );
    println!(
        "| alg | aws-lc raw | VerifyingKey::verify | jws::verify (split, header, sig, payload b64) | jwt::verify (+ strict claim pass, policy) | + claims::<Claims>() = full |"
    );
    println!("|---|---:|---:|---:|---:|---:|");
    for alg in ALGS {
        let name = alg.as_str();
        let raw = mean(&format!("{name}-verify"), "aws-lc-raw");
        let full = mean(&format!("{name}-verify"), "tessera");
        let parts = format!("{name}-verify-parts");
        let key = mean(&parts, "verifyingkey-verify");
        let jws_v = mean(&parts, "jws-verify");
        let jwt_v = mean(&parts, "jwt-verify-no-decode");
        println!(
            "| {name} | {} | {} | {} | {} | {} |",
            raw.map_or("n/a".into(), fmt_ns),
            delta(key, raw),
            delta(jws_v, key),
            delta(jwt_v, jws_v),
            delta(full, jwt_v),
        );
    }
    println!("\nAlgorithm-independent pieces (HS256 token, 348-byte claim set):\n");
    for piece in PIECES {
        if let Some(v) = mean("verify-pieces", piece) {
            println!("- {piece}: {}", fmt_ns(v));
        }
    }

    println!("\n## All estimates (mean and 95% confidence interval)\n");
    println!("| group | bench | mean | 95% CI |");
    println!("|---|---|---:|---|");
    let mut groups: Vec<(String, Vec<&str>)> = Vec::new();
    for alg in ALGS {
        let name = alg.as_str();
        groups.push((format!("{name}-sign"), LIBS.to_vec()));
        groups.push((format!("{name}-sign-parts"), vec!["signingkey-sign"]));
        groups.push((format!("{name}-verify"), LIBS.to_vec()));
        groups.push((format!("{name}-verify-parts"), VERIFY_PARTS.to_vec()));
    }
    groups.push(("verify-pieces".into(), PIECES.to_vec()));
    for (group, benches) in &groups {
        for bench in benches {
            if let Some((m, lo, hi)) = estimate(dir, group, bench, since) {
                println!(
                    "| {group} | {bench} | {} | {} – {} (±{:.1}%) |",
                    fmt_ns(m),
                    fmt_ns(lo),
                    fmt_ns(hi),
                    (hi - lo) / 2.0 / m * 100.0
                );
            }
        }
    }
}

fn main() {
    // A little before now, so a coarse file-system clock cannot drop this run's files.
    let started = SystemTime::now() - Duration::from_secs(2);
    let args: Vec<String> = std::env::args().collect();
    let flag = |f: &str| args.iter().any(|a| a == f);
    // `cargo bench` passes --bench; `cargo test --benches` does not and only smoke-tests.
    let measuring = flag("--bench") && !flag("--test") && !flag("--list");

    let now = unix_now();
    let fixtures: Vec<Fixture> = ALGS.iter().map(|&alg| Fixture::new(alg, now)).collect();
    let payload_len = serde_json::to_vec(&fixtures[0].claims).expect("json").len();
    assert!(
        (320..=360).contains(&payload_len),
        "claim set is {payload_len} bytes, want 320-360"
    );
    if measuring {
        println!(
            "claim set: {payload_len} bytes of JSON; tessera HS256 token: {} bytes",
            fixtures[0].tessera_token.len()
        );
    }

    let dir = criterion_dir();
    let mut c = Criterion::default()
        .output_directory(&dir)
        .warm_up_time(Duration::from_secs(2))
        .measurement_time(Duration::from_secs(5))
        .configure_from_args();
    for f in &fixtures {
        bench_sign(&mut c, f);
        bench_verify(&mut c, f);
    }
    bench_pieces(&mut c, &fixtures[0]);
    c.final_summary();

    if measuring {
        let cross = cross_check(&fixtures);
        report(&dir, started, &cross);
    }
}
