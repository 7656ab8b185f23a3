#!/usr/bin/env bash
# Time-boxed fuzz smoke run: builds every cargo-fuzz target in fuzz/ and runs each one for
# FUZZ_SECONDS seconds (default 20) from the committed seed corpus. Exits non-zero if any target
# crashes, leaks, times out or exceeds the memory limit, or if the build fails.
#
#   scripts/fuzz-smoke.sh                  # all targets, 20 s each
#   FUZZ_SECONDS=120 scripts/fuzz-smoke.sh jwt_verify jwk_parse
#
# Environment: FUZZ_SECONDS (per target), FUZZ_RSS_LIMIT_MB (default 2048),
# FUZZ_TIMEOUT (seconds one input may take, default 10).
# New inputs found go to a scratch directory that is deleted afterwards, so the committed
# corpus is left as it is. Crash reproducers are kept in fuzz/artifacts/<target>/.
# Installs cargo-fuzz if it is missing. Uses the nightly toolchain when rustup has one,
# otherwise the default toolchain with RUSTC_BOOTSTRAP=1 (cargo-fuzz needs -Z flags).
set -euo pipefail
cd "$(dirname "$0")/.."

seconds=${FUZZ_SECONDS:-20}
rss_limit=${FUZZ_RSS_LIMIT_MB:-2048}
timeout=${FUZZ_TIMEOUT:-10}
started=$(date +%s)

if ! cargo fuzz --version >/dev/null 2>&1; then
  echo "fuzz-smoke: installing cargo-fuzz"
  cargo install cargo-fuzz --locked
fi

if rustup run nightly rustc --version >/dev/null 2>&1; then
  fuzz() { cargo +nightly fuzz "$@"; }
  toolchain=nightly
else
  fuzz() { RUSTC_BOOTSTRAP=1 cargo fuzz "$@"; }
  toolchain="default toolchain with RUSTC_BOOTSTRAP=1"
fi

if [ "$#" -gt 0 ]; then
  targets=("$@")
else
  mapfile -t targets < <(fuzz list --fuzz-dir fuzz)
fi
if [ "${#targets[@]}" -eq 0 ]; then
  echo "fuzz-smoke: no fuzz targets found" >&2
  exit 1
fi

echo "fuzz-smoke: building ${targets[*]} ($toolchain)"
# Build every target up front (a broken target fails here, before any time is spent fuzzing).
fuzz build --fuzz-dir fuzz
built=$(date +%s)
echo "fuzz-smoke: build took $((built - started)) s"

scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
failed=()
for target in "${targets[@]}"; do
  echo "fuzz-smoke: $target for ${seconds} s"
  mkdir -p "$scratch/$target" "fuzz/corpus/$target"
  log="$scratch/$target.log"
  if fuzz run --fuzz-dir fuzz "$target" "$scratch/$target" "fuzz/corpus/$target" -- \
      -max_total_time="$seconds" -rss_limit_mb="$rss_limit" -timeout="$timeout" \
      -print_final_stats=1 >"$log" 2>&1; then
    grep -E '^#[0-9]+[[:space:]]+(INITED|DONE)|stat::number_of_executed_units|stat::average_exec_per_sec' "$log" \
      | sed "s/^/  /" || true
  else
    failed+=("$target")
    echo "fuzz-smoke: $target FAILED:" >&2
    grep -E -A 6 'panicked at|ERROR: (AddressSanitizer|LeakSanitizer|libFuzzer)' "$log" | head -n 40 >&2 || true
    echo "  ..." >&2
    grep -E -A 3 'Test unit written|Failing input|Reproduce with|Minimize test case' "$log" >&2 || tail -n 40 "$log" >&2
  fi
done

echo "fuzz-smoke: finished in $(($(date +%s) - started)) s (build $((built - started)) s)"
if [ "${#failed[@]}" -gt 0 ]; then
  echo "fuzz-smoke: FAILED: ${failed[*]} (reproducers in fuzz/artifacts/)" >&2
  exit 1
fi
echo "fuzz-smoke: ${#targets[@]} targets passed"
