#!/usr/bin/env bash
# Runs every test. Expects DATABASE_URL (an administrator login) and REDIS_URL, as set up by
# scripts/with-services.sh (`make test`). Each test creates its own database.
set -euo pipefail
cd "$(dirname "$0")/.."
: "${DATABASE_URL:?run through scripts/with-services.sh (make test)}"

# The PgBouncer isolation test needs Debian's pgbouncer (spec 40.2).
if ! command -v pgbouncer >/dev/null && [ ! -x /usr/sbin/pgbouncer ]; then
  if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null; then
    echo "[test] installing pgbouncer with apt" >&2
    DEBIAN_FRONTEND=noninteractive apt-get update -qq >/dev/null
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq pgbouncer >/dev/null
  else
    echo "The PgBouncer tests need pgbouncer: sudo apt-get install -y pgbouncer" >&2
    exit 1
  fi
fi
# Debian's package starts a pgbouncer service on 6432; our tests start their own.

# The fake n8n is checked against n8n's own OpenAPI document (from its npm tarball, cached).
GENESIS_N8N_OPENAPI="$(scripts/fetch-n8n-openapi.sh)"
export GENESIS_N8N_OPENAPI

export SQLX_OFFLINE=true
if cargo nextest --version >/dev/null 2>&1; then
  cargo nextest run --workspace --all-targets --no-fail-fast
else
  cargo test --workspace --all-targets --no-fail-fast
fi
