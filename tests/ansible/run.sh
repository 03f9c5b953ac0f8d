#!/usr/bin/env bash
# run.sh -- the "ansible" layer of `make test`: ansible-lint (production profile), syntax
# checks, then a real converge of ansible/site.yml onto this machine and a second one that
# must change nothing; then the daemons are started from the files the playbook rendered and a
# DNS query goes through the deployed resolver (tenantd's policy, Unbound, the stack's nsd).
#
# Needs a running dev stack (scripts/devstack.sh up; its env sourced): PostgreSQL holds the
# test's own database and roles, Kafka the test's topics, nsd the test zones. Everything the
# playbook writes goes under $AEGIS_ANSIBLE_TEST_DIR/root; the system users it creates are
# named aegist<PG port>-* (one set per stack) and removed at the end; the packages it installs
# (Debian's) stay. PID 1 is not systemd here, so the roles start nothing: this script starts
# the daemons on ports AEGIS_ANSIBLE_PORT_BASE+1..+10 (default 27401-27410, below the ephemeral range) and stops them, by
# PID, before it ends. Folder, users and database belong to the stack, so a developer's run on
# a stack of their own and `make test` do not meet.
# Last line: "ansible: N passed, N failed".
set -uo pipefail

repo=$(cd "$(dirname "$0")/../.." && pwd)
T=${AEGIS_ANSIBLE_TEST_DIR:-$AEGIS_STACK_DIR/ansible-test}
USER_PREFIX=aegist${AEGIS_PG_PORT:-}-
BASE=${AEGIS_ANSIBLE_PORT_BASE:-27400}
DB=aegis_ansible_test
DB_ROLES=(aegistest_owner aegistest_tenantd aegistest_portal aegistest_logpipe)
UNBOUND_PORT=$((BASE + 1)) RESOLVER_PORT=$((BASE + 2)) TENANTD_PORT=$((BASE + 4)) PORTAL_TLS_PORT=$((BASE + 8))

for v in AEGIS_STACK_DIR AEGIS_PG_PORT AEGIS_PG_ADMIN_DSN AEGIS_DNS_PORT AEGIS_KAFKA_BROKERS; do
  [ -n "${!v:-}" ] || { echo "run.sh: $v is not set (source the dev stack's env)" >&2; exit 2; }
done
[ "$(id -u)" -eq 0 ] || { echo "run.sh: the converge installs packages and users: run as root" >&2; exit 2; }

passed=0 failed=0 pids=()
say() { printf '[ansible] %s\n' "$*"; }
pass() { passed=$((passed + 1)); say "ok    $1"; }
fail() { failed=$((failed + 1)); say "FAIL  $1"; [ -z "${2:-}" ] || tail -n 30 "$2" | sed 's/^/      | /'; }
# check NAME CMD...: one counted check; its output goes to $T/NAME-ish log, shown on failure.
check() {
  local name=$1 out; shift
  out="$T/logs/$(tr -c 'A-Za-z0-9' '_' <<<"$name" | cut -c1-60).log"
  if "$@" >"$out" 2>&1; then pass "$name"; else fail "$name" "$out"; fi
}

psql_admin() { local db=$1; shift; psql -X -q -v ON_ERROR_STOP=1 "$AEGIS_PG_ADMIN_DSN dbname=$db" "$@"; }
pg_socket=$(sed -n 's/.*host=\([^ ]*\).*/\1/p' <<<"$AEGIS_PG_ADMIN_DSN")

remove_test_users() {
  local u
  for u in $(getent passwd | cut -d: -f1 | grep "^$USER_PREFIX" || true); do userdel "$u" 2>/dev/null || true; done
  for u in $(getent group | cut -d: -f1 | grep "^$USER_PREFIX" || true); do groupdel "$u" 2>/dev/null || true; done
}

drop_test_db() {
  local r
  psql_admin postgres -c "DROP DATABASE IF EXISTS $DB WITH (FORCE)" >/dev/null
  for r in "${DB_ROLES[@]}"; do psql_admin postgres -c "DROP ROLE IF EXISTS $r" >/dev/null; done
}

stop_started() {
  local pid
  for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do
    for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$pid" 2>/dev/null || true
  done
  pids=()
}

cleanup() {
  stop_started
  remove_test_users
  drop_test_db 2>/dev/null || true
  # The rendered tree holds copies of Kafka's jars; the logs stay for a look afterwards.
  rm -rf "$T/root" "$T/stage"
}
trap cleanup EXIT

# --- a fresh start ------------------------------------------------------------------------
rm -rf "$T"
mkdir -p "$T/logs" "$T/root"
chmod 0755 "$T"   # the daemons' users must reach their files below it
remove_test_users
drop_test_db || { say "cannot reach the stack's PostgreSQL as its superuser"; exit 1; }

say "artifacts: make install DESTDIR=$T/stage PREFIX=/usr"
if ! make -C "$repo" --no-print-directory install DESTDIR="$T/stage" PREFIX=/usr >"$T/logs/make-install.log" 2>&1; then
  fail "make install into a staging tree" "$T/logs/make-install.log"
  echo "ansible: $passed passed, $failed failed"
  exit 1
fi

export ANSIBLE_CONFIG=$repo/ansible/ansible.cfg ANSIBLE_NOCOLOR=1 ANSIBLE_FORCE_COLOR=0
export AEGIS_ANSIBLE_ROOT=$T/root AEGIS_ANSIBLE_STAGE=$T/stage AEGIS_ANSIBLE_PG_SOCKET=$pg_socket
export AEGIS_ANSIBLE_USER_PREFIX=$USER_PREFIX AEGIS_ANSIBLE_PORT_BASE=$BASE
. "$repo/scripts/lib/common.sh"
export AEGIS_ANSIBLE_KAFKA_LIBS=$KAFKA_HOME/libs
[ -f "$KAFKA_HOME/.complete" ] || { fail "Kafka's jars in $KAFKA_HOME (scripts/fetch-kafka.sh)"; exit 1; }

playbook() {
  (cd "$repo/ansible" && ansible-playbook -i "$repo/tests/ansible/inventory" \
     --vault-password-file "$repo/tests/ansible/vault-password" "$@")
}

# --- static checks ------------------------------------------------------------------------
check "ansible-lint, production profile: no findings" \
  bash -c "cd '$repo/ansible' && ansible-lint --nocolor --profile production --offline"
syntax_all() {
  local p
  for p in "$repo"/ansible/site.yml "$repo"/ansible/playbooks/*.yml; do
    playbook --syntax-check "$p" || return 1
  done
}
check "ansible-playbook --syntax-check: site.yml and every playbook" syntax_all
every_default_documented() { # each role default appears in the example inventory's group_vars
  local v missing=0
  # aegis_daemon's settings are set by the roles that include it, not by operators.
  for v in $(ls "$repo"/ansible/roles/*/defaults/main.yml | grep -v /aegis_daemon/ |
             xargs grep -hoE '^[a-z_]+:' | tr -d : | sort -u); do
    grep -rqE "^#? ?$v:" "$repo/ansible/inventories/example/group_vars" || { echo "undocumented: $v"; missing=1; }
  done
  return "$missing"
}
check "every role variable is documented in the example group_vars" every_default_documented

# --- converge twice -----------------------------------------------------------------------
say "converge 1 (fresh)"
check "converge 1: site.yml on a fresh root" playbook site.yml
say "converge 2"
converge2() {
  playbook site.yml > "$T/logs/converge2.out" 2>&1 || { cat "$T/logs/converge2.out"; return 1; }
  cat "$T/logs/converge2.out"
  grep -qE '^localhost +: ok=[0-9]+ +changed=0 +unreachable=0 +failed=0' "$T/logs/converge2.out"
}
check "converge 2: changed=0" converge2

# --- what the converge left ---------------------------------------------------------------
R=$T/root
check_config() { "$R/usr/sbin/aegis-$1" -c "$R/etc/aegis/$1.conf" --check-config; }
for d in resolver tenantd portal-api logpipe; do
  check "aegis-$d accepts its rendered config" check_config "$d"
done
check "unbound-checkconf accepts the rendered Unbound config" \
  unbound-checkconf "$R/etc/unbound/unbound.conf.d/aegis.conf"
check "nginx -t accepts the rendered portal site" \
  "$R/usr/local/libexec/aegis/nginx-check-site" "$R/etc/nginx/conf.d/aegis-portal.conf"
users_exist() {
  local u
  for u in aegis-resolver aegis-tenantd aegis-portal-api aegis-logpipe kafka; do
    getent passwd "$USER_PREFIX$u" | grep -q ':/usr/sbin/nologin$' || { echo "no user $USER_PREFIX$u"; return 1; }
  done
}
check "a system user per daemon, without a login shell" users_exist
units_sandboxed() {
  local f d
  for d in resolver tenantd portal-api logpipe; do
    f=$R/etc/systemd/system/aegis-$d.service
    for want in "User=${USER_PREFIX}aegis-$d" NoNewPrivileges=yes ProtectSystem=strict ProtectHome=yes \
                PrivateTmp=yes Restart=on-failure 'ExecReload=/bin/kill -HUP $MAINPID'; do
      grep -qxF "$want" "$f" || { echo "$f: no '$want'"; return 1; }
    done
    if [ "$d" = resolver ]; then
      grep -qx 'AmbientCapabilities=CAP_NET_BIND_SERVICE' "$f" || { echo "$f: no CAP_NET_BIND_SERVICE"; return 1; }
    else
      ! grep -q '^AmbientCapabilities' "$f" || { echo "$f: has capabilities"; return 1; }
    fi
  done
  command -v systemd-analyze >/dev/null || return 0
  # Syntax of every unit (offline; PID 1 need not be systemd).
  for f in "$R"/etc/systemd/system/*.service; do
    systemd-analyze verify --man=no "$f" 2>&1 | grep -E 'Unknown (key|section)|Invalid|parse' && return 1
  done
  return 0
}
check "units sandboxed; only the resolver holds CAP_NET_BIND_SERVICE" units_sandboxed
secrets_private() {
  [ "$(stat -c '%a %U' "$R/etc/aegis/tls/portal.key")" = "600 root" ] &&
    [ "$(stat -c '%a %U %G' "$R/etc/aegis/resolver.token")" = "640 root ${USER_PREFIX}aegis-resolver" ] &&
    [ "$(stat -c '%a' "$R/etc/aegis/tenantd.conf")" = 640 ] &&
    [ "$(stat -c '%a %U' "$R/etc/aegis/tenantd-migrate.conf")" = "600 root" ] &&
    grep -qx 'aegisnode_[0-9a-f]\{64\}' "$R/etc/aegis/resolver.token"
}
check "secrets on disk readable only by who needs them; node token minted by tenantd" secrets_private
topics() {
  # The whole cluster's metadata, not one topic's: asking for a missing topic by name would
  # have the stack's broker auto-create it with its default partition count.
  local meta
  meta=$(kcat -b "$AEGIS_KAFKA_BROKERS" -L -m 10 | grep -F 'topic "aegis.ansible-test.') || return 1
  echo "$meta"
  grep -qF 'topic "aegis.ansible-test.querylog" with 24 partitions' <<<"$meta" &&
    grep -qF 'topic "aegis.ansible-test.querylog.dead" with 3 partitions' <<<"$meta"
}
check "Kafka topics made with their partition counts" topics

# --- the deployed stack answers -----------------------------------------------------------
# Policy: one school owning 127.0.0.0/8, which denies www.hospital.test. (As the schema owner
# would: the superuser of the stack stands in for an administrator using the portal.)
psql_admin "$DB" >"$T/logs/seed.log" 2>&1 <<'SQL'
WITH t AS (INSERT INTO tenants (kind, name, slug) VALUES ('school', 'Ansible test school', 'ansible-school')
           RETURNING id),
     n AS (INSERT INTO networks (tenant_id, prefix) SELECT id, '127.0.0.0/8' FROM t),
     l AS (INSERT INTO lists (scope, tenant_id, kind, name) SELECT 'tenant', id, 'deny', 'deny' FROM t
           RETURNING id)
INSERT INTO list_entries (list_id, domain) SELECT id, 'www.hospital.test' FROM l;
SQL
[ $? -eq 0 ] || fail "seeding a tenant" "$T/logs/seed.log"

TEST_PORTS=($(seq $((BASE + 1)) $((BASE + 10))))
# These ports lie in the kernel's ephemeral range: an outgoing connection of the converge
# (PostgreSQL, Kafka) may hold one, or leave it in TIME-WAIT for a minute. Wait until none of
# the test's ports has a socket before starting anything.
wait_ports_free() {
  local deadline=$((SECONDS + 90)) p busy
  while :; do
    busy=
    for p in "${TEST_PORTS[@]}"; do
      [ -z "$(ss -Htuan "sport = :$p" 2>/dev/null)" ] || busy+=" $p"
    done
    [ -z "$busy" ] && return 0
    [ "$SECONDS" -lt "$deadline" ] || { say "ports still in use:$busy"; return 1; }
    sleep 1
  done
}
declare -A started_cmd
start() { # name user cmd...: runs a daemon in the background as user, logs in $T/logs/name.log
  local name=$1 user=$2; shift 2
  started_cmd[$name]="$user $*"
  if [ "$user" = root ]; then
    setsid "$@" </dev/null >>"$T/logs/$name.log" 2>&1 &
  else
    setsid setpriv --reuid="$user" --regid="$user" --init-groups -- "$@" </dev/null >>"$T/logs/$name.log" 2>&1 &
  fi
  pids+=($!)
  started_pid[$name]=$!
}
declare -A started_pid
wait_ports_free
start unbound root unbound -d -p -c "$R/etc/unbound/unbound.conf.d/aegis.conf"
start tenantd "${USER_PREFIX}aegis-tenantd" "$R/usr/sbin/aegis-tenantd" -c "$R/etc/aegis/tenantd.conf"
start logpipe "${USER_PREFIX}aegis-logpipe" "$R/usr/sbin/aegis-logpipe" -c "$R/etc/aegis/logpipe.conf"
start portal-api "${USER_PREFIX}aegis-portal-api" "$R/usr/sbin/aegis-portal-api" -c "$R/etc/aegis/portal-api.conf"
# nginx as Debian runs it, with the rendered site as its only one (pid and temp files in $T).
mkdir -p "$T/nginx"
cat > "$T/nginx/nginx.conf" <<CONF
pid $T/nginx/nginx.pid;
error_log $T/logs/nginx-error.log;
daemon off;
events {}
http {
    include /etc/nginx/mime.types;
    client_body_temp_path $T/nginx/body;
    proxy_temp_path $T/nginx/proxy;
    fastcgi_temp_path $T/nginx/fastcgi;
    uwsgi_temp_path $T/nginx/uwsgi;
    scgi_temp_path $T/nginx/scgi;
    include $R/etc/nginx/conf.d/aegis-portal.conf;
}
CONF
start nginx root nginx -c "$T/nginx/nginx.conf"
start resolver "${USER_PREFIX}aegis-resolver" "$R/usr/sbin/aegis-resolver" -c "$R/etc/aegis/resolver.conf"
# The broker the play installed and formatted, as its unit would run it (checked last: the JVM
# takes a while to answer).
start kafka "${USER_PREFIX}kafka" java -Xms256m -Xmx512m -XX:-UsePerfData -Djava.awt.headless=true \
  -Dkafka.logs.dir="$R/var/log/kafka" -Dlog4j2.configurationFile="$R/etc/kafka/log4j2.properties" \
  -cp "$R/opt/kafka-$KAFKA_VERSION/libs/*" kafka.Kafka "$R/etc/kafka/server.properties"
# Should a port have been taken between the wait and the bind after all, that daemon is
# started once more (a daemon that fails for another reason fails the checks below).
sleep 2
for name in "${!started_pid[@]}"; do
  if grep -qiE 'in use|listen_failed' "$T/logs/$name.log"; then
    say "$name could not bind its port; starting it once more"
    kill -TERM "${started_pid[$name]}" 2>/dev/null || true
    mv "$T/logs/$name.log" "$T/logs/$name-first.log"
    wait_ports_free
    # The recorded command line is split on purpose, without expanding its globs.
    set -f
    # shellcheck disable=SC2086
    start "$name" ${started_cmd[$name]}
    set +f
  fi
done

dig_resolver() { kdig @127.0.0.1 -p "$RESOLVER_PORT" +time=2 +retry=0 "$@" 2>&1; }
wait_answer() { # until the resolver answers www.school.test with its address (policy loaded)
  local deadline=$((SECONDS + 60)) out
  while [ "$SECONDS" -lt "$deadline" ]; do
    out=$(dig_resolver +short A www.school.test)
    [ "$out" = 192.0.2.10 ] && return 0
    sleep 0.5
  done
  echo "last answer: $out"
  dig_resolver A www.school.test
  return 1
}
check "DNS through the deployed resolver: www.school.test A 192.0.2.10 (Unbound -> nsd)" wait_answer
blocked() {
  local out
  out=$(dig_resolver +edns A www.hospital.test)
  echo "$out"
  grep -q 'status: NXDOMAIN' <<<"$out" && grep -qE 'EDE: 17\b' <<<"$out"
}
check "the tenant's deny list, from tenantd's snapshot, blocks www.hospital.test (EDE 17)" blocked
via_unbound() { [ "$(kdig @127.0.0.1 -p "$UNBOUND_PORT" +short +time=2 A www.hospital.test)" = 192.0.2.20 ]; }
check "Unbound (the node's recursor) answers on loopback" via_unbound
# A threat feed, refreshed by tenantd as its own database role: the names reach the node.
echo www.malware.test > "$T/feed.txt"
chmod 0644 "$T/feed.txt"
psql_admin "$DB" -c "INSERT INTO feeds (name, category, format, source)
                     VALUES ('ansible-test', 'malware', 'plain', '$T/feed.txt')" >"$T/logs/feed-seed.log" 2>&1 ||
  fail "seeding a feed" "$T/logs/feed-seed.log"
feed_blocks() {
  setpriv --reuid="${USER_PREFIX}aegis-tenantd" --regid="${USER_PREFIX}aegis-tenantd" --init-groups -- \
    "$R/usr/sbin/aegis-tenantd" -c "$R/etc/aegis/tenantd.conf" feed-refresh ansible-test || return 1
  local deadline=$((SECONDS + 30)) out
  while [ "$SECONDS" -lt "$deadline" ]; do
    out=$(dig_resolver +edns A www.malware.test)
    grep -q 'EDE: 15' <<<"$out" && return 0
    sleep 0.5
  done
  echo "$out"
  return 1
}
check "a feed refreshed by tenantd (its own role) blocks www.malware.test (EDE 15)" feed_blocks
tenantd_health() { curl -fsS "http://127.0.0.1:$TENANTD_PORT/healthz"; }
check "tenantd serves snapshots (/healthz)" tenantd_health
portal_health() { # through nginx, over TLS, with the certificate from the vault
  local deadline=$((SECONDS + 30))
  until curl -fsS --cacert "$R/etc/aegis/tls/portal.crt" --resolve "localhost:$PORTAL_TLS_PORT:127.0.0.1" \
          "https://localhost:$PORTAL_TLS_PORT/v1/health"; do
    [ "$SECONDS" -lt "$deadline" ] || return 1
    sleep 0.5
  done
}
check "the portal API answers /v1/health through nginx over TLS" portal_health
bootstrap_key() {
  [ "$(stat -c '%a %U' "$R/etc/aegis/portal-api.bootstrap-key")" = "600 root" ] &&
    key=$(cat "$R/etc/aegis/portal-api.bootstrap-key") &&
    curl -fsS --cacert "$R/etc/aegis/tls/portal.crt" --resolve "localhost:$PORTAL_TLS_PORT:127.0.0.1" \
      -H "Authorization: Bearer $key" "https://localhost:$PORTAL_TLS_PORT/v1/tenants"
}
check "the bootstrap API key the playbook issued is accepted by the portal" bootstrap_key
logged() { # the queries above went resolver -> Kafka -> logpipe -> query_log
  local deadline=$((SECONDS + 60)) n
  while [ "$SECONDS" -lt "$deadline" ]; do
    n=$(psql_admin "$DB" -At -c "SELECT count(*) FROM query_log WHERE qname = 'www.school.test'") || return 1
    [ "$n" -gt 0 ] && { echo "rows: $n"; return 0; }
    sleep 1
  done
  echo "no query_log row for www.school.test"
  return 1
}
check "query logs reach PostgreSQL through Kafka and logpipe" logged

kafka_answers() { # the rendered KRaft broker and controller came up from the formatted storage
  local deadline=$((SECONDS + 90)) meta
  while [ "$SECONDS" -lt "$deadline" ]; do
    meta=$(timeout 10 kcat -b "127.0.0.1:$((BASE + 5))" -L -m 3 2>/dev/null) && [[ $meta == *"broker 1 at"* ]] &&
      { echo "$meta"; return 0; }
    kill -0 "${started_pid[kafka]}" 2>/dev/null || { tail -n 20 "$R/var/log/kafka/server.log"; return 1; }
    sleep 1
  done
  return 1
}
check "the deployed Kafka broker (KRaft) starts from the rendered files and serves metadata" kafka_answers

stop_started
echo "ansible: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
