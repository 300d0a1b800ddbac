#!/usr/bin/env bash
# build-k8s.sh DIR COMPONENT... — build Kubernetes $K8S_VERSION node/control-plane binaries
# (kubelet, kube-controller-manager, kube-scheduler, kube-apiserver, kubectl) from Go modules
# into DIR, skipping any that are already there.
#
# Same approach as hack/envtest-assets.sh: a throw-away tools module that requires
# k8s.io/kubernetes and replaces each of its ./staging/ modules by the published v0.x version.
# The module is kept in DIR/.kmod so that `go mod tidy` runs once; builds use the flags of
# envtest-assets.sh (CGO_ENABLED=0 -trimpath) so they share its Go build cache.
# Cold, on 2 cores: kube-controller-manager ~2 min, kubelet ~2 min, kube-scheduler < 1 min once
# kube-apiserver's packages are cached.
set -euo pipefail

DIR=${1:?usage: build-k8s.sh DIR COMPONENT...}
shift
K8S_VERSION=${K8S_VERSION:-1.37.2}
STAGING_VERSION=0.${K8S_VERSION#1.}
MINOR=$(echo "$K8S_VERSION" | cut -d. -f2)

log() { echo "build-k8s: $*" >&2; }

want=()
for c in "$@"; do
  case $c in
    kubelet | kube-controller-manager | kube-scheduler | kube-apiserver | kubectl) ;;
    *) log "unknown component $c"; exit 2 ;;
  esac
  [ -x "$DIR/$c" ] || want+=("$c")
done
[ ${#want[@]} -eq 0 ] && exit 0

mkdir -p "$DIR"
DIR=$(cd "$DIR" && pwd)
mod="$DIR/.kmod"
if [ ! -f "$mod/go.sum" ]; then
  rm -rf "$mod"; mkdir -p "$mod"
  printf 'module cobalt.local/cluster-kube\n\ngo 1.26.0\n' >"$mod/go.mod"
  modfile=$(cd "$mod" && go mod download -json "k8s.io/kubernetes@v$K8S_VERSION" | sed -n 's/^[[:space:]]*"GoMod": "\(.*\)",*$/\1/p')
  [ -f "$modfile" ] || { log "could not download k8s.io/kubernetes@v$K8S_VERSION"; exit 1; }
  {
    printf 'module cobalt.local/cluster-kube\n\ngo 1.26.0\n\nrequire k8s.io/kubernetes v%s\n\nreplace (\n' "$K8S_VERSION"
    sed -n '/^replace (/,/^)/p' "$modfile" | grep -E '=> \./staging/' | awk -v v="v$STAGING_VERSION" '{print "\t" $1 " => " $1 " " v}'
    printf ')\n'
  } >"$mod/go.mod"
  {
    printf 'package tools\n\nimport (\n'
    for c in kubelet kube-controller-manager kube-scheduler kube-apiserver kubectl; do printf '\t_ "k8s.io/kubernetes/cmd/%s"\n' "$c"; done
    printf ')\n'
  } >"$mod/tools.go"
  log "resolving k8s.io/kubernetes@v$K8S_VERSION modules in $mod"
  (cd "$mod" && go mod tidy) >&2
fi

ldflags="-s -w"
for p in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
  ldflags+=" -X $p.gitVersion=v$K8S_VERSION -X $p.gitMajor=1 -X $p.gitMinor=$MINOR -X $p.gitTreeState=clean"
done
for c in "${want[@]}"; do
  start=$(date +%s)
  log "building $c"
  (cd "$mod" && CGO_ENABLED=0 go build -trimpath -ldflags "$ldflags" -o "$DIR/$c.tmp" "k8s.io/kubernetes/cmd/$c") >&2
  mv "$DIR/$c.tmp" "$DIR/$c"
  log "built $c in $(( $(date +%s) - start ))s"
done
