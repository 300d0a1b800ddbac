#!/usr/bin/env bash
# e2e.sh — `make e2e`: bring up the single-node cluster, load Cobalt's images, run the e2e suite
# (test/e2e) against it, and tear everything down again whether the suite passed, failed or was
# interrupted (EXIT/INT/TERM trap -> down.sh). Prints each phase's wall time.
#   E2E_GINKGO_FLAGS   extra flags for the suite binary (e.g. -ginkgo.focus=...)
#   E2E_KEEP_CLUSTER=1 leave the cluster running afterwards (debugging; `make e2e-down` stops it)
set -uo pipefail
LOG_TAG=e2e
# shellcheck source=env.sh
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
export E2E_T0
cd "$REPO_ROOT"

phases=()
# phase NAME CMD...: run CMD, record and print its wall time; stop the run if it fails.
phase() {
  local name=$1 t0 rc; shift
  t0=$(date +%s)
  log "== $name"
  "$@"; rc=$?
  phases+=("$(printf '%5ss  %-8s %s' "$(( $(date +%s) - t0 ))" "$([ $rc = 0 ] && echo ok || echo "FAILED")" "$name")")
  log "== $name: $([ $rc = 0 ] && echo ok || echo "failed ($rc)") in $(( $(date +%s) - t0 ))s"
  return $rc
}
finish() {
  local rc=$?
  trap - EXIT INT TERM
  if [ "${E2E_KEEP_CLUSTER:-0}" = 1 ]; then
    log "E2E_KEEP_CLUSTER=1: cluster left running (KUBECONFIG=$ADMIN_KUBECONFIG); make e2e-down stops it"
  else
    phase "teardown" "$REPO_ROOT/hack/cluster/down.sh" || rc=1
  fi
  printf '\ne2e phases:\n' >&2
  printf '  %s\n' "${phases[@]}" >&2
  printf '  %5ss  total\n' "$(( $(date +%s) - E2E_T0 ))" >&2
  log "$([ $rc = 0 ] && echo PASSED || echo "FAILED ($rc)")"
  exit $rc
}
trap finish EXIT
trap 'log "interrupted"; exit 130' INT
trap 'log "terminated"; exit 143' TERM

# A run that was killed without its trap may have left a cluster behind: clear it first.
phase "clear leftovers" "$REPO_ROOT/hack/cluster/down.sh" || exit 1
phase "cluster up" "$REPO_ROOT/hack/cluster/up.sh" || exit 1
phase "images" "$REPO_ROOT/hack/cluster/images.sh" || exit 1
phase "compile suite" go test -c -tags e2e -o "$E2E_BIN/e2e.test" ./test/e2e || exit 1
# shellcheck disable=SC2086
phase "suite" env E2E_KUBECONFIG="$ADMIN_KUBECONFIG" E2E_DIR="$E2E_DIR" E2E_CLI="$E2E_BIN/cobalt" \
  E2E_IMAGE_TAG="${IMAGE_TAG:-e2e}" E2E_KUBELET_DIR="$KUBELET_DIR" E2E_NODE_NAME="$NODE_NAME" \
  bash -c 'cd test/e2e && exec "$0" -test.v -test.timeout 45m -ginkgo.v -ginkgo.no-color "$@"' "$E2E_BIN/e2e.test" ${E2E_GINKGO_FLAGS:-} \
  || exit 1
