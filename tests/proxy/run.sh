#!/usr/bin/env bash
# The reverse-proxy test: Debian's nginx (twice: with each documented `location @login`) and
# Caddy, configured as docs/proxy.md says (its
# "local trial over plain HTTP" changes, on free loopback ports; see configs.mjs), each in
# front of its own fresh `tessera serve` (dev mode) and a small app that shows the identity
# headers it receives; headless Debian Chromium signs in through each and signs out
# (proxy.test.mjs). Private instances: own config, temp and log directories, never the
# system services.
#
#   tests/proxy/run.sh
#
# Installs what it needs: nginx, caddy and chromium with apt-get when run as root (otherwise
# it asks you to), and the browser test's npm dependencies (npm ci in tests/browser).
# PROXY_TEST_TESSERA=/path/to/tessera runs it against that binary instead of building one.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
cd "$root"
started=$(date +%s)

say() { printf '[proxy] %s\n' "$*"; }
die() { printf '[proxy] error: %s\n' "$*" >&2; exit 1; }

while IFS= read -r var; do unset "$var"; done < <(compgen -e | grep '^TESSERA_' || true)

# --- Debian packages ---------------------------------------------------------------------------
missing=()
command -v nginx >/dev/null 2>&1 || [ -x /usr/sbin/nginx ] || missing+=(nginx)
command -v caddy >/dev/null 2>&1 || missing+=(caddy)
command -v chromium >/dev/null 2>&1 || missing+=(chromium)
if [ "${#missing[@]}" -gt 0 ]; then
  if [ "$(id -u)" = 0 ]; then
    say "installing ${missing[*]} (apt-get)"
    export DEBIAN_FRONTEND=noninteractive
    apt-get install -y -qq "${missing[@]}" >/dev/null 2>&1 \
      || { apt-get update -qq && apt-get install -y -qq "${missing[@]}" >/dev/null; }
  else
    die "${missing[*]} not installed; run as root or: sudo apt-get install -y ${missing[*]}"
  fi
fi
nginx_bin="$(command -v nginx || echo /usr/sbin/nginx)"
caddy_bin="$(command -v caddy)"
chromium_bin="$(command -v chromium)"
command -v node >/dev/null 2>&1 || die "node is not installed"
say "$("$nginx_bin" -v 2>&1), caddy $("$caddy_bin" version | cut -d' ' -f1), $("$chromium_bin" --version 2>/dev/null | head -n1)"

# --- npm dependencies (shared with tests/browser) ----------------------------------------------
browser="$root/tests/browser"
locked() { node -e 'const l=require(process.argv[1]).packages; console.log(Object.keys(l).filter(k=>k).map(k=>k+"@"+l[k].version).sort().join(" "))' "$1"; }
have() { node -e 'const fs=require("fs"),p=require("path"); const l=require(process.argv[1]).packages; console.log(Object.keys(l).filter(k=>k).map(k=>{try{return k+"@"+JSON.parse(fs.readFileSync(p.join(process.argv[2],k,"package.json"))).version}catch{return k+"@missing"}}).sort().join(" "))' "$1" "$browser"; }
if [ "$(locked "$browser/package-lock.json")" != "$(have "$browser/package-lock.json")" ]; then
  say "npm ci (tests/browser)"
  (cd "$browser" && npm ci --no-audit --no-fund --loglevel=error)
fi

# --- the tessera binary ------------------------------------------------------------------------
tessera="${PROXY_TEST_TESSERA:-$root/target/debug/tessera}"
if [ -z "${PROXY_TEST_TESSERA:-}" ] && command -v cargo >/dev/null 2>&1; then
  say "cargo build -p tessera-cli"
  cargo build --quiet -p tessera-cli
fi
[ -x "$tessera" ] || die "$tessera is missing and cargo is not installed"

# --- processes ---------------------------------------------------------------------------------
work="$(mktemp -d "${TMPDIR:-/tmp}/tessera-proxy.XXXXXX")"
# nginx's workers run as an unprivileged user when the master is root: let them reach
# their temp directories under this one.
chmod 755 "$work"
pids=()
cleanup() {
  local status=$?
  for pid in "${pids[@]}"; do
    kill -TERM "$pid" 2>/dev/null || true
  done
  for pid in "${pids[@]}"; do
    for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  done
  if [ "$status" != 0 ]; then
    for log in "$work"/*.log "$work"/*/error.log "$work"/*/access.log; do
      [ -s "$log" ] || continue
      say "--- $log (last 30 lines)"
      grep -v -e "^    " "$log" | tail -n 30 | cut -c1-400 >&2 || true
    done
  fi
  rm -rf "$work"
  exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

free_port() {
  node -e 'const s = require("net").createServer(); s.listen(0, "127.0.0.1", () => { console.log(s.address().port); s.close(); });'
}

# Waits until `cmd...` succeeds while process $1 lives (at most 10 s).
await_up() {
  local pid=$1; shift
  for _ in $(seq 100); do
    kill -0 "$pid" 2>/dev/null || return 1
    "$@" >/dev/null 2>&1 && return 0
    sleep 0.1
  done
  return 1
}

# The app: it picks its own port and prints it.
node "$here/app.mjs" >"$work/app.port" 2>"$work/app.log" &
pids+=($!)
await_up "${pids[-1]}" test -s "$work/app.port" || die "the app did not start"
app_port="$(head -n1 "$work/app.port")"

username=alice
password="$(node -e 'console.log(require("crypto").randomBytes(18).toString("base64url"))')"

# The port in tessera's "serving listen=127.0.0.1:PORT" line (colours stripped), or failure.
bound_port() {
  sed 's/\x1b\[[0-9;]*m//g' "$1" | grep -o 'listen=127\.0\.0\.1:[0-9]*' | head -n1 | cut -d: -f2 | grep .
}

# One tessera per proxy, since `public_origin` is the proxy's origin. It binds port 0 and logs
# the address it got.
start_tessera() { # name proxy_port -> sets tessera_port
  local name=$1 proxy_port=$2 data="$work/$1-data"
  "$tessera" migrate --data-dir "$data" >/dev/null
  printf '%s\n' "$password" | "$tessera" user add "$username" --email alice@example.com --group staff \
    --password-stdin --data-dir "$data" >/dev/null
  printf '%s\n' "$password" | "$tessera" user add noemail --password-stdin --data-dir "$data" >/dev/null
  TESSERA_PUBLIC_ORIGIN="http://127.0.0.1:$proxy_port" TESSERA_LOG_FORMAT=text \
    "$tessera" serve --listen 127.0.0.1:0 --data-dir "$data" >"$work/$name-tessera.log" 2>&1 &
  pids+=($!)
  await_up "${pids[-1]}" bound_port "$work/$name-tessera.log" || die "tessera ($name) did not start"
  tessera_port="$(bound_port "$work/$name-tessera.log")"
}

# A proxy on a probed free port; another process may take it first, so try a few.
start_proxy() { # name -> sets proxy_port
  local name=$1
  for attempt in 1 2 3; do
    proxy_port="$(free_port)"
    start_tessera "$name" "$proxy_port"
    node "$here/configs.mjs" "$name" "$work/$name" "$proxy_port" "$tessera_port" "$app_port"
    case "$name" in
      nginx | nginx-rd)
        "$nginx_bin" -p "$work/$name" -c "$work/$name/nginx.conf" -e "$work/$name/error.log" &
        ;;
      caddy)
        HOME="$work/caddy" XDG_DATA_HOME="$work/caddy/data" XDG_CONFIG_HOME="$work/caddy/config" \
          "$caddy_bin" run --config "$work/caddy/Caddyfile" --adapter caddyfile >"$work/caddy.log" 2>&1 &
        ;;
    esac
    pids+=($!)
    if await_up "${pids[-1]}" curl -fsS -o /dev/null "http://127.0.0.1:$proxy_port/static/tessera.css"; then
      return 0
    fi
    say "$name did not come up on port $proxy_port (attempt $attempt)"
    rm -rf "${work:?}/$name" "$work/$name-data"
  done
  die "$name did not start"
}

start_proxy nginx
nginx_base="http://127.0.0.1:$proxy_port"
start_proxy nginx-rd
nginx_rd_base="http://127.0.0.1:$proxy_port"
start_proxy caddy
caddy_base="http://127.0.0.1:$proxy_port"
say "app on :$app_port; nginx at $nginx_base and $nginx_rd_base (tessera-built redirect); caddy at $caddy_base"

# --- the test ----------------------------------------------------------------------------------
artifacts="$root/target/proxy-artifacts"
rm -rf "$artifacts"
set +e
PROXY_TEST_NGINX="$nginx_base" \
  PROXY_TEST_NGINX_LOG="$work/nginx/access.log" \
  PROXY_TEST_NGINX_RD="$nginx_rd_base" \
  PROXY_TEST_NGINX_RD_LOG="$work/nginx-rd/access.log" \
  PROXY_TEST_CADDY="$caddy_base" \
  PROXY_TEST_CADDY_LOG="$work/caddy/access.log" \
  PROXY_TEST_APP="http://127.0.0.1:$app_port" \
  PROXY_TEST_USERNAME="$username" \
  PROXY_TEST_PASSWORD="$password" \
  PROXY_TEST_CHROMIUM="$chromium_bin" \
  PROXY_TEST_ARTIFACTS="$artifacts" \
  node --test --test-reporter=spec "$here/proxy.test.mjs"
status=$?
set -e
say "finished in $(( $(date +%s) - started )) s"
exit "$status"
