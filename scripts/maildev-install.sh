#!/usr/bin/env bash
# Installs the pinned MailDev (a real SMTP server that keeps what it receives and shows it on
# a web page and a REST API, from npm) into a cache directory, once, and prints the path of
# its executable. The e-mail tests send to it and read back what arrived; the demo prints its
# web address.
#
#   GENESIS_CACHE_DIR   where the cache lives (default ~/.cache/genesis)
set -euo pipefail
version=3.0.0
dir="${GENESIS_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/genesis}/maildev-$version"
bin="$dir/node_modules/.bin/maildev"
if [ -x "$bin" ] && [ -f "$dir/.complete" ]; then
  echo "$bin"
  exit 0
fi
if ! command -v npm >/dev/null; then
  echo "maildev-install: Node.js and npm are needed (sudo apt-get install -y nodejs npm)" >&2
  exit 1
fi
mkdir -p "$dir"
cat > "$dir/package.json" <<JSON
{ "name": "genesis-maildev", "private": true, "dependencies": { "maildev": "$version" } }
JSON
echo "[maildev-install] installing maildev $version into $dir (first run only, ~20 s)" >&2
(cd "$dir" && npm install --no-audit --no-fund --omit=dev --loglevel=error >&2)
"$bin" --help >/dev/null 2>&1 || {
  echo "maildev-install: the installed maildev does not run" >&2
  exit 1
}
touch "$dir/.complete"
echo "$bin"
