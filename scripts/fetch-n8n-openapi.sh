#!/usr/bin/env bash
# Prints the path of n8n's own OpenAPI document for the pinned release, taken from the n8n npm
# package tarball (dist/public-api/v1/openapi.yml) and cached, so the fake n8n is checked
# against what n8n itself publishes. The tarball's SHA-256 is pinned.
set -euo pipefail
version=2.8.4
sha256=fd31b633e2afc50fdbff5a542d06193f2a3b21e82257f8df7d06d829a9f834f1
cache="${GENESIS_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/genesis}/n8n-$version"
out="$cache/openapi.yml"
if [ -s "$out" ]; then
  echo "$out"
  exit 0
fi
mkdir -p "$cache"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
url="https://registry.npmjs.org/n8n/-/n8n-$version.tgz"
if command -v curl >/dev/null; then
  curl -sSfL --retry 3 -o "$tmp/n8n.tgz" "$url"
elif command -v npm >/dev/null; then
  (cd "$tmp" && npm pack --silent "n8n@$version" >/dev/null && mv "n8n-$version.tgz" n8n.tgz)
else
  echo "fetch-n8n-openapi: need curl or npm to download $url" >&2
  exit 1
fi
echo "$sha256  $tmp/n8n.tgz" | sha256sum -c --quiet - >&2 || {
  echo "fetch-n8n-openapi: $url does not match the pinned SHA-256" >&2
  exit 1
}
tar -xzf "$tmp/n8n.tgz" -C "$tmp" package/dist/public-api/v1/openapi.yml
mv "$tmp/package/dist/public-api/v1/openapi.yml" "$out"
echo "$out"
