#!/usr/bin/env bash
# Installs the pinned `standardwebhooks` (the official Standard Webhooks library, from PyPI)
# into a virtualenv in a cache directory, once, and prints the path of its `python`. The
# webhook interop test signs with it and verifies what we sign.
set -euo pipefail
exec "$(dirname "$0")/pypi-venv.sh" standardwebhooks 1.1.0 python -c 'import standardwebhooks'
