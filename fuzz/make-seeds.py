#!/usr/bin/env python3
"""Regenerates the committed seed corpus, fuzz/corpus/<target>/seed-*, from the RFC vectors in
crates/tessera-token/tests/vectors/ plus hand-made hostile inputs.

Standard library only. Tokens are signed here with the vectors' private keys: HS256 with hmac,
RS256 (RSASSA-PKCS1-v1_5) with pow(), EdDSA with the RFC 8032 reference algorithm and ES256 /
ES512 with RFC 6979 deterministic nonces, so the output is byte-for-byte reproducible. Each
algorithm is checked against the RFC vectors before anything is written.

Usage: python3 fuzz/make-seeds.py    (from anywhere; rewrites only files named seed-*)
"""

import base64
import hashlib
import hmac
import json
import re
import sys
from pathlib import Path

FUZZ = Path(__file__).resolve().parent
VECTORS = FUZZ.parent / "crates" / "tessera-token" / "tests" / "vectors"
CORPUS = FUZZ / "corpus"

NOW = 1_700_000_000  # the fixed clock of fuzz_targets/jwt_verify.rs
EXP = 2_000_000_000  # seed tokens are valid at NOW


# ---------------------------------------------------------------------------------------------
# encodings


def b64e(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def b64d(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def to_int(text: str) -> int:
    return int.from_bytes(b64d(text), "big")


def compact(value) -> bytes:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode()


# ---------------------------------------------------------------------------------------------
# RSASSA-PKCS1-v1_5 with SHA-256 (RFC 8017 §8.2)

SHA256_DIGEST_INFO = bytes.fromhex("3031300d060960864801650304020105000420")


def rs256_sign(jwk: dict, msg: bytes) -> bytes:
    n, d = to_int(jwk["n"]), to_int(jwk["d"])
    k = (n.bit_length() + 7) // 8
    t = SHA256_DIGEST_INFO + hashlib.sha256(msg).digest()
    em = b"\x00\x01" + b"\xff" * (k - len(t) - 3) + b"\x00" + t
    return pow(int.from_bytes(em, "big"), d, n).to_bytes(k, "big")


# ---------------------------------------------------------------------------------------------
# Ed25519 (RFC 8032 §5.1, after the reference code of §6)

ED_P = 2**255 - 19
ED_Q = 2**252 + 27742317777372353535851937790883648493
ED_D = -121665 * pow(121666, ED_P - 2, ED_P) % ED_P
ED_SQRT_M1 = pow(2, (ED_P - 1) // 4, ED_P)


def _ed_add(a, b):
    p = ED_P
    x = (a[1] - a[0]) * (b[1] - b[0]) % p
    y = (a[1] + a[0]) * (b[1] + b[0]) % p
    c = 2 * a[3] * b[3] * ED_D % p
    dd = 2 * a[2] * b[2] % p
    e, f, g, h = y - x, dd - c, dd + c, y + x
    return (e * f % p, g * h % p, f * g % p, e * h % p)


def _ed_mul(s, pt):
    acc = (0, 1, 1, 0)
    while s:
        if s & 1:
            acc = _ed_add(acc, pt)
        pt = _ed_add(pt, pt)
        s >>= 1
    return acc


def _ed_base():
    y = 4 * pow(5, ED_P - 2, ED_P) % ED_P
    x2 = (y * y - 1) * pow(ED_D * y * y + 1, ED_P - 2, ED_P)
    x = pow(x2, (ED_P + 3) // 8, ED_P)
    if (x * x - x2) % ED_P:
        x = x * ED_SQRT_M1 % ED_P
    if x & 1:
        x = ED_P - x
    return (x, y, 1, x * y % ED_P)


def _ed_compress(pt) -> bytes:
    zinv = pow(pt[2], ED_P - 2, ED_P)
    x, y = pt[0] * zinv % ED_P, pt[1] * zinv % ED_P
    return (y | ((x & 1) << 255)).to_bytes(32, "little")


def _h512(data: bytes) -> int:
    return int.from_bytes(hashlib.sha512(data).digest(), "little") % ED_Q


def ed25519_public(seed: bytes) -> bytes:
    h = hashlib.sha512(seed).digest()
    a = (int.from_bytes(h[:32], "little") & ((1 << 254) - 8)) | (1 << 254)
    return _ed_compress(_ed_mul(a, _ed_base()))


def eddsa_sign(jwk: dict, msg: bytes) -> bytes:
    seed = b64d(jwk["d"])
    h = hashlib.sha512(seed).digest()
    a = (int.from_bytes(h[:32], "little") & ((1 << 254) - 8)) | (1 << 254)
    g = _ed_base()
    pub = _ed_compress(_ed_mul(a, g))
    r = _h512(h[32:] + msg)
    big_r = _ed_compress(_ed_mul(r, g))
    s = (r + _h512(big_r + pub + msg) * a) % ED_Q
    return big_r + s.to_bytes(32, "little")


# ---------------------------------------------------------------------------------------------
# ECDSA over P-256 / P-521 with RFC 6979 nonces, signatures as fixed-size R || S (RFC 7518 §3.4)

CURVES = {
    "P-256": dict(
        p=2**256 - 2**224 + 2**192 + 2**96 - 1,
        a=-3,
        n=0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551,
        gx=0x6B17D1F2E12C4247F8BCE6E563A440F277037D812DEB33A0F4A13945D898C296,
        gy=0x4FE342E2FE1A7F9B8EE7EB4A7C0F9E162BCE33576B315ECECBB6406837BF51F5,
        size=32,
        hash=hashlib.sha256,
    ),
    "P-521": dict(
        p=2**521 - 1,
        a=-3,
        n=0x01FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFA51868783BF2F966B7FCC0148F709A5D03BB5C9B8899C47AEBB6FB71E91386409,
        gx=0x00C6858E06B70404E9CD9E3ECB662395B4429C648139053FB521F828AF606B4D3DBAA14B5E77EFE75928FE1DC127A2FFA8DE3348B3C1856A429BF97E7E31C2E5BD66,
        gy=0x011839296A789A3BC0045C8A5FB42C7D1BD998F54449579B446817AFBD17273E662C97EE72995EF42640C550B9013FAD0761353C7086A272C24088BE94769FD16650,
        size=66,
        hash=hashlib.sha512,
    ),
}


def _ec_add(c, a, b):
    p = c["p"]
    if a is None:
        return b
    if b is None:
        return a
    if a[0] == b[0] and (a[1] + b[1]) % p == 0:
        return None
    if a == b:
        lam = (3 * a[0] * a[0] + c["a"]) * pow(2 * a[1], -1, p) % p
    else:
        lam = (b[1] - a[1]) * pow(b[0] - a[0], -1, p) % p
    x = (lam * lam - a[0] - b[0]) % p
    return (x, (lam * (a[0] - x) - a[1]) % p)


def _ec_mul(c, k, pt):
    acc = None
    while k:
        if k & 1:
            acc = _ec_add(c, acc, pt)
        pt = _ec_add(c, pt, pt)
        k >>= 1
    return acc


def _bits2int(c, data: bytes) -> int:
    v = int.from_bytes(data, "big")
    excess = len(data) * 8 - c["n"].bit_length()
    return v >> excess if excess > 0 else v


def _rfc6979_k(c, x: int, digest: bytes) -> int:
    n, hashfn = c["n"], c["hash"]
    rlen = (n.bit_length() + 7) // 8
    mac = lambda key, data: hmac.new(key, data, hashfn).digest()  # noqa: E731
    hlen = hashfn().digest_size
    xo = x.to_bytes(rlen, "big")
    ho = (_bits2int(c, digest) % n).to_bytes(rlen, "big")
    v, k = b"\x01" * hlen, b"\x00" * hlen
    k = mac(k, v + b"\x00" + xo + ho)
    v = mac(k, v)
    k = mac(k, v + b"\x01" + xo + ho)
    v = mac(k, v)
    while True:
        t = b""
        while len(t) < rlen:
            v = mac(k, v)
            t += v
        cand = _bits2int(c, t)
        if 1 <= cand < n:
            return cand
        k = mac(k, v + b"\x00")
        v = mac(k, v)


def ecdsa_sign(jwk: dict, msg: bytes) -> bytes:
    c = CURVES[jwk["crv"]]
    n, d = c["n"], to_int(jwk["d"])
    digest = c["hash"](msg).digest()
    e = _bits2int(c, digest)
    k = _rfc6979_k(c, d, digest)
    r = _ec_mul(c, k, (c["gx"], c["gy"]))[0] % n
    s = pow(k, -1, n) * (e + r * d) % n
    return r.to_bytes(c["size"], "big") + s.to_bytes(c["size"], "big")


def ecdsa_verify(jwk: dict, msg: bytes, sig: bytes) -> bool:
    c = CURVES[jwk["crv"]]
    n, size = c["n"], c["size"]
    if len(sig) != 2 * size:
        return False
    r, s = int.from_bytes(sig[:size], "big"), int.from_bytes(sig[size:], "big")
    if not (0 < r < n and 0 < s < n):
        return False
    w = pow(s, -1, n)
    e = _bits2int(c, c["hash"](msg).digest())
    q = (to_int(jwk["x"]), to_int(jwk["y"]))
    pt = _ec_add(c, _ec_mul(c, e * w % n, (c["gx"], c["gy"])), _ec_mul(c, r * w % n, q))
    return pt is not None and pt[0] % n == r


def hs256_sign(jwk: dict, msg: bytes) -> bytes:
    return hmac.new(b64d(jwk["k"]), msg, hashlib.sha256).digest()


SIGNERS = {"HS256": hs256_sign, "RS256": rs256_sign, "EdDSA": eddsa_sign, "ES256": ecdsa_sign, "ES512": ecdsa_sign}


def sign(jwk: dict, header: bytes, payload: bytes) -> str:
    """A compact JWS over the header and payload bytes exactly as given."""
    signing_input = f"{b64e(header)}.{b64e(payload)}".encode()
    return f"{signing_input.decode()}.{b64e(SIGNERS[jwk['alg']](jwk, signing_input))}"


# ---------------------------------------------------------------------------------------------
# DER for PEM seeds (PKCS#8 and SPKI)


def der(tag: int, content: bytes) -> bytes:
    n = len(content)
    if n < 0x80:
        length = bytes([n])
    else:
        raw = n.to_bytes((n.bit_length() + 7) // 8, "big")
        length = bytes([0x80 | len(raw)]) + raw
    return bytes([tag]) + length + content


def der_uint(v: int) -> bytes:
    raw = v.to_bytes(max(1, (v.bit_length() + 8) // 8), "big")
    return der(0x02, raw)


def seq(*items: bytes) -> bytes:
    return der(0x30, b"".join(items))


OID_RSA = der(0x06, bytes.fromhex("2a864886f70d010101"))
OID_EC = der(0x06, bytes.fromhex("2a8648ce3d0201"))
OID_CURVE = {"P-256": der(0x06, bytes.fromhex("2a8648ce3d030107")), "P-521": der(0x06, bytes.fromhex("2b81040023"))}
OID_ED25519 = der(0x06, bytes.fromhex("2b6570"))
NULL = der(0x05, b"")


def pem(label: str, body: bytes, eol: str = "\n") -> str:
    text = base64.b64encode(body).decode()
    lines = [text[i : i + 64] for i in range(0, len(text), 64)]
    return eol.join([f"-----BEGIN {label}-----", *lines, f"-----END {label}-----"]) + eol


def spki_der(jwk: dict) -> bytes:
    if jwk["kty"] == "RSA":
        key = seq(der_uint(to_int(jwk["n"])), der_uint(to_int(jwk["e"])))
        return seq(seq(OID_RSA, NULL), der(0x03, b"\x00" + key))
    if jwk["kty"] == "EC":
        point = b"\x04" + b64d(jwk["x"]) + b64d(jwk["y"])
        return seq(seq(OID_EC, OID_CURVE[jwk["crv"]]), der(0x03, b"\x00" + point))
    return seq(seq(OID_ED25519), der(0x03, b"\x00" + b64d(jwk["x"])))


def pkcs8_der(jwk: dict) -> bytes:
    if jwk["kty"] == "RSA":
        ints = [0] + [to_int(jwk[m]) for m in ("n", "e", "d", "p", "q", "dp", "dq", "qi")]
        key = seq(*map(der_uint, ints))
        return seq(der_uint(0), seq(OID_RSA, NULL), der(0x04, key))
    if jwk["kty"] == "EC":
        point = b"\x04" + b64d(jwk["x"]) + b64d(jwk["y"])
        ec_key = seq(der_uint(1), der(0x04, b64d(jwk["d"])), der(0xA1, der(0x03, b"\x00" + point)))
        return seq(der_uint(0), seq(OID_EC, OID_CURVE[jwk["crv"]]), der(0x04, ec_key))
    return seq(der_uint(0), seq(OID_ED25519), der(0x04, der(0x04, b64d(jwk["d"]))))


# ---------------------------------------------------------------------------------------------
# the vectors and the fixture keys of the targets


def load_vectors() -> dict:
    return {p.stem: json.loads(p.read_text()) for p in sorted(VECTORS.glob("*/*.json"))}


PRIVATE = ("d", "p", "q", "dp", "dq", "qi")


def public(jwk: dict) -> dict:
    return {k: v for k, v in jwk.items() if k not in PRIVATE}


def fixture_keys(v: dict) -> dict:
    """The private keys behind the key set of jwt_verify.rs, by name."""
    keys = {
        "hs256": dict(v["4_4_hs256"]["jwk"]),
        "es256": dict(v["a3_es256"]["jwk"], kid="rfc7515-a3-es256"),
        "es512": dict(v["4_3_es512"]["jwk"]),
        "eddsa": dict(v["a4_ed25519"]["jwk"], kid="rfc8037-a1-ed25519"),
        "rs256": dict(v["a2_rs256"]["jwk"], kid="rfc7515-a2-rs256"),
    }
    assert keys["es512"]["kid"] == "bilbo.baggins@hobbiton.example"
    return keys


def rust_json(target: str, const: str):
    src = (FUZZ / "fuzz_targets" / f"{target}.rs").read_text()
    m = re.search(rf'const {const}: &str = r#"(.*?)"#;', src, re.S)
    assert m, f"{const} not found in {target}.rs"
    return json.loads(m.group(1))


def check_fixtures(keys: dict, a1: dict) -> None:
    """The targets embed the public halves; they must match the keys the seeds are signed with."""
    embedded = {k["kid"]: k for k in rust_json("jwt_verify", "JWKS")["keys"]}
    for name, jwk in keys.items():
        want = public(jwk)
        assert embedded.get(jwk["kid"]) == want, f"jwt_verify.rs key {jwk['kid']} is out of step"
    assert len(embedded) == len(keys)
    assert rust_json("jws_verify", "JWK") == a1, "jws_verify.rs key is out of step"


def self_test(v: dict) -> None:
    """Each signer reproduces (or, for ECDSA, verifies against) the RFC vectors."""
    for name in ("a1_hs256", "a2_rs256", "a4_ed25519", "4_4_hs256", "4_1_rs256"):
        vec = v[name]
        h, p, s = vec["token"].split(".")
        got = SIGNERS[vec["jwk"]["alg"]](vec["jwk"], f"{h}.{p}".encode())
        assert b64e(got) == s, f"{name}: signer does not reproduce the RFC signature"
    for name in ("a3_es256", "4_3_es512", "a4_es512"):
        vec = v[name]
        h, p, s = vec["token"].split(".")
        assert ecdsa_verify(vec["jwk"], f"{h}.{p}".encode(), b64d(s)), f"{name}: ECDSA check failed"
        mine = ecdsa_sign(vec["jwk"], b"tessera")
        assert ecdsa_verify(vec["jwk"], b"tessera", mine), f"{name}: own ECDSA signature fails"
    ed = v["a4_ed25519"]["jwk"]
    assert b64e(ed25519_public(b64d(ed["d"]))) == ed["x"]


# ---------------------------------------------------------------------------------------------
# the seeds


# Claims that Policy::new() accepts at NOW (also used by jwt_claims).
VALID_PAYLOADS = {
    "minimal": b'{"exp":2000000000}',
    "float-exp": b'{"exp":2.0e9,"nbf":1.6999e9}',
    "escaped-strings": b'{"exp":2000000000,"sub":"a\\u00efda\\n","iss":"\\ud83d\\ude00","jti":"\\"q\\""}',
    "escaped-names": b'{"\\u0065xp":2000000000,"s\\u0075b":"ada"}',
    "non-ascii": '{"exp":2000000000,"sub":"Zoë ✓ 𝄞","name":"İstanbul"}'.encode(),
    "whitespace": b' \r\n\t{ "exp" : 2000000000 , "sub" : "ada" }\n ',
    "nested-15": b'{"exp":2000000000,"x":' + b"[" * 14 + b"]" * 14 + b"}",
    "many-members": compact({"exp": EXP, **{f"m{i}": i for i in range(40)}}),
    "types": b'{"exp":2000000000,"n":null,"t":true,"f":false,"a":[1,-2.5e-3,"s",{}],"o":{"k":[]}}',
    "big-exp": b'{"exp":1.7976931348623157e308}',
    "u64-exp": b'{"exp":18446744073709551615}',
}

# Claims that the strict parser or Policy::new() refuses (also used by jwt_claims).
REFUSED_PAYLOADS = {
    "expired": b'{"exp":1600000000}',
    "expired-rfc": b'{"iss":"joe",\r\n "exp":1300819380,\r\n "http://example.com/is_root":true}',
    "not-yet": b'{"exp":2000000000,"nbf":1800000000}',
    "aud": b'{"exp":2000000000,"aud":["a","b"]}',
    "aud-one": b'{"exp":2000000000,"aud":"a"}',
    "no-exp": b'{"sub":"ada"}',
    "exp-string": b'{"exp":"2000000000"}',
    "exp-null": b'{"exp":null}',
    "sub-number": b'{"exp":2000000000,"sub":7}',
    "dup-claim": b'{"exp":2000000000,"exp":1}',
    "dup-nested": b'{"exp":2000000000,"x":{"a":1,"a":2}}',
    "dup-late": compact({"exp": EXP, **{f"m{i}": i for i in range(30)}})[:-1] + b',"m3":0}',
    "dup-escaped": b'{"exp":2000000000,"sub":"a","s\\u0075b":"b"}',
    "deep-16": b'{"exp":2000000000,"x":' + b"[" * 16 + b"]" * 16 + b"}",
    "deep-200": b'{"exp":2000000000,"x":' + b"[" * 200 + b"]" * 200 + b"}",
    "huge-number": b'{"exp":1e400}',
    "huge-int": b'{"exp":' + b"9" * 400 + b"}",
    "neg-zero": b'{"exp":-0.0}',
    "array": b'[{"exp":2000000000}]',
    "string": b'"exp"',
    "trailing": b'{"exp":2000000000} {}',
    "bom": b'\xef\xbb\xbf{"exp":2000000000}',
    "latin1": b'{"exp":2000000000,"sub":"\xe9"}',
    "lone-surrogate": b'{"exp":2000000000,"sub":"\\ud800"}',
    "nul": b'{"exp":2000000000,"sub":"a\x00b"}',
    "empty": b"",
}

CLAIMS = {
    "iss": "https://issuer.example",
    "sub": "ada",
    "exp": EXP,
    "nbf": NOW - 1000,
    "iat": NOW - 1000,
    "jti": "seed-1",
}


def jwt_seeds(v: dict, keys: dict) -> dict:
    out = {f"rfc-{name}": vec["token"] for name, vec in v.items() if "token" in vec}
    hdr = lambda k: compact({"alg": k["alg"], "kid": k["kid"], "typ": "JWT"})  # noqa: E731
    # Valid at NOW under Policy::new(), one per key.
    for name, k in keys.items():
        out[f"valid-{name}"] = sign(k, hdr(k), compact(CLAIMS))
    hs = keys["hs256"]
    kid = hs["kid"]
    for name, payload in VALID_PAYLOADS.items():
        out[f"valid-{name}"] = sign(hs, hdr(hs), payload)
    for name, payload in REFUSED_PAYLOADS.items():
        out[f"refused-{name}"] = sign(hs, hdr(hs), payload)
    exp = b'{"exp":2000000000}'
    out["valid-header-extras"] = sign(
        hs,
        b'{"alg":"HS256","kid":"%s","typ":"at+jwt","jku":"https://x","x5c":["AA"],"jwk":{"kty":"oct"}}' % kid.encode(),
        exp,
    )
    out["valid-escaped-kid"] = sign(hs, b'{"alg":"HS256","kid":"\\u0030\\u0031\\u0038' + kid[3:].encode() + b'"}', exp)
    refused_headers = {
        "crit": b'{"alg":"HS256","kid":"%s","crit":["exp"]}' % kid.encode(),
        "b64": b'{"alg":"HS256","kid":"%s","b64":false}' % kid.encode(),
        "no-kid": b'{"alg":"HS256"}',
        "kid-number": b'{"alg":"HS256","kid":1}',
        "unknown-kid": b'{"alg":"HS256","kid":"nope"}',
        "dup-alg": b'{"alg":"HS256","alg":"none","kid":"%s"}' % kid.encode(),
        "deep": b'{"alg":"HS256","kid":"%s","x":' % kid.encode() + b'{"a":' * 20 + b"1" + b"}" * 20 + b"}",
        "typ-number": b'{"alg":"HS256","kid":"%s","typ":1}' % kid.encode(),
    }
    for name, header in refused_headers.items():
        out[f"refused-header-{name}"] = sign(hs, header, exp)
    # alg confusion: the HMAC secret used under the RSA/EC keys' kids, and an RSA signature under
    # the HMAC key's kid.
    for name in ("es256", "rs256", "eddsa"):
        out[f"confused-hs256-{name}"] = sign(hs, compact({"alg": "HS256", "kid": keys[name]["kid"]}), exp)
    out["confused-rs256-hs"] = sign(keys["rs256"], compact({"alg": "RS256", "kid": kid}), exp)
    # Unsigned or malformed.
    body = b64e(exp)
    for name, alg in (("none", "none"), ("None", "None"), ("NONE", "NONE")):
        out[f"alg-{name}"] = f"{b64e(compact({'alg': alg, 'kid': kid}))}.{body}."
    valid = out["valid-hs256"]
    h, p, s = valid.split(".")
    out["struct-two-segments"] = f"{h}.{p}"
    out["struct-four-segments"] = f"{valid}.{s}"
    out["struct-jwe-like"] = f"{h}..{p}.{s}.AA"
    out["struct-padded"] = f"{h}=.{p}.{s}="
    out["struct-std-alphabet"] = valid.replace("-", "+").replace("_", "/")
    out["struct-whitespace"] = f" {valid}\n"
    out["struct-dots"] = "..."
    out["struct-empty"] = ""
    out["struct-short-sig"] = f"{h}.{p}.{s[:-2]}"
    out["struct-long-sig"] = f"{h}.{p}.{s}AAAA"
    out["struct-trailing-bits"] = f"{h}.{p}.{s[:-1]}{'B' if s[-1] == 'A' else 'A'}"
    huge = b64e(b'{"alg":"HS256","kid":"x","n":' + b"9" * 300 + b"}")
    out["struct-huge-header-number"] = f"{huge}.{body}.{s}"
    return out


def jwt_claims_seeds() -> dict:
    """Inputs for jwt_claims: a payload, or `header NUL payload`. See jwt_claims.rs."""
    out = {f"valid-{name}": p for name, p in VALID_PAYLOADS.items()}
    out.update({f"refused-{name}": p for name, p in REFUSED_PAYLOADS.items()})
    strict = dict(CLAIMS, aud=["other", "api"])
    out["strict-ok"] = compact(strict)
    out["strict-aud-string"] = compact(dict(strict, aud="api"))
    out["strict-aud-empty"] = compact(dict(strict, aud=[]))
    out["strict-aud-number"] = compact(dict(strict, aud=["api", 1]))
    out["strict-aud-nested"] = compact(dict(strict, aud=[["api"]]))
    out["strict-wrong-iss"] = compact(dict(strict, iss="https://issuer.example/"))
    out["strict-no-iss"] = compact({k: v for k, v in strict.items() if k != "iss"})
    out["strict-exp-now"] = compact(dict(strict, exp=NOW))
    out["strict-exp-next"] = compact(dict(strict, exp=NOW + 1))
    out["strict-nbf-now"] = compact(dict(strict, nbf=NOW))
    out["strict-nbf-next"] = compact(dict(strict, nbf=NOW + 1))
    out["strict-iat-string"] = compact(dict(strict, iat="now"))
    out["strict-escaped-iss"] = b'{"iss":"https:\\/\\/issuer.example","aud":"api","exp":2000000000}'
    rich = {
        "exp": EXP,
        "iat": NOW - 1000,
        "nbf": 1.5e9,
        "sub": "ada",
        "iss": "https://issuer.example",
        "jti": "j-1",
        "aud": ["api"],
        "roles": ["Admin", {"User": "x"}, {"Pair": [1, 2]}, {"Named": {"level": 3}}],
        "nested": {"a": -1, "b": [{"a": 2, "b": []}], "c": None},
        "pair": [-7, True],
        "flags": {"x": True, "y": False},
        "ch": "c",
        "x-any": {"k": [1, 2.5, "s", None]},
    }
    out["typed-rich"] = compact(rich)
    out["typed-rich-float-iat"] = compact(dict(rich, iat=1.5))
    out["typed-rich-negative-iat"] = compact(dict(rich, iat=-5))
    out["typed-rich-bad-role"] = compact(dict(rich, roles=["Root"]))
    out["typed-rich-two-chars"] = compact(dict(rich, ch="ab"))
    out["typed-rich-aud-string"] = compact(dict(rich, aud="api"))
    out["typed-rich-escaped"] = b'{"exp":2000000000,"s\\u0075b":"\\u0061da","ch":"\\u00e9","jti":"\\/"}'
    headers = {
        "typ-application": b'{"alg":"HS256","kid":"k","typ":"application/AT+JWT"}',
        "typ-jwt": b'{"alg":"HS256","kid":"k","typ":"JWT"}',
        "typ-short": b'{"alg":"HS256","kid":"k","typ":"applicatio"}',
        "typ-unicode": '{"alg":"HS256","kid":"k","typ":"applicatioñat+jwt"}'.encode(),
        "no-typ": b'{"alg":"HS256","kid":"k"}',
        "no-kid": b'{"alg":"HS256","typ":"at+jwt"}',
        "other-kid": b'{"alg":"HS256","kid":"K","typ":"at+jwt"}',
        "escaped-kid": b'{"alg":"HS256","kid":"\\u006b","typ":"at\\u002bjwt"}',
        "crit": b'{"alg":"HS256","kid":"k","crit":["exp"]}',
        "alg-none": b'{"alg":"none","kid":"k"}',
        "alg-rs256": b'{"alg":"RS256","kid":"k"}',
        "dup": b'{"alg":"HS256","kid":"k","kid":"k"}',
    }
    for name, header in headers.items():
        out[f"header-{name}"] = header + b"\x00" + compact(strict)
    return out


def jws_seeds(v: dict, a1: dict) -> dict:
    out = {f"rfc-{name}": vec["token"] for name, vec in v.items() if "token" in vec}
    hdr = b'{"alg":"HS256","kid":"rfc7515-a1"}'
    for name, payload in {
        "json": b'{"iss":"joe","exp":1300819380}',
        "text": "It’s a dangerous business".encode(),
        "empty": b"",
        "binary": bytes(range(256)),
        "dup-json": b'{"a":1,"a":2}',
    }.items():
        out[f"valid-{name}"] = sign(a1, hdr, payload)
    out["valid-no-kid"] = sign(a1, b'{"alg":"HS256"}', b"Payload")
    out["valid-typ"] = sign(a1, b'{"typ":"JOSE","alg":"HS256","kid":"rfc7515-a1","cty":"text/plain"}', b"x")
    out["refused-other-kid"] = sign(a1, b'{"alg":"HS256","kid":"someone-else"}', b"x")
    out["refused-crit"] = sign(a1, b'{"alg":"HS256","crit":["b64"],"b64":false}', b"x")
    out["refused-dup-header"] = sign(a1, b'{"alg":"HS256","alg":"HS256"}', b"x")
    out["refused-hs512"] = sign(dict(a1, alg="HS256"), b'{"alg":"HS512"}', b"x")
    out["alg-none"] = b64e(b'{"alg":"none"}') + "." + b64e(b"x") + "."
    return out


def jwk_seeds(v: dict, keys: dict) -> dict:
    out = {}
    for name, vec in v.items():
        if vec.get("jwk"):
            out[f"rfc-{name}"] = json.dumps(vec["jwk"], indent=2)
            if vec["jwk"]["kty"] != "oct":
                out[f"rfc-{name}-public"] = compact(public(vec["jwk"]))
    for name, k in keys.items():
        out[f"fixture-{name}"] = compact(k)
    es, rsa, ed = keys["es256"], keys["rs256"], keys["eddsa"]
    # PEM forms of the vector keys.
    for name, k in (("rs256", rsa), ("es256", es), ("es512", keys["es512"]), ("eddsa", ed)):
        out[f"pem-spki-{name}"] = pem("PUBLIC KEY", spki_der(k))
        out[f"pem-pkcs8-{name}"] = pem("PRIVATE KEY", pkcs8_der(k))
    out["pem-crlf"] = pem("PUBLIC KEY", spki_der(es), eol="\r\n")
    out["pem-pkcs1-label"] = pem("RSA PRIVATE KEY", pkcs8_der(rsa))
    out["pem-encrypted"] = "-----BEGIN PRIVATE KEY-----\nProc-Type: 4,ENCRYPTED\nAAAA\n-----END PRIVATE KEY-----\n"
    out["pem-long-length"] = pem("PUBLIC KEY", b"\x30\x84\xff\xff\xff\xff")
    out["pem-indefinite"] = pem("PRIVATE KEY", b"\x30\x80\x02\x01\x00\x00\x00")
    # Hand-made hostile JWKs.
    k32 = b64e(bytes(range(32)))
    out.update(
        {
            "oct": f'{{"kty":"oct","alg":"HS256","k":"{k32}","use":"sig","key_ops":["sign","verify"]}}',
            "oct-empty": '{"kty":"oct","k":""}',
            "dup-kty": f'{{"kty":"oct","kty":"RSA","k":"{k32}"}}',
            "dup-escaped": f'{{"kty":"oct","k":"{k32}","\\u006b":"AA"}}',
            "escaped-names": f'{{"k\\u0074y":"oct","\\u006b":"{k32}","kid":"\\ud83d\\ude00\\u0000"}}',
            "lone-surrogate": f'{{"kty":"oct","k":"{k32}","kid":"\\udc00"}}',
            "deep": f'{{"kty":"oct","k":"{k32}","x":' + "[" * 9 + "]" * 9 + "}",
            "deep-ok": f'{{"kty":"oct","k":"{k32}","x":' + "[" * 6 + "]" * 6 + "}",
            "huge-number": f'{{"kty":"oct","k":"{k32}","x":1e999999,"y":-{"9" * 500}}}',
            "kid-number": f'{{"kty":"oct","k":"{k32}","kid":12345678901234567890}}',
            "null-members": f'{{"kty":"oct","k":"{k32}","kid":null,"alg":null,"use":null,"key_ops":null,"oth":null}}',
            "key-ops-weird": f'{{"kty":"oct","k":"{k32}","key_ops":[],"use":"enc"}}',
            "alg-mismatch": f'{{"kty":"oct","k":"{k32}","alg":"ES256"}}',
            "alg-none": f'{{"kty":"oct","k":"{k32}","alg":"none"}}',
            "enc-oaep": f'{{"kty":"RSA","use":"enc","alg":"RSA-OAEP-256","n":"{rsa["n"]}","e":"AQAB"}}',
            "enc-unknown-alg-sig": f'{{"kty":"oct","use":"sig","alg":"A128KW","k":"{k32}"}}',
            "ec-short-d": f'{{"kty":"EC","crv":"P-256","x":"{es["x"]}","y":"{es["y"]}","d":"AQ"}}',
            "ec-wrong-len": f'{{"kty":"EC","crv":"P-256","x":"{es["x"]}AA","y":"{es["y"]}"}}',
            "ec-off-curve": f'{{"kty":"EC","crv":"P-256","x":"{es["x"]}","y":"{es["x"]}"}}',
            "ec-ed25519": f'{{"kty":"EC","crv":"Ed25519","x":"{ed["x"]}","y":"{ed["x"]}"}}',
            "okp-x25519": f'{{"kty":"OKP","crv":"X25519","x":"{ed["x"]}"}}',
            "okp-bad-d": f'{{"kty":"OKP","crv":"Ed25519","x":"{ed["x"]}","d":"AA"}}',
            "rsa-leading-zeros": f'{{"kty":"RSA","n":"AAAA{rsa["n"]}","e":"AAEAAQ","alg":"RS256"}}',
            "rsa-zero": '{"kty":"RSA","n":"AA","e":"AQAB"}',
            "rsa-oth": f'{{"kty":"RSA","n":"{rsa["n"]}","e":"AQAB","d":"AQ","oth":[{{"r":"AQ"}}]}}',
            "rsa-partial-private": f'{{"kty":"RSA","n":"{rsa["n"]}","e":"AQAB","p":"AQ"}}',
            "rsa-d-only": f'{{"kty":"RSA","n":"{rsa["n"]}","e":"AQAB","d":"AQ"}}',
            "b64-padded": '{"kty":"oct","k":"AAAA="}',
            "b64-std": '{"kty":"oct","k":"+/+/"}',
            "b64-trailing-bits": '{"kty":"oct","k":"AB"}',
            "not-object": '[{"kty":"oct","k":"AAAA"}]',
            "wrong-type": '{"kty":1,"k":"AAAA"}',
            "set": compact({"keys": [public(es)]}),
        }
    )
    return out


def jwks_seeds(v: dict, keys: dict) -> dict:
    pubs = [public(k) for k in keys.values()]
    out = {
        "fixture-public": compact({"keys": pubs}),
        "fixture-private": json.dumps({"keys": list(keys.values())}, indent=1),
        "rfc-all": compact({"keys": [vec["jwk"] for vec in v.values() if vec.get("jwk")]}),
        "empty": '{"keys":[]}',
        "extra-members": compact({"keys": pubs[:2], "x": {"y": [1, 2]}, "keys_": 1}),
        "dup-kid": compact({"keys": [pubs[1], dict(pubs[3], kid=pubs[1]["kid"])]}),
        "no-kid": compact({"keys": [public(v["a3_thumbprint"]["jwk"])]}),
        "no-alg": compact({"keys": [{k: x for k, x in v["3_1_rsa"]["jwk"].items() if k != "alg"}]}),
        "short-hmac": '{"keys":[{"kty":"oct","kid":"a","alg":"HS256","k":"AAAA"}]}',
        "small-rsa": '{"keys":[{"kty":"RSA","kid":"a","alg":"RS256","n":"' + b64e(b"\xc1" * 128) + '","e":"AQAB"}]}',
        "use-enc": compact({"keys": [dict(pubs[1], use="enc")]}),
        "enc-oaep-beside-sig": compact(
            {"keys": [dict(public(keys["rs256"]), use="enc", alg="RSA-OAEP", kid="enc-1"), pubs[1], pubs[3]]}
        ),
        "enc-dup-kid": compact({"keys": [dict(pubs[1], use="enc"), pubs[1]]}),
        "bad-key": '{"keys":[{"kty":"EC","crv":"P-256","x":"AA","y":"AA"}]}',
        "dup-keys": '{"keys":[],"keys":[]}',
        "keys-object": '{"keys":{"kty":"oct"}}',
        "keys-null": '{"keys":null}',
        "deep": '{"keys":[{"kty":"oct","k":"AAAA","x":' + "[" * 8 + "]" * 8 + "}]}",
        "huge-number": '{"keys":[],"n":1e999999}',
        "single-jwk": compact(pubs[3]),
    }
    return out


def write(target: str, seeds: dict) -> int:
    d = CORPUS / target
    d.mkdir(parents=True, exist_ok=True)
    for old in d.glob("seed-*"):
        old.unlink()
    for name, value in sorted(seeds.items()):
        assert re.fullmatch(r"[A-Za-z0-9._-]+", name), name
        data = value if isinstance(value, bytes) else value.encode()
        (d / f"seed-{name}").write_bytes(data)
    return len(seeds)


def main() -> int:
    v = load_vectors()
    self_test(v)
    keys = fixture_keys(v)
    a1 = dict(v["a1_hs256"]["jwk"], kid="rfc7515-a1")
    check_fixtures(keys, a1)
    for target, seeds in (
        ("jwt_verify", jwt_seeds(v, keys)),
        ("jwt_claims", jwt_claims_seeds()),
        ("jws_verify", jws_seeds(v, a1)),
        ("jwk_parse", jwk_seeds(v, keys)),
        ("jwks_parse", jwks_seeds(v, keys)),
    ):
        print(f"{target}: {write(target, seeds)} seeds")
    return 0


if __name__ == "__main__":
    sys.exit(main())
