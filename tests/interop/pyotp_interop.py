#!/usr/bin/env python3
"""Interoperability of tessera's second factors with pyotp, an authenticator nobody here wrote.

Usage:
    pip install -r tests/interop/requirements.txt
    python3 tests/interop/pyotp_interop.py --tessera target/debug/tessera

It runs a real `tessera serve` (SQLite in a temporary directory, a fresh master key in
TESSERA_MASTER_KEY, an ephemeral loopback port) and talks to it over HTTP like a script would:

  1 tessera->pyotp  a TOTP factor enrolled through POST /api/factors/totp: pyotp.parse_uri reads
                    tessera's otpauth:// URI (secret, issuer, account, digits, period), the base32
                    key matches, and pyotp's code confirms the factor; then the two-step sign-in:
                    the code of the step just used is refused (replay), pyotp's code for the
                    next step is accepted and the session's amr is pwd,otp,mfa.
  2 pyotp->tessera  HOTP seeds made by pyotp.random_base32 imported with `tessera user hotp
                    import` (base32; hex; SHA-256 with 8 digits; pyotp's own otpauth://hotp URI
                    with an initial counter): pyotp's codes sign in, each counter once, and a
                    code behind the last accepted counter is refused.

Every case is printed as PASS/FAIL; the script exits 1 if any failed and 2 if it could not run.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

try:
    import pyotp
except ImportError as exc:  # pragma: no cover - environment problem, not a test failure
    print(
        f"pyotp_interop: missing dependency ({exc}); run: pip install -r tests/interop/requirements.txt",
        file=sys.stderr,
    )
    sys.exit(2)

PASSWORD = "correct horse battery staple"
RESULTS: list[tuple[str, bool, str]] = []


def check(name: str, ok: bool, detail: str = "") -> None:
    RESULTS.append((name, ok, detail))
    print(f"{'PASS' if ok else 'FAIL'}  {name}{'' if ok else '  ' + detail}", flush=True)


class Client:
    """A cookie-keeping HTTP client for one browser-like user (cookies by name, no domain rules)."""

    def __init__(self, base: str) -> None:
        self.base = base
        self.cookies: dict[str, str] = {}
        self.csrf = ""

    def call(self, method: str, path: str, body=None, headers=None):
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(self.base + path, data=data, method=method)
        if data is not None:
            req.add_header("Content-Type", "application/json")
        if self.cookies:
            req.add_header("Cookie", "; ".join(f"{k}={v}" for k, v in self.cookies.items()))
        for k, v in (headers or {}).items():
            req.add_header(k, v)
        try:
            with urllib.request.urlopen(req, timeout=30) as r:
                status, hdrs, raw = r.status, r.headers, r.read()
        except urllib.error.HTTPError as e:
            status, hdrs, raw = e.code, e.headers, e.read()
        for line in hdrs.get_all("Set-Cookie") or []:
            pair = line.split(";", 1)[0]
            name, _, value = pair.partition("=")
            if value:
                self.cookies[name] = value
            else:
                self.cookies.pop(name, None)
        try:
            parsed = json.loads(raw) if raw else None
        except ValueError:
            parsed = raw.decode(errors="replace")
        return status, parsed, hdrs

    def with_csrf(self, method: str, path: str, body=None):
        return self.call(method, path, body, {"X-CSRF-Token": self.csrf})


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run(tessera: str, args: list[str], env: dict, stdin: str = "") -> subprocess.CompletedProcess:
    return subprocess.run(
        [tessera, *args], input=stdin, capture_output=True, text=True, env=env, timeout=120
    )


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--tessera", required=True, help="path to the tessera binary")
    args = ap.parse_args()
    tessera = str(Path(args.tessera).resolve())
    if not os.access(tessera, os.X_OK):
        print(f"pyotp_interop: {tessera} is not an executable", file=sys.stderr)
        return 2
    tmp = tempfile.TemporaryDirectory(prefix="tessera-pyotp-")
    data = str(Path(tmp.name) / "data")
    env = {k: v for k, v in os.environ.items() if not k.startswith("TESSERA_")}
    key = run(tessera, ["keys", "generate-master"], env)
    if key.returncode != 0:
        print(f"pyotp_interop: keys generate-master failed: {key.stderr}", file=sys.stderr)
        return 2
    env["TESSERA_MASTER_KEY"] = key.stdout.strip()
    for step in (["migrate", "--data-dir", data],
                 ["user", "add", "ada", "--password-stdin", "--data-dir", data]):
        r = run(tessera, step, env, PASSWORD + "\n")
        if r.returncode != 0:
            print(f"pyotp_interop: {' '.join(step)} failed: {r.stderr}", file=sys.stderr)
            return 2
    # Many sign-ins from one address in a minute: lift the throttle for this run only.
    serve_env = dict(env)
    serve_env.update({
        "TESSERA_THROTTLE__PER_IP_PER_MINUTE": "600",
        "TESSERA_THROTTLE__PER_IP_BURST": "200",
        "TESSERA_THROTTLE__PER_ACCOUNT_PER_MINUTE": "600",
        "TESSERA_THROTTLE__PER_ACCOUNT_BURST": "200",
    })
    port = free_port()
    log = open(Path(tmp.name) / "serve.log", "w")
    server = subprocess.Popen(
        [tessera, "serve", "--data-dir", data, "--listen", f"127.0.0.1:{port}"],
        env=serve_env, stdout=log, stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                with urllib.request.urlopen(base + "/readyz", timeout=2) as r:
                    if r.status == 200:
                        break
            except OSError:
                pass
            if server.poll() is not None or time.monotonic() > deadline:
                print(f"pyotp_interop: the server did not start; log:\n{Path(log.name).read_text()}",
                      file=sys.stderr)
                return 2
            time.sleep(0.05)  # polling the readiness endpoint, with a deadline
        totp_section(base)
        hotp_section(base, tessera, data, env)
    finally:
        server.terminate()
        server.wait(timeout=30)
        log.close()
        tmp.cleanup()
    failed = [r for r in RESULTS if not r[1]]
    print(f"\n{len(RESULTS) - len(failed)} passed, {len(failed)} failed")
    return 1 if failed else 0


def sign_in(c: Client) -> dict:
    c.cookies.clear()
    status, body, _ = c.call("POST", "/login", {"username": "ada", "password": PASSWORD})
    if status != 200:
        raise RuntimeError(f"POST /login: {status} {body}")
    if body.get("csrf"):
        c.csrf = body["csrf"]
    return body


def totp_section(base: str) -> None:
    c = Client(base)
    body = sign_in(c)
    check("1 password-only sign-in before any factor", "session" in body, str(body))
    status, enrol, _ = c.with_csrf("POST", "/api/factors/totp", {"label": "pyotp"})
    check("1 POST /api/factors/totp: 201", status == 201, f"{status} {enrol}")
    uri = enrol["uri"]
    totp = pyotp.parse_uri(uri)
    check("1 pyotp.parse_uri reads tessera's URI as TOTP", isinstance(totp, pyotp.TOTP), uri)
    check("1 the base32 key is the URI's secret", totp.secret == enrol["secret"], uri)
    check("1 account, issuer, digits, period",
          totp.name == "ada" and totp.issuer == "tessera" and totp.digits == 6 and totp.interval == 30,
          f"{totp.name} {totp.issuer} {totp.digits} {totp.interval}")
    check("1 the QR code is an SVG", enrol["qr_svg"].startswith("<svg"), enrol["qr_svg"][:40])
    factor = enrol["factor"]["id"]
    now = time.time()
    code = totp.at(now)
    status, body, _ = c.with_csrf("POST", f"/api/factors/{factor}/confirm", {"code": code})
    check("1 pyotp's code confirms the enrolment: 204", status == 204, f"{status} {body}")
    status, _, _ = c.with_csrf("POST", "/logout")
    check("1 sign out", status == 204, str(status))

    body = sign_in(c)
    check("1 the password step now needs a second factor",
          body.get("status") == "second_factor_required" and "tessera" not in c.cookies, str(body))
    status, _, _ = c.call("GET", "/auth/verify")
    check("1 the pending cookie opens nothing: /auth/verify 401", status == 401, str(status))
    status, body, _ = c.call("POST", "/login/second-factor", {"factor": factor, "code": code})
    check("1 the enrolment's code is refused a second time", status == 401, f"{status} {body}")
    # The next 30-second step is inside the ±1 window: pyotp computes it, tessera takes it.
    step = int(now // 30)
    nxt = totp.at((step + 1) * 30)
    status, body, _ = c.call("POST", "/login/second-factor", {"factor": factor, "code": nxt})
    check("1 pyotp's code for the next step signs in: 200", status == 200, f"{status} {body}")
    check("1 the session's amr is pwd, otp, mfa",
          isinstance(body, dict) and body["session"]["amr"] == ["pwd", "otp", "mfa"], str(body))
    status, _, hdrs = c.call("GET", "/auth/verify?mfa=1")
    check("1 /auth/verify?mfa=1 passes it with X-Tessera-Amr",
          status == 200 and hdrs.get("X-Tessera-Amr") == "pwd,otp,mfa", f"{status} {hdrs.get('X-Tessera-Amr')}")
    # Remove the factor so section 2 starts from HOTP factors alone.
    c.csrf = body["csrf"]
    status, body, _ = c.with_csrf("DELETE", f"/api/factors/{factor}", {"password": PASSWORD})
    check("1 the factor is removed after re-authentication", status == 204, f"{status} {body}")


def hotp_section(base: str, tessera: str, data: str, env: dict) -> None:
    cases = []
    s1 = pyotp.random_base32()
    cases.append(("base32", ["--secret", s1], pyotp.HOTP(s1), 0))
    s2 = pyotp.random_base32()
    hex_seed = base64.b32decode(s2).hex()
    cases.append(("hex", ["--secret", hex_seed, "--encoding", "hex", "--counter", "4"], pyotp.HOTP(s2), 4))
    s3 = pyotp.random_base32(64)
    cases.append(("sha256-8", ["--secret", s3, "--algorithm", "SHA256", "--digits", "8"],
                  pyotp.HOTP(s3, digits=8, digest=hashlib.sha256), 0))
    s4 = pyotp.random_base32()
    uri = pyotp.HOTP(s4).provisioning_uri(name="ada", issuer_name="pyotp", initial_count=7)
    cases.append(("uri", ["--uri", uri], pyotp.HOTP(s4), 7))
    c = Client(base)
    for name, flags, hotp, counter in cases:
        r = run(tessera, ["user", "hotp", "import", "ada", *flags, "--label", f"pyotp {name}",
                          "--data-dir", data], env)
        ok = r.returncode == 0
        check(f"2 {name}: tessera imports pyotp's seed", ok, r.stderr.strip())
        if not ok:
            continue
        factor = json.loads(r.stdout)["id"]
        check(f"2 {name}: the seed is not printed", hotp.secret not in r.stdout, r.stdout)
        sign_in(c)
        status, body, _ = c.call("POST", "/login/second-factor", {"factor": factor, "code": hotp.at(counter)})
        check(f"2 {name}: pyotp's code for counter {counter} signs in", status == 200, f"{status} {body}")
        sign_in(c)
        status, body, _ = c.call("POST", "/login/second-factor", {"factor": factor, "code": hotp.at(counter)})
        check(f"2 {name}: the same counter is refused a second time", status == 401, f"{status} {body}")
        # A fob pressed a few times without signing in: still inside the look-ahead.
        status, body, _ = c.call("POST", "/login/second-factor", {"factor": factor, "code": hotp.at(counter + 3)})
        check(f"2 {name}: counter {counter + 3} (look-ahead) signs in", status == 200, f"{status} {body}")
        sign_in(c)
        status, body, _ = c.call("POST", "/login/second-factor", {"factor": factor, "code": hotp.at(counter + 2)})
        check(f"2 {name}: a skipped counter behind the last one is refused", status == 401, f"{status} {body}")


if __name__ == "__main__":
    sys.exit(main())
