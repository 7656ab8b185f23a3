#!/usr/bin/env bash
# The full test suite: what CI runs (through .ci/run) and what a developer runs before landing.
# Installs what it needs: a Python venv with the interop peers, wrk for the load-test smoke run,
# chromium, nginx and caddy (apt) for the browser and proxy tests, and cargo-fuzz for the fuzz
# smoke run.
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n==> %s\n' "$*"; }
started=$(date +%s)

step "PostgreSQL for the store and server tests"
# The PostgreSQL tests need 127.0.0.1:5432 (trust auth, database test). Start the local cluster if
# it is installed but stopped; under CI=true the tests themselves fail when it is unreachable.
if command -v pg_isready >/dev/null && ! pg_isready -h 127.0.0.1 -p 5432 -q; then
  if command -v pg_ctlcluster >/dev/null; then
    pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -n1)" main start || true
    for _ in $(seq 1 20); do pg_isready -h 127.0.0.1 -p 5432 -q && break; sleep 0.5; done
  fi
fi
if command -v pg_isready >/dev/null && pg_isready -h 127.0.0.1 -p 5432 -q; then
  echo "PostgreSQL is up"
else
  echo "!!! PostgreSQL is NOT reachable at 127.0.0.1:5432: its tests will skip (or fail under CI=true)"
fi

step "formatting"
cargo fmt --all -- --check

step "clippy (all targets, warnings are errors)"
cargo clippy --workspace --all-targets -- -D warnings

step "unit, integration and property tests"
cargo test --workspace

step "PyJWT interoperability"
venv=target/interop-venv
if [ ! -x "$venv/bin/python" ]; then
  python3 -m venv "$venv"
fi
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check -r tests/interop/requirements.txt
cargo build -p tessera-cli
"$venv/bin/python" tests/interop/pyjwt_interop.py --tessera target/debug/tessera

# --- browser step (tests/browser/run.sh): headless Debian Chromium against a fresh server ---
step "browser: sign-in, sessions and sign-out in headless Chromium"
tests/browser/run.sh
# --- end of browser step ---

# --- proxy step (tests/proxy/run.sh): Debian's nginx and Caddy as docs/proxy.md configures them ---
step "proxies: sign-in through nginx and Caddy (Debian packages) in headless Chromium"
tests/proxy/run.sh
# --- end of proxy step ---

step "load-test smoke: tessera bench forward-auth, 1 s per scenario (a debug build: numbers meaningless)"
# Keeps the load-test command working; it fails if any answer is wrong. wrk from Debian.
if ! command -v wrk >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ]; then
    export DEBIAN_FRONTEND=noninteractive
    apt-get install -y -qq wrk >/dev/null 2>&1 || { apt-get update -qq && apt-get install -y -qq wrk >/dev/null; }
  else
    echo "wrk is not installed; run as root or: sudo apt-get install -y wrk" >&2
    exit 1
  fi
fi
target/debug/tessera bench forward-auth --seconds 1 --rounds 1 --warmup 0 --connections 4

if [ "${SKIP_FUZZ:-0}" != 1 ]; then
  step "fuzz smoke run"
  scripts/fuzz-smoke.sh
fi

step "all passed in $(( $(date +%s) - started )) s"
