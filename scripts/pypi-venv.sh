#!/usr/bin/env bash
# Installs one pinned package from PyPI into its own virtualenv in the cache directory, once,
# and prints the path of one of the virtualenv's commands. Progress goes to stderr.
#
#   scripts/pypi-venv.sh PACKAGE VERSION COMMAND CHECK...
#
# COMMAND is the file under the virtualenv's bin/ to print; CHECK is run (with COMMAND's
# path first) to prove the install works before it is marked complete.
#
#   GENESIS_CACHE_DIR   where the cache lives (default ~/.cache/genesis)
set -euo pipefail
package=$1 version=$2 command=$3
shift 3
dir="${GENESIS_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/genesis}/$package-$version"
bin="$dir/bin/$command"
if [ -x "$bin" ] && [ -f "$dir/.complete" ]; then
  echo "$bin"
  exit 0
fi
python=$(command -v python3 || true)
if [ -z "$python" ] || ! "$python" -c 'import venv, ensurepip' 2>/dev/null; then
  echo "$package: Python 3 with venv is needed (sudo apt-get install -y python3-venv)" >&2
  exit 1
fi
echo "[$package] installing $package $version into $dir (first run only)" >&2
rm -rf "$dir"
"$python" -m venv "$dir"
"$dir/bin/pip" install --quiet --disable-pip-version-check "$package==$version" >&2
"$bin" "$@" >/dev/null
touch "$dir/.complete"
echo "$bin"
