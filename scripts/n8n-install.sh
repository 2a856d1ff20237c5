#!/usr/bin/env bash
# Installs the pinned n8n (2.8.4, the newest release that runs on Node.js 20) with npm into a
# cache directory, once, and prints that directory. The first install downloads about 2 GB
# and takes about 5 minutes; later calls return at once. Progress goes to stderr.
#
#   GENESIS_CACHE_DIR   where the cache lives (default ~/.cache/genesis)
set -euo pipefail
version=2.8.4
dir="${GENESIS_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/genesis}/n8n-real-$version"
if [ -x "$dir/node_modules/.bin/n8n" ] && [ -f "$dir/.complete" ]; then
  echo "$dir"
  exit 0
fi
if ! command -v npm >/dev/null || ! command -v node >/dev/null; then
  echo "n8n-install: Node.js 20 and npm are needed (sudo apt-get install -y nodejs npm)" >&2
  exit 1
fi
major=$(node -p 'process.versions.node.split(".")[0]')
if [ "$major" -lt 20 ]; then
  echo "n8n-install: n8n $version needs Node.js 20 or newer; this is $(node --version)" >&2
  exit 1
fi
mkdir -p "$dir"
# n8n's dependency xlsx points at a non-registry URL; the override takes the same code from
# the registry.
cat > "$dir/package.json" <<JSON
{
  "name": "genesis-n8n-runner",
  "private": true,
  "dependencies": { "n8n": "$version" },
  "overrides": { "xlsx": "npm:@e965/xlsx@0.20.2" }
}
JSON
echo "[n8n-install] installing n8n $version into $dir (first run only: ~2 GB, ~5 minutes)" >&2
started=$(date +%s)
(cd "$dir" && npm install --no-audit --no-fund --omit=dev --loglevel=error >&2)
"$dir/node_modules/.bin/n8n" --version >/dev/null 2>&1 || {
  echo "n8n-install: the installed n8n does not run" >&2
  exit 1
}
touch "$dir/.complete"
echo "[n8n-install] done in $(( $(date +%s) - started )) s" >&2
echo "$dir"
