#!/usr/bin/env bash
# Installs the pinned schemathesis (the API contract tester, from PyPI) into a virtualenv in
# a cache directory, once, and prints the path of its `schemathesis` command.
set -euo pipefail
exec "$(dirname "$0")/pypi-venv.sh" schemathesis 4.32.5 schemathesis --version
