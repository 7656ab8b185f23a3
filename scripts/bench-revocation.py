#!/usr/bin/env python3
"""Benchmark (not a test): time from a revocation on node A to the first 401 on node B.

Starts two `tessera serve` processes on one database (a fresh SQLite data directory, or the
PostgreSQL URL given with --database, which should name a fresh schema through
`options[search_path]=...`), each caching sessions for 300 s so that only the change feed can
make node B refuse. Then, N times: sign in on A, have B cache the session (/auth/verify 200),
sign out on A (POST /logout), and poll B's /auth/verify until it answers 401; the time from the
logout's answer to that 401 is one sample. Prints p50/p90/p99/max; the nodes' logs stay in the
temporary directory it names.

    cargo build -p tessera-cli
    scripts/bench-revocation.py --tessera target/debug/tessera -n 1000
    scripts/bench-revocation.py --tessera target/debug/tessera -n 1000 \
        --database 'postgres://postgres@127.0.0.1:5432/test?options[search_path]=bench_feed'
"""

import argparse
import http.client
import json
import os
import socket
import subprocess
import sys
import tempfile
import time

PASSWORD = "correct horse battery staple"
FAST = {
    "TESSERA_PASSWORD__ARGON2_MEMORY_KIB": "7168",
    "TESSERA_PASSWORD__ARGON2_ITERATIONS": "5",
    "TESSERA_SESSION__CACHE_TTL": "300",
    "TESSERA_THROTTLE__PER_ACCOUNT_BURST": "100000",
    "TESSERA_THROTTLE__PER_IP_BURST": "100000",
}


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def request(port, method, path, headers=None, body=None):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    conn.request(method, path, body=body, headers=headers or {})
    r = conn.getresponse()
    data = r.read()
    conn.close()
    return r.status, r.getheaders(), data


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--tessera", default="target/debug/tessera")
    p.add_argument("--database", help="PostgreSQL URL (default: a temporary SQLite data dir)")
    p.add_argument("-n", type=int, default=1000)
    a = p.parse_args()
    env = dict(os.environ, **FAST)
    tmp = tempfile.mkdtemp()
    where = ["--database", a.database] if a.database else ["--data-dir", os.path.join(tmp, "data")]

    def cli(*args, stdin=""):
        subprocess.run([a.tessera, *args, *where], input=stdin.encode(), env=env, check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    cli("migrate")
    cli("user", "add", "bench", "--password-stdin", stdin=PASSWORD + "\n")
    nodes = []
    for name in ("a", "b"):
        port = free_port()
        log = open(os.path.join(tmp, f"node-{name}.log"), "wb")
        proc = subprocess.Popen([a.tessera, "serve", "--listen", f"127.0.0.1:{port}", *where],
                                env=env, stdout=log, stderr=subprocess.STDOUT)
        nodes.append((proc, port))
    try:
        for proc, port in nodes:
            for _ in range(600):
                try:
                    if request(port, "GET", "/healthz")[0] == 200:
                        break
                except OSError:
                    pass
                time.sleep(0.05)
            else:
                sys.exit(f"node on {port} did not start")
        a_port, b_port = nodes[0][1], nodes[1][1]
        samples = []
        for i in range(a.n):
            status, headers, body = request(
                a_port, "POST", "/login", {"Content-Type": "application/json"},
                json.dumps({"username": "bench", "password": PASSWORD}))
            assert status == 200, body
            cookie = next(v for k, v in headers if k.lower() == "set-cookie").split(";")[0]
            csrf = json.loads(body)["csrf"]
            assert request(b_port, "GET", "/auth/verify", {"Cookie": cookie})[0] == 200
            status, _, _ = request(a_port, "POST", "/logout",
                                   {"Cookie": cookie, "X-CSRF-Token": csrf})
            assert status == 204
            start = time.monotonic()
            while True:
                s = request(b_port, "GET", "/auth/verify", {"Cookie": cookie})[0]
                if s == 401:
                    break
                assert s == 200, s
                if time.monotonic() - start > 30:
                    sys.exit("node B never refused the session")
            samples.append(time.monotonic() - start)
        samples.sort()
        q = lambda f: samples[min(len(samples) - 1, int(f * len(samples)))] * 1000
        backend = "postgres" if a.database else "sqlite"
        print(f"{backend}: revoke on A -> first 401 on B over {len(samples)} revocations: "
              f"p50 {q(0.50):.0f} ms, p90 {q(0.90):.0f} ms, p99 {q(0.99):.0f} ms, "
              f"max {samples[-1] * 1000:.0f} ms (node logs in {tmp})")
    finally:
        for proc, _ in nodes:
            proc.terminate()
            proc.wait()


if __name__ == "__main__":
    main()
