#!/usr/bin/env bash
# images.sh — build Cobalt's images offline and load them into the e2e cluster's containerd:
# static binaries (CGO_ENABLED=0) of cmd/manager and cmd/node-daemon packed by hack/mkimage into
# docker-archive tarballs, imported with `ctr images import` into the k8s.io namespace (where the
# kubelet looks). No registry, no Docker. Also builds the cobalt CLI the suite drives.
#   IMAGE_TAG [e2e]: tag of cobalt/manager and cobalt/node-daemon.
# The chart must then run them with pullPolicy IfNotPresent (nothing can be pulled here).
set -euo pipefail
LOG_TAG=images
# shellcheck source=env.sh
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
IMAGE_TAG=${IMAGE_TAG:-e2e}
mkdir -p "$E2E_BIN" "$IMAGES" "$LOGS"

t0=$(date +%s)
(cd "$REPO_ROOT" && for cmd in manager node-daemon cobalt; do
  CGO_ENABLED=0 go build -trimpath -ldflags '-s -w' -o "$E2E_BIN/$cmd" "./cmd/$cmd" || exit 1
done) || die "building cmd/manager, cmd/node-daemon, cmd/cobalt failed"
[ -x "$LOCALBIN/mkimage" ] || (cd "$REPO_ROOT" && CGO_ENABLED=0 go build -o "$LOCALBIN/mkimage" ./hack/mkimage)
log "binaries built in $(( $(date +%s) - t0 ))s"

# The operator runs as 65532 with a read-only root filesystem; the node daemon runs as root.
mkimage -o "$IMAGES/manager.tar" -t "cobalt/manager:$IMAGE_TAG" -entrypoint /manager -user 65532:65532 \
  -f "/manager=$E2E_BIN/manager" -dir /tmp:1777
mkimage -o "$IMAGES/node-daemon.tar" -t "cobalt/node-daemon:$IMAGE_TAG" -entrypoint /node-daemon \
  -f "/node-daemon=$E2E_BIN/node-daemon" -dir /tmp:1777
if running containerd; then
  for img in manager node-daemon; do
    ctr_ images import "$IMAGES/$img.tar" >>"$LOGS/images.log" 2>&1 || die "import of $img failed, see $LOGS/images.log"
  done
  log "imported: $(ctr_ images ls -q | grep cobalt/ | tr '\n' ' ')"
else
  log "containerd of the e2e cluster is not running: tarballs left in $IMAGES"
fi
