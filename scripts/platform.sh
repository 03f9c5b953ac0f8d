#!/usr/bin/env bash
# platform.sh -- run the Aegis daemons themselves on top of a dev stack (scripts/devstack.sh):
# aegis-tenantd, aegis-logpipe, aegis-portal-api and two aegis-resolver nodes, all on
# 127.0.0.1, each with its own config, log and pidfile in one folder. `make demo` and the
# end-to-end tests (tests/e2e) start the platform this way, so both run what an operator runs.
#
# Usage: platform.sh up|down|status
#        platform.sh stop|start tenantd|logpipe|api|res1|res2      (failure drills)
# Needs a running dev stack: AEGIS_STACK_DIR names it (its env file is read).
# Knobs: AEGIS_PLATFORM_DIR (default $AEGIS_STACK_DIR/platform), AEGIS_PLATFORM_DB (database,
# created if missing; default aegis_platform), AEGIS_PLATFORM_TOPIC (query-log topic; default
# aegis.querylog), AEGIS_PLATFORM_PORT (first of the ports used; default 25800, below
# the kernel's ephemeral range 32768-60999 so that no outgoing connection can hold one):
#   +0 tenantd HTTP, +1 portal API, +2 logpipe metrics,
#   +10/+11 res1 DNS/metrics, +20/+21 res2 DNS/metrics.
# AEGIS_PLATFORM_CACHE_TTL caps the nodes' cache TTL in seconds (default 86400), so that a
# drill can see cached answers go stale.
# `up` writes $AEGIS_PLATFORM_DIR/env (AEGIS_API_URL, AEGIS_API_KEY, AEGIS_RES1, ...) and
# leaves the first ministry_admin API key in admin.key (0600).
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/.." && pwd)
. "$here/lib/common.sh"

[ -n "${AEGIS_STACK_DIR:-}" ] && [ -f "$AEGIS_STACK_DIR/env" ] ||
  die "no dev stack: set AEGIS_STACK_DIR to a folder where scripts/devstack.sh up ran"
. "$AEGIS_STACK_DIR/env"

DIR=${AEGIS_PLATFORM_DIR:-$AEGIS_STACK_DIR/platform}
DIR=${DIR%/}
DB=${AEGIS_PLATFORM_DB:-aegis_platform}
TOPIC=${AEGIS_PLATFORM_TOPIC:-aegis.querylog}
BASE=${AEGIS_PLATFORM_PORT:-25800}
BIN=${AEGIS_BIN:-$root/build/bin}
CACHE_TTL=${AEGIS_PLATFORM_CACHE_TTL:-86400}
DAEMONS=(tenantd logpipe api res1 res2)
START_TIMEOUT=30

PORT_TENANTD=$BASE
PORT_API=$((BASE + 1))
PORT_LOGPIPE=$((BASE + 2))
PORT_RES1=$((BASE + 10)) METRICS_RES1=$((BASE + 11))
PORT_RES2=$((BASE + 20)) METRICS_RES2=$((BASE + 21))

[[ $DB =~ ^[a-z_][a-z0-9_]{0,62}$ ]] || die "AEGIS_PLATFORM_DB must be a plain identifier"
DSN="$(sed -E 's/dbname=[^ ]*/dbname='"$DB"'/' <<<"$AEGIS_PG_DSN")"

binary_of() {
  case $1 in
    tenantd) echo "$BIN/aegis-tenantd" ;;
    logpipe) echo "$BIN/aegis-logpipe" ;;
    api) echo "$BIN/aegis-portal-api" ;;
    res1 | res2) echo "$BIN/aegis-resolver" ;;
    *) die "unknown daemon '$1' (one of ${DAEMONS[*]})" ;;
  esac
}

read_pid() { [ -s "$1" ] && head -n1 "$1" | tr -dc 0-9; }

# Ours only if alive and started with a config from this folder: a stale pidfile never leads
# to signalling an unrelated process.
pid_is_ours() {
  local pid=$1 cmd
  [ -n "$pid" ] && [ -r "/proc/$pid/cmdline" ] || return 1
  cmd=$(tr '\0' ' ' < "/proc/$pid/cmdline" 2>/dev/null) || return 1
  [[ $cmd == *"$DIR/"* ]]
}

running() { pid_is_ours "$(read_pid "$DIR/$1.pid" || true)"; }

# --- configuration ----------------------------------------------------------------------------

write_configs() {
  mkdir -p "$DIR/snapshots" "$DIR/res1" "$DIR/res2"
  cat > "$DIR/tenantd.conf" <<CONF
database: { dsn = "$DSN"; };
migrations: { dir = "$root/migrations"; };
snapshot: { dir = "$DIR/snapshots"; };
http: { listen = "127.0.0.1:$PORT_TENANTD"; };
CONF
  cat > "$DIR/logpipe.conf" <<CONF
database: { dsn = "$DSN"; };
kafka: { brokers = "$AEGIS_KAFKA_BROKERS"; topic = "$TOPIC"; group_id = "aegis-logpipe-$DB";
         dead_letter_topic = "$TOPIC.dead"; };
batch: { ms = 100; };
metrics: { listen = "127.0.0.1:$PORT_LOGPIPE"; };
CONF
  cat > "$DIR/api.conf" <<CONF
database: { dsn = "$DSN"; };
http: { listen = "127.0.0.1:$PORT_API"; };
CONF
  [ -s "$DIR/pseudonym.secret" ] || head -c 32 /dev/urandom > "$DIR/pseudonym.secret"
  chmod 600 "$DIR/pseudonym.secret"
  local n port metrics
  for n in res1 res2; do
    if [ "$n" = res1 ]; then port=$PORT_RES1 metrics=$METRICS_RES1; else port=$PORT_RES2 metrics=$METRICS_RES2; fi
    cat > "$DIR/$n.conf" <<CONF
node: { name = "$n"; };
server: { listen = ["127.0.0.1:$port"]; workers = 1; };
upstream: { servers = ["$AEGIS_DNS_UPSTREAM"]; timeout_ms = 500; attempts = 2; };
policy: { snapshot = "$DIR/$n/policy.snap"; url = "http://127.0.0.1:$PORT_TENANTD";
          token_file = "$DIR/$n/token"; forward_special_zones = ["test."]; };
querylog: { pseudonym_secret_file = "$DIR/pseudonym.secret";
            kafka: { brokers = "$AEGIS_KAFKA_BROKERS"; topic = "$TOPIC";
                     spool_dir = "$DIR/$n/spool"; }; };
metrics: { listen = "127.0.0.1:$metrics"; };
ratelimit: { exempt = ["127.0.0.0/8=0"]; };
cache: { max_ttl = $CACHE_TTL; };
CONF
  done
  local d
  for d in "${DAEMONS[@]}"; do
    "$(binary_of "$d")" -c "$DIR/$d.conf" --check-config >/dev/null ||
      die "$DIR/$d.conf refused by $(binary_of "$d") --check-config"
  done
}

# --- database, tokens, keys -------------------------------------------------------------------

prepare_database() {
  local exists
  exists=$(psql "$AEGIS_PG_ADMIN_DSN" -Atqc "SELECT 1 FROM pg_database WHERE datname = '$DB'")
  [ "$exists" = 1 ] || psql "$AEGIS_PG_ADMIN_DSN" -qc "CREATE DATABASE \"$DB\" OWNER aegis" >/dev/null
  "$BIN/aegis-tenantd" -c "$DIR/tenantd.conf" migrate >>"$DIR/tenantd.log" 2>&1 ||
    die "migrations failed: see $DIR/tenantd.log"
  local n
  for n in res1 res2; do
    if [ ! -s "$DIR/$n/token" ]; then
      "$BIN/aegis-tenantd" -c "$DIR/tenantd.conf" node-add "$n" > "$DIR/$n/token" 2>>"$DIR/tenantd.log" ||
        die "could not register node $n: see $DIR/tenantd.log"
      chmod 600 "$DIR/$n/token"
    fi
  done
  if [ ! -s "$DIR/admin.key" ]; then
    (umask 077; "$BIN/aegis-portal-api" -c "$DIR/api.conf" bootstrap-key "platform bootstrap" 365 \
      > "$DIR/admin.key" 2>>"$DIR/api.log") || die "could not issue the first API key: see $DIR/api.log"
  fi
}

# --- processes --------------------------------------------------------------------------------

health_url() {
  case $1 in
    tenantd) echo "http://127.0.0.1:$PORT_TENANTD/healthz" ;;
    logpipe) echo "http://127.0.0.1:$PORT_LOGPIPE/metrics" ;;
    api) echo "http://127.0.0.1:$PORT_API/v1/health" ;;
    res1) echo "http://127.0.0.1:$METRICS_RES1/metrics" ;;
    res2) echo "http://127.0.0.1:$METRICS_RES2/metrics" ;;
  esac
}

start_one() {
  local d=$1 pid deadline
  if running "$d"; then log "$d already running"; return 0; fi
  "$(binary_of "$d")" -c "$DIR/$d.conf" >>"$DIR/$d.log" 2>&1 &
  pid=$!
  echo "$pid" > "$DIR/$d.pid"
  deadline=$((SECONDS + START_TIMEOUT))
  until curl -fs -o /dev/null --max-time 2 "$(health_url "$d")"; do
    kill -0 "$pid" 2>/dev/null || die "$d exited at start: see $DIR/$d.log"
    [ "$SECONDS" -lt "$deadline" ] || die "$d not healthy after $START_TIMEOUT s: see $DIR/$d.log"
    sleep 0.1
  done
}

stop_one() {
  local d=$1 pid deadline
  pid=$(read_pid "$DIR/$d.pid" || true)
  pid_is_ours "$pid" || { rm -f "$DIR/$d.pid"; return 0; }
  kill -TERM "$pid" 2>/dev/null || true
  deadline=$((SECONDS + 15))
  while pid_is_ours "$pid"; do
    if [ "$SECONDS" -ge "$deadline" ]; then
      log "$d (pid $pid) still there after 15 s: KILL"
      kill -KILL "$pid" 2>/dev/null || true
      sleep 0.2
    fi
    sleep 0.1
  done
  rm -f "$DIR/$d.pid"
}

write_env() {
  cat > "$DIR/env" <<ENV
export AEGIS_PLATFORM_DIR='$DIR'
export AEGIS_PLATFORM_DSN='$DSN'
export AEGIS_PLATFORM_TOPIC='$TOPIC'
export AEGIS_API_URL='http://127.0.0.1:$PORT_API'
export AEGIS_API_KEY_FILE='$DIR/admin.key'
export AEGIS_TENANTD_URL='http://127.0.0.1:$PORT_TENANTD'
export AEGIS_LOGPIPE_METRICS='http://127.0.0.1:$PORT_LOGPIPE/metrics'
export AEGIS_RES1='127.0.0.1:$PORT_RES1'
export AEGIS_RES1_METRICS='http://127.0.0.1:$METRICS_RES1/metrics'
export AEGIS_RES2='127.0.0.1:$PORT_RES2'
export AEGIS_RES2_METRICS='http://127.0.0.1:$METRICS_RES2/metrics'
ENV
}

case "${1:-}" in
up)
  mkdir -p "$DIR"
  write_configs
  prepare_database
  for d in "${DAEMONS[@]}"; do start_one "$d"; done
  write_env
  log "platform up in $DIR (source $DIR/env)"
  ;;
down)
  for ((i = ${#DAEMONS[@]} - 1; i >= 0; i--)); do stop_one "${DAEMONS[i]}"; done
  ;;
status)
  for d in "${DAEMONS[@]}"; do
    if running "$d"; then echo "$d running (pid $(read_pid "$DIR/$d.pid"))"; else echo "$d stopped"; fi
  done
  ;;
stop)
  binary_of "${2:-}" >/dev/null
  stop_one "$2"
  ;;
start)
  binary_of "${2:-}" >/dev/null
  start_one "$2"
  ;;
*)
  die "usage: $0 up|down|status|stop NAME|start NAME"
  ;;
esac
