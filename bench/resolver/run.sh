#!/usr/bin/env bash
# run.sh -- the resolver benchmark of issue 3 item 12: dnsperf against aegis-resolver and, in
# the same run and the same way, Unbound (1M local-zones; optionally 1M-name RPZ) and a bare
# recvmmsg/sendmmsg responder (the kernel's floor). Each server runs pinned to CPU 0 with one
# worker thread, dnsperf runs on CPU 1, everything on loopback.
#
# Usage: bash bench/resolver/run.sh
# Knobs (environment):
#   BENCH_DIR        working folder, wiped at start          (/tmp/aegis-bench-resolver)
#   BENCH_DURATION   seconds per saturating dnsperf run      (20)
#   BENCH_ROUNDS     saturating + fixed-rate runs per server  (2, interleaved across servers)
#   BENCH_LAT_QPS    the fixed rate for latency              (20000)
#   BENCH_LAT_DURATION seconds per fixed-rate run            (10)
#   BENCH_CLIENTS / BENCH_OUTSTANDING   dnsperf -c / -q      (4 / 150: a default-sized
#                    socket buffer holds ~190 queries, so dnsperf's opening burst of -q
#                    queries must fit, or the excess is lost at the server's socket)
#   BENCH_BLOCKED / BENCH_TENANTS / BENCH_NETWORKS / BENCH_ALLOWED  (1000000/10000/50000/1000)
#   BENCH_FLOOR      1 to also run the bare responder at each server's own rate   (1)
#   BENCH_RPZ        1 to also measure Unbound with the names as an RPZ zone   (1)
#   BENCH_SWAP       1 to measure the snapshot swap under load                 (1)
#   BENCH_SWAP_SIGNAL 1: the swap is a rename plus SIGHUP; 0: a rename only, which the
#                    resolver's file watcher (250 ms poll) picks up           (1)
#   BENCH_SPLIT      1: the policy as tenantd sends it, a feed base beside an overlay
#                    (compile-json --split); 0: one self-contained file          (0)
#   BENCH_PROFILE    1 to run aegis-resolver under callgrind afterwards        (0)
#   BENCH_SERVER_CPU / BENCH_LOAD_CPU   CPUs for the servers / dnsperf        (0 / 1)
#   AEGIS_PG_PORT, AEGIS_KAFKA_PORT, AEGIS_KAFKA_CONTROLLER_PORT, AEGIS_DNS_PORT: the dev
#   stack's ports (58732, 58792, 58793, 58753); BENCH_PORT_AEGIS, _METRICS, _UNBOUND,
#   _UNBOUND_RPZ, _BARE: the servers' (58740, 58741, 58742, 58743, 58744).
# Prints the summary table at the end and leaves it, with every log, in $BENCH_DIR.
set -euo pipefail

# The knobs as the caller set them, for the report.
INVOKED_ENV=$(env | grep -E '^(BENCH|AEGIS)_[A-Z_]*=' | sort | tr '\n' ' ' || true)
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
PY=/usr/bin/python3

BENCH_DIR=${BENCH_DIR:-/tmp/aegis-bench-resolver}
BENCH_DIR=${BENCH_DIR%/}
DURATION=${BENCH_DURATION:-20}
ROUNDS=${BENCH_ROUNDS:-2}
LAT_QPS=${BENCH_LAT_QPS:-20000}
LAT_DURATION=${BENCH_LAT_DURATION:-10}
CLIENTS=${BENCH_CLIENTS:-4}
OUTSTANDING=${BENCH_OUTSTANDING:-150}
BLOCKED=${BENCH_BLOCKED:-1000000}
TENANTS=${BENCH_TENANTS:-10000}
NETWORKS=${BENCH_NETWORKS:-50000}
ALLOWED=${BENCH_ALLOWED:-1000}
DO_RPZ=${BENCH_RPZ:-1}
DO_FLOOR=${BENCH_FLOOR:-1}
DO_SWAP=${BENCH_SWAP:-1}
SWAP_SIGNAL=${BENCH_SWAP_SIGNAL:-1}
DO_PROFILE=${BENCH_PROFILE:-0}
SPLIT=${BENCH_SPLIT:-0}
SERVER_CPU=${BENCH_SERVER_CPU:-0}
LOAD_CPU=${BENCH_LOAD_CPU:-1}
WARM_SECONDS=3
SOURCE=127.0.0.1      # dnsperf's address: tenant 0's 127.0.0.0/24, exempt from rate limiting
PROBE_SOURCE=127.0.1.9 # the swap poller: tenant 1, a separate client, rate limited as usual

export AEGIS_PG_PORT=${AEGIS_PG_PORT:-58732}
export AEGIS_KAFKA_PORT=${AEGIS_KAFKA_PORT:-58792}
export AEGIS_KAFKA_CONTROLLER_PORT=${AEGIS_KAFKA_CONTROLLER_PORT:-58793}
export AEGIS_DNS_PORT=${AEGIS_DNS_PORT:-58753}
export AEGIS_STACK_DIR=$BENCH_DIR/stack
PORT_AEGIS=${BENCH_PORT_AEGIS:-58740}
PORT_METRICS=${BENCH_PORT_METRICS:-58741}
PORT_UNBOUND=${BENCH_PORT_UNBOUND:-58742}
PORT_UNBOUND_RPZ=${BENCH_PORT_UNBOUND_RPZ:-58743}
PORT_BARE=${BENCH_PORT_BARE:-58744}

DATA=$BENCH_DIR/data
RESULTS=$BENCH_DIR/results.jsonl
MARK=$BENCH_DIR/.aegis-bench-resolver

say() { printf '[bench %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { say "error: $*"; exit 1; }

for tool in dnsperf unbound taskset cc make curl ss; do
  command -v "$tool" >/dev/null || die "$tool is missing"
done
[ -x "$PY" ] || die "$PY is missing"
[ "$(nproc)" -ge 2 ] || die "needs two CPUs (server on $SERVER_CPU, dnsperf on $LOAD_CPU)"

port_busy() { # port: anything listening on it, UDP or TCP?
  [ -n "$(ss -Hlnu "sport = :$1" 2>/dev/null)$(ss -Hlnt "sport = :$1" 2>/dev/null)" ]
}
for p in "$PORT_AEGIS" "$PORT_METRICS" "$PORT_UNBOUND" "$PORT_UNBOUND_RPZ" "$PORT_BARE"; do
  port_busy "$p" && die "port $p is in use (pick others with BENCH_PORT_*)"
done

# --- processes we start, stopped on exit --------------------------------------------------------

declare -A PID=()
STACK_UP=0
DNSPERF_BG=
TIMELINE_BG=

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

cleanup() {
  local rc=$? name
  trap - EXIT INT TERM
  [ -n "$DNSPERF_BG" ] && stop_pid "$DNSPERF_BG"
  [ -n "$TIMELINE_BG" ] && stop_pid "$TIMELINE_BG"
  for name in "${!PID[@]}"; do
    say "stopping $name (pid ${PID[$name]})"
    stop_pid "${PID[$name]}"
  done
  if [ "$STACK_UP" -eq 1 ]; then
    "$root/scripts/devstack.sh" down >/dev/null 2>&1 || say "warning: devstack.sh down failed"
  fi
  # The query log grows by hundreds of MB per run: keep only its tail.
  if [ -f "$BENCH_DIR/aegis/queries.jsonl" ]; then
    tail -n 1000 "$BENCH_DIR/aegis/queries.jsonl" > "$BENCH_DIR/aegis/queries.tail.jsonl" || true
    rm -f "$BENCH_DIR/aegis/queries.jsonl"
  fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

cpu_ticks() { # pid -> utime+stime of the whole process, in clock ticks
  local s
  s=$(<"/proc/$1/stat")
  s=${s##*) }
  # shellcheck disable=SC2086 # split into fields on purpose
  set -- $s
  echo $(( ${12} + ${13} ))
}

mem_mib() { # pid field (VmRSS or VmHWM)
  awk -v f="$2:" '$1 == f { printf "%.1f", $2 / 1024 }' "/proc/$1/status"
}

now() { date +%s.%N; }

cpu_busy_ticks() { # cpu -> "busy total" jiffies of that CPU from /proc/stat
  awk -v c="cpu$1" '$1 == c { b = $2 + $3 + $4 + $7 + $8 + $9; t = b + $5 + $6; print b, t }' /proc/stat
}

sock_drops() { # port -> drops counted on the UDP socket(s) bound to 127.0.0.1:port
  awk -v p="$(printf '0100007F:%04X' "$1")" '$2 == p { d += $NF } END { print d + 0 }' /proc/net/udp
}

metric() { # name (with labels) -> value from aegis-resolver's /metrics, 0 if absent
  curl -s --max-time 5 "http://127.0.0.1:$PORT_METRICS/metrics" |
    awk -v m="$1" '$1 == m { v = $2 } END { print v + 0 }'
}

# --- build and inputs ---------------------------------------------------------------------------

if [ -e "$BENCH_DIR" ]; then
  [ -f "$MARK" ] || die "$BENCH_DIR exists and is not this benchmark's folder"
  if [ -f "$BENCH_DIR/stack/devstack.conf" ]; then
    "$root/scripts/devstack.sh" down >/dev/null 2>&1 || true
  fi
  rm -rf "$BENCH_DIR"
fi
mkdir -p "$BENCH_DIR" "$DATA" "$BENCH_DIR/bin" "$BENCH_DIR/aegis" "$BENCH_DIR/unbound-local" \
         "$BENCH_DIR/unbound-rpz" "$BENCH_DIR/dnsperf"
chmod 0755 "$BENCH_DIR"
touch "$MARK"

say "building (make, and the bare responder with cc -O2)"
make -C "$root" -s >/dev/null
cc -O2 -Wall -Wextra -o "$BENCH_DIR/bin/bare_responder" "$here/bare_responder.c"
# Others rebuild build/bin while this runs: measure private copies of what was just built.
cp "$root/build/bin/aegis-resolver" "$root/build/bin/aegis-tenantd" "$BENCH_DIR/bin/"
RESOLVER=$BENCH_DIR/bin/aegis-resolver
TENANTD=$BENCH_DIR/bin/aegis-tenantd
head_commit=$(git -C "$root" rev-parse --short HEAD 2>/dev/null || echo '?')
changed=$( { git -C "$root" status --porcelain -- resolver common tenantd 2>/dev/null || true; } | wc -l)
VERSION="commit $head_commit + $changed changed files in resolver/ common/ tenantd/,"
VERSION+=" aegis-resolver sha256 $(sha256sum "$RESOLVER" | cut -c1-12)"
say "measuring $VERSION"

say "generating $BLOCKED blocked names, $TENANTS tenants with $NETWORKS networks, queries"
"$PY" "$here/gen.py" "$DATA" --blocked "$BLOCKED" --tenants "$TENANTS" --networks "$NETWORKS" \
  --allowed "$ALLOWED"
# shellcheck disable=SC1091
. "$DATA/meta.txt"

rset() { "$PY" "$here/report.py" set "$RESULTS" --server "$1" "$2" "$3"; }

rset - blocked_names "$GEN_BLOCKED"
rset - tenants "$GEN_TENANTS"
rset - networks "$GEN_NETWORKS"
rset - query_file "$GEN_QUERIES lines, $GEN_QUERIES_BLOCKED blocked"

compile() { # json snap serial -> prints wall seconds and peak RSS
  local t0 t1
  t0=$(now)
  /usr/bin/time -f '%M' -o "$BENCH_DIR/compile.rss" \
    "$TENANTD" compile-json "${split_flag[@]}" "$1" "$2" "$3" 2>>"$BENCH_DIR/compile.log" ||
    die "compile-json $1 failed (see $BENCH_DIR/compile.log)"
  t1=$(now)
  awk -v a="$t0" -v b="$t1" -v k="$(cat "$BENCH_DIR/compile.rss")" \
    'BEGIN { printf "%.3f %.1f\n", b - a, k / 1024 }'
}

split_flag=()
[ "$SPLIT" = 1 ] && split_flag=(--split)
say "compiling the policy snapshots (aegis-tenantd compile-json ${split_flag[*]})"
read -r compile_s compile_mib < <(compile "$DATA/policy.json" "$BENCH_DIR/aegis/policy.snap" 1)
compile "$DATA/policy2.json" "$BENCH_DIR/aegis/policy2.snap" 2 >/dev/null
compile "$DATA/policy.json" "$BENCH_DIR/aegis/policy3.snap" 3 >/dev/null
# Split: the swap renames policy2/3.snap over policy.snap, so their bases wait beside it.
for b in "$BENCH_DIR"/aegis/policy[23].snap.base-*; do
  [ -e "$b" ] && mv "$b" "$BENCH_DIR/aegis/policy.snap.base-${b##*.base-}"
done
snap_files=("$BENCH_DIR/aegis/policy.snap")
# The base an overlay names: its SHA-256 at header offset 208 (docs/snapshot.md).
[ "$SPLIT" = 1 ] && snap_files+=("$BENCH_DIR/aegis/policy.snap.base-$(
  od -An -tx1 -j208 -N32 "$BENCH_DIR/aegis/policy.snap" | tr -d ' \n')")
snap_mib=$(du -cb "${snap_files[@]}" | awk '/total$/ { printf "%.1f", $1 / 1048576 }')
say "snapshot: $snap_mib MiB, compiled in $compile_s s (peak RSS $compile_mib MiB)"
rset aegis compile_s "$compile_s"
rset aegis compile_peak_mib "$compile_mib"
rset aegis snapshot_mib "$snap_mib"

# --- the authoritative upstream -----------------------------------------------------------------

say "starting the dev stack (nsd on 127.0.0.1:$AEGIS_DNS_PORT) in $AEGIS_STACK_DIR"
STACK_UP=1
"$root/scripts/devstack.sh" up > "$BENCH_DIR/devstack.log" 2>&1 ||
  { cat "$BENCH_DIR/devstack.log" >&2; die "devstack.sh up failed"; }
# Keep the stack (Kafka's JVM above all) off the servers' CPU: move its processes, by the
# pids the stack recorded, to dnsperf's CPU. Best effort.
for pf in "$AEGIS_STACK_DIR/kafka/kafka.pid" "$AEGIS_STACK_DIR/nsd/nsd.pid" \
          "$AEGIS_STACK_DIR/pg/data/postmaster.pid"; do
  p=$(head -n1 "$pf" 2>/dev/null | tr -dc 0-9) || true
  [ -n "$p" ] || continue
  for q in "$p" $(cat "/proc/$p/task/"*/children 2>/dev/null); do
    taskset -a -cp "$LOAD_CPU" "$q" >/dev/null 2>&1 || true
  done
done

# --- servers ------------------------------------------------------------------------------------

cat > "$BENCH_DIR/aegis/resolver.conf" <<EOF
node: { name = "bench-node"; };
server: { listen = ["127.0.0.1:$PORT_AEGIS"]; workers = 1; };
upstream: { servers = ["127.0.0.1:$AEGIS_DNS_PORT"]; timeout_ms = 1000; attempts = 2; };
policy: { snapshot = "$BENCH_DIR/aegis/policy.snap"; forward_special_zones = ["test."]; };
querylog: { file = "$BENCH_DIR/aegis/queries.jsonl"; };
metrics: { listen = "127.0.0.1:$PORT_METRICS"; };
ratelimit: { exempt = ["$SOURCE/32=0"]; };
EOF

unbound_conf() { # dir port (rpz|local)
  cat <<EOF
server:
    verbosity: 1
    num-threads: 1
    interface: 127.0.0.1@$2
    port: $2
    do-ip6: no
    username: ""
    chroot: ""
    directory: "$1"
    pidfile: "$1/unbound.pid"
    logfile: "$1/unbound.log"
    use-syslog: no
    access-control: 127.0.0.0/8 allow
    do-not-query-localhost: no
    qname-minimisation: no
    harden-referral-path: no
    harden-algo-downgrade: no
    harden-below-nxdomain: no
    minimal-responses: yes
    local-zone: "test." nodefault
EOF
  if [ "$3" = rpz ]; then
    cat <<EOF
    module-config: "respip iterator"
rpz:
    name: "rpz.bench."
    zonefile: "$DATA/rpz.zone"
    rpz-log: no
EOF
  else
    cat <<EOF
    module-config: "iterator"
    include: "$DATA/unbound-local.conf"
EOF
  fi
  cat <<EOF
remote-control:
    control-enable: no
forward-zone:
    name: "test."
    forward-addr: 127.0.0.1@$AEGIS_DNS_PORT
EOF
}
unbound_conf "$BENCH_DIR/unbound-local" "$PORT_UNBOUND" local > "$BENCH_DIR/unbound-local/unbound.conf"
unbound_conf "$BENCH_DIR/unbound-rpz" "$PORT_UNBOUND_RPZ" rpz > "$BENCH_DIR/unbound-rpz/unbound.conf"

declare -A PORT=([aegis]=$PORT_AEGIS [unbound-local]=$PORT_UNBOUND [unbound-rpz]=$PORT_UNBOUND_RPZ
                 [bare]=$PORT_BARE)
SERVERS=(aegis unbound-local)
[ "$DO_RPZ" = 1 ] && SERVERS+=(unbound-rpz)
SERVERS+=(bare)

start_server() { # name
  local name=$1 t0 load log
  log="$BENCH_DIR/$name.log"
  t0=$(now)
  case $name in
    aegis) taskset -c "$SERVER_CPU" "$RESOLVER" \
             -c "$BENCH_DIR/aegis/resolver.conf" </dev/null >"$log" 2>&1 & ;;
    unbound-*) taskset -c "$SERVER_CPU" unbound -d -c "$BENCH_DIR/$name/unbound.conf" \
                 </dev/null >"$log" 2>&1 & ;;
    bare) taskset -c "$SERVER_CPU" "$BENCH_DIR/bin/bare_responder" 127.0.0.1 "$PORT_BARE" \
            </dev/null >"$log" 2>&1 & ;;
  esac
  PID[$name]=$!
  # Loaded = answers a blocked name with NXDOMAIN (the bare responder: answers at all).
  local want=NXDOMAIN
  [ "$name" = bare ] && want=NOERROR
  if ! load=$(taskset -c "$LOAD_CPU" "$PY" "$here/dnsprobe.py" wait "$GEN_PROBE_BLOCKED" --port "${PORT[$name]}" \
                --rcode "$want" --t0 "$t0" --timeout 300 --pid "${PID[$name]}"); then
    tail -n 20 "$log" >&2 || true
    die "$name did not answer $GEN_PROBE_BLOCKED with $want"
  fi
  kill -0 "${PID[$name]}" 2>/dev/null || die "$name exited (see $log)"
  say "$name (pid ${PID[$name]}) answers the blocked probe after $load s"
  [ "$name" = bare ] || rset "$name" load_s "$load"
}

# Around a dnsperf run: the server's CPU ticks, both CPUs' busy time (what else ran there is
# noise), drops on the server's socket, and for aegis the query-log counters.
probe_before() { # name
  P_C0=$(cpu_ticks "${PID[$1]}"); P_W0=$(now)
  read -r P_S0 P_S0T < <(cpu_busy_ticks "$SERVER_CPU")
  read -r P_L0 P_L0T < <(cpu_busy_ticks "$LOAD_CPU")
  P_D0=$(sock_drops "${PORT[$1]}")
  if [ "$1" = aegis ]; then
    P_QW0=$(metric aegis_querylog_written_total)
    P_QD0=$(metric 'aegis_querylog_dropped_total{reason="queue_full"}')
  fi
}

probe_after() { # name kind round dnsperf-output
  local c1 w1 s1 s1t l1 l1t d1 extra=()
  c1=$(cpu_ticks "${PID[$1]}"); w1=$(now)
  read -r s1 s1t < <(cpu_busy_ticks "$SERVER_CPU")
  read -r l1 l1t < <(cpu_busy_ticks "$LOAD_CPU")
  d1=$(sock_drops "${PORT[$1]}")
  if [ "$1" = aegis ]; then
    sleep 1 # the query-log thread drains the rings and writes
    extra=(--qlog-written $(( $(metric aegis_querylog_written_total) - P_QW0 ))
           --qlog-dropped $(( $(metric 'aegis_querylog_dropped_total{reason="queue_full"}') - P_QD0 ))
           --qlog-lines "$(wc -l < "$BENCH_DIR/aegis/queries.jsonl")")
    : > "$BENCH_DIR/aegis/queries.jsonl" # O_APPEND: the resolver goes on writing at the new end
  fi
  "$PY" "$here/report.py" record "$RESULTS" --server "$1" --kind "$2" --round "$3" \
    --dnsperf "$4" --cpu0 "$P_C0" --cpu1 "$c1" --wall0 "$P_W0" --wall1 "$w1" \
    --cpu-server "$((s1 - P_S0))/$((s1t - P_S0T))" --cpu-load "$((l1 - P_L0))/$((l1t - P_L0T))" \
    --sock-drops "$((d1 - P_D0))" "${extra[@]}" >&2
}

dnsperf_run() { # server kind round out [extra dnsperf args...]
  local name=$1 kind=$2 round=$3 out=$4
  shift 4
  probe_before "$name"
  taskset -c "$LOAD_CPU" dnsperf -s 127.0.0.1 -p "${PORT[$name]}" -a "$SOURCE" -e \
    -d "$DATA/queries.txt" -c "$CLIENTS" -q "$OUTSTANDING" "$@" >"$out" 2>&1 ||
    { cat "$out" >&2; die "dnsperf against $name failed"; }
  probe_after "$name" "$kind" "$round" "$out"
}

check_answers() { # server: an allowed name resolves, a blocked one is NXDOMAIN
  local name=$1 a b
  a=$("$PY" "$here/dnsprobe.py" ask a0001.wild.test --port "${PORT[$name]}") || true
  b=$("$PY" "$here/dnsprobe.py" ask "$GEN_PROBE_BLOCKED" --port "${PORT[$name]}") || true
  say "$name: a0001.wild.test -> $a; $GEN_PROBE_BLOCKED -> $b"
  if [ "$name" != bare ]; then
    [ "$a" = "NOERROR 1" ] || die "$name: allowed name answered '$a'"
    [ "${b%% *}" = NXDOMAIN ] || die "$name: blocked name answered '$b'"
  fi
}

for s in "${SERVERS[@]}"; do
  start_server "$s"
  # Fill the cache with every allowed name, then run the query mix briefly so every server
  # starts the measurement warm (cache filled, pages of the policy faulted in).
  taskset -c "$LOAD_CPU" dnsperf -s 127.0.0.1 -p "${PORT[$s]}" -a "$SOURCE" -e \
    -d "$DATA/warm.txt" -n 1 -c 1 -q 20 -t 2 >"$BENCH_DIR/dnsperf/warm-$s.txt" 2>&1 ||
    die "warm-up of $s failed"
  taskset -c "$LOAD_CPU" dnsperf -s 127.0.0.1 -p "${PORT[$s]}" -a "$SOURCE" -e \
    -d "$DATA/queries.txt" -l "$WARM_SECONDS" -c "$CLIENTS" -q "$OUTSTANDING" \
    >"$BENCH_DIR/dnsperf/warm2-$s.txt" 2>&1 || die "warm-up of $s failed"
  check_answers "$s"
done

: > "$BENCH_DIR/aegis/queries.jsonl"

for round in $(seq "$ROUNDS"); do
  for s in "${SERVERS[@]}"; do
    say "round $round: $s, saturating, $DURATION s"
    dnsperf_run "$s" max "$round" "$BENCH_DIR/dnsperf/max-$s-$round.txt" -l "$DURATION"
  done
  for s in "${SERVERS[@]}"; do
    say "round $round: $s, fixed rate $LAT_QPS qps, $LAT_DURATION s"
    dnsperf_run "$s" lat "$round" "$BENCH_DIR/dnsperf/lat-$s-$round.txt" -l "$LAT_DURATION" \
      -Q "$LAT_QPS"
  done
  # The floor at each server's own rate: a slower server gets fewer queries per wake-up,
  # which costs the kernel more per query; this floor has the same handicap.
  if [ "$DO_FLOOR" = 1 ]; then
    for s in "${SERVERS[@]}"; do
      [ "$s" = bare ] && continue
      rate=$("$PY" "$here/report.py" get "$RESULTS" --server "$s" --kind max --round "$round" qps)
      rate=${rate%.*}
      say "round $round: bare responder at $s's rate ($rate qps), $LAT_DURATION s"
      dnsperf_run bare "floor-$s" "$round" "$BENCH_DIR/dnsperf/floor-$s-$round.txt" \
        -l "$LAT_DURATION" -Q "$rate"
    done
  fi
done

for s in "${SERVERS[@]}"; do
  rset "$s" rss_mib "$(mem_mib "${PID[$s]}" VmRSS)"
  rset "$s" hwm_mib "$(mem_mib "${PID[$s]}" VmHWM)"
done

# --- snapshot swap under load -------------------------------------------------------------------

if [ "$DO_SWAP" = 1 ]; then
  say "snapshot swap: dnsperf against aegis for $DURATION s, swaps at 1/3 and 2/3 of it"
  out=$BENCH_DIR/dnsperf/swap-aegis.txt
  live=$BENCH_DIR/aegis/policy.snap
  before=$("$PY" "$here/dnsprobe.py" ask "$GEN_SWAP_NAME" --port "$PORT_AEGIS" \
             --source "$PROBE_SOURCE") || true
  [ "$before" = "NOERROR 1" ] || die "before the swap $GEN_SWAP_NAME answered '$before'"
  swap_flags=()
  [ "$SWAP_SIGNAL" = 1 ] || swap_flags=(--no-signal)
  probe_before aegis
  taskset -c "$LOAD_CPU" dnsperf -s 127.0.0.1 -p "$PORT_AEGIS" -a "$SOURCE" -e -S 1 \
    -d "$DATA/queries.txt" -c "$CLIENTS" -q "$OUTSTANDING" -l "$DURATION" >"$out" 2>&1 &
  DNSPERF_BG=$!
  # A timeline every 0.5 s: answered queries, query-log records written and dropped, serial.
  timeline=$BENCH_DIR/swap-timeline.txt
  echo "time answered qlog_written qlog_dropped_queue_full snapshot_serial" > "$timeline"
  ( while kill -0 "$DNSPERF_BG" 2>/dev/null; do
      curl -s --max-time 1 "http://127.0.0.1:$PORT_METRICS/metrics" | awk -v t="$(date +%s.%N)" '
        /^aegis_answers_total/ { a += $NF }
        /^aegis_querylog_written_total/ { w = $NF }
        /^aegis_querylog_dropped_total\{reason="queue_full"\}/ { d = $NF }
        /^aegis_policy_snapshot_serial/ { s = $NF }
        END { printf "%.2f %d %d %d %d\n", t, a, w, d, s }'
      sleep 0.5
    done >> "$timeline" ) &
  TIMELINE_BG=$!
  sleep "$(awk -v d="$DURATION" 'BEGIN { print d / 3 }')"
  # Serial 2 blocks one more name that the query file asks for; serial 3 is serial 1 again.
  r1=$(taskset -c "$LOAD_CPU" "$PY" "$here/dnsprobe.py" swap "$GEN_SWAP_NAME" --port "$PORT_AEGIS" --source "$PROBE_SOURCE" \
         --pid "${PID[aegis]}" --new "$BENCH_DIR/aegis/policy2.snap" --live "$live" \
         --rcode NXDOMAIN --timeout 30 "${swap_flags[@]}") || true
  say "swap to serial 2: $GEN_SWAP_NAME blocked after ${r1% *} s (${r1#* } polls)"
  sleep "$(awk -v d="$DURATION" 'BEGIN { print d / 3 }')"
  r2=$(taskset -c "$LOAD_CPU" "$PY" "$here/dnsprobe.py" swap "$GEN_SWAP_NAME" --port "$PORT_AEGIS" --source "$PROBE_SOURCE" \
         --pid "${PID[aegis]}" --new "$BENCH_DIR/aegis/policy3.snap" --live "$live" \
         --rcode NOERROR --timeout 30 "${swap_flags[@]}") || true
  say "swap to serial 3: $GEN_SWAP_NAME allowed again after ${r2% *} s (${r2#* } polls)"
  wait "$DNSPERF_BG" || { cat "$out" >&2; die "dnsperf (swap) failed"; }
  DNSPERF_BG=
  wait "$TIMELINE_BG" 2>/dev/null || true
  TIMELINE_BG=
  probe_after aegis swap 1 "$out"
  rset aegis swap_block_s "${r1% *}"
  rset aegis swap_unblock_s "${r2% *}"
  grep -E 'snapshot|reload' "$BENCH_DIR/aegis.log" | tail -n 6 >&2 || true
  kill -0 "${PID[aegis]}" 2>/dev/null || die "aegis-resolver died during the swap"
  rset aegis rss_after_swap_mib "$(mem_mib "${PID[aegis]}" VmRSS)"
fi

# --- optional: where aegis-resolver's user-space time goes ---------------------------------------

if [ "$DO_PROFILE" = 1 ] && command -v valgrind >/dev/null; then
  say "profile: aegis-resolver under callgrind, 10 s at 2000 qps"
  stop_pid "${PID[aegis]}"
  unset 'PID[aegis]'
  valgrind --tool=callgrind --callgrind-out-file="$BENCH_DIR/callgrind.out" \
    "$RESOLVER" -c "$BENCH_DIR/aegis/resolver.conf" \
    </dev/null >"$BENCH_DIR/aegis-callgrind.log" 2>&1 &
  PID[aegis]=$!
  "$PY" "$here/dnsprobe.py" wait "$GEN_PROBE_BLOCKED" --port "$PORT_AEGIS" --t0 "$(now)" \
    --timeout 300 >/dev/null || die "aegis-resolver under valgrind did not answer"
  taskset -c "$LOAD_CPU" dnsperf -s 127.0.0.1 -p "$PORT_AEGIS" -a "$SOURCE" -e \
    -d "$DATA/warm.txt" -n 1 -c 1 -q 20 -t 5 >/dev/null 2>&1 || true
  callgrind_control -z "${PID[aegis]}" >/dev/null 2>&1 # from here on: only the query load
  taskset -c "$LOAD_CPU" dnsperf -s 127.0.0.1 -p "$PORT_AEGIS" -a "$SOURCE" -e \
    -d "$DATA/queries.txt" -l 10 -Q 2000 -c 1 -q 50 >"$BENCH_DIR/dnsperf/callgrind.txt" 2>&1 || true
  callgrind_control -d "${PID[aegis]}" >/dev/null 2>&1 # writes callgrind.out.1
  stop_pid "${PID[aegis]}"
  unset 'PID[aegis]'
  # Frames that were live when the counters were zeroed (thread starts, the event loops)
  # show their inclusive cost as their own: left out of the self-cost list.
  { callgrind_annotate --threshold=100 --inclusive=no "$BENCH_DIR/callgrind.out.1" |
      grep -vE ':(clone|start_thread|event_base_dispatch|event_base_loop|worker_main|sink_run)[ ]' |
      sed -n '/file:function/,$p' | head -n 30
    echo; echo "inclusive:"
    callgrind_annotate --threshold=100 --inclusive=yes "$BENCH_DIR/callgrind.out.1" |
      sed -n '/file:function/,$p' | head -n 40
  } > "$BENCH_DIR/callgrind-top.txt" 2>/dev/null || true
  say "callgrind top functions in $BENCH_DIR/callgrind-top.txt"
fi

# --- summary ------------------------------------------------------------------------------------

{
  echo "# Resolver benchmark, $(date -u '+%Y-%m-%d %H:%M UTC')"
  echo
  echo "Machine: $(nproc) CPUs, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //'), kernel $(uname -r)"
  echo "Command: ${INVOKED_ENV}bash bench/resolver/run.sh"
  echo "dnsperf: taskset -c $LOAD_CPU dnsperf -s 127.0.0.1 -p PORT -a $SOURCE -e -d queries.txt -c $CLIENTS -q $OUTSTANDING -l $DURATION  (fixed rate: -l $LAT_DURATION -Q $LAT_QPS)"
  echo "Built: $VERSION"
  echo "Load average at the end: $(cut -d' ' -f1-3 /proc/loadavg) (other workloads share this machine)"
  echo "Snapshot: $snap_mib MiB$([ "$SPLIT" = 1 ] && echo " (feed base + overlay)"), compile-json $compile_s s (peak RSS $compile_mib MiB); query log on $(df -T "$BENCH_DIR" | awk 'NR == 2 { print $2 " (" $1 ")" }')"
  echo
  "$PY" "$here/report.py" summary "$RESULTS"
  if [ -s "$BENCH_DIR/swap-timeline.txt" ]; then
    echo
    echo "Swap run, 0.5 s samples of /metrics where the serial changed or query-log records were dropped:"
    awk 'NR > 2 && ($5 != ps || $4 != pd) {
           printf "- t=%.1f s: %.0f answers/s, +%d log records written, +%d dropped, serial %d\n",
                  $1 - t0, ($2 - pa) / ($1 - pt), $3 - pw, $4 - pd, $5 }
         NR == 2 { t0 = $1 } NR > 1 { pt = $1; pa = $2; pw = $3; pd = $4; ps = $5 }' \
      "$BENCH_DIR/swap-timeline.txt"
  fi
} > "$BENCH_DIR/summary.md"
echo
cat "$BENCH_DIR/summary.md"
