#!/usr/bin/env bash
# Builds the Kubernetes test tools from Go modules into .cache/kube-bin/ (git-ignored):
#   kube-apiserver  k8s.io/kubernetes/cmd/kube-apiserver (tools/kube/go.mod maps the staging modules)
#   etcd            go.etcd.io/etcd/server/v3 (the etcd main; same etcd version kubernetes pins)
#   helm            helm.sh/helm/v3/cmd/helm
#   yaml2json       tools/kube/cmd/yaml2json: YAML stream -> JSON array, for the chart tests
#   crds/           the prometheus-operator CRDs (ServiceMonitor, PrometheusRule) from its Go module
# and through tools/kube/prometheus.sh into .cache/prometheus/ (Debian's package, unpacked, not installed):
#   prometheus, promtool  the live scrape of test/k8s-node; the rule checks and unit tests of test/k8s
# and into .cache/kube-node-bin/ (KUBE_NODE_BIN_DIR) for test/k8s-node:
#   kube-scheduler, kube-controller-manager  k8s.io/kubernetes/cmd/..., the apiserver's version
#   kubelet, kube-proxy                      the node's half, same version (test/k8s-node/node.test.ts)
#   coredns                                  tools/kube/coredns: github.com/coredns/coredns with the cluster-DNS plugins, the node's cluster DNS
#   metrics-server                           tools/kube/metrics-server: sigs.k8s.io/metrics-server v0.8.0 on its own k8s.io v0.33 pins, for the HPA
# Idempotent: a tool whose binary exists and whose stamp names the same version is skipped.
# Environment: KUBE_BIN_DIR (default <repo>/.cache/kube-bin), GOFLAGS (e.g. -p=1 on a busy machine).
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
bin="${KUBE_BIN_DIR:-$root/.cache/kube-bin}"
mkdir -p "$bin"
# Test files may call this concurrently: one builds, the others wait and then find it cached.
exec 9>"$bin/.build.lock"
flock 9
command -v go >/dev/null 2>&1 || export PATH="$PATH:/usr/local/go/bin"
export GOFLAGS="${GOFLAGS:-} -buildvcs=false"
export CGO_ENABLED=0

HELM_VERSION="v3.22.0"
HELM_K8S_MINOR="37" # helm v3.22 is built on the k8s.io v0.37 libraries
HELM_STAMP="$HELM_VERSION+k8s1.$HELM_K8S_MINOR"
PROMETHEUS_OPERATOR_VERSION="v0.85.0"
# kubernetes and etcd versions come from tools/kube/go.mod.
KUBERNETES_VERSION="$(cd "$here" && go list -m -f '{{.Version}}' k8s.io/kubernetes)"
ETCD_VERSION="$(cd "$here" && go list -m -f '{{.Version}}' go.etcd.io/etcd/server/v3)"

log() { printf '[kube-build] %s\n' "$*" >&2; }

# up_to_date NAME VERSION: the binary exists and was built from VERSION.
up_to_date() { [ -e "$bin/$1" ] && [ "$(cat "$bin/$1.version" 2>/dev/null)" = "$2" ]; }
stamp() { printf '%s\n' "$2" >"$bin/$1.version"; }

timed() {
  local name="$1"
  shift
  local start=$SECONDS
  "$@"
  log "$name built in $((SECONDS - start)) s"
}

build_in_wrapper() {
  # $1 output name, $2 package, $3 extra ldflags: built inside tools/kube so go.mod's replaces apply.
  (cd "$here" && go build -trimpath -ldflags="-s -w ${3:-}" -o "$bin/$1.tmp" "$2")
  mv "$bin/$1.tmp" "$bin/$1"
}

# What kubernetes' own build stamps (hack/lib/version.sh); /version then reports the real release.
kube_ldflags() {
  local v="$1" minor
  minor="$(printf '%s' "$v" | cut -d. -f2)"
  for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
    printf ' -X %s.gitVersion=%s -X %s.gitMajor=1 -X %s.gitMinor=%s -X %s.gitTreeState=clean' \
      "$pkg" "$v" "$pkg" "$pkg" "$minor" "$pkg"
  done
}

if up_to_date kube-apiserver "$KUBERNETES_VERSION+stamped"; then
  log "kube-apiserver $KUBERNETES_VERSION cached"
else
  log "building kube-apiserver $KUBERNETES_VERSION (first build takes minutes)"
  timed kube-apiserver build_in_wrapper kube-apiserver k8s.io/kubernetes/cmd/kube-apiserver "$(kube_ldflags "$KUBERNETES_VERSION")"
  stamp kube-apiserver "$KUBERNETES_VERSION+stamped"
fi

if up_to_date etcd "$ETCD_VERSION"; then
  log "etcd $ETCD_VERSION cached"
else
  log "building etcd $ETCD_VERSION"
  timed etcd build_in_wrapper etcd go.etcd.io/etcd/server/v3
  stamp etcd "$ETCD_VERSION"
fi

# Tests parse helm output with Kubernetes' own YAML code (no field renamed or dropped).
YAML2JSON_STAMP="$(cat "$here/cmd/yaml2json/main.go" "$here/go.sum" | sha256sum | cut -c1-16)"
if up_to_date yaml2json "$YAML2JSON_STAMP"; then
  log "yaml2json cached"
else
  timed yaml2json build_in_wrapper yaml2json ./cmd/yaml2json
  stamp yaml2json "$YAML2JSON_STAMP"
fi

if up_to_date helm "$HELM_STAMP"; then
  log "helm $HELM_VERSION cached"
else
  log "building helm $HELM_VERSION"
  # Outside tools/kube: helm pins its own k8s.io module versions.
  # The same -X flags as helm's Makefile: without them helm reports v3-dev and assumes Kubernetes 1.20.
  ldflags="-s -w -X helm.sh/helm/v3/internal/version.version=$HELM_VERSION"
  for pkg in helm.sh/helm/v3/pkg/lint/rules helm.sh/helm/v3/pkg/chartutil; do
    ldflags="$ldflags -X $pkg.k8sVersionMajor=1 -X $pkg.k8sVersionMinor=$HELM_K8S_MINOR"
  done
  timed helm env GOBIN="$bin" GOWORK=off go install -trimpath -ldflags="$ldflags" "helm.sh/helm/v3/cmd/helm@$HELM_VERSION"
  stamp helm "$HELM_STAMP"
fi

if up_to_date crds "$PROMETHEUS_OPERATOR_VERSION"; then
  log "prometheus-operator CRDs $PROMETHEUS_OPERATOR_VERSION cached"
else
  # Outside any Go module: download just this module and read where it landed.
  dir="$(cd "$bin" && GOWORK=off GOFLAGS= go mod download -json \
    "github.com/prometheus-operator/prometheus-operator@$PROMETHEUS_OPERATOR_VERSION" |
    sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')"
  if [ -z "$dir" ] || [ ! -d "$dir/example/prometheus-operator-crd" ]; then
    log "prometheus-operator module has no example/prometheus-operator-crd (dir: '$dir')"
    exit 1
  fi
  rm -rf "$bin/crds"
  mkdir -p "$bin/crds"
  cp "$dir"/example/prometheus-operator-crd/monitoring.coreos.com_{servicemonitors,prometheusrules,podmonitors}.yaml "$bin/crds/"
  chmod u+w "$bin"/crds/*
  printf '%s\n' "$PROMETHEUS_OPERATOR_VERSION" >"$bin/crds.version"
  log "prometheus-operator CRDs $PROMETHEUS_OPERATOR_VERSION copied"
fi

# Prometheus and promtool: Debian's build, unpacked (building them from the Go module took ~9 min cold).
bash "$here/prometheus.sh"

# Control plane for test/k8s-node, same version as the apiserver, in a directory of its own
# (KUBE_NODE_BIN_DIR) so the cached tools above are never rebuilt for it.
node_bin="${KUBE_NODE_BIN_DIR:-$root/.cache/kube-node-bin}"
mkdir -p "$node_bin"
for component in kube-scheduler kube-controller-manager kubelet kube-proxy; do
  if [ -e "$node_bin/$component" ] && [ "$(cat "$node_bin/$component.version" 2>/dev/null)" = "$KUBERNETES_VERSION+stamped" ]; then
    log "$component $KUBERNETES_VERSION cached"
  else
    log "building $component $KUBERNETES_VERSION (first build takes minutes)"
    start=$SECONDS
    (cd "$here" && go build -trimpath -ldflags="-s -w $(kube_ldflags "$KUBERNETES_VERSION")" \
      -o "$node_bin/$component.tmp" "k8s.io/kubernetes/cmd/$component")
    mv "$node_bin/$component.tmp" "$node_bin/$component"
    printf '%s\n' "$KUBERNETES_VERSION+stamped" >"$node_bin/$component.version"
    log "$component built in $((SECONDS - start)) s"
  fi
done

# The node's cluster DNS (helm test dials <release>.<namespace>.svc).
COREDNS_VERSION="v1.15.0"
# The stamp names the plugin set too: a build of another main.go must not count as cached.
coredns_stamp="$COREDNS_VERSION $(sha256sum "$here/coredns/main.go" "$here/coredns/go.mod" | sha256sum | cut -c1-12)"
if [ -e "$node_bin/coredns" ] && [ "$(cat "$node_bin/coredns.version" 2>/dev/null)" = "$coredns_stamp" ]; then
  log "coredns $COREDNS_VERSION cached"
else
  log "building coredns $COREDNS_VERSION (cluster-DNS plugins only)"
  start=$SECONDS
  # Its own module (tools/kube/coredns): CoreDNS pins its own k8s.io client versions.
  (cd "$here/coredns" && GOWORK=off go build -trimpath -ldflags="-s -w" -o "$node_bin/coredns" .)
  printf '%s\n' "$coredns_stamp" >"$node_bin/coredns.version"
  log "coredns built in $((SECONDS - start)) s"
fi

# The HPA's resource metrics. Its own module (tools/kube/metrics-server) on metrics-server's own k8s.io
# v0.33 pins: on the apiserver's v0.37.2 it compiles but exits at start (its generated OpenAPI names no
# longer match the models of k8s.io/apimachinery v0.37: "cannot find model definition for
# io.k8s.apimachinery.pkg.version.Info"), so it cannot reuse the apiserver's compiled packages.
METRICS_SERVER_VERSION="$(cd "$here/metrics-server" && GOWORK=off go list -m -f '{{.Version}}' sigs.k8s.io/metrics-server)"
metrics_server_stamp="$METRICS_SERVER_VERSION $(sha256sum "$here/metrics-server/go.mod" | cut -c1-12)"
if [ -e "$node_bin/metrics-server" ] && [ "$(cat "$node_bin/metrics-server.version" 2>/dev/null)" = "$metrics_server_stamp" ]; then
  log "metrics-server $METRICS_SERVER_VERSION cached"
else
  log "building metrics-server $METRICS_SERVER_VERSION"
  start=$SECONDS
  (cd "$here/metrics-server" && GOWORK=off go build -trimpath -ldflags="-s -w" -o "$node_bin/metrics-server.tmp" sigs.k8s.io/metrics-server/cmd/metrics-server)
  mv "$node_bin/metrics-server.tmp" "$node_bin/metrics-server"
  printf '%s\n' "$metrics_server_stamp" >"$node_bin/metrics-server.version"
  log "metrics-server built in $((SECONDS - start)) s"
fi

log "ready in $bin, $node_bin and ${PROMETHEUS_DIR:-$root/.cache/prometheus}"
