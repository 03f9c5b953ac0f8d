#!/usr/bin/env bash
# visibility.sh -- issue 5's "time from DNS answer to row visible in PostgreSQL" (p50/p99; bar:
# p99 within 5 s under steady load), through the whole platform: two resolver nodes logging
# to Kafka, aegis-logpipe in its consumer group writing query_log, as scripts/platform.sh
# runs them. dnsperf keeps a steady load of BENCH_RATE queries/s on res1 from the tenant's
# network while bench/querylog/visibility.py sends a probe every 100 ms and times each until
# its row is visible (polled every 20 ms).
#
# Usage: bash bench/querylog/visibility.sh
# Knobs: BENCH_DIR (/tmp/aegis-bench-visibility), BENCH_RATE (20000), BENCH_PROBES (300);
#        stack ports 59732, 59792, 59793, 59753; platform ports from 28800 (AEGIS_*_PORT,
#        AEGIS_PLATFORM_PORT).
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
BENCH_DIR=${BENCH_DIR:-/tmp/aegis-bench-visibility}
RATE=${BENCH_RATE:-20000}
PROBES=${BENCH_PROBES:-300}
export AEGIS_PG_PORT=${AEGIS_PG_PORT:-59732}
export AEGIS_KAFKA_PORT=${AEGIS_KAFKA_PORT:-59792}
export AEGIS_KAFKA_CONTROLLER_PORT=${AEGIS_KAFKA_CONTROLLER_PORT:-59793}
export AEGIS_DNS_PORT=${AEGIS_DNS_PORT:-59753}
export AEGIS_PLATFORM_PORT=${AEGIS_PLATFORM_PORT:-28800}
export AEGIS_STACK_DIR=$BENCH_DIR/stack
export AEGIS_PLATFORM_DIR=$BENCH_DIR/platform
say() { printf '[bench %s] %s\n' "$(date +%T)" "$*" >&2; }

cleanup() {
  "$root/scripts/platform.sh" down >/dev/null 2>&1 || true
  "$root/scripts/devstack.sh" down >/dev/null 2>&1 || true
}
trap cleanup EXIT
cleanup
rm -rf "$BENCH_DIR"
mkdir -p "$BENCH_DIR"

make -C "$root" -j"$(nproc)" all >/dev/null
say "dev stack and platform"
"$root/scripts/devstack.sh" up >"$BENCH_DIR/devstack.log" 2>&1
"$root/scripts/platform.sh" up
. "$AEGIS_PLATFORM_DIR/env"
key=$(cat "$AEGIS_API_KEY_FILE")
curl -fsS -H "Authorization: Bearer $key" -H 'Content-Type: application/json' \
  --data '{"kind": "school", "name": "Bench School", "slug": "bench-school", "networks": [{"cidr": "127.61.0.0/16"}]}' \
  "$AEGIS_API_URL/v1/tenants" >/dev/null
for i in $(seq 1 100); do
  [ "$(dig +short +tries=1 +time=1 -p "${AEGIS_RES1##*:}" -b 127.61.0.1 @127.0.0.1 x.wild.test)" ] && break
  sleep 0.1
done

# Background load: 1,000 names asked over and over (cache hits after the first pass), from
# the same tenant as the probes, so every query is logged.
for i in $(seq 0 999); do echo "l$i.load.wild.test A"; done > "$BENCH_DIR/load.txt"
duration=$(( PROBES / 10 + 20 ))
say "load: $RATE queries/s for $duration s on res1; $PROBES probes"
dnsperf -s 127.0.0.1 -p "${AEGIS_RES1##*:}" -a 127.61.0.2 -d "$BENCH_DIR/load.txt" \
  -Q "$RATE" -l "$duration" -c 4 -q 200 > "$BENCH_DIR/dnsperf.txt" 2>&1 &
load=$!
sleep 3
/usr/bin/python3 "$here/visibility.py" --node "$AEGIS_RES1" --source 127.61.0.5 \
  --dsn "$AEGIS_PLATFORM_DSN" --tag "v$(date +%s)" --count "$PROBES" > "$BENCH_DIR/probes.jsonl"
wait "$load" || true
grep -E "Queries (sent|completed|lost)|Queries per second" "$BENCH_DIR/dnsperf.txt" >&2
rows=$(psql "$AEGIS_PLATFORM_DSN" -Atc "SELECT count(*) FROM query_log")
say "query_log rows: $rows; logpipe: $(curl -fsS "$AEGIS_LOGPIPE_METRICS" | grep -E '^aegis_logpipe_(records_inserted|dead_letter)' | tr '\n' ' ')"
tail -n1 "$BENCH_DIR/probes.jsonl"
