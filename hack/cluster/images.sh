#!/usr/bin/env bash
# images.sh — build Cobalt's images offline and load them into the e2e cluster's containerd:
# static binaries (CGO_ENABLED=0) of cmd/manager and cmd/node-daemon packed by hack/mkimage into
# docker-archive tarballs, imported with `ctr images import` into the k8s.io namespace (where the
# kubelet looks). No registry, no Docker. Also builds the cobalt CLI the suite drives.
# The node daemon's image also carries the host's mount, mkfs, fsck and resize programs with
# their shared libraries (the CSI node plugin runs them); csi-provisioner, csi-attacher,
# csi-resizer, csi-snapshotter and snapshot-controller are built by build-csi-sidecars.sh and packed under the
# chart's default image names.
#   IMAGE_TAG [e2e]: tag of cobalt/manager and cobalt/node-daemon.
# The chart must then run them with pullPolicy IfNotPresent (nothing can be pulled here).
set -euo pipefail
LOG_TAG=images
# shellcheck source=env.sh
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
IMAGE_TAG=${IMAGE_TAG:-e2e}
mkdir -p "$E2E_BIN" "$IMAGES" "$LOGS"

t0=$(date +%s)
(cd "$REPO_ROOT" && for pkg in cmd/manager cmd/node-daemon cmd/cobalt test/e2e/workload; do
  CGO_ENABLED=0 go build -trimpath -ldflags '-s -w' -o "$E2E_BIN/$(basename "$pkg")" "./$pkg" || exit 1
done) || die "building cmd/manager, cmd/node-daemon, cmd/cobalt, test/e2e/workload failed"
[ -x "$LOCALBIN/mkimage" ] || (cd "$REPO_ROOT" && CGO_ENABLED=0 go build -o "$LOCALBIN/mkimage" ./hack/mkimage)
log "binaries built in $(( $(date +%s) - t0 ))s"

# The upstream CSI sidecars the chart runs next to the operator, and the snapshot-controller it
# runs for clusters without one, built from their Go modules (cached in $LOCALBIN/csi; cold, on 2
# busy cores: csi-provisioner ~8–12 min, csi-attacher ~12 min, csi-resizer ~13–20 min, external-snapshotter ~5–30 min).
t0=$(date +%s)
"$REPO_ROOT/hack/cluster/build-csi-sidecars.sh" "$LOCALBIN/csi" || die "building the CSI sidecars failed"
log "CSI sidecars ready in $(( $(date +%s) - t0 ))s"

# host_program_files PROGRAM...: mkimage -f arguments for each program (found on PATH) and every
# shared library ldd resolves for it, the dynamic loader included, each at its real path (so
# /lib/x86_64-linux-gnu/libc.so.6 lands in /usr/lib/... on a merged-/usr host), then -l
# arguments for the host's top-level links (/bin -> usr/bin, ...) through which the programs'
# ELF interpreter and search paths find them.
host_program_files() {
  local p f real libs=() seen=" "
  for p in "$@"; do
    f=$(command -v "$p") || die "$p is not installed (up.sh installs util-linux, e2fsprogs, xfsprogs)"
    libs+=("$f")
    # "name => /path (addr)", "/lib64/ld-linux-x86-64.so.2 (addr)"; linux-vdso has no file.
    while read -r lib; do libs+=("$lib"); done < <(ldd "$f" 2>/dev/null | awk '$2 == "=>" && $3 ~ /^\// {print $3} $1 ~ /^\// {print $1}')
  done
  for f in "${libs[@]}"; do
    real="$(readlink -f "$(dirname "$f")")/$(basename "$f")"
    case $seen in *" $real "*) continue ;; esac
    seen+="$real "
    printf -- '-f\n%s=%s\n' "$real" "$(readlink -f "$f")"
  done
  for l in /bin /sbin /lib /lib64; do
    [ -L "$l" ] && printf -- '-l\n%s=%s\n' "$l" "$(readlink "$l")"
  done
  return 0
}
# What the node daemon's CSI node plugin runs (k8s.io/mount-utils and the node plugin): mount,
# umount, blkid, fsck (it runs `fsck -a` before mounting a formatted volume read-write; fsck
# runs fsck.ext4, and fsck.xfs, a shell script), mkfs.*, resize2fs, xfs_growfs, blockdev, losetup.
NODE_PROGRAMS=(mount umount blkid losetup blockdev fsck fsck.ext4 e2fsck mkfs.ext4 resize2fs mkfs.xfs fsck.xfs xfs_growfs sh)
mapfile -t node_files < <(host_program_files "${NODE_PROGRAMS[@]}")
[ -f /etc/mke2fs.conf ] && node_files+=(-f /etc/mke2fs.conf=/etc/mke2fs.conf)
# e2fsprogs and util-linux look for mounted file systems in /etc/mtab.
node_files+=(-l /etc/mtab=../proc/self/mounts)

# The operator runs as 65532 with a read-only root filesystem; the node daemon runs as root.
mkimage -o "$IMAGES/manager.tar" -t "cobalt/manager:$IMAGE_TAG" -entrypoint /manager -user 65532:65532 \
  -f "/manager=$E2E_BIN/manager" -dir /tmp:1777
mkimage -o "$IMAGES/node-daemon.tar" -t "cobalt/node-daemon:$IMAGE_TAG" -entrypoint /node-daemon \
  -env PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
  -f "/node-daemon=$E2E_BIN/node-daemon" -dir /tmp:1777 "${node_files[@]}"
# The sidecars under the names and tags of the chart's defaults (values.yaml), static, as the
# distroless "nonroot" user like the upstream images run them; pullPolicy IfNotPresent finds them.
mkimage -o "$IMAGES/csi-provisioner.tar" -t "registry.k8s.io/sig-storage/csi-provisioner:${CSI_PROVISIONER_VERSION:-v6.4.0}" \
  -entrypoint /csi-provisioner -user 65532:65532 -f "/csi-provisioner=$LOCALBIN/csi/csi-provisioner"
mkimage -o "$IMAGES/csi-attacher.tar" -t "registry.k8s.io/sig-storage/csi-attacher:${CSI_ATTACHER_VERSION:-v4.13.0}" \
  -entrypoint /csi-attacher -user 65532:65532 -f "/csi-attacher=$LOCALBIN/csi/csi-attacher"
mkimage -o "$IMAGES/csi-resizer.tar" -t "registry.k8s.io/sig-storage/csi-resizer:${CSI_RESIZER_VERSION:-v2.3.0}" \
  -entrypoint /csi-resizer -user 65532:65532 -f "/csi-resizer=$LOCALBIN/csi/csi-resizer"
mkimage -o "$IMAGES/csi-snapshotter.tar" -t "registry.k8s.io/sig-storage/csi-snapshotter:${CSI_SNAPSHOTTER_VERSION:-v8.7.0}" \
  -entrypoint /csi-snapshotter -user 65532:65532 -f "/csi-snapshotter=$LOCALBIN/csi/csi-snapshotter"
mkimage -o "$IMAGES/snapshot-controller.tar" -t "registry.k8s.io/sig-storage/snapshot-controller:${CSI_SNAPSHOTTER_VERSION:-v8.7.0}" \
  -entrypoint /snapshot-controller -user 65532:65532 -f "/snapshot-controller=$LOCALBIN/csi/snapshot-controller"
# What the suite's Pods run on Cobalt volumes (test/e2e/workload); as root, since it also opens
# a raw block device, which kubelet does not give a Pod's fsGroup.
mkimage -o "$IMAGES/e2e-workload.tar" -t "cobalt/e2e-workload:$IMAGE_TAG" -entrypoint /workload \
  -f "/workload=$E2E_BIN/workload" -dir /tmp:1777
if running containerd; then
  for img in manager node-daemon csi-provisioner csi-attacher csi-resizer csi-snapshotter snapshot-controller e2e-workload; do
    ctr_ images import "$IMAGES/$img.tar" >>"$LOGS/images.log" 2>&1 || die "import of $img failed, see $LOGS/images.log"
  done
  log "imported: $(ctr_ images ls -q | grep -E 'cobalt/|sig-storage/' | tr '\n' ' ')"
else
  log "containerd of the e2e cluster is not running: tarballs left in $IMAGES"
fi
