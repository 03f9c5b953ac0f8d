#!/usr/bin/env bash
# test.sh -- what `make test` does: install what is missing, build, start a throwaway dev
# stack on its own ports, run every test layer against it, and always stop the stack.
# Ends with one "N passed, N failed" line over all layers; exits non-zero on any failure.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
. scripts/lib/common.sh

scripts/setup.sh
make -j"$(nproc)" all tests

# Its own ports and folder, so a developer's running demo stack is left alone.
export AEGIS_PG_PORT=${AEGIS_TEST_PG_PORT:-26432}
export AEGIS_KAFKA_PORT=${AEGIS_TEST_KAFKA_PORT:-26092}
export AEGIS_KAFKA_CONTROLLER_PORT=${AEGIS_TEST_KAFKA_CONTROLLER_PORT:-26093}
export AEGIS_DNS_PORT=${AEGIS_TEST_DNS_PORT:-26353}
export AEGIS_STACK_DIR=${AEGIS_TEST_STACK_DIR:-/tmp/aegis-test-stack-$(id -un)}

scripts/devstack.sh down >/dev/null 2>&1 || true
trap 'scripts/devstack.sh down' EXIT
scripts/devstack.sh up
. "$AEGIS_STACK_DIR/env"

passed=0 failed=0
tally() { # reads "N passed, N failed" from the last line of a layer's output
  local line=$1 p f
  p=$(grep -oE '[0-9]+ passed' <<<"$line" | grep -oE '[0-9]+' || echo 0)
  f=$(grep -oE '[0-9]+ failed' <<<"$line" | grep -oE '[0-9]+' || echo 0)
  passed=$((passed + p)); failed=$((failed + f))
}
layer() { # name, command...: runs a layer, keeps going on failure, counts its results
  local name=$1 out rc; shift
  log "== $name"
  set +e
  "$@" 2>&1 | tee "$AEGIS_STACK_DIR/layer.out"
  rc=${PIPESTATUS[0]}
  set -e
  out=$(tail -1 "$AEGIS_STACK_DIR/layer.out")
  tally "$out"
  if [ "$rc" -ne 0 ] && ! grep -qE '[1-9][0-9]* failed' <<<"$out"; then
    failed=$((failed + 1))
    log "$name exited $rc without counting a failure"
  fi
}

layer "unit tests" scripts/run-unit-tests.sh build/tests/unit/test_*
layer "integration tests (C)" scripts/run-unit-tests.sh build/tests/integration/test_*
# pytest's temporary folders inside the stack's, not in the /tmp/pytest-of-USER that every
# other pytest run on the machine prunes.
layer "integration tests (black-box)" /usr/bin/python3 -m pytest -q -p no:cacheprovider \
  --basetemp "$AEGIS_STACK_DIR/pytest-integration" tests/integration
layer "end-to-end (the platform: tests/e2e)" /usr/bin/python3 -m pytest -q -p no:cacheprovider \
  --basetemp "$AEGIS_STACK_DIR/pytest-e2e" tests/e2e
# Lint, syntax, two converges of ansible/site.yml onto this machine (a throwaway root), and
# the deployed daemons answering (tests/ansible/run.sh).
layer "ansible" tests/ansible/run.sh
layer "unit tests under ASan+UBSan" make --no-print-directory -j"$(nproc)" asan
export AEGIS_FUZZ_SEED=${AEGIS_FUZZ_SEED:-1}
layer "fuzzers (libFuzzer, ASan+UBSan)" make --no-print-directory -j"$(nproc)" fuzz \
  FUZZ_SECONDS="${AEGIS_FUZZ_SECONDS:-30}"

echo "all layers: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
