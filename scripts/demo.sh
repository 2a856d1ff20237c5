#!/usr/bin/env bash
# `make demo`: migrate, start the control plane, create workspaces with partitions and leads
# through the real API and CLI, show what happened and where to look. Ctrl-C stops it all.
# (DEMO_EXIT=1 exits after the walkthrough instead of serving until Ctrl-C.)
set -euo pipefail
cd "$(dirname "$0")/.."
: "${DATABASE_URL:?run through scripts/with-services.sh (make demo)}"

bold() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
step() { printf '\033[36m$ %s\033[0m\n' "$*"; }

bold "Building genesis (first build takes a few minutes)"
cargo build -q -p genesis-cli
bin=target/debug/genesis

# The demo gets its own database on whatever server DATABASE_URL names.
base=${DATABASE_URL%/*}
psql -qX "$DATABASE_URL" -c "DROP DATABASE IF EXISTS genesis_demo WITH (FORCE)" >/dev/null
psql -qX "$DATABASE_URL" -c "CREATE DATABASE genesis_demo" >/dev/null
port=8080
while (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; do port=$((port + 1)); done
export GENESIS_DATABASE__URL="$base/genesis_demo"
export GENESIS_REDIS__URL="${REDIS_URL:-}"
export GENESIS_SERVER__LISTEN="127.0.0.1:$port"
export GENESIS_SERVER__API_TOKEN="demo-$(head -c 12 /dev/urandom | od -An -tx1 | tr -d ' \n')"
api="http://127.0.0.1:$port"
auth="Authorization: Bearer $GENESIS_SERVER__API_TOKEN"

bold "Configuration"
step "genesis config check"
$bin config check

bold "Migrations (roles genesis_owner / genesis_app, schema, RLS policies)"
step "genesis migrate"
$bin migrate

bold "Server settings against spec 40.2"
step "genesis db check"
$bin db check || echo "(a required setting is off on this server: see the NOT OK rows)"

bold "Starting the control plane on $api"
$bin serve >"${TMPDIR:-/tmp}/genesis-demo-serve.log" 2>&1 &
serve_pid=$!
trap 'kill $serve_pid 2>/dev/null; wait $serve_pid 2>/dev/null || true' EXIT
for _ in $(seq 1 100); do
  curl -fs "$api/readyz" >/dev/null 2>&1 && break
  sleep 0.1
done
step "curl $api/readyz"
curl -s "$api/readyz"; echo

bold "Creating workspaces through the API (each gets its partition genesis.leads_p_<slug>)"
create() {
  step "POST /api/v1/workspaces {name: $1, slug: $2, region: $3, tier: $4}"
  curl -s -H "$auth" -H 'content-type: application/json' \
    -d "{\"name\":\"$1\",\"slug\":\"$2\",\"region\":\"$3\",\"tier\":\"$4\"}" "$api/api/v1/workspaces"
  echo
}
create "Acme Corp" acme_corp eu-west standard
create "Startup XYZ" startup_xyz us-east high-priority
create "Enterprise 123" enterprise_123 apac enterprise

bold "Bad input is refused with problem+json, naming the field, before any SQL"
create "Evil" 'a;drop table x' eu-west standard
create "Twice" acme_corp eu-west standard

bold "Seeding leads through tenant sessions (COPY, RLS enforced)"
step "genesis leads seed --workspace acme_corp --count 20000"
$bin leads seed --workspace acme_corp --count 20000
step "genesis leads seed --workspace startup_xyz --count 5000"
$bin leads seed --workspace startup_xyz --count 5000
step "genesis leads count --workspace acme_corp"
$bin leads count --workspace acme_corp

acme=$($bin -o json workspaces get acme_corp | sed -n 's/.*"id": "\([^"]*\)".*/\1/p' | head -1)
bold "Reading a page of leads through the API (newest first, keyset cursor)"
step "GET /api/v1/workspaces/$acme/leads?status=replied&limit=3"
curl -s -H "$auth" "$api/api/v1/workspaces/$acme/leads?status=replied&limit=3"; echo

bold "Workspaces"
step "genesis workspaces list"
$bin workspaces list

bold "Where to look"
cat <<INFO
  API          $api/api/v1/workspaces   (header: $auth)
  Health       $api/healthz   $api/readyz
  Metrics      $api/metrics
  Database     psql "$GENESIS_DATABASE__URL"   then  \\d+ genesis.leads   or   SELECT * FROM genesis.audit_log;
  Server log   ${TMPDIR:-/tmp}/genesis-demo-serve.log
INFO

if [ "${DEMO_EXIT:-0}" = "1" ]; then exit 0; fi
bold "Running. Press Ctrl-C to stop the control plane and the throwaway services."
wait $serve_pid
