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
#      etcd from go.etcd.io/etcd/server/v3. How long that takes depends on the cores, on what else
#      runs (the Go compiler gets what the load leaves it) and on the Go build cache (warm, a
#      rebuild takes a minute or two): see the README for measured times.
#
# Progress goes to stderr: a line when each stage starts and ends (with its duration), a
# heartbeat every 30 s while a stage runs (elapsed time, load average), and on failure one line
# starting "envtest-assets: FAILED" that names the stage.
set -euo pipefail

DIR=${1:?usage: envtest-assets.sh DIR}
K8S_VERSION=${K8S_VERSION:-1.37.2}
ETCD_VERSION=${ETCD_VERSION:-3.7.3}
SETUP_ENVTEST=${SETUP_ENVTEST:-}
STAGING_VERSION=0.${K8S_VERSION#1.}
MINOR=$(echo "$K8S_VERSION" | cut -d. -f2)

log() { echo "envtest-assets: $*" >&2; }

# since T0: the time elapsed since $SECONDS was T0, as 4m05s.
since() { local d=$((SECONDS - $1)); printf '%dm%02ds' $((d / 60)) $((d % 60)); }
load() { cut -d' ' -f1-3 /proc/loadavg 2>/dev/null || echo unknown; }

# heartbeat WHAT T0: every 30 s, say that WHAT is still running, until killed.
heartbeat() {
  local sp=
  trap 'kill $sp 2>/dev/null; exit 0' TERM
  while :; do
    sleep 30 & sp=$!
    wait "$sp" || true
    log "... still $1: $(since "$2") so far (load average $(load), $(nproc) cores)"
  done
}

# stage WHAT COMMAND...: run COMMAND, announcing WHAT, with a heartbeat while it runs; on failure
# remember WHAT for the FAILED line and exit with COMMAND's status.
stage_failed=
stage() {
  local what=$1 t0=$SECONDS rc=0 hb
  shift
  log "$what ..."
  heartbeat "$what" "$t0" &
  hb=$!
  "$@" || rc=$?
  kill "$hb" 2>/dev/null || true
  wait "$hb" 2>/dev/null || true
  if [ "$rc" -ne 0 ]; then
    stage_failed="$what (exit status $rc after $(since "$t0"))"
    exit "$rc"
  fi
  log "done: $what in $(since "$t0")"
}

START=$SECONDS
work=
on_exit() {
  local rc=$?
  [ -z "$work" ] || rm -rf "$work"
  [ -z "${DIR:-}" ] || rm -f "$DIR"/*.tmp
  if [ "$rc" -ne 0 ]; then
    log "FAILED${stage_failed:+: $stage_failed}; the output above says why. Nothing half-built was installed in ${DIR:-the assets directory}; run it again to retry."
  fi
}
trap on_exit EXIT

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
  log "download failed; building from Go modules instead"
fi

log "building from Go modules into $DIR on $(nproc) cores (load average $(load)); a cold build is long, see the README"
work=$(mktemp -d "${TMPDIR:-/tmp}/cobalt-envtest-build.XXXXXX")

# --- kube-apiserver and kubectl -------------------------------------------------------------
if ! stamped kube-apiserver || ! stamped kubectl; then
  k="$work/kube"; mkdir -p "$k"
  printf 'module cobalt.local/envtest-kube\n\ngo 1.26.0\n' >"$k/go.mod"
  log "downloading k8s.io/kubernetes@v$K8S_VERSION ..."
  modfile=$(cd "$k" && go mod download -json "k8s.io/kubernetes@v$K8S_VERSION" | sed -n 's/^[[:space:]]*"GoMod": "\(.*\)",*$/\1/p') || true
  [ -f "$modfile" ] || { stage_failed="downloading k8s.io/kubernetes@v$K8S_VERSION (is the module proxy reachable?)"; exit 1; }
  {
    printf 'module cobalt.local/envtest-kube\n\ngo 1.26.0\n\nrequire k8s.io/kubernetes v%s\n\nreplace (\n' "$K8S_VERSION"
    # every staging module that k8s.io/kubernetes replaces with a local path -> its published version
    sed -n '/^replace (/,/^)/p' "$modfile" | grep -E '=> \./staging/' | awk -v v="v$STAGING_VERSION" '{print "\t" $1 " => " $1 " " v}'
    printf ')\n'
  } >"$k/go.mod"
  printf 'package tools\n\nimport (\n\t_ "k8s.io/kubernetes/cmd/kube-apiserver"\n\t_ "k8s.io/kubernetes/cmd/kubectl"\n)\n' >"$k/tools.go"
  stage "resolving the modules of k8s.io/kubernetes@v$K8S_VERSION (go mod tidy)" \
    bash -c 'cd "$1" && go mod tidy >&2' _ "$k"
  # The version stamps that a release build sets (kube-apiserver reports them in /version).
  ldflags="-s -w"
  for p in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
    ldflags+=" -X $p.gitVersion=v$K8S_VERSION -X $p.gitMajor=1 -X $p.gitMinor=$MINOR -X $p.gitTreeState=clean"
  done
  for c in kube-apiserver kubectl; do
    stamped "$c" && continue
    stage "building $c (go build; the longest stage when the Go build cache is cold)" \
      bash -c 'cd "$1" && CGO_ENABLED=0 go build -trimpath -ldflags "$2" -o "$3.tmp" "k8s.io/kubernetes/cmd/$4" >&2' _ "$k" "$ldflags" "$DIR/$c" "$c"
    mv "$DIR/$c.tmp" "$DIR/$c"
  done
fi

# --- etcd ------------------------------------------------------------------------------------
if [ ! -x "$DIR/etcd" ]; then
  e="$work/etcd"; mkdir -p "$e"
  printf 'module cobalt.local/envtest-etcd\n\ngo 1.26.0\n' >"$e/go.mod"
  printf 'package tools\n\nimport _ "go.etcd.io/etcd/server/v3"\n' >"$e/tools.go"
  stage "resolving the modules of etcd v$ETCD_VERSION" \
    bash -c 'cd "$1" && go get "go.etcd.io/etcd/server/v3@v$2" >&2 && go mod tidy >&2' _ "$e" "$ETCD_VERSION"
  stage "building etcd v$ETCD_VERSION (go build)" \
    bash -c 'cd "$1" && CGO_ENABLED=0 go build -trimpath -ldflags "-s -w" -o "$2" go.etcd.io/etcd/server/v3 >&2' _ "$e" "$DIR/etcd.tmp"
  mv "$DIR/etcd.tmp" "$DIR/etcd"
fi

complete || { stage_failed="checking $DIR: kube-apiserver, kubectl and etcd are not all there with version v$K8S_VERSION"; exit 1; }
log "ready: $DIR (built in $(since "$START"))"
