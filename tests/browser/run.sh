#!/usr/bin/env bash
# The browser test: a fresh `tessera serve` (dev mode on loopback, SQLite in a temporary
# directory, one account) and headless Debian Chromium driven by playwright-core.
#
#   tests/browser/run.sh
#
# Installs what it needs: Debian's chromium when run as root (apt-get), and the npm
# dependencies pinned in package-lock.json (npm ci). Never downloads a browser build.
# Screenshots of a failing step go to target/browser-artifacts/.
# BROWSER_TEST_TESSERA=/path/to/tessera runs it against that binary instead of building one.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
cd "$root"
started=$(date +%s)

say() { printf '[browser] %s\n' "$*"; }
die() { printf '[browser] error: %s\n' "$*" >&2; exit 1; }

# The run must not pick up a developer's tessera configuration.
while IFS= read -r var; do unset "$var"; done < <(compgen -e | grep '^TESSERA_' || true)

# --- Chromium (Debian's package; playwright's own browser downloads do not work here) -------
if ! command -v chromium >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ]; then
    say "installing chromium (apt-get)"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq chromium >/dev/null
  else
    die "chromium is not installed; run as root or: sudo apt-get install -y chromium"
  fi
fi
chromium_bin="$(command -v chromium)"
command -v node >/dev/null 2>&1 || die "node is not installed"
command -v npm >/dev/null 2>&1 || die "npm is not installed"

# --- npm dependencies, exactly as locked -----------------------------------------------------
# Every locked package at its locked version, or `npm ci`.
locked() { node -e 'const l=require(process.argv[1]).packages; console.log(Object.keys(l).filter(k=>k).map(k=>k+"@"+l[k].version).sort().join(" "))' "$1"; }
have() { node -e 'const fs=require("fs"),p=require("path"); const l=require(process.argv[1]).packages; console.log(Object.keys(l).filter(k=>k).map(k=>{try{return k+"@"+JSON.parse(fs.readFileSync(p.join(process.argv[2],k,"package.json"))).version}catch{return k+"@missing"}}).sort().join(" "))' "$1" "$here"; }
if [ "$(locked "$here/package-lock.json")" != "$(have "$here/package-lock.json")" ]; then
  say "npm ci"
  (cd "$here" && npm ci --no-audit --no-fund --loglevel=error)
fi

# --- the tessera binary ----------------------------------------------------------------------
# BROWSER_TEST_TESSERA=/path/to/tessera tests another build (and skips cargo).
tessera="${BROWSER_TEST_TESSERA:-$root/target/debug/tessera}"
if [ -z "${BROWSER_TEST_TESSERA:-}" ] && command -v cargo >/dev/null 2>&1; then
  # cargo decides whether anything changed; an up-to-date build takes a second.
  say "cargo build -p tessera-cli"
  cargo build --quiet -p tessera-cli
fi
[ -x "$tessera" ] || die "$tessera is missing and cargo is not installed"

# --- a fresh server --------------------------------------------------------------------------
work="$(mktemp -d "${TMPDIR:-/tmp}/tessera-browser.XXXXXX")"
server_pid=""
cleanup() {
  local status=$?
  if [ -n "$server_pid" ] && kill -0 "$server_pid" 2>/dev/null; then
    kill -TERM "$server_pid" 2>/dev/null || true
    for _ in $(seq 50); do kill -0 "$server_pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$server_pid" 2>/dev/null || true
    wait "$server_pid" 2>/dev/null || true
  fi
  if [ "$status" != 0 ] && [ -f "$work/server.log" ]; then
    say "server log (last 40 lines):"
    # The bootstrap admin token of this throw-away database is not worth printing.
    grep -v -e '^    ' "$work/server.log" | tail -n 40 >&2 || true
  fi
  rm -rf "$work"
  exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

data="$work/data"
username=alice
password="$(node -e 'console.log(require("crypto").randomBytes(18).toString("base64url"))')"
"$tessera" migrate --data-dir "$data" >/dev/null
printf '%s\n' "$password" | "$tessera" user add "$username" --email alice@example.com --group staff \
  --password-stdin --data-dir "$data" >/dev/null
# The second-factor test's own account, and the master key that seals TOTP seeds.
mfa_username=mallory
mfa_password="$(node -e 'console.log(require("crypto").randomBytes(18).toString("base64url"))')"
printf '%s\n' "$mfa_password" | "$tessera" user add "$mfa_username" --password-stdin --data-dir "$data" >/dev/null
master_key="$("$tessera" keys generate-master)"

# A logo (branding.logo), to check that the pages show it under their CSP.
cat >"$work/logo.svg" <<'SVG'
<svg xmlns="http://www.w3.org/2000/svg" width="40" height="40" viewBox="0 0 40 40"><rect width="40" height="40" rx="8" fill="#2350d3"/><path d="M10 12h20v5h-7.5v13h-5V17H10z" fill="#fff"/></svg>
SVG

free_port() {
  node -e 'const s = require("net").createServer(); s.listen(0, "127.0.0.1", () => { console.log(s.address().port); s.close(); });'
}

# Another process may take the port between the probe and the bind: try a few.
base=""
for attempt in 1 2 3; do
  port="$(free_port)"
  TESSERA_BRANDING__LOGO="$work/logo.svg" TESSERA_MASTER_KEY="$master_key" \
    "$tessera" serve --listen "127.0.0.1:$port" --data-dir "$data" >"$work/server.log" 2>&1 &
  server_pid=$!
  for _ in $(seq 100); do
    if ! kill -0 "$server_pid" 2>/dev/null; then break; fi
    if node -e 'fetch(process.argv[1]).then(r => process.exit(r.ok ? 0 : 1), () => process.exit(1))' \
      "http://127.0.0.1:$port/healthz" 2>/dev/null; then
      base="http://127.0.0.1:$port"
      break
    fi
    sleep 0.1
  done
  [ -n "$base" ] && break
  kill -TERM "$server_pid" 2>/dev/null || true
  wait "$server_pid" 2>/dev/null || true
  server_pid=""
  say "server did not come up on port $port (attempt $attempt)"
  grep -v -e '^    ' "$work/server.log" | tail -n 5 >&2 || true
done
[ -n "$base" ] || die "tessera serve did not answer /healthz"
say "tessera serving at $base (pid $server_pid, data in $data)"

# --- the test --------------------------------------------------------------------------------
artifacts="$root/target/browser-artifacts"
rm -rf "$artifacts"
set +e
BROWSER_TEST_BASE_URL="$base" \
  BROWSER_TEST_USERNAME="$username" \
  BROWSER_TEST_PASSWORD="$password" \
  BROWSER_TEST_CHROMIUM="$chromium_bin" \
  BROWSER_TEST_ARTIFACTS="$artifacts" \
  node --test --test-reporter=spec "$here/signin.test.mjs"
status=$?
if [ "$status" = 0 ]; then
  BROWSER_TEST_BASE_URL="$base" \
    BROWSER_TEST_MFA_USERNAME="$mfa_username" \
    BROWSER_TEST_MFA_PASSWORD="$mfa_password" \
    BROWSER_TEST_CHROMIUM="$chromium_bin" \
    BROWSER_TEST_ARTIFACTS="$artifacts" \
    node --test --test-reporter=spec "$here/factors.test.mjs"
  status=$?
fi
set -e
if [ "$status" != 0 ] && [ -d "$artifacts" ]; then
  say "screenshots of the failing step: $artifacts"
fi
say "finished in $(( $(date +%s) - started )) s"
exit "$status"
