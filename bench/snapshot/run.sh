#!/usr/bin/env bash
# bench/snapshot/run.sh -- the lookup cost of a split policy (feed base + overlay) against one
# self-contained snapshot, pinned to one CPU. Builds the project's common library first.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
out=${BENCH_DIR:-/tmp/aegis-bench-snapshot}
mkdir -p "$out"
make -C "$root" -s build/lib/libcommon.a
cc -O2 -std=gnu11 -I"$root/common" -o "$out/split_lookup" "$root/bench/snapshot/split_lookup.c" \
  "$root/build/lib/libcommon.a" $(pkg-config --libs libcrypto) -lxxhash
for i in $(seq 1 "${BENCH_RUNS:-3}"); do
  taskset -c "${BENCH_CPU:-0}" "$out/split_lookup" "$out"
done
