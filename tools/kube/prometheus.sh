#!/usr/bin/env bash
# Unpacks Debian's prometheus package (server + promtool) into .cache/prometheus/ without installing
# it: its postinst would create a user and start a daemon. Building Prometheus' server from its Go
# module takes far longer than CI's budget allows; the package is static Go (needs only libc).
#   .cache/prometheus/usr/bin/prometheus  test/k8s-node: scrapes the relay pods, evaluates the chart's rules
#   .cache/prometheus/usr/bin/promtool    test/k8s: checks and unit-tests the alert rules
# Idempotent: skipped when the stamp names the same package version.
# Environment: PROMETHEUS_DIR (default <repo>/.cache/prometheus).
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
dir="${PROMETHEUS_DIR:-$root/.cache/prometheus}"
# Debian bookworm's version; a security update changes it (apt-get download then names the new one).
PROMETHEUS_DEB_VERSION="2.42.0+ds-5+deb12u1"

log() { printf '[prometheus] %s\n' "$*" >&2; }

if [ -x "$dir/usr/bin/prometheus" ] && [ "$(cat "$dir.version" 2>/dev/null)" = "$PROMETHEUS_DEB_VERSION" ]; then
  log "prometheus $PROMETHEUS_DEB_VERSION cached"
  exit 0
fi
start=$SECONDS
work="$(mktemp -d)"
chmod a+rwx "$work" # apt-get download fetches as the _apt user
trap 'rm -rf "$work"' EXIT
# apt-get download needs package lists; a fresh machine may have none yet.
if ! (cd "$work" && apt-get download -q "prometheus=$PROMETHEUS_DEB_VERSION" >&2); then
  log "no package list names prometheus=$PROMETHEUS_DEB_VERSION: apt-get update"
  apt-get update -q >&2
  (cd "$work" && apt-get download -q "prometheus=$PROMETHEUS_DEB_VERSION" >&2)
fi
rm -rf "$dir.tmp"
dpkg-deb -x "$work"/prometheus_*.deb "$dir.tmp"
"$dir.tmp/usr/bin/prometheus" --version >/dev/null
"$dir.tmp/usr/bin/promtool" --version >/dev/null
rm -rf "$dir"
mv "$dir.tmp" "$dir"
printf '%s\n' "$PROMETHEUS_DEB_VERSION" >"$dir.version"
log "prometheus $PROMETHEUS_DEB_VERSION unpacked in $((SECONDS - start)) s"
