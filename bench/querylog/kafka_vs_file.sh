#!/usr/bin/env bash
# kafka_vs_file.sh -- resolver throughput with the Kafka query-log sink versus the JSON-lines
# file sink, in the same run (issue 5, item 8, third figure; bar: Kafka costs at most 15%).
#
# One aegis-resolver (one worker) pinned to CPU 0, dnsperf on CPU 1, a dev stack of its own
# (broker, nsd) on loopback. The two sinks alternate, BENCH_ROUNDS times each, over names
# answered from the cache, so the query log's cost is as visible as it can be. Each resolver
# gets a fresh topic or file and two dnsperf runs of BENCH_DURATION seconds:
#   1. a fixed rate (BENCH_RATE): the resolver's CPU time per query (utime + stime of the whole
#      process, librdkafka's threads included) gives its capacity on one core, 1 / that;
#   2. saturating: the answered qps. On two cores the broker shares CPU 1 with dnsperf, so this
#      figure also charges the broker's ingest to the Kafka runs; (1) is the resolver's own cost.
#
# Usage: bash bench/querylog/kafka_vs_file.sh
# Knobs: BENCH_DIR (/tmp/aegis-bench-querylog), BENCH_DURATION (15), BENCH_ROUNDS (3),
#        BENCH_RATE (40000),
#        BENCH_CLIENTS / BENCH_OUTSTANDING (4 / 150, as bench/resolver/run.sh),
#        BENCH_SERVER_CPU / BENCH_LOAD_CPU (0 / 1); stack ports 59632, 59692, 59693, 59653 and
#        resolver ports 59640, 59641 (AEGIS_*_PORT, BENCH_PORT_AEGIS, BENCH_PORT_METRICS).
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
PY=/usr/bin/python3
BENCH_DIR=${BENCH_DIR:-/tmp/aegis-bench-querylog}
BENCH_DIR=${BENCH_DIR%/}
DURATION=${BENCH_DURATION:-15}
ROUNDS=${BENCH_ROUNDS:-3}
RATE=${BENCH_RATE:-40000}
CLIENTS=${BENCH_CLIENTS:-4}
OUTSTANDING=${BENCH_OUTSTANDING:-150}
SERVER_CPU=${BENCH_SERVER_CPU:-0}
LOAD_CPU=${BENCH_LOAD_CPU:-1}
PORT_AEGIS=${BENCH_PORT_AEGIS:-59640}
PORT_METRICS=${BENCH_PORT_METRICS:-59641}
SOURCE=127.0.0.1
export AEGIS_PG_PORT=${AEGIS_PG_PORT:-59632}
export AEGIS_KAFKA_PORT=${AEGIS_KAFKA_PORT:-59692}
export AEGIS_KAFKA_CONTROLLER_PORT=${AEGIS_KAFKA_CONTROLLER_PORT:-59693}
export AEGIS_DNS_PORT=${AEGIS_DNS_PORT:-59653}
export AEGIS_STACK_DIR=$BENCH_DIR/stack
MARK=$BENCH_DIR/.aegis-bench-querylog

say() { printf '[bench %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { say "error: $*"; exit 1; }

for tool in dnsperf taskset curl kcat; do
  command -v "$tool" >/dev/null || die "$tool is missing"
done

RES_PID=
STACK_UP=0
cleanup() {
  local rc=$?
  trap - EXIT
  [ -n "$RES_PID" ] && { kill -TERM "$RES_PID" 2>/dev/null; wait "$RES_PID" 2>/dev/null || true; }
  [ "$STACK_UP" -eq 1 ] && { "$root/scripts/devstack.sh" down >/dev/null 2>&1 || say "devstack down failed"; }
  rm -f "$BENCH_DIR"/run-*/queries.jsonl
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

if [ -e "$BENCH_DIR" ]; then
  [ -f "$MARK" ] || die "$BENCH_DIR exists and is not this benchmark's folder"
  [ -f "$BENCH_DIR/stack/devstack.conf" ] && { "$root/scripts/devstack.sh" down >/dev/null 2>&1 || true; }
  rm -rf "$BENCH_DIR"
fi
mkdir -p "$BENCH_DIR/bin"
touch "$MARK"

say "building"
make -C "$root" -s build/bin/aegis-resolver build/bin/aegis-tenantd >/dev/null
cp "$root/build/bin/aegis-resolver" "$root/build/bin/aegis-tenantd" "$BENCH_DIR/bin/"
VERSION="commit $(git -C "$root" rev-parse --short HEAD 2>/dev/null || echo '?')"

say "dev stack on $AEGIS_KAFKA_PORT/$AEGIS_DNS_PORT"
"$root/scripts/devstack.sh" up >/dev/null
STACK_UP=1
# shellcheck disable=SC1091
. "$AEGIS_STACK_DIR/env"

# The broker and the other stack daemons run on dnsperf's CPU, as in bench/resolver/run.sh:
# CPU 0 is the resolver's alone, so its figure is the resolver's own cost (a deployment's broker
# runs elsewhere). Best effort.
for pf in "$AEGIS_STACK_DIR/kafka/kafka.pid" "$AEGIS_STACK_DIR/nsd/nsd.pid" \
          "$AEGIS_STACK_DIR/pg/data/postmaster.pid"; do
  p=$(head -n1 "$pf" 2>/dev/null | tr -dc 0-9) || true
  [ -n "$p" ] && taskset -a -cp "$LOAD_CPU" "$p" >/dev/null 2>&1 || true
done

# One tenant owns the load generator's address; 2,000 names the cache answers after warm-up.
cat > "$BENCH_DIR/policy.json" <<'EOF'
{"categories": [{"name": "malware", "kind": "threat"}],
 "tenants": [{"id": "11111111-1111-4111-8111-111111111111", "name": "Bench",
              "networks": ["127.0.0.0/8"], "block": ["malware"]}],
 "national": {"block": [], "allow": []},
 "feeds": [{"category": "malware", "names": ["malware.test"]}]}
EOF
"$BENCH_DIR/bin/aegis-tenantd" compile-json "$BENCH_DIR/policy.json" "$BENCH_DIR/policy.snap" 1 \
  >/dev/null 2>&1 || die "policy compile failed"
for i in $(seq 0 1999); do
  case $((i % 4)) in
    0) echo "www.school.test A" ;;
    1) echo "n$i.bench.test A" ;;
    2) echo "www.hospital.test AAAA" ;;
    3) echo "x$i.malware.test A" ;;
  esac
done > "$BENCH_DIR/queries.txt"

metric() { # name -> value from the resolver's /metrics, 0 if absent
  curl -s --max-time 5 "http://127.0.0.1:$PORT_METRICS/metrics" |
    awk -v m="$1" '$1 == m { v = $2 } END { print v + 0 }'
}

start_resolver() { # sink run-dir
  local sink=$1 dir=$2 ql
  mkdir -p "$dir"
  if [ "$sink" = kafka ]; then
    ql="kafka: { brokers = \"$AEGIS_KAFKA_BROKERS\"; topic = \"aegis.bench.$(basename "$dir")\";
        spool_dir = \"$dir/spool\"; };"
  else
    ql="file = \"$dir/queries.jsonl\";"
  fi
  cat > "$dir/resolver.conf" <<EOF
node: { name = "bench-node"; };
server: { listen = ["127.0.0.1:$PORT_AEGIS"]; workers = 1; };
upstream: { servers = ["$AEGIS_DNS_UPSTREAM"]; timeout_ms = 1000; attempts = 2; };
policy: { snapshot = "$BENCH_DIR/policy.snap"; forward_special_zones = ["test."]; };
querylog: { $ql };
metrics: { listen = "127.0.0.1:$PORT_METRICS"; };
ratelimit: { exempt = ["$SOURCE/32=0"]; };
EOF
  taskset -c "$SERVER_CPU" "$BENCH_DIR/bin/aegis-resolver" -c "$dir/resolver.conf" \
    </dev/null >"$dir/resolver.log" 2>&1 &
  RES_PID=$!
  for _ in $(seq 100); do
    grep -q event=serving "$dir/resolver.log" && return 0
    sleep 0.1
  done
  die "resolver ($sink) did not start: $(tail -n 5 "$dir/resolver.log")"
}

stop_resolver() {
  kill -TERM "$RES_PID" 2>/dev/null || true
  wait "$RES_PID" 2>/dev/null || true
  RES_PID=
}

cpu_ticks() { # pid -> utime + stime of the whole process, in clock ticks
  local s
  s=$(<"/proc/$1/stat")
  s=${s##*) }
  # shellcheck disable=SC2086 # split into fields on purpose
  set -- $s
  echo $(( ${12} + ${13} ))
}
HZ=$(getconf CLK_TCK)

RESULTS=$BENCH_DIR/results.tsv
printf 'sink\tround\tus_per_query\tqps\tlost_pct\tlogged\tdropped_queue_full\tdelivered\tspooled\n' > "$RESULTS"
for round in $(seq "$ROUNDS"); do
  for sink in file kafka; do
    dir=$BENCH_DIR/run-$sink-$round
    start_resolver "$sink" "$dir"
    # warm the cache (and the topic's metadata) before measuring
    taskset -c "$LOAD_CPU" dnsperf -s 127.0.0.1 -p "$PORT_AEGIS" -a "$SOURCE" \
      -d "$BENCH_DIR/queries.txt" -n 1 -c 1 -q 20 -t 2 >"$dir/warm.txt" 2>&1 || die "warm-up failed"
    t0=$(cpu_ticks "$RES_PID")
    taskset -c "$LOAD_CPU" dnsperf -s 127.0.0.1 -p "$PORT_AEGIS" -a "$SOURCE" \
      -d "$BENCH_DIR/queries.txt" -c "$CLIENTS" -q 100 -l "$DURATION" -Q "$RATE" \
      >"$dir/dnsperf-rate.txt" 2>&1 || die "dnsperf at a fixed rate failed ($sink)"
    t1=$(cpu_ticks "$RES_PID")
    done_q=$(awk '/Queries completed:/ { print $3 }' "$dir/dnsperf-rate.txt")
    us=$(awk -v t=$((t1 - t0)) -v q="$done_q" -v hz="$HZ" 'BEGIN { printf "%.2f", t * 1e6 / hz / q }')
    w0=$(metric aegis_querylog_written_total)
    d0=$(metric 'aegis_querylog_dropped_total{reason="queue_full"}')
    taskset -c "$LOAD_CPU" dnsperf -s 127.0.0.1 -p "$PORT_AEGIS" -a "$SOURCE" \
      -d "$BENCH_DIR/queries.txt" -c "$CLIENTS" -q "$OUTSTANDING" -l "$DURATION" \
      >"$dir/dnsperf.txt" 2>&1 || die "dnsperf failed ($sink)"
    sleep 2   # let the sink catch up before reading its counters
    w1=$(metric aegis_querylog_written_total)
    d1=$(metric 'aegis_querylog_dropped_total{reason="queue_full"}')
    delivered=$(metric aegis_querylog_kafka_delivered_total)
    spooled=$(metric aegis_querylog_spooled_total)
    qps=$(awk '/Queries per second:/ { print $4 }' "$dir/dnsperf.txt")
    lost=$(awk '/Queries lost:/ { gsub(/[()%]/, "", $4); print $4 }' "$dir/dnsperf.txt")
    stop_resolver
    printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$sink" "$round" "$us" "$qps" "$lost" \
      $((w1 - w0)) $((d1 - d0)) "$delivered" "$spooled" >> "$RESULTS"
    say "$sink round $round: $us µs CPU per query at $RATE qps; saturating $qps qps (lost $lost%), logged $((w1 - w0)), queue-full drops $((d1 - d0)), delivered $delivered, spooled $spooled"
  done
done

"$PY" - "$RESULTS" "$VERSION" "$DURATION" "$ROUNDS" "$CLIENTS" "$OUTSTANDING" "$RATE" <<'EOF'
import csv, statistics, sys
rows = list(csv.DictReader(open(sys.argv[1]), delimiter="\t"))
sinks = ("file", "kafka")
us = {s: statistics.median(float(r["us_per_query"]) for r in rows if r["sink"] == s) for s in sinks}
qps = {s: statistics.median(float(r["qps"]) for r in rows if r["sink"] == s) for s in sinks}
print(f"{sys.argv[2]}; fixed rate dnsperf -Q {sys.argv[7]} -c {sys.argv[5]} -q 100 -l {sys.argv[3]}; "
      f"saturating dnsperf -c {sys.argv[5]} -q {sys.argv[6]} -l {sys.argv[3]}; {sys.argv[4]} rounds each")
print("| sink | CPU µs/query per round | median | capacity on one core (1/median) | saturating qps per round | median | queue-full drops | spooled |")
print("|---|---|---|---|---|---|---|---|")
for s in sinks:
    rs = [r for r in rows if r["sink"] == s]
    per_us = ", ".join(r["us_per_query"] for r in rs)
    per_qps = ", ".join("%.0f" % float(r["qps"]) for r in rs)
    drops = ", ".join(r["dropped_queue_full"] for r in rs)
    spooled = ", ".join(r["spooled"] for r in rs) if s == "kafka" else "-"
    print(f"| {s} | {per_us} | {us[s]:.2f} | {1e6 / us[s]:.0f} qps | {per_qps} | {qps[s]:.0f} | {drops} | {spooled} |")
print(f"Kafka sink cost by CPU per query: {100 * (1 - us['file'] / us['kafka']):.1f}% of capacity; "
      f"by saturating qps: {100 * (1 - qps['kafka'] / qps['file']):.1f}%")
EOF
