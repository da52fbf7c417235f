#!/usr/bin/env bash
# Docker test fixtures (idempotent): the image `strata-test/busybox:latest`, imported from a
# rootfs built with Debian's static busybox (nothing can be pulled from the internet), and
# a local registry (Debian's docker-registry) on 127.0.0.1:5000 holding the same image as
# `127.0.0.1:5000/strata-test/busybox:latest` for the force_pull_image tests. Needs root
# (apt-get) and a running Docker daemon; without a daemon it says so and exits 0, and the
# Docker tests skip (they fail under CI=true instead).
set -euo pipefail

IMAGE=strata-test/busybox:latest
REGISTRY=127.0.0.1:5000
REMOTE="$REGISTRY/strata-test/busybox:latest"
STATE=${STRATA_DOCKER_STATE:-${TMPDIR:-/tmp}/strata-docker-registry}
# Bumped whenever the image's content changes, so an older import is rebuilt.
VERSION=3

say() { echo "docker-setup: $*"; }

if ! command -v docker >/dev/null 2>&1 || ! docker info >/dev/null 2>&1; then
    say "no reachable Docker daemon; skipping (the Docker tests will skip, or fail under CI=true)"
    exit 0
fi

missing=()
dpkg -s busybox-static >/dev/null 2>&1 || missing+=(busybox-static)
command -v docker-registry >/dev/null 2>&1 || missing+=(docker-registry)
if [ ${#missing[@]} -gt 0 ]; then
    say "installing ${missing[*]} with apt-get"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq "${missing[@]}" >/dev/null
fi

if [ "$(docker image inspect -f '{{index .Config.Labels "strata.test.version"}}' "$IMAGE" 2>/dev/null)" = "$VERSION" ]; then
    say "image $IMAGE present"
else
    say "building $IMAGE from $(command -v busybox)"
    rootfs=$(mktemp -d)
    trap 'rm -rf "$rootfs"' EXIT
    mkdir -p "$rootfs"/{bin,tmp,etc,mnt/mesos/sandbox,root}
    chmod 1777 "$rootfs/tmp"
    cp "$(readlink -f "$(command -v busybox)")" "$rootfs/bin/busybox"
    # Static busybox runs in any rootfs; inside it, --install -s links every applet into
    # /bin (links to /bin/busybox, which the loop below also makes without chroot).
    chroot "$rootfs" /bin/busybox --install -s /bin 2>/dev/null || true
    for applet in $("$rootfs/bin/busybox" --list); do
        [ -e "$rootfs/bin/$applet" ] || ln -s busybox "$rootfs/bin/$applet"
    done
    printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n' >"$rootfs/etc/passwd"
    printf 'root:x:0:\nnogroup:x:65534:\n' >"$rootfs/etc/group"
    tar -C "$rootfs" -c . | docker import \
        -c 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
        -c 'CMD ["/bin/sh"]' -c "LABEL strata.test.version=$VERSION" - "$IMAGE" >/dev/null
    say "imported $IMAGE"
fi

registry_up() { curl -fsS "http://$REGISTRY/v2/" >/dev/null 2>&1; }
if registry_up; then
    say "a registry answers on $REGISTRY"
elif ss -ltn 2>/dev/null | grep -q "127.0.0.1:5000 \|:5000 "; then
    say "port 5000 is taken by something that is not a registry; skipping the registry image"
    exit 0
else
    mkdir -p "$STATE/storage"
    cat >"$STATE/config.yml" <<YAML
version: 0.1
log:
  level: warn
storage:
  filesystem:
    rootdirectory: $STATE/storage
  delete:
    enabled: true
http:
  addr: $REGISTRY
YAML
    say "starting docker-registry on $REGISTRY (storage $STATE/storage, log $STATE/registry.log)"
    nohup docker-registry serve "$STATE/config.yml" >"$STATE/registry.log" 2>&1 &
    for _ in $(seq 1 50); do registry_up && break; sleep 0.2; done
    registry_up || { say "the registry did not start:"; cat "$STATE/registry.log"; exit 1; }
fi

docker tag "$IMAGE" "$REMOTE"
say "pushing $REMOTE"
docker push "$REMOTE" >/dev/null
say "ready: $IMAGE and $REMOTE"
