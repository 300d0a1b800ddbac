#!/usr/bin/env bash
# build-csi-sidecars.sh DIR — build the upstream CSI sidecars Cobalt's controller plugin runs with
# (csi-provisioner, csi-attacher, csi-resizer, csi-snapshotter) and the snapshot-controller the chart bundles from
# their Go modules into DIR, skipping those already there.
# Users pull the upstream images (versions pinned in the chart's values); the e2e cluster cannot
# pull, so it packs these builds into images of the same names (images.sh).
#   csi-resizer builds with `go install`. csi-provisioner's and csi-attacher's go.mod have replace
#   directives, which `go install pkg@version` refuses: each module is downloaded, copied out of the
#   read-only module cache and built in place. external-snapshotter (csi-snapshotter and snapshot-controller, one
#   module) likewise, after its replace of the client module by the in-tree copy is swapped for a
#   requirement of the published client module at the same version. Static builds
#   (CGO_ENABLED=0), so the images need no libc.
# Cold, on 2 busy cores: csi-provisioner ~8–12 min, csi-attacher ~12 min, csi-resizer ~13–20 min, external-snapshotter
# ~5–30 min for both (28 min at a load average of 15; snapshot-controller then 18 s), by load;
# later runs reuse DIR.
set -euo pipefail
DIR=${1:?usage: build-csi-sidecars.sh DIR}
PROVISIONER_VERSION=${CSI_PROVISIONER_VERSION:-v6.4.0}
ATTACHER_VERSION=${CSI_ATTACHER_VERSION:-v4.13.0}
RESIZER_VERSION=${CSI_RESIZER_VERSION:-v2.3.0}
SNAPSHOTTER_VERSION=${CSI_SNAPSHOTTER_VERSION:-v8.7.0}
log() { echo "build-csi-sidecars: $*" >&2; }
mkdir -p "$DIR"
DIR=$(cd "$DIR" && pwd)
export CGO_ENABLED=0

stamp() { echo "$DIR/.$1-$2"; }

# module_src MODULE VERSION NAME — a writable copy of MODULE@VERSION under $DIR/.src/NAME-VERSION
# (the module cache is read-only); prints its path.
module_src() {
  local src work
  src=$(cd "$DIR" && GOFLAGS=-mod=mod go mod download -json "$1@$2" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",*$/\1/p')
  [ -d "$src" ] || { log "could not download $1@$2"; exit 1; }
  work="$DIR/.src/$3-$2"
  if [ ! -f "$work/go.mod" ]; then
    rm -rf "$work"; mkdir -p "$(dirname "$work")"
    cp -r "$src" "$work"; chmod -R u+w "$work"
  fi
  echo "$work"
}

# csi-snapshotter and snapshot-controller: one module, whose go.mod replaces the client module by
# its in-tree ./client (not part of the published module zip): require the published one instead.
for bin in csi-snapshotter snapshot-controller; do
  if [ ! -x "$DIR/$bin" ] || [ ! -f "$(stamp "$bin" "$SNAPSHOTTER_VERSION")" ]; then
    t0=$(date +%s); log "building $bin $SNAPSHOTTER_VERSION"
    work=$(module_src github.com/kubernetes-csi/external-snapshotter/v8 "$SNAPSHOTTER_VERSION" external-snapshotter)
    client=github.com/kubernetes-csi/external-snapshotter/client/v8
    if [ ! -f "$work/.client-required" ]; then
      (cd "$work" && go mod edit -dropreplace "$client" -require "$client@$SNAPSHOTTER_VERSION" \
        && GOFLAGS=-mod=mod go get "$client@$SNAPSHOTTER_VERSION")
      touch "$work/.client-required"
    fi
    (cd "$work" && GOFLAGS=-mod=mod go build -trimpath -ldflags "-s -w -X main.version=$SNAPSHOTTER_VERSION" -o "$DIR/$bin" "./cmd/$bin")
    rm -f "$DIR/.$bin-"*; touch "$(stamp "$bin" "$SNAPSHOTTER_VERSION")"
    log "$bin built in $(( $(date +%s) - t0 ))s"
  fi
done

if [ ! -x "$DIR/csi-resizer" ] || [ ! -f "$(stamp csi-resizer "$RESIZER_VERSION")" ]; then
  t0=$(date +%s); log "building csi-resizer $RESIZER_VERSION"
  GOBIN="$DIR" go install -trimpath -ldflags "-s -w -X main.version=$RESIZER_VERSION" \
    "github.com/kubernetes-csi/external-resizer/v2/cmd/csi-resizer@$RESIZER_VERSION"
  rm -f "$DIR"/.csi-resizer-*; touch "$(stamp csi-resizer "$RESIZER_VERSION")"
  log "csi-resizer built in $(( $(date +%s) - t0 ))s"
fi

if [ ! -x "$DIR/csi-provisioner" ] || [ ! -f "$(stamp csi-provisioner "$PROVISIONER_VERSION")" ]; then
  t0=$(date +%s); log "building csi-provisioner $PROVISIONER_VERSION"
  work=$(module_src github.com/kubernetes-csi/external-provisioner/v6 "$PROVISIONER_VERSION" external-provisioner)
  (cd "$work" && go build -trimpath -ldflags "-s -w -X main.version=$PROVISIONER_VERSION" -o "$DIR/csi-provisioner" ./cmd/csi-provisioner)
  rm -f "$DIR"/.csi-provisioner-*; touch "$(stamp csi-provisioner "$PROVISIONER_VERSION")"
  log "csi-provisioner built in $(( $(date +%s) - t0 ))s"
fi

if [ ! -x "$DIR/csi-attacher" ] || [ ! -f "$(stamp csi-attacher "$ATTACHER_VERSION")" ]; then
  t0=$(date +%s); log "building csi-attacher $ATTACHER_VERSION"
  work=$(module_src github.com/kubernetes-csi/external-attacher/v4 "$ATTACHER_VERSION" external-attacher)
  (cd "$work" && go build -trimpath -ldflags "-s -w -X main.version=$ATTACHER_VERSION" -o "$DIR/csi-attacher" ./cmd/csi-attacher)
  rm -f "$DIR"/.csi-attacher-*; touch "$(stamp csi-attacher "$ATTACHER_VERSION")"
  log "csi-attacher built in $(( $(date +%s) - t0 ))s"
fi
