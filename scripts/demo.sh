#!/usr/bin/env bash
# demo.sh -- `make demo`: install what is missing, build, bring the dev stack up on loopback
# (PostgreSQL, Kafka, the authoritative test upstream), bring the schema up to date, and
# print where everything is. `make demo-down` (or `scripts/demo.sh down`) stops it all.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
. scripts/lib/common.sh

export AEGIS_STACK_DIR=${AEGIS_STACK_DIR:-/tmp/aegis-demo-$(id -un)}

case "${1:-up}" in
up)
  scripts/setup.sh
  make -j"$(nproc)" all
  scripts/devstack.sh up
  . "$AEGIS_STACK_DIR/env"
  conf="$AEGIS_STACK_DIR/tenantd.conf"
  cat > "$conf" <<CONF
database: { dsn = "$AEGIS_PG_DSN"; };
migrations: { dir = "$root/migrations"; };
CONF
  build/bin/aegis-tenantd -c "$conf" migrate
  cat <<MSG

Aegis demo stack is up (state in $AEGIS_STACK_DIR):
  PostgreSQL   psql '$AEGIS_PG_DSN'
  Kafka        kcat -b $AEGIS_KAFKA_BROKERS -L
  DNS upstream dig @${AEGIS_DNS_UPSTREAM%:*} -p ${AEGIS_DNS_UPSTREAM##*:} www.school.test
  Schema       build/bin/aegis-tenantd -c $conf migrate
Stop it with: make demo-down
MSG
  ;;
down)
  scripts/devstack.sh down
  ;;
*)
  die "usage: $0 up|down"
  ;;
esac
