#!/usr/bin/env bash
# fetch-kafka.sh -- resolve the Apache Kafka broker (KRaft) and its runtime dependencies from
# Maven Central into $KAFKA_HOME/libs, once. Debian ships no broker; this is the only artifact
# Aegis takes from outside Debian. A second run finds the marker file and downloads nothing.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib/common.sh"

marker="$KAFKA_HOME/.complete"
if [ -f "$marker" ]; then
  log "Kafka $KAFKA_VERSION: present in $KAFKA_HOME"
  exit 0
fi

command -v mvn >/dev/null || die "maven is missing; run scripts/setup.sh"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
sed "s/@KAFKA_VERSION@/$KAFKA_VERSION/g" "$here/kafka-pom.xml" > "$work/pom.xml"

log "resolving org.apache.kafka:kafka_2.13:$KAFKA_VERSION from Maven Central"
mkdir -p "$KAFKA_HOME"
rm -rf "$KAFKA_HOME/libs.partial"
mvn -q -B -f "$work/pom.xml" \
    -Dmaven.repo.local="$AEGIS_CACHE/m2" \
    dependency:copy-dependencies \
    -DincludeScope=runtime -DoutputDirectory="$KAFKA_HOME/libs.partial"
rm -rf "$KAFKA_HOME/libs"
mv "$KAFKA_HOME/libs.partial" "$KAFKA_HOME/libs"
touch "$marker"
log "Kafka $KAFKA_VERSION: $(ls "$KAFKA_HOME/libs" | wc -l) jars in $KAFKA_HOME/libs"
