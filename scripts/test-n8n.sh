#!/usr/bin/env bash
# Opt-in (`make test-n8n`, not in CI): installs the real n8n 2.8.4 with npm into a cache
# directory, starts it on loopback with telemetry off, and runs the sidecar's command suite
# against it (crates/sidecar/tests/real_n8n.rs). The first run downloads ~2 GB.
set -euo pipefail
cd "$(dirname "$0")/.."
dir="$(scripts/n8n-install.sh)"

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
port=$(free_port)
broker=$(free_port)
home=$(mktemp -d)
log="$home/n8n.log"
cleanup() {
  [ -n "${n8n_pid:-}" ] && kill "$n8n_pid" 2>/dev/null && wait "$n8n_pid" 2>/dev/null
  rm -rf "$home"
}
trap cleanup EXIT

N8N_USER_FOLDER="$home" N8N_PORT="$port" N8N_LISTEN_ADDRESS=127.0.0.1 N8N_HOST=127.0.0.1 \
N8N_PROTOCOL=http WEBHOOK_URL="http://127.0.0.1:$port/" \
N8N_DIAGNOSTICS_ENABLED=false N8N_VERSION_NOTIFICATIONS_ENABLED=false \
N8N_DYNAMIC_BANNERS_ENABLED=false N8N_PERSONALIZATION_ENABLED=false \
N8N_RUNNERS_BROKER_PORT="$broker" N8N_SECURE_COOKIE=false \
  "$dir/node_modules/.bin/n8n" start >"$log" 2>&1 &
n8n_pid=$!
echo "[test-n8n] n8n 2.8.4 starting on 127.0.0.1:$port (log: $log)" >&2

export GENESIS_REAL_N8N_URL="http://127.0.0.1:$port"
status=0
if cargo nextest --version >/dev/null 2>&1; then
  cargo nextest run -p genesis-sidecar --test real_n8n --run-ignored only --no-capture || status=$?
else
  cargo test -p genesis-sidecar --test real_n8n -- --ignored --nocapture || status=$?
fi
if [ "$status" -ne 0 ]; then
  echo "[test-n8n] failed; the last lines of n8n's log:" >&2
  tail -n 40 "$log" >&2
fi
exit "$status"
