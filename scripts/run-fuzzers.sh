#!/usr/bin/env bash
# run-fuzzers.sh SECONDS FUZZER... -- run each libFuzzer target for a bounded time, keeping
# its corpus in build/fuzz/corpus/<name> (seeded from tests/fuzz/corpus/<name> if present).
# A crash, leak or sanitizer report fails the target and leaves the reproducer in
# build/fuzz/artifacts/. Ends with "fuzz: N passed, N failed".
set -uo pipefail

seconds=$1; shift
root=$(cd "$(dirname "$0")/.." && pwd)
# A fixed seed (AEGIS_FUZZ_SEED) makes a run repeatable: what CI found, a developer finds.
seed_opt=()
[ -n "${AEGIS_FUZZ_SEED:-}" ] && seed_opt=(-seed="$AEGIS_FUZZ_SEED")
passed=0 failed=0
for bin in "$@"; do
  name=$(basename "$bin")
  corpus="$root/build/fuzz/corpus/$name"
  artifacts="$root/build/fuzz/artifacts/$name/"
  mkdir -p "$corpus" "$artifacts"
  seeds=()
  [ -d "$root/tests/fuzz/corpus/$name" ] && seeds=("$root/tests/fuzz/corpus/$name")
  # Per-target flags (-x=y) and environment (X=y), with the reason beside them, in
  # tests/fuzz/<name>.options.
  extra=() envs=()
  if [ -f "$root/tests/fuzz/$name.options" ]; then
    mapfile -t extra < <(grep '^-' "$root/tests/fuzz/$name.options")
    mapfile -t envs < <(grep -E '^[A-Z_]+=' "$root/tests/fuzz/$name.options")
  fi
  if env "${envs[@]}" "$bin" "${seed_opt[@]}" "${extra[@]}" -max_total_time="$seconds" -rss_limit_mb=2048 -timeout=10 -print_final_stats=1 \
       -artifact_prefix="$artifacts" "$corpus" "${seeds[@]}" > "$root/build/fuzz/$name.log" 2>&1; then
    execs=$(grep -oE 'stat::number_of_executed_units: *[0-9]+' "$root/build/fuzz/$name.log" |
            grep -oE '[0-9]+$' || echo '?')
    echo "$name: ok, $execs inputs in ${seconds}s"
    passed=$((passed + 1))
  else
    echo "$name: FAILED"
    grep -E 'ERROR|SUMMARY|Test unit written' "$root/build/fuzz/$name.log" | head -20
    failed=$((failed + 1))
  fi
done
echo "fuzz: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
