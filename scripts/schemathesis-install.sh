#!/usr/bin/env bash
# Installs the pinned schemathesis (the API contract tester, from PyPI) into a virtualenv in
# a cache directory, once, and prints the path of its `schemathesis` command. Progress goes
# to stderr.
#
#   GENESIS_CACHE_DIR   where the cache lives (default ~/.cache/genesis)
set -euo pipefail
version=4.32.5
dir="${GENESIS_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/genesis}/schemathesis-$version"
bin="$dir/bin/schemathesis"
if [ -x "$bin" ] && [ -f "$dir/.complete" ]; then
  echo "$bin"
  exit 0
fi
python=$(command -v python3 || true)
if [ -z "$python" ] || ! "$python" -c 'import venv, ensurepip' 2>/dev/null; then
  echo "schemathesis-install: Python 3 with venv is needed (sudo apt-get install -y python3-venv)" >&2
  exit 1
fi
echo "[schemathesis-install] installing schemathesis $version into $dir (first run only)" >&2
rm -rf "$dir"
"$python" -m venv "$dir"
"$dir/bin/pip" install --quiet --disable-pip-version-check "schemathesis==$version" >&2
"$bin" --version >/dev/null
touch "$dir/.complete"
echo "$bin"
