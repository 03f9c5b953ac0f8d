#!/usr/bin/env bash
# run.sh -- the logpipe benchmark of issue 5, item 8: ingest rate (records/s) into query_log
# with its indexes on, from records pre-produced to a Kafka topic, compared in the same run
# with a peer: psql's \copy of the very same rows from a file into an identically migrated
# (and so identically indexed and partitioned) query_log. The ratio is logpipe's overhead:
# the Kafka fetch, decoding, the staging table, ON CONFLICT, the rollups and the commits.
#
#  1. gen.py writes BENCH_RECORDS records (200 tenants, ~2% category hits) and kcat produces
#     them once (lz4, acks=all) to a fresh topic of the dev stack's 3 partitions.
#  2. BENCH_RUNS times, alternating: aegis-logpipe (a fresh consumer group, so it reads the
#     whole topic) into a freshly migrated database, timed by measure.py from the first
#     record consumed to the last row committed; then the peer, `\copy query_log (...) FROM
#     rows.txt` into another fresh database, timed around psql. rows.txt is the first run's
#     query_log dumped with COPY, so both sides load the same rows. Besides wall time, the CPU
#     time of logpipe and of PostgreSQL's processes (pgcpu.py, from /proc):
#     on a shared machine the rates swing with the neighbours' load, CPU per row much less.
#  3. The SOC's questions with EXPLAIN (ANALYZE) on a table filled by fill.sql (BENCH_FILL
#     rows, 0 to skip): soc-queries.sql, output in $BENCH_DIR/explain.txt.
#
# Usage: bash bench/logpipe/run.sh        (about 3 minutes with the defaults)
# Knobs: BENCH_DIR (/tmp/aegis-bench-logpipe), BENCH_RECORDS (500000), BENCH_RUNS (3),
#   BENCH_BATCH (5000 records per batch), BENCH_FILL (3000000),
#   AEGIS_PG_PORT, AEGIS_KAFKA_PORT, AEGIS_KAFKA_CONTROLLER_PORT, AEGIS_DNS_PORT (the dev
#   stack's: 59732, 59792, 59793, 59753), BENCH_PORT_METRICS (59741).
# Leaves summary.md, results.json and the logs in $BENCH_DIR; large files are removed.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
BENCH_DIR=${BENCH_DIR:-/tmp/aegis-bench-logpipe}
N=${BENCH_RECORDS:-500000}
RUNS=${BENCH_RUNS:-3}
BATCH=${BENCH_BATCH:-5000}
FILL=${BENCH_FILL:-3000000}
METRICS_PORT=${BENCH_PORT_METRICS:-59741}
export AEGIS_PG_PORT=${AEGIS_PG_PORT:-59732} AEGIS_KAFKA_PORT=${AEGIS_KAFKA_PORT:-59792}
export AEGIS_KAFKA_CONTROLLER_PORT=${AEGIS_KAFKA_CONTROLLER_PORT:-59793}
export AEGIS_DNS_PORT=${AEGIS_DNS_PORT:-59753}
export AEGIS_STACK_DIR=$BENCH_DIR/stack
COLS="ts, event_id, node, tenant_id, client_ip, client_pseudonym, client_port, transport, qname, qtype, rcode, action, matched_list_id, matched_feed_id, matched_name, category, mode, ede, cache_hit, upstream, upstream_latency_us, snapshot_version, rule_kind"

log() { printf '[bench/logpipe] %s\n' "$*" >&2; }

cd "$root"
[ -x build/bin/aegis-logpipe ] && [ -x build/bin/aegis-tenantd ] || { log "run make first"; exit 1; }
"$root/scripts/devstack.sh" down >/dev/null 2>&1 || true
rm -rf "$BENCH_DIR"
mkdir -p "$BENCH_DIR"
trap '"$root/scripts/devstack.sh" down >/dev/null 2>&1 || true' EXIT
"$root/scripts/devstack.sh" up >"$BENCH_DIR/devstack.log"
# shellcheck disable=SC1091
. "$AEGIS_STACK_DIR/env"

base_dsn=$(sed 's/dbname=[^ ]*//' <<<"$AEGIS_PG_DSN")
new_db() { # name -> a migrated database of that name
  psql "$AEGIS_PG_ADMIN_DSN" -qXc "DROP DATABASE IF EXISTS $1" -c "CREATE DATABASE $1 OWNER aegis" 2>/dev/null
  cat >"$BENCH_DIR/$1-tenantd.conf" <<CONF
database: { dsn = "$base_dsn dbname=$1"; };
migrations: { dir = "$root/migrations"; };
snapshot: { dir = "$BENCH_DIR/snap"; };
CONF
  build/bin/aegis-tenantd -c "$BENCH_DIR/$1-tenantd.conf" migrate >"$BENCH_DIR/$1-migrate.log" 2>&1
}

log "generating $N records"
python3 "$here/gen.py" "$N" >"$BENCH_DIR/records.txt"
topic=bench-$(date +%s)
log "producing them to $topic"
t0=$(date +%s.%N)
kcat -b "$AEGIS_KAFKA_BROKERS" -P -t "$topic" -K $'\t' -z lz4 -X acks=all -X linger.ms=20 \
     -X batch.num.messages=10000 -l "$BENCH_DIR/records.txt"
log "produced in $(echo "$(date +%s.%N) - $t0" | bc) s"
rm -f "$BENCH_DIR/records.txt"

echo '[' >"$BENCH_DIR/results.json"
for i in $(seq 1 "$RUNS"); do
  new_db "lp$i"
  conf=$BENCH_DIR/logpipe-$i.conf
  cat >"$conf" <<CONF
log: { level = "info"; };
database: { dsn = "$base_dsn dbname=lp$i"; };
kafka: { brokers = "$AEGIS_KAFKA_BROKERS"; topic = "$topic"; group_id = "bench-$i"; };
batch: { records = $BATCH; ms = 200; };
metrics: { listen = "127.0.0.1:$METRICS_PORT"; };
CONF
  log "run $i: logpipe"
  lp=$(python3 "$here/measure.py" "$conf" "$METRICS_PORT" "$N")
  log "  $lp"
  if [ "$i" -eq 1 ]; then
    psql "$base_dsn dbname=lp1" -qXc "\\copy (SELECT $COLS FROM query_log) TO '$BENCH_DIR/rows.txt'"
  fi
  new_db "cp$i"
  log "run $i: psql \\copy"
  pg_before=$(python3 "$here/pgcpu.py")
  t0=$(date +%s.%N)
  psql "$base_dsn dbname=cp$i" -qXc "\\copy query_log ($COLS) FROM '$BENCH_DIR/rows.txt'"
  secs=$(echo "$(date +%s.%N) - $t0" | bc)
  pg_cpu=$(python3 "$here/pgcpu.py" "$pg_before")
  rate=$(echo "$N / $secs" | bc)
  load=$(cut -d' ' -f1 /proc/loadavg)
  log "  copy: $secs s, $rate records/s, backend CPU $pg_cpu s, load $load"
  [ "$i" -eq 1 ] || echo ',' >>"$BENCH_DIR/results.json"
  printf '{"run": %d, "logpipe": %s, "copy": {"seconds": %s, "rate": %s, "postgres_cpu_s": %s},
           "load": %s}\n' "$i" "$lp" "$secs" "$rate" "$pg_cpu" "$load" >>"$BENCH_DIR/results.json"
  psql "$AEGIS_PG_ADMIN_DSN" -qXc "DROP DATABASE lp$i" -c "DROP DATABASE cp$i"
done
echo ']' >>"$BENCH_DIR/results.json"
rm -f "$BENCH_DIR/rows.txt"

if [ "$FILL" -gt 0 ]; then
  log "EXPLAIN of the SOC's questions on $FILL rows"
  new_db soc
  psql "$base_dsn dbname=soc" -qX -v rows="$FILL" -f "$here/fill.sql" >/dev/null
  psql "$base_dsn dbname=soc" -X -f "$here/soc-queries.sql" >"$BENCH_DIR/explain.txt"
fi

python3 - "$BENCH_DIR/results.json" >"$BENCH_DIR/summary.md" <<'PY'
import json, statistics, sys
runs = json.load(open(sys.argv[1]))
n = runs[0]["logpipe"]["records"]
print("| run | load | logpipe records/s | psql \\copy records/s | ratio | logpipe CPU µs/record | "
      "PostgreSQL CPU µs/row, logpipe | PostgreSQL CPU µs/row, \\copy |")
print("|---|---|---|---|---|---|---|---|")
for r in runs:
    lp, cp = r["logpipe"], r["copy"]
    print(f"| {r['run']} | {r['load']} | {lp['rate']:,} | {cp['rate']:,} | {lp['rate'] / cp['rate']:.2f} "
          f"| {lp['logpipe_cpu_s'] * 1e6 / n:.1f} | {lp['postgres_cpu_s'] * 1e6 / n:.1f} "
          f"| {cp['postgres_cpu_s'] * 1e6 / n:.1f} |")
lp = statistics.median(r["logpipe"]["rate"] for r in runs)
cp = statistics.median(r["copy"]["rate"] for r in runs)
best = max(runs, key=lambda r: r["logpipe"]["rate"])
print(f"\nmedian: logpipe {lp:,.0f} records/s, psql \\copy {cp:,.0f} records/s, ratio {lp / cp:.2f}; "
      f"best logpipe run {best['logpipe']['rate']:,} records/s")
PY
cat "$BENCH_DIR/summary.md"
