#!/usr/bin/env bash
# run.sh -- the portal API benchmark of issue 6 item 7.
#
#  1. Authenticated small GETs per second: wrk against aegis-portal-api (BENCH_THREADS worker
#     threads, a pool of BENCH_POOL connections, rate limits off) with an API key, on
#     GET /v1/tenants/{id} (key lookup, scope expansion through portal_scope, one row) and
#     GET /v1/me; peer in the same run: GET /v1/health on the same server (no authentication,
#     one trivial query), so the ratio is the price of authentication and scoping.
#  2. The two SOC searches of the issue on a query_log of BENCH_ROWS rows (default 10,000,000
#     over 7 days, 2,000 clients of 20 tenants, 200,000 names): one client IP over 24 hours,
#     and one name with its subdomains over 7 days, through GET /v1/querylog (JSON page of
#     100 and the full CSV stream), each BENCH_RUNS times; peer: the same SQL through psql.
# Uses the dev stack of the environment (source $AEGIS_STACK_DIR/env first) and its own
# database, dropped at the end.
#
# Usage: . $AEGIS_STACK_DIR/env && bash bench/portal/run.sh
# Knobs: BENCH_DIR (/tmp/aegis-bench-portal), BENCH_PORT (57390), BENCH_SECONDS (10),
#        BENCH_CONNECTIONS (32), BENCH_THREADS (2), BENCH_POOL (4), BENCH_ROWS (10000000),
#        BENCH_RUNS (3), BENCH_SKIP_SOC (unset; 1 skips part 2)
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
BIN=${AEGIS_BIN:-$root/build/bin}
DIR=${BENCH_DIR:-/tmp/aegis-bench-portal}
PORT=${BENCH_PORT:-57390}
SECONDS_EACH=${BENCH_SECONDS:-10}
CONNS=${BENCH_CONNECTIONS:-32}
THREADS=${BENCH_THREADS:-2}
POOL=${BENCH_POOL:-4}
ROWS=${BENCH_ROWS:-10000000}
RUNS=${BENCH_RUNS:-3}
: "${AEGIS_PG_DSN:?source the dev stack env first}" "${AEGIS_PG_ADMIN_DSN:?}"

rm -rf "$DIR" && mkdir -p "$DIR"
DB=aegis_bench_portal
psql "$AEGIS_PG_ADMIN_DSN" -qc "DROP DATABASE IF EXISTS $DB WITH (FORCE)" -c "CREATE DATABASE $DB OWNER aegis"
DSN="$(echo "$AEGIS_PG_DSN" | sed 's/dbname=[^ ]*//') dbname=$DB"
PID=
cleanup() {
  [ -n "$PID" ] && kill "$PID" 2>/dev/null && wait "$PID" 2>/dev/null || true
  psql "$AEGIS_PG_ADMIN_DSN" -qc "DROP DATABASE IF EXISTS $DB WITH (FORCE)" || true
}
trap cleanup EXIT

cat > "$DIR/tenantd.conf" <<EOF
database: { dsn = "$DSN"; };
migrations: { dir = "$root/migrations"; };
snapshot: { dir = "$DIR/snapshots"; };
EOF
"$BIN/aegis-tenantd" -c "$DIR/tenantd.conf" migrate 2> "$DIR/migrate.log"
cat > "$DIR/portal.conf" <<EOF
log: { level = "warn"; };
database: { dsn = "$DSN"; pool_size = $POOL; };
http: { listen = "127.0.0.1:$PORT"; threads = $THREADS; rate_per_address = 0; rate_per_principal = 0; };
EOF
KEY=$("$BIN/aegis-portal-api" -c "$DIR/portal.conf" bootstrap-key bench)
"$BIN/aegis-portal-api" -c "$DIR/portal.conf" 2> "$DIR/portal.log" &
PID=$!
for _ in $(seq 100); do curl -sf "http://127.0.0.1:$PORT/v1/health" > /dev/null && break; sleep 0.1; done

api() { curl -sf -H "Authorization: Bearer $KEY" -H 'Content-Type: application/json' "$@"; }
MIN=$(api -d '{"kind":"ministry","name":"Ministry","slug":"ministry"}' "http://127.0.0.1:$PORT/v1/tenants" |
      python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])')
for i in $(seq 0 19); do
  api -d "{\"kind\":\"school\",\"name\":\"School $i\",\"slug\":\"school-$i\",\"parent_id\":\"$MIN\",\"networks\":[{\"cidr\":\"10.$i.0.0/16\"}]}" \
      "http://127.0.0.1:$PORT/v1/tenants" > /dev/null
done

rate() {  # rate NAME URL [auth]
  local hdr=()
  [ "${3:-}" = auth ] && hdr=(-H "Authorization: Bearer $KEY")
  wrk -t2 -c"$CONNS" -d"${SECONDS_EACH}s" --latency "${hdr[@]}" "$2" > "$DIR/wrk-$1.txt"
  local rps p99
  rps=$(awk '/Requests\/sec/ {print $2}' "$DIR/wrk-$1.txt")
  p99=$(awk '$1 == "99%" {print $2}' "$DIR/wrk-$1.txt")
  local non2xx
  non2xx=$(awk '/Non-2xx/ {print $NF}' "$DIR/wrk-$1.txt")
  printf '%-28s %10s req/s   p99 %-8s non-2xx %s\n' "$1" "$rps" "$p99" "${non2xx:-0}"
  echo "$rps"  > "$DIR/rps-$1"
}
echo "== 1. small GETs ($CONNS connections, ${SECONDS_EACH}s each, $THREADS server threads, $(nproc) CPUs)"
rate health "http://127.0.0.1:$PORT/v1/health"
rate tenant "http://127.0.0.1:$PORT/v1/tenants/$MIN" auth
rate me "http://127.0.0.1:$PORT/v1/me" auth
python3 - "$DIR" <<'EOF'
import sys
d = sys.argv[1]
r = {n: float(open(f"{d}/rps-{n}").read()) for n in ("health", "tenant", "me")}
print(f"ratio authenticated GET /v1/tenants/{{id}} / health: {r['tenant'] / r['health']:.2f}")
print(f"ratio authenticated GET /v1/me / health:          {r['me'] / r['health']:.2f}")
EOF

[ -n "${BENCH_SKIP_SOC:-}" ] && exit 0

echo "== 2. SOC searches on $ROWS query_log rows"
T0=$EPOCHREALTIME
psql -q "$DSN" <<EOF
SELECT query_log_ensure_partitions(current_date - 7, 8);
CREATE TEMP TABLE t AS SELECT id, row_number() OVER (ORDER BY slug) - 1 AS n FROM tenants WHERE slug LIKE 'school-%';
INSERT INTO query_log (ts, event_id, node, tenant_id, client_ip, transport, qname, qtype, rcode, action)
SELECT now() - (g::double precision / $ROWS) * interval '7 days',
       gen_random_uuid(), 'node-1', t.id,
       ('10.' || t.n || '.' || (g / 7 % 100) || '.' || (g % 100 / 5))::inet,
       'udp', 'h' || (g::bigint * 7919 % 200000) || '.d' || (g % 997) || '.example', 1, 0, 'allow'
  FROM generate_series(1, $ROWS) g JOIN t ON t.n = g % 20;
ANALYZE query_log;
EOF
echo "loaded in $(python3 -c "print(round($EPOCHREALTIME - $T0))") s: $(psql -Atq "$DSN" -c 'SELECT count(*) FROM query_log') rows"
SCHOOL3=$(psql -Atq "$DSN" -c "SELECT id FROM tenants WHERE slug = 'school-3'")
CLIENT=$(psql -Atq "$DSN" -c "SELECT host(client_ip) FROM query_log WHERE tenant_id = '$SCHOOL3' AND ts > now() - interval '1 hour' LIMIT 1")
NAME=d17.example
SINCE24=$(date -u -d '24 hours ago' +%Y-%m-%dT%H:%M:%SZ)
SINCE7=$(date -u -d '7 days ago' +%Y-%m-%dT%H:%M:%SZ)
time_it() {  # time_it LABEL cmd...
  local best=999999 t0 t
  for _ in $(seq "$RUNS"); do
    t0=$EPOCHREALTIME; "${@:2}" > "$DIR/out" ; t=$(python3 -c "print(round(($EPOCHREALTIME - $t0) * 1000))")
    [ "$t" -lt "$best" ] && best=$t
  done
  printf '%-56s best of %s: %6s ms  (%s lines)\n' "$1" "$RUNS" "$best" "$(wc -l < "$DIR/out")"
}
U="http://127.0.0.1:$PORT/v1/querylog"
time_it "client $CLIENT, 24 h, API JSON page" api "$U?client=$CLIENT&since=$SINCE24"
time_it "client $CLIENT, 24 h, API CSV (all rows)" api "$U?client=$CLIENT&since=$SINCE24&format=csv"
time_it "client $CLIENT, 24 h, psql (peer)" psql -Atq "$DSN" -c \
  "SELECT * FROM query_log WHERE client_ip <<= '$CLIENT/32' AND ts >= '$SINCE24' ORDER BY ts DESC, event_id DESC"
time_it "name $NAME + subdomains, 7 d, API JSON page" api "$U?tenant_id=$SCHOOL3&name=$NAME&since=$SINCE7"
time_it "name $NAME + subdomains, 7 d, API CSV (all rows)" api "$U?tenant_id=$SCHOOL3&name=$NAME&since=$SINCE7&format=csv"
time_it "name $NAME + subdomains, 7 d, psql (peer)" psql -Atq "$DSN" -c \
  "SELECT * FROM query_log WHERE tenant_id = '$SCHOOL3' AND dns_name_in_subtree(qname, '$NAME') AND ts >= '$SINCE7' ORDER BY ts DESC, event_id DESC"
