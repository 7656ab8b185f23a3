#!/usr/bin/env bash
# The full test suite: what CI runs (through .ci/run) and what a developer runs before landing.
# Installs what it needs: a Python venv with the interop peers, and cargo-fuzz for the smoke run.
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n==> %s\n' "$*"; }
started=$(date +%s)

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

if [ "${SKIP_FUZZ:-0}" != 1 ]; then
  step "fuzz smoke run"
  scripts/fuzz-smoke.sh
fi

step "all passed in $(( $(date +%s) - started )) s"
