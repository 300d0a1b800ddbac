# env.sh — settings and helpers shared by the e2e cluster scripts (sourced, not run).
#
# The e2e cluster is one node on this machine: etcd, kube-apiserver, kube-controller-manager,
# kube-scheduler, containerd and the kubelet, every listener on 127.0.0.1 (containerd on a unix
# socket), all state under $E2E_DIR. Binaries are cached in the repository's bin/; nothing is
# pulled at run time. Ports, the pod subnet, the bridge and the iptables chains are Cobalt's own,
# so the cluster can coexist with other local clusters on the machine.

REPO_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
E2E_DIR=${E2E_DIR:-/tmp/cobalt-e2e}
K8S_VERSION=${K8S_VERSION:-1.37.2}
LOCALBIN=${LOCALBIN:-$REPO_ROOT/bin}
# kube-apiserver, etcd and kubectl of `make envtest` (hack/envtest-assets.sh) are reused for etcd
# and kubectl; the cluster's own kube-apiserver is rebuilt with version stamps (helm checks the
# chart's kubeVersion against it), next to the kubelet, controller-manager and scheduler.
ENVTEST_BIN=${ENVTEST_BIN:-$LOCALBIN/k8s/$K8S_VERSION}
CLUSTER_BIN=${CLUSTER_BIN:-$LOCALBIN/cluster/$K8S_VERSION}
E2E_BIN=${E2E_BIN:-$LOCALBIN/e2e}

NODE_NAME=${NODE_NAME:-$(hostname)}
ETCD_PORT=${ETCD_PORT:-12379}
ETCD_PEER_PORT=${ETCD_PEER_PORT:-12380}
APISERVER_PORT=${APISERVER_PORT:-16443}
KCM_PORT=${KCM_PORT:-20257}
SCHEDULER_PORT=${SCHEDULER_PORT:-20259}
KUBELET_PORT=${KUBELET_PORT:-20250}
KUBELET_HEALTHZ_PORT=${KUBELET_HEALTHZ_PORT:-20248}
SERVICE_CIDR=${SERVICE_CIDR:-10.97.0.0/16}
APISERVER_SERVICE_IP=${APISERVER_SERVICE_IP:-10.97.0.1}
POD_SUBNET=${POD_SUBNET:-10.245.0.0/24}
BRIDGE=${BRIDGE:-cobalt0}
CHAIN_DNAT=COBALT-E2E-APISERVER
CHAIN_GUARD=COBALT-E2E-LOCALNET
RULE_TAG=cobalt-e2e
SANDBOX_IMAGE=registry.k8s.io/pause:3.10

PKI=$E2E_DIR/pki ETC=$E2E_DIR/etc VAR=$E2E_DIR/var RUN=$E2E_DIR/run LOGS=$E2E_DIR/logs
IMAGES=$E2E_DIR/images
# hostPaths that need mount propagation (Bidirectional) live under this rshared mount, and so
# does the kubelet's --root-dir: the CSI node plugin mounts volumes at the kubelet's staging and
# target paths through a Bidirectional hostPath of it (the chart's csi.kubeletDir).
SHARED=$E2E_DIR/shared
KUBELET_DIR=$SHARED/kubelet
CONTAINERD_SOCK=$RUN/containerd.sock
ADMIN_KUBECONFIG=$ETC/admin.kubeconfig

export PATH=$CLUSTER_BIN:$ENVTEST_BIN:$LOCALBIN:/usr/local/go/bin:$PATH

E2E_T0=${E2E_T0:-$(date +%s)}
log() { printf '[%s %4ss] %s\n' "${LOG_TAG:-cluster}" "$(( $(date +%s) - E2E_T0 ))" "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

pidfile() { echo "$RUN/$1.pid"; }
# running NAME: the process of NAME's PID file is alive and is still the program we started.
running() {
  local p
  p=$(cat "$(pidfile "$1")" 2>/dev/null) || return 1
  [ -n "$p" ] && kill -0 "$p" 2>/dev/null && [ "$(readlink "/proc/$p/exe" 2>/dev/null)" = "$(cat "$RUN/$1.exe" 2>/dev/null)" ]
}
ctr_() { ctr --address "$CONTAINERD_SOCK" -n k8s.io "$@"; }
kc() { kubectl --kubeconfig "$ADMIN_KUBECONFIG" "$@"; }
