#!/usr/bin/env bash
# `make test-n8n`: only the tests that run a real n8n 2.8.4 (installed with npm into a cache
# by scripts/n8n-install.sh; ~2 GB the first time): the sidecar's command suite against it,
# and a tenant ignited through the control plane whose droplet runs it. `make test` runs
# them too; this is the quick way to re-run them after touching the n8n path.
set -euo pipefail
cd "$(dirname "$0")/.."
: "${DATABASE_URL:?run through scripts/with-services.sh (make test-n8n)}"
GENESIS_N8N_HOME="$(scripts/n8n-install.sh)"
export GENESIS_N8N_HOME
GENESIS_N8N_OPENAPI="$(scripts/fetch-n8n-openapi.sh)"
export GENESIS_N8N_OPENAPI
export SQLX_OFFLINE=true
cargo nextest run --workspace --all-targets -E 'test(real_n8n)'
