#!/usr/bin/env bash
# Regenerates (default) or checks (--check) the sqlx offline query cache in `.sqlx/`.
#
# The query macros are expanded live against a freshly migrated scratch database, with
# SQLX_OFFLINE_DIR pointing at a temp dir where the macros write one file per query; the
# result replaces `.sqlx/` or is compared with it. Needs DATABASE_URL (an administrator login):
# run it as `scripts/with-services.sh scripts/sqlx-prepare.sh [--check]`.
# (Same mechanism as `cargo sqlx prepare`, without installing sqlx-cli.)
set -euo pipefail
cd "$(dirname "$0")/.."
mode=${1:-write}
: "${DATABASE_URL:?DATABASE_URL must point at a PostgreSQL server}"

db="genesis_sqlx_$$"
base=${DATABASE_URL%/*}
psql -qX "$DATABASE_URL" -c "CREATE DATABASE $db" >/dev/null
trap 'psql -qX "$DATABASE_URL" -c "DROP DATABASE IF EXISTS $db WITH (FORCE)" >/dev/null' EXIT
psql -qX -v ON_ERROR_STOP=1 "$base/$db" -f crates/store/sql/bootstrap.sql >/dev/null
for f in crates/store/migrations/*.sql; do
  psql -qX -v ON_ERROR_STOP=1 "$base/$db" -c "SET ROLE genesis_owner" -f "$f" >/dev/null
done

out=$(mktemp -d)
trap 'rm -rf "$out"; psql -qX "$DATABASE_URL" -c "DROP DATABASE IF EXISTS $db WITH (FORCE)" >/dev/null' EXIT
# Force the macros to re-expand: touch every source of the crates that use them.
find crates/store/src -name '*.rs' -exec touch {} +
SQLX_OFFLINE=false SQLX_OFFLINE_DIR="$out" DATABASE_URL="$base/$db" \
  cargo check -q -p genesis-store --all-targets

if [ "$mode" = "--check" ]; then
  if ! diff -r -q "$out" .sqlx >/dev/null 2>&1; then
    echo "The sqlx offline cache (.sqlx/) is stale. Regenerate it with:" >&2
    echo "  scripts/with-services.sh scripts/sqlx-prepare.sh" >&2
    diff -r -q "$out" .sqlx >&2 || true
    exit 1
  fi
  echo "sqlx offline cache is up to date ($(ls "$out" | wc -l) queries)"
else
  rm -rf .sqlx
  mkdir -p .sqlx
  cp "$out"/*.json .sqlx/
  echo "wrote $(ls .sqlx | wc -l) queries to .sqlx/"
fi
