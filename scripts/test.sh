#!/usr/bin/env bash
# Runs every test. Expects DATABASE_URL (an administrator login), REDIS_URL and
# REDIS_CLUSTER_URL, as set up by scripts/with-services.sh (`make test`). Each test creates its
# own database.
set -euo pipefail
cd "$(dirname "$0")/.."
: "${DATABASE_URL:?run through scripts/with-services.sh (make test)}"
: "${REDIS_CLUSTER_URL:?run through make test (GENESIS_REDIS_CLUSTER=1 scripts/with-services.sh)}"

# Debian packages some tests need: pgbouncer (the PgBouncer isolation test, spec 40.2),
# chromium and chromium-driver (God Mode's browser test), caddy and cloud-init. Installed with apt when running as
# root; otherwise the one command to run is printed.
missing=()
command -v pgbouncer >/dev/null || [ -x /usr/sbin/pgbouncer ] || missing+=(pgbouncer)
command -v chromium >/dev/null || missing+=(chromium)
command -v chromedriver >/dev/null || missing+=(chromium-driver)
# Caddy and cloud-init check the droplet's rendered documents, and Caddy fronts a simulated
# droplet on the command path (issue 18).
command -v caddy >/dev/null || missing+=(caddy)
command -v cloud-init >/dev/null || missing+=(cloud-init)
# Knot DNS is the authoritative server of tenants' domains in the wizard's DNS stage.
command -v knotd >/dev/null || [ -x /usr/sbin/knotd ] || missing+=(knot)
# promtool checks the alert rules shipped in deploy/observability/.
command -v promtool >/dev/null || missing+=(prometheus)
# schemathesis (the API contract test) and standardwebhooks (the webhook interop test) are
# installed from PyPI into virtualenvs.
python3 -c 'import venv, ensurepip' 2>/dev/null || missing+=(python3-venv)
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null; then
    echo "[test] installing ${missing[*]} with apt" >&2
    DEBIAN_FRONTEND=noninteractive apt-get update -qq >/dev/null
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
  else
    echo "Some tests need: sudo apt-get install -y ${missing[*]}" >&2
    exit 1
  fi
fi
# Debian's package starts a pgbouncer service on 6432; our tests start their own. Its caddy
# package starts a service on :80 and localhost:2019 where systemd runs; ours use neither.

# The fake n8n is checked against n8n's own OpenAPI document (from its npm tarball, cached).
GENESIS_N8N_OPENAPI="$(scripts/fetch-n8n-openapi.sh)"
export GENESIS_N8N_OPENAPI

# A real n8n 2.8.4 for the tests that hold the droplet path to it (installed with npm into a
# cache once: ~5 minutes and 2.3 GB the first time, nothing after).
GENESIS_N8N_HOME="$(scripts/n8n-install.sh)"
export GENESIS_N8N_HOME

# schemathesis 4.32.5 checks the API against its OpenAPI document (installed with pip into a
# cache once, ~30 seconds).
GENESIS_SCHEMATHESIS="$(scripts/schemathesis-install.sh)"
export GENESIS_SCHEMATHESIS

# The official Standard Webhooks library (PyPI) checks our webhook signatures both ways
# (installed with pip into a cache once, a few seconds).
GENESIS_STANDARDWEBHOOKS_PYTHON="$(scripts/standardwebhooks-install.sh)"
export GENESIS_STANDARDWEBHOOKS_PYTHON

# MailDev, a real SMTP server that keeps what it receives, for the e-mail tests (installed
# with npm into a cache once, ~20 seconds).
GENESIS_MAILDEV="$(scripts/maildev-install.sh)"
export GENESIS_MAILDEV

# Screenshots of the browser test land here (CI keeps them as artifacts).
export GENESIS_ARTIFACTS="${GENESIS_ARTIFACTS:-$PWD/target/artifacts/browser}"

echo "[test] promtool check rules deploy/observability/alerts.yml" >&2
promtool check rules deploy/observability/alerts.yml >&2

export SQLX_OFFLINE=true
if cargo nextest --version >/dev/null 2>&1; then
  cargo nextest run --workspace --all-targets --no-fail-fast
else
  cargo test --workspace --all-targets --no-fail-fast
fi
