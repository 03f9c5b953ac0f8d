#!/usr/bin/env bash
# run-unit-tests.sh -- run criterion test binaries, print each one's summary, and end with
# "N passed, N failed" over all of them. Exits non-zero if any test failed or crashed.
set -uo pipefail

passed=0 failed=0
for bin in "$@"; do
  out=$("$bin" --jobs 2 2>&1)
  rc=$?
  printf '%s\n' "$out" | grep -vE '^\[----\]|^\[RUN \]|^\[PASS\]' || true
  line=$(printf '%s\n' "$out" | grep 'Synthesis:' | tail -1)
  if [ -z "$line" ]; then
    echo "$(basename "$bin"): no summary (exit $rc)"
    failed=$((failed + 1))
    continue
  fi
  p=$(sed -E 's/.*Passing: ([0-9]+).*/\1/' <<<"$line")
  f=$(sed -E 's/.*Failing: ([0-9]+).*/\1/' <<<"$line")
  c=$(sed -E 's/.*Crashing: ([0-9]+).*/\1/' <<<"$line")
  passed=$((passed + p)); failed=$((failed + f + c))
  [ "$rc" -eq 0 ] || [ $((f + c)) -gt 0 ] || failed=$((failed + 1))
done
echo "criterion: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
