#!/usr/bin/env bash
# run.sh -- the tenantd benchmark of issue 4 item 7: how long a policy change committed in
# PostgreSQL takes to be enforced on a resolver node, what a compile costs at national scale,
# and how a feed with 10% garbage lines loads. Real PostgreSQL (scripts/devstack.sh, own ports
# and folder), the real aegis-tenantd service and aegis-resolver long-polling it, on loopback.
#
#  1. Change -> enforced, medium policy (200 tenants, 1,000 networks, ~3,000 list entries,
#     100,000 feed names): BENCH_CHANGES times, one INSERT INTO list_entries (autocommit) on a
#     tenant's deny list, then a raw UDP query every BENCH_INTERVAL_MS from the tenant's 127.x
#     address until the tenant's block answer arrives (bench/tenantd/changes.py). Then the same
#     against the national policy of 2 (BENCH_NATIONAL_CHANGES times, within a time budget).
#  2. Compile at national scale (10,000 tenants, 50,000 networks, 2,000,000 feed names loaded
#     with COPY): `aegis-tenantd -c CONF compile` BENCH_COMPILE_RUNS times under
#     /usr/bin/time -v; peers in the same run: compile-json on the equivalent JSON (no
#     database), psql streaming the compiler's feed query to /dev/null, and zstd/unzstd,
#     gzip/gunzip, sha256sum and dd of the snapshot (the distribution path's pieces). The resolver's load time
#     (start -> a blocked name answers NXDOMAIN, with the file in the page cache and evicted)
#     and its reload time (rename + SIGHUP -> new serial in /metrics).
#  3. Feed with 10% garbage: a BENCH_FEED_LINES-line plain feed file refreshed with
#     `aegis-tenantd -c CONF feed-refresh NAME`; wall time, memory, and what feed_refreshes
#     recorded; peer: COPY of the valid names into a dns_name table.
# PostgreSQL logs every statement of the bench databases with its duration; pglog.py sums them
# per compile, change and refresh, so the summary shows where the time goes. Each phase also
# records how busy the machine was and how much of that was other workloads (cputicks.py).
# About 5 minutes on a quiet 2-CPU machine.
#
# Usage: bash bench/tenantd/run.sh
# Knobs (environment):
#   BENCH_DIR                working folder, wiped at start         (/tmp/aegis-bench-tenantd)
#   BENCH_CHANGES            changes against the medium policy      (100)
#   BENCH_NATIONAL_CHANGES   changes against the national policy    (50)
#   BENCH_NATIONAL_BUDGET    seconds after which no new national change starts (240)
#   BENCH_INTERVAL_MS        probe interval while waiting           (3)
#   BENCH_COMPILE_RUNS       compile / compile-json / stream runs   (4)
#   BENCH_LOAD_RUNS          resolver start-up loads, warm and cold (3 each)
#   BENCH_MED_TENANTS / _NETWORKS / _FEED    (200 / 1000 / 100000)
#   BENCH_NAT_TENANTS / _NETWORKS / _FEED    (10000 / 50000 / 2000000)
#   BENCH_FEED_LINES / BENCH_FEED_INVALID    (1000000 / 0.10)
#   BENCH_STACK_CPU          CPU for Kafka's JVM and nsd, which the benchmark does not use
#                            (the dev stack starts them anyway); PostgreSQL, tenantd, the
#                            resolver and the probe are not pinned: they are the path measured (1)
#   AEGIS_PG_PORT, AEGIS_KAFKA_PORT, AEGIS_KAFKA_CONTROLLER_PORT, AEGIS_DNS_PORT: the dev
#   stack's ports (59632, 59692, 59693, 59653); BENCH_PORT_HTTP (tenantd, 59640), BENCH_PORT_DNS,
#   BENCH_PORT_METRICS (the long-polling resolver, 59641/59642), BENCH_PORT_DNS2,
#   BENCH_PORT_METRICS2 (the resolver for load times, 59643/59644).
# Prints the summary at the end and leaves it, with every log, in $BENCH_DIR (summary.md,
# results.json); large data files are removed.
set -euo pipefail

INVOKED_ENV=$(env | grep -E '^(BENCH|AEGIS)_[A-Z0-9_]*=' | sort | tr '\n' ' ' || true)
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
PY=/usr/bin/python3
export PYTHONDONTWRITEBYTECODE=1
RUN_T0=$EPOCHREALTIME

BENCH_DIR=${BENCH_DIR:-/tmp/aegis-bench-tenantd}
BENCH_DIR=${BENCH_DIR%/}
CHANGES=${BENCH_CHANGES:-100}
NAT_CHANGES=${BENCH_NATIONAL_CHANGES:-50}
NAT_BUDGET=${BENCH_NATIONAL_BUDGET:-240}
INTERVAL_MS=${BENCH_INTERVAL_MS:-3}
COMPILE_RUNS=${BENCH_COMPILE_RUNS:-4}
LOAD_RUNS=${BENCH_LOAD_RUNS:-3}
MED_TENANTS=${BENCH_MED_TENANTS:-200}
MED_NETWORKS=${BENCH_MED_NETWORKS:-1000}
MED_FEED=${BENCH_MED_FEED:-100000}
NAT_TENANTS=${BENCH_NAT_TENANTS:-10000}
NAT_NETWORKS=${BENCH_NAT_NETWORKS:-50000}
NAT_FEED=${BENCH_NAT_FEED:-2000000}
FEED_LINES=${BENCH_FEED_LINES:-1000000}
FEED_INVALID=${BENCH_FEED_INVALID:-0.10}
STACK_CPU=${BENCH_STACK_CPU:-1}

export AEGIS_PG_PORT=${AEGIS_PG_PORT:-59632}
export AEGIS_KAFKA_PORT=${AEGIS_KAFKA_PORT:-59692}
export AEGIS_KAFKA_CONTROLLER_PORT=${AEGIS_KAFKA_CONTROLLER_PORT:-59693}
export AEGIS_DNS_PORT=${AEGIS_DNS_PORT:-59653}
export AEGIS_STACK_DIR=$BENCH_DIR/stack
PORT_HTTP=${BENCH_PORT_HTTP:-59640}
PORT_DNS=${BENCH_PORT_DNS:-59641}
PORT_METRICS=${BENCH_PORT_METRICS:-59642}
PORT_DNS2=${BENCH_PORT_DNS2:-59643}
PORT_METRICS2=${BENCH_PORT_METRICS2:-59644}

RESULTS=$BENCH_DIR/results.json
MARK=$BENCH_DIR/.aegis-bench-tenantd

say() { printf '[bench %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { say "error: $*"; exit 1; }

for tool in psql curl ss taskset make sha256sum gzip zstd dd top; do
  command -v "$tool" >/dev/null || die "$tool is missing"
done
[ -x "$PY" ] || die "$PY is missing"
"$PY" -c 'import psycopg2' 2>/dev/null || die "$PY lacks psycopg2 (apt-get install python3-psycopg2)"
if ! /usr/bin/time -v true >/dev/null 2>&1; then
  say "installing GNU time (Debian package 'time') for /usr/bin/time -v"
  apt-get install -y time >/dev/null 2>&1 || die "/usr/bin/time is missing (apt-get install -y time)"
fi

port_busy() { # port: anything listening on it, UDP or TCP?
  [ -n "$(ss -Hlnu "sport = :$1" 2>/dev/null)$(ss -Hlnt "sport = :$1" 2>/dev/null)" ]
}
for p in "$PORT_HTTP" "$PORT_DNS" "$PORT_METRICS" "$PORT_DNS2" "$PORT_METRICS2"; do
  port_busy "$p" && die "port $p is in use (pick others with BENCH_PORT_*)"
done

# --- processes we start, stopped on exit --------------------------------------------------------

declare -A PID=()
STACK_UP=0

stop_pid() { # pid
  local pid=$1 i
  kill -TERM "$pid" 2>/dev/null || return 0
  for i in $(seq 100); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  kill -KILL "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
}

stop() { # name
  [ -n "${PID[$1]:-}" ] || return 0
  stop_pid "${PID[$1]}"
  unset "PID[$1]"
}

cleanup() {
  local rc=$? name
  trap - EXIT INT TERM
  for name in "${!PID[@]}"; do
    say "stopping $name (pid ${PID[$name]})"
    stop_pid "${PID[$name]}"
  done
  if [ "$STACK_UP" -eq 1 ]; then
    "$root/scripts/devstack.sh" down >/dev/null 2>&1 || say "warning: devstack.sh down failed"
  fi
  # Hundreds of MB of generated data and one snapshot file per compile: keep only the logs,
  # results and the small files.
  rm -rf "$BENCH_DIR"/*/data "$BENCH_DIR"/*/snap "$BENCH_DIR"/*/node/policy.snap* \
         "$BENCH_DIR"/static "$BENCH_DIR"/pieces "$BENCH_DIR"/feed/*.txt 2>/dev/null || true
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

now() { echo "$EPOCHREALTIME"; }
since() { awk -v a="$1" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.3f", b - a }'; }
rset() { "$PY" "$here/report.py" set "$RESULTS" "$1" "$2"; }
pgtime() { # key db since per: PostgreSQL's statement time since then, per run or change
  local out
  out=$("$PY" "$here/pglog.py" "$AEGIS_STACK_DIR/pg/postgres.log" --db "$2" --since "$3" \
          --until "$EPOCHREALTIME" --per "$4") || { say "warning: pglog.py failed"; return 0; }
  rset "$1" "$out"
}

# Machine load per phase: the load average at its start, how busy both CPUs were during it, and
# how much of that was this benchmark (this script's process tree and the dev stack's daemons,
# bench/tenantd/cputicks.py); the rest is the other workloads on the machine.
PHASE=
PHASE_LOAD=
PHASE_TICKS=
PHASE_OURS=
cpu_ticks_all() { awk '$1 == "cpu" { b = $2 + $3 + $4 + $7 + $8 + $9; print b, b + $5 + $6 }' /proc/stat; }
stack_pids() {
  local f
  for f in "$AEGIS_STACK_DIR/pg/data/postmaster.pid" "$AEGIS_STACK_DIR/kafka/kafka.pid" \
           "$AEGIS_STACK_DIR/nsd/nsd.pid"; do
    [ -s "$f" ] && head -n1 "$f" | tr -dc '0-9\n'
  done
  return 0
}
our_ticks() { "$PY" "$here/cputicks.py" $$ $(stack_pids); }
phase_end() {
  [ -n "$PHASE" ] || return 0
  local b0 t0 b1 t1 o1 load
  read -r b0 t0 <<< "$PHASE_TICKS"
  read -r b1 t1 < <(cpu_ticks_all)
  o1=$(our_ticks)
  load=$(awk -v b="$((b1 - b0))" -v t="$((t1 - t0))" -v o="$((o1 - PHASE_OURS))" -v n="$(nproc)" \
    'BEGIN { if (t <= 0) t = 1; all = 100 * n * b / t; ours = 100 * n * o / t; if (ours > all) ours = all;
             printf "%.0f%% (this benchmark %.0f%%, others %.0f%%)", all, ours, all - ours }')
  "$PY" "$here/report.py" set "$RESULTS" 'meta.noise[]' \
    "{\"phase\": \"$PHASE\", \"loadavg\": \"$PHASE_LOAD\", \"busy\": \"$load\"}"
  say "phase '$PHASE' done; CPU busy $load of $(nproc)00%; load average at its start $PHASE_LOAD"
  PHASE=
}
phase() { # name: ends the previous phase, starts this one
  phase_end
  PHASE=$1
  PHASE_LOAD=$(cut -d' ' -f1-3 /proc/loadavg)
  PHASE_OURS=$(our_ticks)
  PHASE_TICKS=$(cpu_ticks_all)
  say "=== $1 (load average $PHASE_LOAD)"
}
top_sample() { # label
  local t
  t=$(top -b -n 2 -d 1 -w 160 2>/dev/null | awk '/^top -/ { n++ } n == 2' | sed -n '7,15p' || true)
  "$PY" - "$RESULTS" "$1" "$t" <<'EOF'
import json, sys
path, label, text = sys.argv[1:4]
r = json.load(open(path))
r.setdefault("meta", {}).setdefault("top", []).append({"label": label, "text": text})
json.dump(r, open(path, "w"), indent=1)
EOF
}

# --- build, folder, dev stack -------------------------------------------------------------------

if [ -e "$BENCH_DIR" ]; then
  [ -f "$MARK" ] || die "$BENCH_DIR exists and is not this benchmark's folder"
  if [ -f "$BENCH_DIR/stack/devstack.conf" ]; then
    "$root/scripts/devstack.sh" down >/dev/null 2>&1 || true
  fi
  rm -rf "$BENCH_DIR"
fi
mkdir -p "$BENCH_DIR/bin"
chmod 0755 "$BENCH_DIR"
touch "$MARK"
echo '{}' > "$RESULTS"
rset meta.date "$(date -u '+%Y-%m-%d %H:%M UTC')"
rset meta.machine "$(nproc) CPUs ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //')$(grep -qw hypervisor /proc/cpuinfo && echo ', a VM')), $(awk '/MemTotal/ { printf "%.0f GiB RAM", $2 / 1048576 }' /proc/meminfo), Linux $(uname -r), $(. /etc/os-release && echo "$PRETTY_NAME"), PostgreSQL $(psql --version | awk '{ print $3 }'), bench folder on $(df -T "$BENCH_DIR" | awk 'NR == 2 { print $2 " (" $1 ")" }')"
rset meta.command "${INVOKED_ENV}bash bench/tenantd/run.sh"
top_sample "at the start"

phase "build and dev stack"
say "building (make)"
make -C "$root" -s >/dev/null
# Others rebuild build/bin while this runs: measure private copies of what was just built.
cp "$root/build/bin/aegis-resolver" "$root/build/bin/aegis-tenantd" "$BENCH_DIR/bin/"
RESOLVER=$BENCH_DIR/bin/aegis-resolver
TENANTD=$BENCH_DIR/bin/aegis-tenantd
head_commit=$(git -C "$root" rev-parse --short HEAD 2>/dev/null || echo '?')
changed=$( { git -C "$root" status --porcelain -- resolver common tenantd migrations 2>/dev/null || true; } | wc -l)
rset meta.version "commit $head_commit + $changed changed files in resolver/ common/ tenantd/ migrations/; aegis-tenantd sha256 $(sha256sum "$TENANTD" | cut -c1-12), aegis-resolver sha256 $(sha256sum "$RESOLVER" | cut -c1-12)"

say "starting the dev stack in $AEGIS_STACK_DIR (PostgreSQL on 127.0.0.1:$AEGIS_PG_PORT)"
STACK_UP=1
"$root/scripts/devstack.sh" up > "$BENCH_DIR/devstack.log" 2>&1 ||
  { cat "$BENCH_DIR/devstack.log" >&2; die "devstack.sh up failed"; }
# shellcheck disable=SC1091
. "$AEGIS_STACK_DIR/env"
# Kafka's JVM and nsd are not on the measured path: keep them on one CPU. Best effort.
for pf in "$AEGIS_STACK_DIR/kafka/kafka.pid" "$AEGIS_STACK_DIR/nsd/nsd.pid"; do
  p=$(head -n1 "$pf" 2>/dev/null | tr -dc 0-9) || true
  [ -n "$p" ] || continue
  for q in "$p" $(cat "/proc/$p/task/"*/children 2>/dev/null); do
    taskset -a -cp "$STACK_CPU" "$q" >/dev/null 2>&1 || true
  done
done
PGQ=(psql -X -q -v ON_ERROR_STOP=1)

dsn_of() { echo "host=127.0.0.1 port=$AEGIS_PG_PORT dbname=$1 user=aegis password=aegis"; }

new_database() { # name dir [http port] -> writes dir/tenantd.conf, migrates
  local db=$1 dir=$2 http=${3:-$PORT_HTTP}
  mkdir -p "$dir/snap"
  "${PGQ[@]}" "$AEGIS_PG_ADMIN_DSN" -c "CREATE DATABASE $db OWNER aegis" ||
    die "cannot create database $db"
  # Every statement's duration goes to PostgreSQL's log (pglog.py sums them per phase); never
  # the parameters: one of them is the snapshot image.
  "${PGQ[@]}" "$AEGIS_PG_ADMIN_DSN" -c "ALTER DATABASE $db SET log_min_duration_statement = 0" \
    -c "ALTER DATABASE $db SET log_parameter_max_length = 0" || die "cannot set logging on $db"
  cat > "$dir/tenantd.conf" <<EOF
database: { dsn = "$(dsn_of "$db")"; };
migrations: { dir = "$root/migrations"; };
snapshot: { dir = "$dir/snap"; };
http: { listen = "127.0.0.1:$http"; };
EOF
  "$TENANTD" -c "$dir/tenantd.conf" migrate 2>"$dir/migrate.log" || { cat "$dir/migrate.log" >&2; die "migrate $db failed"; }
}

seed() { # db dir tenants networks feed-names [seed.py options...]
  local db=$1 dir=$2
  shift 2
  say "seeding $db: $1 tenants, $2 networks, $3 feed names"
  "$PY" "$here/seed.py" "$(dsn_of "$db")" "$dir/data" --tenants "$1" --networks "$2" \
    --feed-names "$3" "${@:4}" > "$dir/seed.json" || die "seeding $db failed"
  say "seeded: $(tail -n1 "$dir/seed.json" | cut -c1-400)"
}

start_tenantd() { # name dir: the service, until /healthz reports a snapshot version
  local name=$1 dir=$2 i
  "$TENANTD" -c "$dir/tenantd.conf" </dev/null 2>"$dir/tenantd.log" &
  PID[$name]=$!
  for i in $(seq 1200); do
    if curl -s --max-time 1 "http://127.0.0.1:$PORT_HTTP/healthz" 2>/dev/null |
         grep -q '"snapshot_version":[1-9]'; then
      say "$name (pid ${PID[$name]}) serves $(curl -s "http://127.0.0.1:$PORT_HTTP/healthz")"
      return 0
    fi
    kill -0 "${PID[$name]}" 2>/dev/null || { tail -n 20 "$dir/tenantd.log" >&2; die "$name exited"; }
    sleep 0.1
  done
  tail -n 20 "$dir/tenantd.log" >&2
  die "$name published no snapshot within 120 s"
}

start_node() { # name dir meta.json: aegis-resolver long-polling tenantd, until it blocks the probe
  local name=$1 dir=$2 meta=$3 t0 took probe src
  mkdir -p "$dir/node"
  "$TENANTD" -c "$dir/tenantd.conf" node-add "$name" > "$dir/node/token" 2>"$dir/node/node-add.log" ||
    die "node-add $name failed"
  chmod 0600 "$dir/node/token"
  cat > "$dir/node/resolver.conf" <<EOF
node: { name = "$name"; };
server: { listen = ["127.0.0.1:$PORT_DNS"]; workers = 1; };
upstream: { servers = ["127.0.0.1:$AEGIS_DNS_PORT"]; timeout_ms = 1000; attempts = 2; };
policy: { snapshot = "$dir/node/policy.snap"; url = "http://127.0.0.1:$PORT_HTTP";
          token_file = "$dir/node/token"; forward_special_zones = ["test."]; };
metrics: { listen = "127.0.0.1:$PORT_METRICS"; };
ratelimit: { exempt = ["127.0.0.0/8=0"]; };
EOF
  probe=$("$PY" -c 'import json,sys; print(json.load(open(sys.argv[1]))["probe_name"])' "$meta")
  src=$("$PY" -c 'import json,sys; print(json.load(open(sys.argv[1]))["probe_source"])' "$meta")
  t0=$(now)
  "$RESOLVER" -c "$dir/node/resolver.conf" </dev/null 2>"$dir/node/resolver.log" &
  PID[$name]=$!
  took=$("$PY" "$here/dnsprobe.py" wait "$probe" --port "$PORT_DNS" --source "$src" \
           --rcode NXDOMAIN --t0 "$t0" --timeout 120 --pid "${PID[$name]}") ||
    { tail -n 20 "$dir/node/resolver.log" >&2; die "$name never blocked $probe"; }
  say "$name (pid ${PID[$name]}) fetched the policy and blocks $probe after $took s"
}

rss_of() { # pid -> "VmRSS x MiB (peak y MiB)"
  awk '/^VmRSS/ { r = $2 } /^VmHWM/ { h = $2 } END { printf "%.0f MiB (peak %.0f MiB)", r / 1024, h / 1024 }' "/proc/$1/status"
}

run_changes() { # label dir count budget prefix
  local label=$1 dir=$2
  say "$label: $3 changes (INSERT INTO list_entries, autocommit), probing every $INTERVAL_MS ms"
  local rc=0
  "$PY" "$here/changes.py" --dsn "$(dsn_of "bench_$label")" --meta "$dir/data/meta.json" \
    --port "$PORT_DNS" --metrics-port "$PORT_METRICS" --count "$3" --budget "$4" --prefix "$5" \
    --interval "$(awk -v m="$INTERVAL_MS" 'BEGIN { print m / 1000 }')" \
    --out "$dir/changes.jsonl" --tenantd-log "$dir/tenantd.log" \
    --resolver-log "$dir/node/resolver.log" > "$dir/changes.json" || rc=$?
  [ -s "$dir/changes.json" ] || die "changes.py ($label) failed"
  "$PY" "$here/report.py" file "$RESULTS" "$label.changes" "$dir/changes.json"
  say "$label: $(cut -c1-300 "$dir/changes.json")"
  [ "$rc" -eq 0 ] || say "warning: changes.py ($label) exited $rc (changes not enforced in time?)"
}

# --- 1. change -> enforced, medium policy ----------------------------------------------------------

phase "medium policy: change -> enforced"
MED=$BENCH_DIR/medium
new_database bench_medium "$MED"
seed bench_medium "$MED" "$MED_TENANTS" "$MED_NETWORKS" "$MED_FEED" --deny 10 --allow 5 \
  --national-block 500 --national-allow 100
"$PY" "$here/report.py" meta "$RESULTS" medium "$MED/data/meta.json"
start_tenantd tenantd-medium "$MED"
start_node node-medium "$MED" "$MED/data/meta.json"
t_changes=$(now)
run_changes medium "$MED" "$CHANGES" 0 m
pgtime pg.medium_changes bench_medium "$t_changes" "$("$PY" "$here/report.py" get "$RESULTS" medium.changes.changes)"
rset medium.rss "tenantd $(rss_of "${PID[tenantd-medium]}"), aegis-resolver $(rss_of "${PID[node-medium]}")"
stop node-medium
stop tenantd-medium
rset medium.overlay_bytes "$(stat -c %s "$(ls -t "$MED"/snap/policy-*.snap | head -n1)")"
rset medium.base_bytes "$(stat -c %s "$(ls -t "$MED"/snap/base-*.snap | head -n1)")"
"${PGQ[@]}" "$AEGIS_PG_ADMIN_DSN" -c "DROP DATABASE bench_medium" || true

# --- 2. compile at national scale ------------------------------------------------------------------

phase "national policy: seeding"
NAT=$BENCH_DIR/national
new_database bench_national "$NAT"
seed bench_national "$NAT" "$NAT_TENANTS" "$NAT_NETWORKS" "$NAT_FEED" --deny 3 --allow 2 \
  --national-block 2000 --national-allow 500
"$PY" "$here/report.py" meta "$RESULTS" national "$NAT/data/meta.json"

phase "national policy: compile and peers"
snaps=()
t_compiles=$(now)
for i in $(seq "$COMPILE_RUNS"); do
  t0=$(now)
  /usr/bin/time -v -o "$NAT/time-compile-$i.txt" "$TENANTD" -c "$NAT/tenantd.conf" compile \
    > "$NAT/compile-$i.out" 2> "$NAT/compile-$i.log" ||
    { cat "$NAT/compile-$i.log" >&2; die "compile $i failed"; }
  wall=$(since "$t0")
  snap=$(tail -n1 "$NAT/compile-$i.out")
  snaps+=("$snap")
  cms=$(sed -n 's/.*event=snapshot_published .* ms=\([0-9]*\).*/\1/p' "$NAT/compile-$i.log" | tail -n1)
  "$PY" "$here/report.py" timev "$RESULTS" 'national.compile[]' "$NAT/time-compile-$i.txt" "$wall" \
    "{\"compile_ms\": ${cms:-null}, \"bytes\": $(stat -c %s "$snap")}"
  say "compile $i: $wall s wall, compile_snapshot $cms ms, $(awk -F': ' '/Maximum resident/ { printf "%.0f MiB peak", $2 / 1024 }' "$NAT/time-compile-$i.txt"), $(stat -c %s "$snap") bytes"
done
pgtime pg.compile bench_national "$t_compiles" "$COMPILE_RUNS"
SNAP=${snaps[-1]}
rset national.snapshot_bytes "$(stat -c %s "$SNAP")"

for i in $(seq "$COMPILE_RUNS"); do
  t0=$(now)
  "${PGQ[@]}" "$(dsn_of bench_national)" -c "\\copy (SELECT f.category, e.name, e.action FROM feed_entries e JOIN feeds f ON f.id = e.feed_id WHERE f.enabled) TO /dev/null" ||
    die "psql stream failed"
  wall=$(since "$t0")
  rset 'national.pg_stream[]' "$wall"
  say "psql streaming the feed query to /dev/null $i: $wall s"
done

for i in $(seq "$COMPILE_RUNS"); do
  t0=$(now)
  /usr/bin/time -v -o "$NAT/time-json-$i.txt" "$TENANTD" compile-json "$NAT/data/policy.json" \
    "$NAT/json.snap" "$i" 2> "$NAT/compile-json-$i.log" ||
    { cat "$NAT/compile-json-$i.log" >&2; die "compile-json failed"; }
  wall=$(since "$t0")
  "$PY" "$here/report.py" timev "$RESULTS" 'national.compile_json[]' "$NAT/time-json-$i.txt" "$wall"
  say "compile-json $i: $wall s wall, $(awk -F': ' '/Maximum resident/ { printf "%.0f MiB peak", $2 / 1024 }' "$NAT/time-json-$i.txt")"
done
rset national.json_snapshot_bytes "$(stat -c %s "$NAT/json.snap")"
rm -f "$NAT/json.snap"

# The distribution path's pieces, alone, on this snapshot.
PIECES=$BENCH_DIR/pieces
mkdir -p "$PIECES"
t0=$(now); zstd -q --fast=1 -c "$SNAP" > "$PIECES/snap.zst"; rset national.pieces.zstd_s "$(since "$t0")"
rset national.pieces.zstd_bytes "$(stat -c %s "$PIECES/snap.zst")"
t0=$(now); zstd -q -dc "$PIECES/snap.zst" > /dev/null; rset national.pieces.unzstd_s "$(since "$t0")"
t0=$(now); gzip -1 -c "$SNAP" > "$PIECES/snap.gz"; rset national.pieces.gzip_s "$(since "$t0")"
rset national.pieces.gzip_bytes "$(stat -c %s "$PIECES/snap.gz")"
t0=$(now); gzip -dc "$PIECES/snap.gz" > /dev/null; rset national.pieces.gunzip_s "$(since "$t0")"
t0=$(now); sha256sum "$SNAP" > /dev/null; rset national.pieces.sha256_s "$(since "$t0")"
t0=$(now); dd if="$SNAP" of="$PIECES/fsync-test" bs=1M conv=fsync status=none
rset national.pieces.fsync_write_s "$(since "$t0")"
rm -rf "$PIECES"

# The resolver's load time: start -> the probe name answers NXDOMAIN. Warm: the file was just
# written, so it is in the page cache; cold: its pages are evicted first (fsync, then
# POSIX_FADV_DONTNEED on that one file; nothing else on the machine is touched).
phase "national policy: resolver load and reload"
STATIC=$BENCH_DIR/static
mkdir -p "$STATIC"
cat > "$STATIC/resolver.conf" <<EOF
node: { name = "bench-static"; };
server: { listen = ["127.0.0.1:$PORT_DNS2"]; workers = 1; };
upstream: { servers = ["127.0.0.1:$AEGIS_DNS_PORT"]; timeout_ms = 1000; attempts = 2; };
policy: { snapshot = "$STATIC/policy.snap"; forward_special_zones = ["test."]; };
metrics: { listen = "127.0.0.1:$PORT_METRICS2"; };
ratelimit: { exempt = ["127.0.0.0/8=0"]; };
EOF
PROBE=$("$PY" -c 'import json,sys; print(json.load(open(sys.argv[1]))["probe_name"])' "$NAT/data/meta.json")
PROBE_SRC=$("$PY" -c 'import json,sys; print(json.load(open(sys.argv[1]))["probe_source"])' "$NAT/data/meta.json")
evict() { "$PY" -c 'import os,sys; fd = os.open(sys.argv[1], os.O_RDONLY); os.fsync(fd); os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)' "$1"; }
load_once() { # kind
  cp "$SNAP" "$STATIC/policy.snap"
  if [ "$1" = cold ]; then evict "$STATIC/policy.snap"; fi
  local t0 took
  t0=$(now)
  "$RESOLVER" -c "$STATIC/resolver.conf" </dev/null 2>>"$STATIC/resolver.log" &
  PID[static]=$!
  took=$("$PY" "$here/dnsprobe.py" wait "$PROBE" --port "$PORT_DNS2" --source "$PROBE_SRC" \
           --rcode NXDOMAIN --t0 "$t0" --timeout 60 --pid "${PID[static]}") ||
    { tail -n 20 "$STATIC/resolver.log" >&2; die "the resolver did not block $PROBE"; }
  rset "national.resolver_load_$1[]" "$took"
  say "resolver start ($1 file) -> $PROBE NXDOMAIN after $took s"
}
for i in $(seq "$LOAD_RUNS"); do
  for kind in warm cold; do
    load_once "$kind"
    stop static
  done
done
# Reload: the resolver runs the first compile's version; each later version is renamed over
# its file and SIGHUP sent; the time is until /metrics reports the new serial.
cp "${snaps[0]}" "$STATIC/policy.snap"
"$RESOLVER" -c "$STATIC/resolver.conf" </dev/null 2>>"$STATIC/resolver.log" &
PID[static]=$!
"$PY" "$here/dnsprobe.py" wait "$PROBE" --port "$PORT_DNS2" --source "$PROBE_SRC" --rcode NXDOMAIN \
  --t0 "$(now)" --timeout 60 --pid "${PID[static]}" >/dev/null || die "the resolver did not start"
for snap in "${snaps[@]:1}"; do
  cur=$("$PY" "$here/dnsprobe.py" serial --metrics-port "$PORT_METRICS2")
  cp "$snap" "$STATIC/next.snap"
  t0=$(now)
  mv "$STATIC/next.snap" "$STATIC/policy.snap"
  kill -HUP "${PID[static]}"
  r=$("$PY" "$here/dnsprobe.py" serial --metrics-port "$PORT_METRICS2" --differs-from "$cur" \
        --t0 "$t0" --timeout 30) || die "no reload within 30 s"
  rset 'national.resolver_sighup[]' "${r#* }"
  say "rename + SIGHUP: serial $cur -> ${r% *} after ${r#* } s"
done
rset national.resolver_rss "$(rss_of "${PID[static]}") with one worker"
stop static

# --- 1 again: change -> enforced against the national policy ------------------------------------

phase "national policy: change -> enforced"
start_tenantd tenantd-national "$NAT"
start_node node-national "$NAT" "$NAT/data/meta.json"
top_sample "during the national changes"
t_changes=$(now)
run_changes national "$NAT" "$NAT_CHANGES" "$NAT_BUDGET" n
pgtime pg.national_changes bench_national "$t_changes" "$("$PY" "$here/report.py" get "$RESULTS" national.changes.changes)"
rset national.rss "tenantd $(rss_of "${PID[tenantd-national]}"), aegis-resolver $(rss_of "${PID[node-national]}")"
stop node-national
stop tenantd-national
rset national.overlay_bytes "$(stat -c %s "$(ls -t "$NAT"/snap/policy-*.snap | head -n1)")"
rset national.base_bytes "$(stat -c %s "$(ls -t "$NAT"/snap/base-*.snap | head -n1)")"
rset national.snapshot_dir_after "$(find "$NAT/snap" -name 'policy-*.snap' | wc -l) files policy-N.snap and $(find "$NAT/snap" -name 'base-*.snap' | wc -l) base-N.snap, $(du -sm "$NAT/snap" | cut -f1) MB (tenantd keeps the last five versions and the base in use)"
"${PGQ[@]}" "$AEGIS_PG_ADMIN_DSN" -c "DROP DATABASE bench_national" || true

# --- 3. a feed with 10% garbage ----------------------------------------------------------------

phase "feed with garbage: feed-refresh"
FEED=$BENCH_DIR/feed
new_database bench_feed "$FEED"
gen=$("$PY" "$here/garbage_feed.py" "$FEED/garbage.txt" --lines "$FEED_LINES" \
        --invalid-share "$FEED_INVALID" --valid-out "$FEED/valid.txt")
say "feed file: $gen"
rset feed.lines "$FEED_LINES"
rset feed.file_bytes "$(stat -c %s "$FEED/garbage.txt")"
rset feed.expected_valid "$("$PY" -c 'import json,sys; print(json.loads(sys.argv[1])["valid"])' "$gen")"
rset feed.expected_invalid "$("$PY" -c 'import json,sys; print(json.loads(sys.argv[1])["invalid"])' "$gen")"
"${PGQ[@]}" "$(dsn_of bench_feed)" -c "INSERT INTO feeds (name, category, format, source) VALUES ('bench-garbage', 'malware', 'plain', '$FEED/garbage.txt')"
t0=$(now)
/usr/bin/time -v -o "$FEED/time-refresh.txt" "$TENANTD" -c "$FEED/tenantd.conf" feed-refresh bench-garbage \
  2> "$FEED/feed-refresh.log" || say "warning: feed-refresh exited non-zero (see $FEED/feed-refresh.log)"
wall=$(since "$t0")
"$PY" "$here/report.py" timev "$RESULTS" feed.refresh "$FEED/time-refresh.txt" "$wall"
pgtime pg.feed_refresh bench_feed "$t0" 1
row=$(psql -X -At "$(dsn_of bench_feed)" -c "SELECT json_build_object('outcome', outcome, 'entries_total', entries_total, 'entries_added', entries_added, 'entries_removed', entries_removed, 'lines_invalid', lines_invalid, 'bytes_fetched', bytes_fetched, 'duration', duration::text, 'error', error, 'details', details) FROM feed_refreshes r JOIN feeds f ON f.id = r.feed_id WHERE f.name = 'bench-garbage' ORDER BY r.id DESC LIMIT 1")
rset feed.refresh_row "$row"
rset feed.entries_in_db "$(psql -X -At "$(dsn_of bench_feed)" -c "SELECT count(*) FROM feed_entries e JOIN feeds f ON f.id = e.feed_id WHERE f.name = 'bench-garbage'")"
rset feed.status "$(psql -X -At "$(dsn_of bench_feed)" -c "SELECT status || CASE WHEN status_reason <> '' THEN ' (' || status_reason || ')' ELSE '' END FROM feeds WHERE name = 'bench-garbage'")"
say "feed-refresh: $wall s; feed_refreshes: $row"
"${PGQ[@]}" "$(dsn_of bench_feed)" -c "CREATE TABLE bench_copy_peer (name dns_name PRIMARY KEY)"
t0=$(now)
"${PGQ[@]}" "$(dsn_of bench_feed)" -c "\\copy bench_copy_peer FROM '$FEED/valid.txt'"
rset feed.copy_peer_s "$(since "$t0")"
say "peer: COPY of the valid names into (name dns_name PRIMARY KEY): $("$PY" "$here/report.py" get "$RESULTS" feed.copy_peer_s) s"
phase_end
top_sample "at the end"

# --- summary ------------------------------------------------------------------------------------

rset meta.run_seconds "$(since "$RUN_T0")"
"$PY" "$here/report.py" summary "$RESULTS" > "$BENCH_DIR/summary.md"
echo
cat "$BENCH_DIR/summary.md"
