#!/usr/bin/env bash
# envtest-assets.sh DIR — make DIR a KUBEBUILDER_ASSETS folder holding kube-apiserver, etcd
# and kubectl for Kubernetes $K8S_VERSION.
#
# Order of preference:
#   1. DIR already complete: nothing to do (second runs never rebuild). Complete means all three
#      binaries exist and kube-apiserver and kubectl report v$K8S_VERSION (binaries built without
#      version stamps report v0.0.0-master, which the chart's kubeVersion check would refuse;
#      they are relinked with the stamps, which reuses the Go build cache and takes a minute).
#   2. setup-envtest can download the release binaries (a laptop with internet): use them.
#   3. Otherwise build them from Go modules through the module proxy: kube-apiserver and kubectl
#      from k8s.io/kubernetes (with every staging module replaced by its published version),
#      etcd from go.etcd.io/etcd/server/v3. About 6-8 minutes cold on 2 cores.
set -euo pipefail

DIR=${1:?usage: envtest-assets.sh DIR}
K8S_VERSION=${K8S_VERSION:-1.37.2}
ETCD_VERSION=${ETCD_VERSION:-3.7.3}
SETUP_ENVTEST=${SETUP_ENVTEST:-}
STAGING_VERSION=0.${K8S_VERSION#1.}
MINOR=$(echo "$K8S_VERSION" | cut -d. -f2)

log() { echo "envtest-assets: $*" >&2; }

# stamped BINARY: BINARY exists and reports version v$K8S_VERSION.
stamped() {
  local flags=--version
  [ "$1" = kubectl ] && flags='version --client'
  # shellcheck disable=SC2086 # flags are words
  [ -x "$DIR/$1" ] && "$DIR/$1" $flags 2>/dev/null | grep "v$K8S_VERSION\b" >/dev/null
}
complete() { stamped kube-apiserver && stamped kubectl && [ -x "$DIR/etcd" ]; }

if complete; then exit 0; fi
mkdir -p "$DIR"
DIR=$(cd "$DIR" && pwd)

if [ -n "$SETUP_ENVTEST" ] && [ -x "$SETUP_ENVTEST" ]; then
  log "trying setup-envtest download of $K8S_VERSION"
  if p=$(timeout 120 "$SETUP_ENVTEST" use "$K8S_VERSION" --bin-dir "$DIR/.setup-envtest" -p path 2>/dev/null) && [ -x "$p/kube-apiserver" ]; then
    for b in kube-apiserver etcd kubectl; do cp "$p/$b" "$DIR/$b"; done
    log "downloaded into $DIR"
    exit 0
  fi
  log "download failed; building from Go modules instead (cold: several minutes)"
fi

work=$(mktemp -d "${TMPDIR:-/tmp}/cobalt-envtest-build.XXXXXX")
trap 'rm -rf "$work"' EXIT

# --- kube-apiserver and kubectl -------------------------------------------------------------
if ! stamped kube-apiserver || ! stamped kubectl; then
  k="$work/kube"; mkdir -p "$k"
  printf 'module cobalt.local/envtest-kube\n\ngo 1.26.0\n' >"$k/go.mod"
  modfile=$(cd "$k" && go mod download -json "k8s.io/kubernetes@v$K8S_VERSION" | sed -n 's/^[[:space:]]*"GoMod": "\(.*\)",*$/\1/p')
  [ -f "$modfile" ] || { log "could not download k8s.io/kubernetes@v$K8S_VERSION"; exit 1; }
  {
    printf 'module cobalt.local/envtest-kube\n\ngo 1.26.0\n\nrequire k8s.io/kubernetes v%s\n\nreplace (\n' "$K8S_VERSION"
    # every staging module that k8s.io/kubernetes replaces with a local path -> its published version
    sed -n '/^replace (/,/^)/p' "$modfile" | grep -E '=> \./staging/' | awk -v v="v$STAGING_VERSION" '{print "\t" $1 " => " $1 " " v}'
    printf ')\n'
  } >"$k/go.mod"
  printf 'package tools\n\nimport (\n\t_ "k8s.io/kubernetes/cmd/kube-apiserver"\n\t_ "k8s.io/kubernetes/cmd/kubectl"\n)\n' >"$k/tools.go"
  log "resolving k8s.io/kubernetes@v$K8S_VERSION modules"
  (cd "$k" && go mod tidy) >&2
  # The version stamps that a release build sets (kube-apiserver reports them in /version).
  ldflags="-s -w"
  for p in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
    ldflags+=" -X $p.gitVersion=v$K8S_VERSION -X $p.gitMajor=1 -X $p.gitMinor=$MINOR -X $p.gitTreeState=clean"
  done
  for c in kube-apiserver kubectl; do
    stamped "$c" && continue
    log "building $c$([ "$c" = kube-apiserver ] && echo ' (cold: about 6 min on 2 cores)')"
    (cd "$k" && CGO_ENABLED=0 go build -trimpath -ldflags "$ldflags" -o "$DIR/$c.tmp" "k8s.io/kubernetes/cmd/$c") >&2
    mv "$DIR/$c.tmp" "$DIR/$c"
  done
fi

# --- etcd ------------------------------------------------------------------------------------
if [ ! -x "$DIR/etcd" ]; then
  e="$work/etcd"; mkdir -p "$e"
  printf 'module cobalt.local/envtest-etcd\n\ngo 1.26.0\n' >"$e/go.mod"
  printf 'package tools\n\nimport _ "go.etcd.io/etcd/server/v3"\n' >"$e/tools.go"
  log "building etcd v$ETCD_VERSION"
  (cd "$e" && go get "go.etcd.io/etcd/server/v3@v$ETCD_VERSION" && go mod tidy && \
    CGO_ENABLED=0 go build -trimpath -ldflags '-s -w' -o "$DIR/etcd.tmp" go.etcd.io/etcd/server/v3) >&2
  mv "$DIR/etcd.tmp" "$DIR/etcd"
fi

complete || { log "assets incomplete in $DIR"; exit 1; }
log "ready: $DIR"
