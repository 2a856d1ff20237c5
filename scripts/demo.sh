#!/usr/bin/env bash
# `make demo`: migrate, start the DigitalOcean simulator (droplets boot the real sidecar and a
# fake n8n) and the control plane, ignite tenants through the real API and CLI (partition,
# droplet, handshake, credentials, workflows), seed leads, show a rollback, ignite a fleet of
# 200 more (DEMO_TENANTS) with a progress bar, inject a little chaos for God Mode to show, and
# say where to look. Ctrl-C stops it all.
# (DEMO_EXIT=1 exits after the walkthrough instead of serving until Ctrl-C.)
set -euo pipefail
cd "$(dirname "$0")/.."
: "${DATABASE_URL:?run through scripts/with-services.sh (make demo)}"

bold() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
step() { printf '\033[36m$ %s\033[0m\n' "$*"; }

bold "Building genesis (the first build takes a few minutes)"
cargo build -p genesis-cli
bin=target/debug/genesis

# The demo gets its own database on whatever server DATABASE_URL names.
base=${DATABASE_URL%/*}
PGOPTIONS='-c client_min_messages=warning' psql -qX "$DATABASE_URL" \
  -c "DROP DATABASE IF EXISTS genesis_demo WITH (FORCE)" >/dev/null
psql -qX "$DATABASE_URL" -c "CREATE DATABASE genesis_demo" >/dev/null
port=8080
while (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; do port=$((port + 1)); done
export GENESIS_DATABASE__URL="$base/genesis_demo"
export GENESIS_REDIS__URL="${REDIS_URL:-}"
export GENESIS_SERVER__LISTEN="127.0.0.1:$port"
export GENESIS_SERVER__API_TOKEN="demo-$(head -c 12 /dev/urandom | od -An -tx1 | tr -d ' \n')"
export GENESIS_SERVER__COMMAND_KEY="$(head -c 32 /dev/urandom | base64)"
export GENESIS_SERVER__AUDIT_KEY="$(head -c 32 /dev/urandom | base64)"
sim_port=$((port + 10))
while (exec 3<>"/dev/tcp/127.0.0.1/$sim_port") 2>/dev/null; do sim_port=$((sim_port + 1)); done
export GENESIS_CLOUD__URL="http://127.0.0.1:$sim_port"
export GENESIS_CLOUD__TOKEN="demo"
export GENESIS_CLOUD__PER_MINUTE=100000
export GENESIS_CLOUD__PER_HOUR=1000000
export GENESIS_OAUTH__GOOGLE_TOKEN_URL="http://127.0.0.1:$sim_port/token"
# The wizard's "Connect Gmail" and AI key checks go to the simulator's fakes of Google and
# of OpenAI, Anthropic and Relevance AI.
export GENESIS_OAUTH__GOOGLE_AUTH_URL="http://127.0.0.1:$sim_port/o/oauth2/v2/auth"
export GENESIS_OAUTH__GOOGLE_USERINFO_URL="http://127.0.0.1:$sim_port/v1/userinfo"
export GENESIS_OAUTH__GOOGLE_CLIENT_ID="genesis-demo.apps.googleusercontent.com"
export GENESIS_OAUTH__GOOGLE_CLIENT_SECRET="demo-$(head -c 12 /dev/urandom | od -An -tx1 | tr -d ' \n')"
export GENESIS_AI__OPENAI_URL="http://127.0.0.1:$sim_port/openai"
export GENESIS_AI__ANTHROPIC_URL="http://127.0.0.1:$sim_port/anthropic"
export GENESIS_AI__RELEVANCE_URL="http://127.0.0.1:$sim_port/relevance/{region}"
# The managed-service gateway's wholesale vendors, simulated (their keys are the simulator's).
export GENESIS_MANAGED__GOOGLE_URL="http://127.0.0.1:$sim_port/google"
export GENESIS_MANAGED__CSE_KEY="AIzaSyFakeGenesisWholesaleKey0000000000"
export GENESIS_MANAGED__CSE_CX="0123456789abcdef0"
export GENESIS_MANAGED__ZEROBOUNCE_URL="http://127.0.0.1:$sim_port/zerobounce"
export GENESIS_MANAGED__ZEROBOUNCE_KEY="zb-fake-genesis-wholesale"
export GENESIS_MANAGED__APIFY_URL="http://127.0.0.1:$sim_port/apify"
export GENESIS_MANAGED__APIFY_TOKEN="apify_api_FakeGenesisWholesaleToken000000"
# The managed residential proxy: the control plane's CONNECT door, in front of the
# simulator's residential network (its account is the simulator's).
proxy_port=$((sim_port + 20))
while (exec 3<>"/dev/tcp/127.0.0.1/$proxy_port") 2>/dev/null; do proxy_port=$((proxy_port + 1)); done
network_port=$((proxy_port + 1))
while (exec 3<>"/dev/tcp/127.0.0.1/$network_port") 2>/dev/null; do network_port=$((network_port + 1)); done
export GENESIS_MANAGED__PROXY_LISTEN="127.0.0.1:$proxy_port"
export GENESIS_MANAGED__PROXY_ADDR="127.0.0.1:$network_port"
export GENESIS_MANAGED__PROXY_USERNAME="genesis-wholesale"
export GENESIS_MANAGED__PROXY_PASSWORD="fake-residential-password"
# One warm standby per region (spec 55.4's hot-standby pool; the default is 30 in all).
export GENESIS_STANDBY__TOTAL="${GENESIS_STANDBY__TOTAL:-5}"
# The first tenant's droplet has real Caddy in front (as on DigitalOcean, with the simulator's
# CA instead of ACME): commands go there over HTTPS; the other droplets refuse that port and
# take them on the sidecar's own.
export GENESIS_IGNITION__SIDECAR_URL='https://{ip}:9443/sidecar/v1/commands'
export GENESIS_IGNITION__SIDECAR_URL_FALLBACK='http://{ip}:8443/sidecar/v1/commands'
export GENESIS_IGNITION__REQUIRE_DIGESTS=false
export GENESIS_IGNITION__QUEUE_SET="demo$port"
export GENESIS_VAULT__CURRENT=1
export GENESIS_VAULT__KEYS__1="$(head -c 32 /dev/urandom | base64)"
export GENESIS_SIDECAR__HEARTBEAT_INTERVAL_S=10
# Metric reports every minute instead of 15, so that the demo's charts fill while you watch.
export GENESIS_SIDECAR__METRICS_INTERVAL_S=60
export GENESIS_API_URL="http://127.0.0.1:$port"
export GENESIS_API_TOKEN="$GENESIS_SERVER__API_TOKEN"
export GENESIS_LOG="${GENESIS_LOG:-warn}"
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

# Per run: two demos side by side never touch each other's droplets.
disks=$(mktemp -d "${TMPDIR:-/tmp}/genesis-demo-droplets.XXXXXX")
export GENESIS_IGNITION__SIDECAR_CA_FILE="$disks/ca/sim-ca.crt"
# With n8n 2.8.4 installed (scripts/n8n-install.sh, or a `make test` before), the first
# tenant's droplet runs a real n8n; every other droplet runs the fake.
real_n8n=()
real_note=""
n8n_home="${GENESIS_N8N_HOME:-${GENESIS_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/genesis}/n8n-real-2.8.4}"
if [ -x "$n8n_home/node_modules/.bin/n8n" ]; then
  real_n8n=(--real-n8n 1 --n8n-home "$n8n_home")
  real_note="; the first tenant gets a real n8n 2.8.4"
fi
# The wizard's DNS stage needs Knot DNS (Debian's `knot`): installed when we may, else the
# stage says automatic set-up is not configured.
knotd_ok() { command -v knotd >/dev/null || [ -x /usr/sbin/knotd ]; }
if ! knotd_ok && [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null; then
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq knot >/dev/null 2>&1 || true
fi
dns_args=()
if knotd_ok; then dns_args=(--dns-dir "$disks/dns"); else echo "(knot is not installed: the wizard's DNS stage cannot apply records in this demo)"; fi
bold "Starting the DigitalOcean simulator on 127.0.0.1:$sim_port (droplets boot the real sidecar + a fake n8n$real_note; the first one real Caddy in front)"
step "genesis sim-cloud --pace realistic --speed 20 --sidecars $disks --caddy 1 ${real_n8n[*]}"
$bin sim-cloud --listen "127.0.0.1:$sim_port" --pace realistic --speed 20 --per-minute 100000 \
  --per-hour 1000000 --sidecars "$disks" --caddy 1 "${real_n8n[@]}" \
  --google-client "$GENESIS_OAUTH__GOOGLE_CLIENT_ID:$GENESIS_OAUTH__GOOGLE_CLIENT_SECRET:http://localhost:$port/app/oauth/google/callback,http://127.0.0.1:$port/app/oauth/google/callback" \
  --ai-keys-file "$disks/ai-keys.json" --proxy-listen "$GENESIS_MANAGED__PROXY_ADDR" \
  "${dns_args[@]}" >"${TMPDIR:-/tmp}/genesis-demo-sim.log" 2>&1 &
sim_pid=$!
for _ in $(seq 1 100); do
  [ -s "$GENESIS_IGNITION__SIDECAR_CA_FILE" ] && { [ ${#dns_args[@]} -eq 0 ] || [ -s "$disks/dns/address" ]; } && break
  sleep 0.1
done
# The wizard's DNS stage: checks ask the simulator's Knot DNS; its Entri-like provider writes there.
if [ -s "$disks/dns/address" ]; then
  GENESIS_DNS__SERVER="$(cat "$disks/dns/address")"
  export GENESIS_DNS__SERVER
  export GENESIS_DNS__PROVIDER_URL="$GENESIS_CLOUD__URL"
fi
# Wallet top-ups: the simulated payment provider speaks Stripe's API. The control plane's
# webhook endpoint is registered as with Stripe, and its signing secret configured.
export GENESIS_PAYMENTS__API_URL="$GENESIS_CLOUD__URL/stripe"
export GENESIS_PAYMENTS__SECRET_KEY="sk_test_51GenesisFakeProviderKey000000000000"
GENESIS_PAYMENTS__WEBHOOK_SECRET=$(curl -fs -u "$GENESIS_PAYMENTS__SECRET_KEY:" \
  -d "url=$api/api/v1/payments/webhook" -d 'enabled_events[]=payment_intent.succeeded' \
  -d 'enabled_events[]=payment_intent.payment_failed' "$GENESIS_PAYMENTS__API_URL/v1/webhook_endpoints" |
  sed -n 's/.*"secret":"\(whsec_[A-Za-z0-9]*\)".*/\1/p')
export GENESIS_PAYMENTS__WEBHOOK_SECRET
if [ -z "$GENESIS_PAYMENTS__WEBHOOK_SECRET" ]; then
  echo "(the payment provider did not register the webhook: top-ups are off in this demo)"
  unset GENESIS_PAYMENTS__SECRET_KEY GENESIS_PAYMENTS__WEBHOOK_SECRET
fi
# Notifications go by e-mail to MailDev, a real SMTP server that keeps what it receives and
# shows it on a web page (installed with npm into a cache once, ~20 seconds).
maildev_pid=""
mail_web=""
if maildev_bin=$(scripts/maildev-install.sh 2>/dev/null); then
  smtp_port=$((port + 40))
  while (exec 3<>"/dev/tcp/127.0.0.1/$smtp_port") 2>/dev/null; do smtp_port=$((smtp_port + 1)); done
  mail_port=$((smtp_port + 1))
  while (exec 3<>"/dev/tcp/127.0.0.1/$mail_port") 2>/dev/null; do mail_port=$((mail_port + 1)); done
  "$maildev_bin" --smtp "$smtp_port" --ip 127.0.0.1 --web "$mail_port" --web-ip 127.0.0.1 --silent \
    >"${TMPDIR:-/tmp}/genesis-demo-maildev.log" 2>&1 &
  maildev_pid=$!
  export GENESIS_MAIL__SMTP_URL="smtp://127.0.0.1:$smtp_port"
  export GENESIS_MAIL__PUBLIC_URL="$api"
  mail_web="http://127.0.0.1:$mail_port"
else
  echo "(MailDev could not be installed from npm: notifications stay in the outbox)"
fi
# Tenants' webhook endpoints may be on this machine (a demo; production calls public https only).
export GENESIS_WEBHOOKS__ALLOW_PRIVATE_ENDPOINTS=true
bold "Starting the control plane on $api"
$bin serve >"${TMPDIR:-/tmp}/genesis-demo-serve.log" 2>&1 &
serve_pid=$!
trap 'kill $serve_pid $sim_pid $maildev_pid 2>/dev/null; wait $serve_pid $sim_pid 2>/dev/null || true; rm -rf "$disks"' EXIT
for _ in $(seq 1 100); do
  curl -fs "$api/readyz" >/dev/null 2>&1 && break
  sleep 0.1
done
step "curl $api/readyz"
curl -s "$api/readyz"; echo

bold "God Mode (spec 44): the first operator, and a refused sign-in (audited as LOGIN_FAILED)"
step "genesis admin create-operator --email ops@genesis.local"
operator_password=$($bin admin create-operator --email ops@genesis.local | sed -n 's/^password: //p')
echo "password: $operator_password"
step "curl -d 'email=ops@genesis.local&password=wrong' $api/god/sign-in"
curl -s -o /dev/null -w 'HTTP %{http_code}\n' -d 'email=ops@genesis.local&password=wrong' "$api/god/sign-in"

onboarding=(--onboarding sender_email=ada@acme.example --onboarding name=Ada
  --onboarding company_name=Acme --onboarding "calendly_link_1=https://cal.example/ada")
credentials=(--credential 'gmail={"clientId":"demo.apps.example","clientSecret":"demo"}'
  --credential 'openai={"apiKey":"sk-demo"}')
bold "Igniting tenants (spec 41.1: partition, droplet, handshake, credentials, workflows, activation)"
step "genesis tenants create --name 'Acme Corp' --slug acme_corp --region eu-west --tier standard ... --wait"
$bin -o json tenants create --name "Acme Corp" --slug acme_corp --region eu-west --tier standard \
  "${onboarding[@]}" "${credentials[@]}" --wait >"${TMPDIR:-/tmp}/genesis-demo-acme.json"
acme_hook=$(python3 -c 'import json,sys; w=json.load(open(sys.argv[1])); print(next(h["url"] for h in w["webhooks"] if h["name"]=="lead-intake"))' "${TMPDIR:-/tmp}/genesis-demo-acme.json")
acme_token=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["lead_intake_token"])' "${TMPDIR:-/tmp}/genesis-demo-acme.json")
echo "acme_corp's lead-intake webhook: $acme_hook"
for spec in "Startup XYZ:startup_xyz:us-east:high-priority" "Enterprise 123:enterprise_123:apac:enterprise"; do
  IFS=: read -r name slug region tier <<<"$spec"
  step "genesis tenants create --name '$name' --slug $slug --region $region --tier $tier ... --wait"
  $bin tenants create --name "$name" --slug "$slug" --region "$region" --tier "$tier" \
    "${onboarding[@]}" "${credentials[@]}" --wait
done

bold "Outbound webhooks (spec 65.4): acme_corp's own system hears of each new lead, signed per Standard Webhooks"
hook_port=$((port + 50))
while (exec 3<>"/dev/tcp/127.0.0.1/$hook_port") 2>/dev/null; do hook_port=$((hook_port + 1)); done
hook_log="${TMPDIR:-/tmp}/genesis-demo-webhooks.log"
: >"$hook_log"
python3 - "$hook_port" "$hook_log" <<'PY' &
import http.server, json, sys
class Receiver(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers.get("content-length", 0))))
        with open(sys.argv[2], "a") as log:
            log.write(f"  {self.headers['webhook-id']}  {body['type']}  {json.dumps(body['data'])}\n"
                      f"    webhook-signature: {self.headers['webhook-signature'][:24]}...\n")
        self.send_response(204)
        self.end_headers()
    def log_message(self, *args):
        pass
http.server.HTTPServer(("127.0.0.1", int(sys.argv[1])), Receiver).serve_forever()
PY
hook_pid=$!
trap 'kill $serve_pid $sim_pid $maildev_pid $hook_pid 2>/dev/null; wait $serve_pid $sim_pid 2>/dev/null || true; rm -rf "$disks"' EXIT
step "genesis webhooks add acme_corp http://127.0.0.1:$hook_port/genesis --event lead.created,lead.replied"
$bin webhooks add acme_corp "http://127.0.0.1:$hook_port/genesis" --event lead.created,lead.replied \
  --description "acme's CRM"

bold "A lead through the Golden Template: the droplet's Caddy, its n8n, its sidecar's relay (which signs the call home), and into the tenant's partition"
ca="$GENESIS_IGNITION__SIDECAR_CA_FILE"
step "curl --cacert <simulator CA> -X POST $acme_hook -H 'X-Genesis-Token: <shown once at ignite>' -d '{\"email\":\"lin@lead.example\"}'"
curl -s --cacert "$ca" -X POST -H 'content-type: application/json' -H "X-Genesis-Token: $acme_token" \
  -d '{"email":"lin@lead.example","first_name":"Lin","company":"Lead Co"}' "$acme_hook"; echo
step "the same without the token (n8n refuses it)"
curl -s --cacert "$ca" -o /dev/null -w 'HTTP %{http_code}\n' -X POST -H 'content-type: application/json' \
  -d '{"email":"mallory@lead.example"}' "$acme_hook"
sleep 2
step "what acme's system received (its own log)"
cat "$hook_log"
step "genesis webhooks deliveries acme_corp"
$bin webhooks deliveries acme_corp
acme_host=$(printf %s "$acme_hook" | sed -E 's#^https://([^/]+)/.*#\1#')
step "curl --cacert <simulator CA> https://$acme_host/rest/settings   (n8n's own API is not public: Caddy answers 404)"
curl -s --cacert "$ca" -o /dev/null -w 'HTTP %{http_code}\n' "https://$acme_host/rest/settings"
acme_droplet=$(python3 -c 'import json,sys; w=json.load(open(sys.argv[1])); print(w["droplets"][0]["id"])' "${TMPDIR:-/tmp}/genesis-demo-acme.json" 2>/dev/null || true)
if [ -n "$acme_droplet" ]; then
  bold "Operator commands to one droplet, signed and sent over HTTPS through its Caddy (audited, journaled)"
  step "genesis droplets health $acme_droplet"
  $bin droplets health "$acme_droplet"
  step "genesis droplets logs $acme_droplet -n 5"
  $bin droplets logs "$acme_droplet" -n 5
fi

bold "Bad input is refused with problem+json, naming the field, before anything starts"
step "POST /api/v1/workspaces {slug: 'a;drop table x'}"
curl -s -H "$auth" -H 'content-type: application/json' \
  -d '{"name":"Evil","slug":"a;drop table x","region":"eu-west"}' "$api/api/v1/workspaces"; echo
step "genesis tenants create --slug acme_corp (taken)"
$bin tenants create --name Twice --slug acme_corp --region eu-west || true
step "genesis tenants create --slug no_onboarding --wait (the templates need onboarding values)"
$bin tenants create --name "No onboarding" --slug no_onboarding --region eu-west \
  "${credentials[@]}" --wait || true

bold "Credentials are checked against n8n 2.8.4's own credential types before anything starts"
step "genesis tenants create --slug bad_key --credential 'openai={\"organizationId\":\"x\"}' --wait"
$bin tenants create --name "Bad key" --slug bad_key --region eu-west "${onboarding[@]}" \
  --credential 'gmail={"clientId":"c","clientSecret":"s"}' --credential 'openai={"organizationId":"x"}' \
  --wait || true

bold "A failed ignition rolls back everything (spec 50.6): DigitalOcean refuses to create the droplet"
step "curl -X PUT $GENESIS_CLOUD__URL/sim/v1/faults -d '{\"endpoint_error_rates\":{\"POST /v2/droplets\":1.0}}'"
curl -s -o /dev/null -X PUT -H 'content-type: application/json' \
  -d '{"endpoint_error_rates":{"POST /v2/droplets":1.0}}' "$GENESIS_CLOUD__URL/sim/v1/faults"
step "genesis tenants create --slug no_droplet ... --wait   (the client retries, then the saga unwinds)"
$bin tenants create --name "No droplet" --slug no_droplet --region eu-west "${onboarding[@]}" \
  "${credentials[@]}" --wait || true
curl -s -o /dev/null -X PUT -H 'content-type: application/json' -d '{}' "$GENESIS_CLOUD__URL/sim/v1/faults"

bold "Seeding leads through tenant sessions (COPY, RLS enforced)"
step "genesis leads seed --workspace acme_corp --count 20000"
$bin leads seed --workspace acme_corp --count 20000
step "genesis leads seed --workspace startup_xyz --count 5000"
$bin leads seed --workspace startup_xyz --count 5000
step "genesis leads count --workspace acme_corp"
$bin leads count --workspace acme_corp

acme=$($bin -o json tenants get acme_corp | sed -n 's/.*"id": "\([^"]*\)".*/\1/p' | head -1)
bold "Reading a page of leads through the API (newest first, keyset cursor)"
step "GET /api/v1/workspaces/$acme/leads?status=replied&limit=3"
curl -s -H "$auth" "$api/api/v1/workspaces/$acme/leads?status=replied&limit=3"; echo

bold "Tenants"
step "genesis tenants list"
$bin tenants list

bold "A fleet template rollout (spec 56): signed redeploys to every droplet, batch by batch"
step "genesis rollouts start --scenario bug_fix --batch-size 2 --pause-between-s 1 --wait"
$bin rollouts start --scenario bug_fix --batch-size 2 --pause-between-s 1 --wait

bold "The hot-standby pool (spec 55.4): warm blank droplets that serve a waking High-Priority tenant"
step "GET /api/v1/fleet/standby"
curl -s -H "$auth" "$api/api/v1/fleet/standby"; echo

bold "The background reconcilers: each runs on the replica that leads it, part by part (God Mode: Reconcilers)"
step "GET /api/v1/fleet/reconcilers"
curl -s -H "$auth" "$api/api/v1/fleet/reconcilers" | python3 -c '
import json, sys
for r in json.load(sys.stdin)["items"]:
    s = r.get("status") or {}
    parts = ", ".join(p["part"] + (" failing: " + p["last_error"] if p.get("consecutive_failures") else " ok") for p in s.get("parts", []))
    print("  %-16s %-10s %4d passes  %s" % (r["name"], r["liveness"], s.get("passes", 0), parts))
' || true

bold "The audit log is hash-chained per region (spec 63.1): every row above is sealed within seconds"
sleep 6
step "genesis audit verify"
$bin audit verify || echo "(the audit chain did not verify: see above)"

tenants=${DEMO_TENANTS:-200}
bold "A fleet for God Mode: $tenants more tenants, ignited through the API, 16 at a time"
step "genesis demo populate --tenants $tenants"
$bin demo populate --tenants "$tenants"
# Tenants who sign up from now on get real Caddy in front of their engine, as on a droplet:
# their tracking domains (spec 61.4) are served by it, with certificates from the simulator's CA.
curl -fsS -X POST -H 'content-type: application/json' -d '{"droplets": 20}' \
  "$GENESIS_CLOUD__URL/sim/v1/caddy" >/dev/null || echo "(the simulator did not put Caddy in front of new engines)"

bold "A little chaos (spec 45), through the simulator's operator endpoints"
step "genesis demo chaos --zombies 3 --lost 1 --drift 1 --degraded 2"
$bin demo chaos --zombies 3 --lost 1 --drift 1 --degraded 2
cat <<CHAOS
  Within a minute God Mode shows the zombies (3 missed heartbeats) rebooted back to health,
  the drifted workflow found and healed by the watchdog, and the hot ones ACTIVE_DEGRADED
  (5 heartbeats above 80 % CPU). The lost one is rebooted too, and stays REBOOTING until spec
  54.4's reboot deadline (5 minutes) passes; then it turns ORPHAN, for manual review.
CHAOS

bold "Where to look"
cat <<INFO
  God Mode     http://localhost:$port/god   (sign in as ops@genesis.local / $operator_password)
  Tenants      http://localhost:$port/app/sign-up   (sign up as a tenant; the e-mail comes to MailDev)
               The wizard talks to the simulator's fake Google (type any address on its consent
               page), its DNS provider (records land in a real Knot DNS at ${GENESIS_DNS__SERVER:-?})
               and its fake AI vendors, which accept only these keys:
$(python3 -c 'import json,sys; k=json.load(open(sys.argv[1])); r=k["relevance"].split(":"); print("                 OpenAI     "+k["openai"]+"\n                 Anthropic  "+k["anthropic"]+"\n                 Relevance  region "+r[0]+", project "+r[1]+", key "+r[2])' "$disks/ai-keys.json" 2>/dev/null || echo "                 (the simulator wrote no keys: see its log)")
  E-mail       ${mail_web:-(MailDev is not running: the links are printed here)}   (MailDev: every message the platform sent)
  Webhooks     $bin webhooks list acme_corp   (deliveries: $bin webhooks deliveries acme_corp; receiver log: $hook_log)
  Tracking     Once an engine runs, add track.<your domain> on its workspace's "Tracking domains"
               page, then create the CNAME it names in the demo's DNS:
               curl -s $GENESIS_CLOUD__URL/entri/v1/apply -H 'content-type: application/json' \\
                 -d '{"applicationId":"demo","domain":"<your domain>","dnsRecords":[{"type":"CNAME","host":"track","value":"<the page's target>"}]}'
               and press "Check now".
  API          $api/api/v1/workspaces   (header: $auth)
  Managed      $api/api/v1/managed/{google_cse|email_verify|apify}/...  (from a tenant's n8n: its gws_ token, signed by its sidecar's relay)
               proxy door http://127.0.0.1:$proxy_port (CONNECT; the gws_ token as the password)
  Health       $api/healthz   $api/readyz
  Fleet        $api/api/v1/fleet/health   $api/api/v1/alerts   $api/api/v1/droplets/<id>
  Rollouts     $bin rollouts status   (or $api/api/v1/rollouts)
  Hibernation  $api/api/v1/fleet/hibernation   $api/api/v1/fleet/standby   $bin tenants wake|hold <id>
  Metrics      $api/metrics
  Database     psql "$GENESIS_DATABASE__URL"   then  \\d+ genesis.leads   or   SELECT * FROM genesis.audit_log;
  Server log   ${TMPDIR:-/tmp}/genesis-demo-serve.log
  Simulator    $GENESIS_CLOUD__URL/v2/droplets   $GENESIS_CLOUD__URL/sim/v1/stats   (log: ${TMPDIR:-/tmp}/genesis-demo-sim.log)
  A tenant     $bin tenants get acme_corp

  The CLI from another terminal, against this demo:
    export GENESIS_API_URL=$api
    export GENESIS_API_TOKEN=$GENESIS_SERVER__API_TOKEN
  or save it as a context once: echo \$GENESIS_API_TOKEN | $bin auth login --api-url $api --name demo --token-stdin
INFO

if [ "${DEMO_EXIT:-0}" = "1" ]; then exit 0; fi

# Without MailDev, print the links the outbox holds for people (address verifications,
# invitations) as they are written, so a tenant can sign up in the demo anyway.
outbox_links() {
  local last=0 rows
  while sleep 2; do
    rows=$(psql -qXAt -F ' ' "$GENESIS_DATABASE__URL" -c \
      "SELECT id, kind, recipient, body->>'link' FROM genesis.notifications
       WHERE recipient IS NOT NULL AND id > $last ORDER BY id" 2>/dev/null) || continue
    [ -n "$rows" ] || continue
    while read -r id kind to link; do
      printf '  [outbox] %s for %s: %s\n' "$kind" "$to" "$link"
      last=$id
    done <<< "$rows"
  done
}
outbox_pid=""
if [ -z "$mail_web" ]; then
  outbox_links &
  outbox_pid=$!
fi
trap 'kill $outbox_pid $serve_pid $sim_pid $maildev_pid $hook_pid 2>/dev/null; wait $serve_pid $sim_pid 2>/dev/null || true; rm -rf "$disks"' EXIT
bold "Running. Press Ctrl-C to stop the control plane, the simulator and the throwaway services."
wait $serve_pid
