#!/usr/bin/env bash
# devstack.sh -- start, check or stop the real PostgreSQL, Kafka (KRaft) and nsd that tests
# and benchmarks talk to: on 127.0.0.1 only, in a throwaway folder.
#
# Real components rather than fakes, because the contracts under test (schema, query-log
# topic, upstream DNS) only count as proven against the real thing. A stack is keyed by its
# folder and ports, so two can run side by side; `down` stops only the processes recorded
# in its folder, never by name, and removes the folder. `up` writes $AEGIS_STACK_DIR/env
# for tests to source.
#
# Usage: devstack.sh up|down|status   (ports and folder: AEGIS_* variables below)
#        devstack.sh stop|start kafka|pg|dns
# stop/start take one component of a running stack away and bring it back with its data
# (the broker keeps its topics, PostgreSQL its databases), for failure drills.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib/common.sh"
tmpl="$here/devstack"
exec 8>&2   # the caller's stderr, kept for on_exit

PG_PORT=${AEGIS_PG_PORT:-25432}
KAFKA_PORT=${AEGIS_KAFKA_PORT:-25092}
CONTROLLER_PORT=${AEGIS_KAFKA_CONTROLLER_PORT:-25093}
DNS_PORT=${AEGIS_DNS_PORT:-25353}
STACK=${AEGIS_STACK_DIR:-/tmp/aegis-stack-$(id -un)-$PG_PORT}
STACK=${STACK%/}
# PostgreSQL refuses to run as root; a root caller runs it as this system user instead.
PG_SYSTEM_USER=aegis-dev
START_TIMEOUT=45   # seconds each component gets to answer

PG_DIR=$STACK/pg
PGDATA=$PG_DIR/data
PG_SOCK=$PG_DIR/run
PG_LOG=$PG_DIR/postgres.log
KAFKA_DIR=$STACK/kafka
KAFKA_PIDFILE=$KAFKA_DIR/kafka.pid
NSD_DIR=$STACK/nsd
NSD_PIDFILE=$NSD_DIR/nsd.pid
# Marks the folder as a dev stack (so `down` never removes anything else) and records the
# ports it was started with (so status/down check those, not whatever the caller has set).
MARKER=$STACK/devstack.conf

usage() { echo "usage: $(basename "$0") up|down|status | stop|start kafka|pg|dns" >&2; exit 2; }

# --- checks on what the caller gave us ------------------------------------------------------

check_settings() {
  local p
  for p in "$PG_PORT" "$KAFKA_PORT" "$CONTROLLER_PORT" "$DNS_PORT"; do
    [[ $p =~ ^[0-9]+$ ]] && [ "$p" -ge 1024 ] && [ "$p" -le 65535 ] ||
      die "port '$p' is not a number in 1024..65535"
  done
  [ "$(printf '%s\n' "$PG_PORT" "$KAFKA_PORT" "$CONTROLLER_PORT" "$DNS_PORT" | sort -u | wc -l)" -eq 4 ] ||
    die "AEGIS_PG_PORT, AEGIS_KAFKA_PORT, AEGIS_KAFKA_CONTROLLER_PORT and AEGIS_DNS_PORT must differ"
  # The path goes unquoted into nsd, Kafka and PostgreSQL configs; keep it plain.
  [[ $STACK =~ ^/[A-Za-z0-9._/-]+$ ]] && [[ $STACK != */..* ]] ||
    die "AEGIS_STACK_DIR must be an absolute path of [A-Za-z0-9._/-] characters: '$STACK'"
  local sock="$PG_SOCK/.s.PGSQL.$PG_PORT"
  [ "${#sock}" -lt 108 ] || die "AEGIS_STACK_DIR is too long for a unix socket path ($sock)"
}

load_marker() {
  local k v
  [ -f "$MARKER" ] || return 1
  while IFS='=' read -r k v; do
    case $k in
      PG_PORT) PG_PORT=$v ;;
      KAFKA_PORT) KAFKA_PORT=$v ;;
      CONTROLLER_PORT) CONTROLLER_PORT=$v ;;
      DNS_PORT) DNS_PORT=$v ;;
    esac
  done < "$MARKER"
}

# --- processes --------------------------------------------------------------------------------

read_pid() { [ -s "$1" ] && head -n1 "$1" | tr -dc 0-9; }

# A pid counts as ours only if the process is alive and its command line names this stack's
# folder: a stale pidfile must never lead to signalling some unrelated process.
pid_is_ours() {
  local pid=$1 cmd
  [ -n "$pid" ] && [ -r "/proc/$pid/cmdline" ] || return 1
  cmd=$(tr '\0' ' ' < "/proc/$pid/cmdline" 2>/dev/null) || return 1
  [[ $cmd == *"$STACK/"* ]]
}

kafka_pid() { read_pid "$KAFKA_PIDFILE" || true; }
nsd_pid() { read_pid "$NSD_PIDFILE" || true; }
pg_pid() { read_pid "$PGDATA/postmaster.pid" || true; }

wait_gone() { # pid seconds
  local pid=$1 deadline=$((SECONDS + $2))
  while pid_is_ours "$pid"; do
    [ "$SECONDS" -lt "$deadline" ] || return 1
    sleep 0.2
  done
}

stop_pid() { # name pid timeout
  local name=$1 pid=$2
  pid_is_ours "$pid" || return 0
  log "stopping $name (pid $pid)"
  kill -TERM "$pid" 2>/dev/null || true
  if ! wait_gone "$pid" "$3"; then
    log "$name (pid $pid) still there after $3 s: KILL"
    kill -KILL "$pid" 2>/dev/null || true
    wait_gone "$pid" 5 || log "warning: $name (pid $pid) survived KILL"
  fi
}

# --- PostgreSQL -------------------------------------------------------------------------------

pg_bindir() {
  local d dirs=(/usr/lib/postgresql/*/bin)
  if [ -n "${AEGIS_PG_BINDIR:-}" ]; then echo "$AEGIS_PG_BINDIR"; return; fi
  d=$(printf '%s\n' "${dirs[@]}" | sort -V | tail -n1)
  [ -n "$d" ] && [ -x "$d/initdb" ] || die "no PostgreSQL server in /usr/lib/postgresql/*/bin (run scripts/setup.sh)"
  echo "$d"
}

# Runs a PostgreSQL tool as the user that owns (or will own) the cluster.
as_pg() {
  local owner
  owner=$(stat -c %U "$PG_DIR" 2>/dev/null || id -un)
  if [ "$(id -un)" = "$owner" ]; then
    (cd "$PG_DIR" && "$@")
  elif [ "$(id -u)" -eq 0 ]; then
    (cd "$PG_DIR" && runuser -u "$owner" -- "$@")
  else
    die "the cluster in $PGDATA belongs to $owner; run this as $owner or root"
  fi
}

ensure_pg_system_user() {
  id -u "$PG_SYSTEM_USER" >/dev/null 2>&1 && return 0
  log "creating system user $PG_SYSTEM_USER to run PostgreSQL"
  # A parallel `up` may have created it meanwhile: recheck before failing.
  useradd --system --user-group --no-create-home --home-dir /nonexistent \
          --shell /usr/sbin/nologin "$PG_SYSTEM_USER" 2>/dev/null ||
    id -u "$PG_SYSTEM_USER" >/dev/null 2>&1 || die "useradd $PG_SYSTEM_USER failed"
}

pg_answers() {
  "$PGBIN/pg_isready" -q -h 127.0.0.1 -p "$PG_PORT" -U postgres -d postgres -t 2 >/dev/null 2>&1
}

# A restart of a cluster `up` made: no initdb, no role set-up.
restart_pg() {
  PHASE=postgres
  as_pg "$PGBIN/pg_ctl" -D "$PGDATA" -l "$PG_LOG" -w -t "$START_TIMEOUT" -s start 8>&- 9>&- ||
    fail postgres "pg_ctl start failed"
  local deadline=$((SECONDS + START_TIMEOUT))
  until pg_answers; do
    [ "$SECONDS" -lt "$deadline" ] || fail postgres "no answer on 127.0.0.1:$PG_PORT"
    sleep 0.2
  done
}

start_pg() {
  PHASE=postgres
  mkdir -p "$PG_DIR" "$PG_SOCK"
  if [ "$(id -u)" -eq 0 ]; then
    ensure_pg_system_user
    chown "$PG_SYSTEM_USER:" "$PG_DIR" "$PG_SOCK"
    runuser -u "$PG_SYSTEM_USER" -- test -w "$PG_DIR" ||
      die "$PG_SYSTEM_USER cannot reach $PG_DIR; put AEGIS_STACK_DIR somewhere world-traversable"
  fi
  chmod 0755 "$PG_SOCK"
  as_pg "$PGBIN/initdb" -D "$PGDATA" -U postgres -A trust -E UTF8 --no-locale -N \
        --no-instructions >"$PG_DIR/initdb.log" 2>&1 || fail postgres "initdb failed"
  sed -e "s|@PG_PORT@|$PG_PORT|g" -e "s|@PG_SOCKET_DIR@|$PG_SOCK|g" \
      "$tmpl/postgresql.conf.in" | as_pg tee -a "$PGDATA/postgresql.conf" >/dev/null
  # 8>&- 9>&-: the daemons must not inherit the caller's stderr (a `$(devstack.sh up 2>&1)`
  # would never return) nor the stack lock (it would stay held until `down`).
  as_pg "$PGBIN/pg_ctl" -D "$PGDATA" -l "$PG_LOG" -w -t "$START_TIMEOUT" -s start 8>&- 9>&- ||
    fail postgres "pg_ctl start failed"
  local deadline=$((SECONDS + START_TIMEOUT))
  until pg_answers; do
    [ "$SECONDS" -lt "$deadline" ] || fail postgres "no answer on 127.0.0.1:$PG_PORT"
    sleep 0.2
  done
  # The application role owns its database and so may create tables, partitions, functions
  # and triggers, without being a superuser: migrations must not need one.
  "$PGBIN/psql" -X -q -v ON_ERROR_STOP=1 -h "$PG_SOCK" -p "$PG_PORT" -U postgres -d postgres \
      >"$PG_DIR/setup.log" 2>&1 <<'SQL' || fail postgres "creating role and database aegis failed"
CREATE ROLE aegis LOGIN PASSWORD 'aegis' NOSUPERUSER NOCREATEDB NOCREATEROLE;
CREATE DATABASE aegis OWNER aegis;
GRANT CONNECT, CREATE, TEMPORARY ON DATABASE aegis TO aegis;
SQL
}

stop_pg() {
  local pid
  pid=$(pg_pid)
  pid_is_ours "$pid" || return 0
  log "stopping postgres (pid $pid)"
  if ! as_pg "$(pg_bindir)/pg_ctl" -D "$PGDATA" -m fast -w -t 20 -s stop; then
    # pg_ctl could not do it: SIGQUIT is the postmaster's immediate shutdown.
    kill -QUIT "$pid" 2>/dev/null || true
    wait_gone "$pid" 10 || { kill -KILL "$pid" 2>/dev/null || true; wait_gone "$pid" 5 || true; }
  fi
}

# --- Kafka ------------------------------------------------------------------------------------

# Flags for the short-lived StorageTool runs: start fast, never mind peak speed.
KAFKA_TOOL_JAVA=(java -XX:-UsePerfData -XX:TieredStopAtLevel=1 -XX:+UseSerialGC -Xmx256m)

kafka_tool() {
  "${KAFKA_TOOL_JAVA[@]}" -Dkafka.logs.dir="$KAFKA_DIR" \
      -Dlog4j2.configurationFile="$KAFKA_DIR/log4j2.properties" \
      -cp "$KAFKA_HOME/libs/*" kafka.tools.StorageTool "$@"
}

kafka_answers() {
  local meta
  # Cheap TCP probe first; kcat then proves the broker serves metadata. (Output captured,
  # not piped into grep -q: under pipefail an early-exiting grep can fail the check.)
  (exec 3<>"/dev/tcp/127.0.0.1/$KAFKA_PORT") 2>/dev/null || return 1
  meta=$(timeout 10 kcat -b "127.0.0.1:$KAFKA_PORT" -L -m 3 2>/dev/null) || return 1
  [[ $meta == *"broker 1 at"* ]]
}

start_kafka() {
  PHASE=kafka
  command -v java >/dev/null || die "java is missing (run scripts/setup.sh)"
  command -v kcat >/dev/null || die "kcat is missing (run scripts/setup.sh)"
  # stdout carries only the summary; Maven's progress goes with the logs.
  [ -f "$KAFKA_HOME/.complete" ] || "$here/fetch-kafka.sh" >&2 || fail kafka "fetch-kafka.sh failed"
  mkdir -p "$KAFKA_DIR/data"
  cp "$tmpl/log4j2.properties" "$KAFKA_DIR/log4j2.properties"
  sed -e "s|@KAFKA_PORT@|$KAFKA_PORT|g" -e "s|@CONTROLLER_PORT@|$CONTROLLER_PORT|g" \
      -e "s|@KAFKA_DIR@|$KAFKA_DIR|g" "$tmpl/server.properties.in" > "$KAFKA_DIR/server.properties"
  # A restart (`start kafka`) keeps the formatted storage and so the topics.
  if [ ! -f "$KAFKA_DIR/data/meta.properties" ]; then
    local uuid
    uuid=$(kafka_tool random-uuid 2>>"$KAFKA_DIR/format.log" | tail -n1) || true
    [[ $uuid =~ ^[A-Za-z0-9_-]{22}$ ]] || fail kafka "StorageTool random-uuid gave '$uuid'"
    kafka_tool format -t "$uuid" -c "$KAFKA_DIR/server.properties" >>"$KAFKA_DIR/format.log" 2>&1 ||
      fail kafka "StorageTool format failed"
  fi
  # A pidfile left by an earlier run would pass for the new one (`start kafka`).
  rm -f "$KAFKA_PIDFILE"
  # setsid: a Ctrl-C in the terminal that ran `up` must not reach the broker. The wrapper
  # records the pid of the process that becomes java, whether or not setsid had to fork.
  # 8>&- 9>&-: as for postgres.
  # shellcheck disable=SC2016 # $$ and $@ belong to the inner shell
  setsid bash -c 'echo $$ > "$1"; shift; exec "$@"' kafka "$KAFKA_PIDFILE" \
    java -Xms256m -Xmx512m -XX:-UsePerfData -XX:+ExitOnOutOfMemoryError -Djava.awt.headless=true \
         -Dkafka.logs.dir="$KAFKA_DIR" -Dlog4j2.configurationFile="$KAFKA_DIR/log4j2.properties" \
         -cp "$KAFKA_HOME/libs/*" kafka.Kafka "$KAFKA_DIR/server.properties" \
    </dev/null >"$KAFKA_DIR/stdout.log" 2>&1 8>&- 9>&- &
  wait_pidfile kafka "$KAFKA_PIDFILE"
}

wait_kafka() {
  PHASE=kafka
  local deadline=$((SECONDS + START_TIMEOUT))
  until kafka_answers; do
    pid_is_ours "$(kafka_pid)" || fail kafka "the broker exited during start-up"
    [ "$SECONDS" -lt "$deadline" ] || fail kafka "no answer on 127.0.0.1:$KAFKA_PORT after $START_TIMEOUT s"
    sleep 0.3
  done
}

# --- nsd --------------------------------------------------------------------------------------

nsd_bin() { command -v "$1" 2>/dev/null || { [ -x "/usr/sbin/$1" ] && echo "/usr/sbin/$1"; } || die "$1 is missing (run scripts/setup.sh)"; }

dns_soa() { # prints the SOA of test. as served, or nothing
  if command -v dig >/dev/null; then
    dig @127.0.0.1 -p "$DNS_PORT" SOA test. +short +time=1 +tries=1 2>/dev/null
  else
    kdig @127.0.0.1 -p "$DNS_PORT" SOA test. +short +time=1 +retry=0 2>/dev/null
  fi
}

dns_answers() { [ -n "$(dns_soa || true)" ]; }

start_nsd() {
  PHASE=nsd
  local nsd checkzone z name
  nsd=$(nsd_bin nsd)
  checkzone=$(nsd_bin nsd-checkzone)
  mkdir -p "$NSD_DIR/zones"
  cp "$tmpl"/zones/*.zone "$NSD_DIR/zones/"
  sed -e "s|@DNS_PORT@|$DNS_PORT|g" -e "s|@NSD_DIR@|$NSD_DIR|g" \
      "$tmpl/nsd.conf.in" > "$NSD_DIR/nsd.conf"
  # One zone per file: zones/<name>.zone serves <name>.
  for z in "$NSD_DIR"/zones/*.zone; do
    name=$(basename "$z" .zone).
    "$checkzone" "$name" "$z" >>"$NSD_DIR/nsd.log" 2>&1 || fail nsd "zone $name does not check"
    printf '\nzone:\n        name: "%s"\n        zonefile: "%s"\n' "$name" "$(basename "$z")" >> "$NSD_DIR/nsd.conf"
  done
  "$(nsd_bin nsd-checkconf)" "$NSD_DIR/nsd.conf" >>"$NSD_DIR/nsd.log" 2>&1 || fail nsd "nsd.conf does not check"
  # In the foreground (-d) nsd's main process is the one that writes the pidfile; one left
  # by an earlier run (`start dns`) would pass for it.
  rm -f "$NSD_PIDFILE"
  setsid "$nsd" -d -c "$NSD_DIR/nsd.conf" </dev/null >>"$NSD_DIR/stdout.log" 2>&1 8>&- 9>&- &
  wait_pidfile nsd "$NSD_PIDFILE"
}

wait_nsd() {
  PHASE=nsd
  local deadline=$((SECONDS + START_TIMEOUT))
  until dns_answers; do
    pid_is_ours "$(nsd_pid)" || fail nsd "nsd exited during start-up"
    [ "$SECONDS" -lt "$deadline" ] || fail nsd "no answer on 127.0.0.1:$DNS_PORT after $START_TIMEOUT s"
    sleep 0.2
  done
}

# --- shared helpers ---------------------------------------------------------------------------

wait_pidfile() { # name pidfile
  local _
  for _ in $(seq 50); do
    [ -s "$2" ] && return 0
    sleep 0.1
  done
  fail "$1" "no pid recorded in $2"
}

component_logs() {
  case $1 in
    postgres) if [ -s "$PG_LOG" ]; then echo "$PG_LOG $PG_DIR/setup.log"; else echo "$PG_DIR/initdb.log"; fi ;;
    kafka) echo "$KAFKA_DIR/format.log $KAFKA_DIR/stdout.log $KAFKA_DIR/server.log" ;;
    nsd) echo "$NSD_DIR/nsd.log $NSD_DIR/stdout.log" ;;
  esac
}

show_logs() {
  local f
  for f in $(component_logs "$1"); do
    [ -s "$f" ] || continue
    printf -- '--- tail of %s ---\n' "$f" >&2
    tail -n 25 "$f" >&2
  done
}

fail() { # component message
  log "error: $1: $2"
  show_logs "$1"
  LOGS_SHOWN=1
  exit 1
}

port_busy() { # tcp|udp port
  command -v ss >/dev/null || return 1
  local flag=t
  [ "$1" = udp ] && flag=u
  [ -n "$(ss -Hln$flag "sport = :$2" 2>/dev/null)" ]
}

check_ports_free() {
  local busy=()
  port_busy tcp "$PG_PORT" && busy+=("tcp/$PG_PORT (postgres)")
  port_busy tcp "$KAFKA_PORT" && busy+=("tcp/$KAFKA_PORT (kafka)")
  port_busy tcp "$CONTROLLER_PORT" && busy+=("tcp/$CONTROLLER_PORT (kafka controller)")
  port_busy udp "$DNS_PORT" && busy+=("udp/$DNS_PORT (nsd)")
  port_busy tcp "$DNS_PORT" && busy+=("tcp/$DNS_PORT (nsd)")
  [ "${#busy[@]}" -eq 0 ] ||
    die "ports already in use: ${busy[*]}; pick others with AEGIS_*_PORT (another stack?)"
}

stop_all() {
  stop_pid nsd "$(nsd_pid)" 10
  stop_pid kafka "$(kafka_pid)" 30
  stop_pg
}

shq() { printf "'%s'" "${1//\'/\'\\\'\'}"; }

write_env() {
  local tmp=$STACK/env.tmp
  {
    echo "# Written by scripts/devstack.sh up; source it to reach this stack."
    echo "export AEGIS_STACK_DIR=$(shq "$STACK")"
    echo "export AEGIS_PG_DSN=$(shq "host=127.0.0.1 port=$PG_PORT dbname=aegis user=aegis password=aegis")"
    echo "export AEGIS_PG_ADMIN_DSN=$(shq "host=$PG_SOCK port=$PG_PORT dbname=aegis user=postgres")"
    echo "export AEGIS_PG_PORT=$PG_PORT"
    echo "export AEGIS_KAFKA_BROKERS=127.0.0.1:$KAFKA_PORT"
    echo "export AEGIS_KAFKA_PORT=$KAFKA_PORT"
    echo "export AEGIS_KAFKA_CONTROLLER_PORT=$CONTROLLER_PORT"
    echo "export AEGIS_DNS_UPSTREAM=127.0.0.1:$DNS_PORT"
    echo "export AEGIS_DNS_PORT=$DNS_PORT"
  } > "$tmp"
  mv "$tmp" "$STACK/env"
}

summary() {
  local z zones=
  for z in "$NSD_DIR"/zones/*.zone; do
    [ -e "$z" ] && zones+="$(basename "$z" .zone). "
  done
  cat <<EOF
stack     $STACK
postgres  127.0.0.1:$PG_PORT   db aegis, user aegis/aegis; superuser postgres via socket $PG_SOCK
kafka     127.0.0.1:$KAFKA_PORT   controller 127.0.0.1:$CONTROLLER_PORT
nsd       127.0.0.1:$DNS_PORT   zones: ${zones% }
env       source $STACK/env
EOF
}

# Serialises up/down on one stack. The lock file sits next to the folder (`down` removes
# the folder) and goes when the stack does.
lock_stack() {
  mkdir -p "$(dirname "$STACK")"
  exec 9>>"$STACK.lock"
  trap on_exit EXIT
  # Turn signals into a plain exit, so that on_exit cleans up a half-started stack.
  trap 'exit 129' HUP
  trap 'exit 130' INT
  trap 'exit 143' TERM
  flock -w 120 9 || die "another devstack.sh holds $STACK.lock"
}

on_exit() {
  local rc=$?
  # A signal may land while stderr points into a component's log: talk to the caller.
  exec 2>&8
  if [ "$rc" -ne 0 ] && [ "$UP_STARTED" -eq 1 ] && [ "$UP_DONE" -eq 0 ]; then
    # Reached by fail() or by any command failing under set -e: show what went wrong if
    # fail() did not, then stop whatever had started. Logs stay until `down`.
    [ "$LOGS_SHOWN" -eq 1 ] || { log "error: start-up failed during $PHASE"; show_logs "$PHASE"; }
    stop_all
    log "stack stopped; its logs stay in $STACK until '$(basename "$0") down'"
  fi
  [ -f "$MARKER" ] || rm -f "$STACK.lock"
}
UP_STARTED=0 UP_DONE=0 LOGS_SHOWN=0 PHASE=setup

# --- commands ---------------------------------------------------------------------------------

all_up() {
  pid_is_ours "$(pg_pid)" && pg_answers &&
    pid_is_ours "$(kafka_pid)" && kafka_answers &&
    pid_is_ours "$(nsd_pid)" && dns_answers
}

cmd_up() {
  local t0=$EPOCHREALTIME want
  check_settings
  lock_stack
  PGBIN=$(pg_bindir)
  if [ -f "$MARKER" ]; then
    want="$PG_PORT $KAFKA_PORT $CONTROLLER_PORT $DNS_PORT"
    load_marker
    if all_up; then
      [ "$want" = "$PG_PORT $KAFKA_PORT $CONTROLLER_PORT $DNS_PORT" ] ||
        die "the stack in $STACK already runs on other ports; '$(basename "$0") down' it first"
      [ -f "$STACK/env" ] || write_env
      log "already running"
      summary
      return 0
    fi
    log "stack in $STACK is partly up or stale: stopping what is left and starting afresh"
    stop_all
    rm -rf "$STACK"
    read -r PG_PORT KAFKA_PORT CONTROLLER_PORT DNS_PORT <<< "$want"
  elif [ -e "$STACK" ] && [ -n "$(ls -A "$STACK" 2>/dev/null)" ]; then
    die "$STACK exists and is not a dev stack; choose another AEGIS_STACK_DIR"
  fi
  check_ports_free

  mkdir -p "$STACK"
  chmod 0755 "$STACK"
  printf 'PG_PORT=%s\nKAFKA_PORT=%s\nCONTROLLER_PORT=%s\nDNS_PORT=%s\n' \
    "$PG_PORT" "$KAFKA_PORT" "$CONTROLLER_PORT" "$DNS_PORT" > "$MARKER"

  UP_STARTED=1
  # Kafka's JVM is the slowest to answer: launch it first and set up the others meanwhile.
  start_kafka
  start_pg
  start_nsd
  wait_nsd
  wait_kafka
  write_env
  UP_DONE=1
  log "up in $(awk -v a="$t0" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.1f", b - a }') s"
  summary
}

cmd_down() {
  check_settings
  if [ ! -e "$STACK" ]; then
    log "nothing to stop: $STACK does not exist"
    return 0
  fi
  [ -f "$MARKER" ] || die "$STACK has no $(basename "$MARKER"): not a dev stack, leaving it alone"
  lock_stack
  load_marker
  stop_all
  rm -rf "$STACK"
  log "stack in $STACK stopped and removed"
}

# stop|start one component of a running stack. The lock is held as for up/down; a failed
# start reports the component's logs but leaves the rest of the stack running.
cmd_component() { # stop|start kafka|pg|dns
  local action=$1 what=$2
  check_settings
  [ -f "$MARKER" ] || die "no dev stack in $STACK ('$(basename "$0") up' first)"
  lock_stack
  load_marker
  PGBIN=$(pg_bindir)
  case $action/$what in
    stop/kafka) stop_pid kafka "$(kafka_pid)" 30 ;;
    stop/pg) stop_pg ;;
    stop/dns) stop_pid nsd "$(nsd_pid)" 10 ;;
    start/kafka)
      if pid_is_ours "$(kafka_pid)"; then log "kafka already running"; else start_kafka; fi
      wait_kafka ;;
    start/pg)
      if pid_is_ours "$(pg_pid)"; then log "postgres already running"; else restart_pg; fi ;;
    start/dns)
      if pid_is_ours "$(nsd_pid)"; then log "nsd already running"; else start_nsd; fi
      wait_nsd ;;
    *) usage ;;
  esac
  log "$what: $([ "$action" = stop ] && echo stopped || echo started)"
}

cmd_status() {
  local ok=0 pid state
  check_settings
  if ! load_marker; then
    echo "stack     $STACK: not set up"
    return 1
  fi
  PGBIN=$(pg_bindir)
  echo "stack     $STACK"
  status_line() { # name pid answers-fn where
    if ! pid_is_ours "$2"; then state="down (no live process)"; ok=1
    elif ! "$3"; then state="pid $2 alive, NOT answering"; ok=1
    else state="pid $2, answering"; fi
    printf '%-9s %-22s %s\n' "$1" "$4" "$state"
  }
  status_line postgres "$(pg_pid)" pg_answers "127.0.0.1:$PG_PORT"
  status_line kafka "$(kafka_pid)" kafka_answers "127.0.0.1:$KAFKA_PORT"
  status_line nsd "$(nsd_pid)" dns_answers "127.0.0.1:$DNS_PORT"
  return "$ok"
}

case $#/${1:-} in
  1/up) cmd_up ;;
  1/down) cmd_down ;;
  1/status) cmd_status ;;
  2/stop | 2/start) cmd_component "$1" "$2" ;;
  *) usage ;;
esac
