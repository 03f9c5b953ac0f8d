#!/usr/bin/env bash
# demo.sh -- `make demo`: install what is missing, build, bring up the dev stack (PostgreSQL,
# Kafka, the authoritative upstream standing in for the internet) and the platform (tenantd,
# logpipe, the portal API, two resolver nodes), seed a ministry with its institutions
# through the public API, and print commands to try. Stays in the foreground: Ctrl-C, or
# `make demo-down` from another shell, stops everything it started.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
. scripts/lib/common.sh

export AEGIS_STACK_DIR=${AEGIS_STACK_DIR:-/tmp/aegis-demo-$(id -un)}
export AEGIS_PLATFORM_DIR=${AEGIS_PLATFORM_DIR:-$AEGIS_STACK_DIR/platform}
FEEDS=$root/scripts/demo/feeds

down() {
  scripts/platform.sh down || true
  scripts/devstack.sh down
}

# api METHOD PATH [JSON] -- one call with the ministry administrator's key; prints the body,
# fails with the API's error on anything but 2xx.
api() {
  local out code
  out=$(curl -sS -X "$1" -H "Authorization: Bearer $ADMIN_KEY" -H 'Content-Type: application/json' \
    ${3:+--data "$3"} -w '\n%{http_code}' "$AEGIS_API_URL$2")
  code=${out##*$'\n'}
  out=${out%$'\n'*}
  [[ $code == 2* ]] || die "$1 $2 answered $code: $out"
  printf '%s' "$out"
}

tenant() { # kind name slug parent cidr... -> id
  local kind=$1 name=$2 slug=$3 parent=$4 nets
  shift 4
  nets='[]'
  [ $# -eq 0 ] || nets=$(printf '%s\n' "$@" | jq -R '{cidr: .}' | jq -sc .)
  api POST /v1/tenants "$(jq -nc --arg k "$kind" --arg n "$name" --arg s "$slug" \
    --arg p "$parent" --argjson nets "$nets" \
    '{kind: $k, name: $n, slug: $s, networks: $nets} + (if $p == "" then {} else {parent_id: $p} end)')" |
    jq -r .id
}

key() { # name role [tenant] -> the key, shown once
  api POST /v1/api-keys "$(jq -nc --arg n "$1" --arg r "$2" --arg t "${3:-}" \
    '{name: $n, role: $r} + (if $t == "" then {} else {tenant_id: $t} end)')" | jq -r .key
}

user() { # email name role [tenant] -> "role email password", the password shown once
  local password
  password=$(head -c 18 /dev/urandom | base64 | tr '+/' 'xy')
  api POST /v1/users "$(jq -nc --arg e "$1" --arg n "$2" --arg p "$password" --arg r "$3" \
    --arg t "$4" '{email: $e, display_name: $n, password: $p,
                   grants: [{role: $r, tenant_id: (if $t == "" then null else $t end)}]}')" >/dev/null
  printf '%-15s %s  %s\n' "$3" "$1" "$password"
}

seed() {
  log "seeding through the API"
  local ministry region school hospital office
  ministry=$(tenant ministry "Ministry of Public Services" ministry "")
  region=$(tenant region "Northern Region" north "$ministry")
  school=$(tenant school "Northside Primary School" northside-school "$region" 127.1.0.0/16)
  hospital=$(tenant hospital "Northern General Hospital" north-hospital "$region" 127.2.0.0/16)
  office=$(tenant office "Ministry Office, Room 4" ministry-office "$ministry" 127.3.0.0/16)
  api PATCH "/v1/tenants/$school/policy" \
    '{"categories": {"adult": "block"}, "safe_search": true, "ede_contact": "contact it@northside.example"}' >/dev/null
  api PATCH "/v1/tenants/$hospital/policy" '{"ede_contact": "call the IT desk on 4242"}' >/dev/null
  api PATCH "/v1/tenants/$office/policy" '{"categories": {"social": "monitor"}}' >/dev/null

  # The ministry's feeds: tenantd fetches a new feed within its check interval (5 s).
  local feed
  for feed in "demo-malware malware rpz $FEEDS/malware.rpz" "demo-phishing phishing misp $FEEDS/misp" \
              "demo-adult adult hosts $FEEDS/adult.hosts" "demo-social social plain $FEEDS/social.txt"; do
    set -- $feed
    api POST /v1/feeds "$(jq -nc --arg n "$1" --arg c "$2" --arg f "$3" --arg s "$4" \
      '{name: $n, category: $c, format: $f, source: $s}')" >/dev/null
  done
  local deadline=$((SECONDS + 60))
  until [ "$(api GET /v1/feeds | jq '[.items[] | select(.status == "ok")] | length')" = 4 ]; do
    [ "$SECONDS" -lt "$deadline" ] || die "the feeds did not load: see $AEGIS_PLATFORM_DIR/tenantd.log"
    sleep 0.5
  done

  umask 077
  {
    echo "# API keys (Authorization: Bearer KEY)"
    echo "ministry_admin  $ADMIN_KEY"
    echo "tenant_admin    $(key 'Northside IT' tenant_admin "$school")   (Northside Primary School)"
    echo "soc_analyst     $(key 'SOC on duty' soc_analyst "$ministry")   (the ministry and every institution below it)"
    echo "auditor         $(key 'Court of Audit' auditor)"
    echo "# people (POST /v1/auth/login with email and password)"
    user admin@ministry.example "Ministry administrator" ministry_admin ""
    user it@northside.example "Northside IT" tenant_admin "$school"
    user soc@ministry.example "SOC analyst" soc_analyst "$ministry"
    user audit@court.example "Court of Audit" auditor ""
  } > "$AEGIS_PLATFORM_DIR/keys.txt"
  echo "$school" > "$AEGIS_PLATFORM_DIR/school.id"
}

case "${1:-up}" in
up)
  scripts/setup.sh
  make -j"$(nproc)" all
  scripts/devstack.sh up
  . "$AEGIS_STACK_DIR/env"
  trap 'echo; log "stopping the demo"; down; exit 0' INT TERM
  scripts/platform.sh up
  . "$AEGIS_PLATFORM_DIR/env"
  ADMIN_KEY=$(cat "$AEGIS_API_KEY_FILE")
  [ -s "$AEGIS_PLATFORM_DIR/keys.txt" ] || seed
  school=$(cat "$AEGIS_PLATFORM_DIR/school.id")
  res1=${AEGIS_RES1%:*} res1_port=${AEGIS_RES1##*:} res2_port=${AEGIS_RES2##*:}
  cat <<MSG

Aegis is up on loopback (state in $AEGIS_STACK_DIR; API keys of each role in
$AEGIS_PLATFORM_DIR/keys.txt). Try:

  # the school (127.1.0.5) asks for an adult site: NXDOMAIN, EDE 17 Filtered, its contact text
  dig @$res1 -p $res1_port -b 127.1.0.5 adult-demo.wild.test +nocookie
  # the hospital (127.2.0.9) asks the same name on the other node: resolved
  dig @$res1 -p $res2_port -b 127.2.0.9 adult-demo.wild.test +short
  # a phishing name from the MISP feed, blocked for everyone with EDE 15 Blocked
  dig @$res1 -p $res2_port -b 127.2.0.9 phish-demo.wild.test +nocookie
  # the school's safe search: www.google.com answered as forcesafesearch.google.com
  dig @$res1 -p $res1_port -b 127.1.0.5 www.google.com +short
  # the office monitors social media: answered, and logged as a match
  dig @$res1 -p $res1_port -b 127.3.0.7 social-demo.wild.test +short

  # a machine in the school hits a malware name; a second later the SOC finds which one, when,
  # through which node (the log reaches PostgreSQL in well under a second)
  dig @$res1 -p $res1_port -b 127.1.0.77 malware-demo.wild.test +nocookie
  curl -s -H "Authorization: Bearer \$(awk '/^soc_analyst/{print \$2; exit}' $AEGIS_PLATFORM_DIR/keys.txt)" "$AEGIS_API_URL/v1/querylog?name=malware-demo.wild.test&subdomains=true"
  # the school's report: its most blocked names this week, and its policy
  curl -s -H "Authorization: Bearer \$(awk '/^ministry_admin/{print \$2; exit}' $AEGIS_PLATFORM_DIR/keys.txt)" "$AEGIS_API_URL/v1/reports/top-blocked?tenant_id=$school"
  curl -s -H "Authorization: Bearer \$(awk '/^ministry_admin/{print \$2; exit}' $AEGIS_PLATFORM_DIR/keys.txt)" $AEGIS_API_URL/v1/tenants/$school/policy
  # the audit trail, as the auditor sees it (the SOC's search is in it)
  curl -s -H "Authorization: Bearer \$(awk '/^auditor/{print \$2; exit}' $AEGIS_PLATFORM_DIR/keys.txt)" "$AEGIS_API_URL/v1/audit?limit=5"

Ctrl-C here, or make demo-down in another shell, stops everything.
MSG
  if [ "${AEGIS_DEMO_DETACH:-0}" = 1 ]; then
    trap - INT TERM
    exit 0
  fi
  while scripts/platform.sh status | grep running >/dev/null; do sleep 2; done
  ;;
down)
  [ -f "$AEGIS_STACK_DIR/env" ] && . "$AEGIS_STACK_DIR/env"
  down
  ;;
*)
  die "usage: $0 up|down"
  ;;
esac
