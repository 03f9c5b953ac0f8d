# common.sh -- helpers shared by the scripts in scripts/ (sourced, never run).

AEGIS_CACHE=${AEGIS_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/aegis}
KAFKA_VERSION=${KAFKA_VERSION:-4.4.0}
KAFKA_HOME=${KAFKA_HOME:-$AEGIS_CACHE/kafka-$KAFKA_VERSION}

log() { printf '[%s] %s\n' "$(basename "$0")" "$*" >&2; }
die() { log "error: $*"; exit 1; }
