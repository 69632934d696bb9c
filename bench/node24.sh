#!/usr/bin/env bash
# Prints the path of the Node 24 binary (tools/node24.sh fetches it once), for
# BENCH_NODE=$(bash bench/node24.sh) npm run bench:throughput.
set -euo pipefail
echo "$(bash "$(dirname "$0")/../tools/node24.sh")/bin/node"
