#!/usr/bin/env bash
# setup.sh -- install everything Aegis needs to build, test and run on Debian 12.
#
# Idempotent: packages already present are not reinstalled and the Kafka broker's jars,
# once resolved into $AEGIS_CACHE/kafka, are not downloaded again. Runs as root or via sudo.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib/common.sh"

DEB_PACKAGES=(
  build-essential pkg-config clang llvm libclang-rt-14-dev
  libevent-dev libssl-dev libpq-dev librdkafka-dev libmicrohttpd-dev libjansson-dev
  libldns-dev libcriterion-dev libconfig-dev libsystemd-dev zlib1g-dev libxxhash-dev libzstd-dev
  libcurl4-openssl-dev
  postgresql postgresql-contrib nsd knot-dnsutils dnsutils kcat dnsperf unbound
  openjdk-17-jre-headless maven python3 python3-pytest python3-dnspython python3-psycopg2 python3-jsonschema
  iproute2 procps curl jq ca-certificates ansible ansible-lint wrk
)

as_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }

missing=()
for p in "${DEB_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ "${#missing[@]}" -gt 0 ]; then
  log "installing Debian packages: ${missing[*]}"
  as_root apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}"
  # The packaged services are not ours: tests run their own throwaway instances.
  for svc in nsd postgresql unbound; do
    if command -v systemctl >/dev/null && [ -d /run/systemd/system ]; then
      as_root systemctl disable --now "$svc" >/dev/null 2>&1 || true
    else
      as_root service "$svc" stop >/dev/null 2>&1 || true
    fi
  done
else
  log "Debian packages: all present"
fi

"$here/fetch-kafka.sh"
