#!/usr/bin/env bash
# envtest-assets.sh DIR — make DIR a KUBEBUILDER_ASSETS folder holding kube-apiserver, etcd
# and kubectl for Kubernetes $K8S_VERSION.
#
# Order of preference:
#   1. DIR already complete: nothing to do (second runs never rebuild).
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

log() { echo "envtest-assets: $*" >&2; }

complete() { [ -x "$DIR/kube-apiserver" ] && [ -x "$DIR/etcd" ] && [ -x "$DIR/kubectl" ]; }

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
if [ ! -x "$DIR/kube-apiserver" ] || [ ! -x "$DIR/kubectl" ]; then
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
  for c in kube-apiserver kubectl; do
    [ -x "$DIR/$c" ] && continue
    log "building $c$([ "$c" = kube-apiserver ] && echo ' (cold: about 6 min on 2 cores)')"
    (cd "$k" && CGO_ENABLED=0 go build -trimpath -ldflags '-s -w' -o "$DIR/$c.tmp" "k8s.io/kubernetes/cmd/$c") >&2
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
