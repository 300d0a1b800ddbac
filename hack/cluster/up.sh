#!/usr/bin/env bash
# up.sh — bring up Cobalt's single-node e2e cluster (see env.sh for the layout).
#
#   1. apt-get install what is missing (containerd, runc, CNI plugins, iptables, and the file
#      system tools images.sh packs into the node daemon's image: util-linux, e2fsprogs, xfsprogs);
#   2. build what is missing into bin/ (cached): etcd and kubectl via hack/envtest-assets.sh,
#      kube-apiserver, kube-controller-manager, kube-scheduler and kubelet via build-k8s.sh,
#      hack/mkimage and the sandbox (pause) program;
#   3. write a throw-away PKI, kubeconfigs and configs under $E2E_DIR;
#   4. start etcd -> kube-apiserver -> controller-manager + scheduler -> containerd -> kubelet
#      in the background and wait until the node is Ready.
# Everything it starts or changes is recorded under $E2E_DIR/run so that down.sh undoes exactly
# that. UP_BUILD_ONLY=1 stops after step 2.
set -euo pipefail
LOG_TAG=up
# shellcheck source=env.sh
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
[ "$(id -u)" = 0 ] || die "the e2e cluster needs root (containerd, kubelet, loop devices, iptables)"
mkdir -p "$PKI" "$ETC" "$VAR" "$RUN" "$LOGS" "$IMAGES"

# ------------------------------------------------------------------------------- 1. packages
# hack/install-tools.sh installs the Debian packages that provide what is missing.
# Without systemd (and with Debian's policy-rc.d) the packaged daemons do not start on install.
"$REPO_ROOT/hack/install-tools.sh" containerd runc /usr/lib/cni/bridge iptables conntrack losetup mount \
  mkfs.ext4 mkfs.xfs openssl curl >>"$LOGS/apt.log" || die "package install failed, see $LOGS/apt.log"

# ------------------------------------------------------------------------------- 2. binaries
step=$(date +%s)
# Full output goes to build.log; the console gets the builders' own progress lines.
progress() { tee -a "$LOGS/build.log" | grep --line-buffered -E '^(envtest-assets|build-k8s):' >&2 || true; }
K8S_VERSION=$K8S_VERSION "$REPO_ROOT/hack/envtest-assets.sh" "$ENVTEST_BIN" 2>&1 | progress \
  || die "etcd/kubectl build failed, see $LOGS/build.log"
K8S_VERSION=$K8S_VERSION "$REPO_ROOT/hack/cluster/build-k8s.sh" "$CLUSTER_BIN" \
  kube-apiserver kube-controller-manager kube-scheduler kubelet 2>&1 | progress \
  || die "Kubernetes build failed, see $LOGS/build.log"
(cd "$REPO_ROOT" && CGO_ENABLED=0 go build -o "$LOCALBIN/mkimage" ./hack/mkimage \
  && CGO_ENABLED=0 go build -ldflags '-s -w' -o "$E2E_BIN/pause" ./hack/cluster/pause) 2>>"$LOGS/build.log" \
  || die "mkimage/pause build failed, see $LOGS/build.log"
log "binaries ready in $(( $(date +%s) - step ))s"
[ "${UP_BUILD_ONLY:-0}" = 1 ] && exit 0

# ------------------------------------------------------------------------------- 3. PKI, configs
# pki_cert NAME SUBJECT EXT_KEY_USAGE [SUBJECT_ALT_NAMES]: an ECDSA key and a CA-signed certificate.
pki_cert() {
  local name=$1 subject=$2 usage=$3 sans=${4:-}
  [ -f "$PKI/$name.crt" ] && return 0
  openssl ecparam -name prime256v1 -genkey -noout -out "$PKI/$name.key"
  printf 'basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature,keyEncipherment\nextendedKeyUsage=%s\n%s' \
    "$usage" "${sans:+subjectAltName=$sans}" >"$PKI/$name.ext"
  openssl req -new -key "$PKI/$name.key" -subj "$subject" -out "$PKI/$name.csr"
  openssl x509 -req -in "$PKI/$name.csr" -CA "$PKI/ca.crt" -CAkey "$PKI/ca.key" -CAcreateserial \
    -days 30 -extfile "$PKI/$name.ext" -out "$PKI/$name.crt" 2>/dev/null
  rm -f "$PKI/$name.csr" "$PKI/$name.ext"
}
if [ ! -f "$PKI/ca.crt" ]; then
  openssl ecparam -name prime256v1 -genkey -noout -out "$PKI/ca.key"
  openssl req -x509 -new -key "$PKI/ca.key" -subj "/CN=cobalt-e2e-ca" -days 30 -out "$PKI/ca.crt"
  openssl genrsa -out "$PKI/sa.key" 2048 2>/dev/null
  openssl rsa -in "$PKI/sa.key" -pubout -out "$PKI/sa.pub" 2>/dev/null
fi
pki_cert apiserver /CN=kube-apiserver serverAuth \
  "IP:127.0.0.1,IP:$APISERVER_SERVICE_IP,DNS:localhost,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.cluster.local"
pki_cert apiserver-kubelet-client "/O=system:masters/CN=kube-apiserver-kubelet-client" clientAuth
pki_cert admin "/O=system:masters/CN=cobalt-e2e-admin" clientAuth
pki_cert controller-manager /CN=system:kube-controller-manager clientAuth
pki_cert scheduler /CN=system:kube-scheduler clientAuth
pki_cert kubelet-client "/O=system:nodes/CN=system:node:$NODE_NAME" clientAuth
pki_cert kubelet "/CN=$NODE_NAME" serverAuth "IP:127.0.0.1,DNS:localhost,DNS:$NODE_NAME"

# write_kubeconfig NAME USER CERT: a kubeconfig for USER authenticating with PKI/CERT.{crt,key}.
write_kubeconfig() {
  cat >"$ETC/$1.kubeconfig" <<KC
apiVersion: v1
kind: Config
clusters:
- name: cobalt-e2e
  cluster:
    server: https://127.0.0.1:$APISERVER_PORT
    certificate-authority-data: $(base64 -w0 <"$PKI/ca.crt")
users:
- name: $2
  user:
    client-certificate-data: $(base64 -w0 <"$PKI/$3.crt")
    client-key-data: $(base64 -w0 <"$PKI/$3.key")
contexts:
- name: cobalt-e2e
  context: {cluster: cobalt-e2e, user: $2}
current-context: cobalt-e2e
KC
}
write_kubeconfig admin cobalt-e2e-admin admin
write_kubeconfig controller-manager system:kube-controller-manager controller-manager
write_kubeconfig scheduler system:kube-scheduler scheduler
write_kubeconfig kubelet "system:node:$NODE_NAME" kubelet-client

# ------------------------------------------------------------------------------- 4. processes
# start NAME BINARY ARGS...: run BINARY in its own session, PID in run/NAME.pid, log in logs/.
start() {
  local name=$1 bin; bin=$(readlink -f "$(command -v "$2")")
  shift
  if running "$name"; then log "$name already running"; return 0; fi
  echo "$bin" >"$RUN/$name.exe"
  echo "--- $(date -u +%FT%TZ) $*" >>"$LOGS/$name.log"
  setsid "$@" >>"$LOGS/$name.log" 2>&1 </dev/null &
  echo $! >"$(pidfile "$name")"
}
# wait_until NAME SECONDS CHECK...: poll CHECK until it succeeds; fail early if NAME died.
# WHAT names the condition in messages (default: "NAME ready").
wait_until() {
  local name=$1 limit=$2 t0 what; t0=$(date +%s); shift 2
  what=${WHAT:-$name ready}
  until "$@" >/dev/null 2>&1; do
    running "$name" || { tail -n 20 "$LOGS/$name.log" >&2; die "$name exited, see $LOGS/$name.log"; }
    [ $(( $(date +%s) - t0 )) -lt "$limit" ] || { tail -n 20 "$LOGS/$name.log" >&2; die "not $what after ${limit}s"; }
    sleep 0.3
  done
  log "$what"
}
curl_admin() { curl -sf --cacert "$PKI/ca.crt" --cert "$PKI/admin.crt" --key "$PKI/admin.key" "$@"; }

start etcd etcd --name cobalt-e2e --data-dir "$VAR/etcd" \
  --listen-client-urls "http://127.0.0.1:$ETCD_PORT" --advertise-client-urls "http://127.0.0.1:$ETCD_PORT" \
  --listen-peer-urls "http://127.0.0.1:$ETCD_PEER_PORT" --initial-advertise-peer-urls "http://127.0.0.1:$ETCD_PEER_PORT" \
  --initial-cluster "cobalt-e2e=http://127.0.0.1:$ETCD_PEER_PORT" --unsafe-no-fsync
wait_until etcd 30 sh -c "curl -sf http://127.0.0.1:$ETCD_PORT/health | grep -q '\"health\":\"true\"'"

# A loopback-only API server: the endpoint reconciler would refuse 127.0.0.1 as the advertise
# address, so it is off, and the kubernetes Service's IP is DNATed below instead.
start kube-apiserver "$CLUSTER_BIN/kube-apiserver" \
  --etcd-servers="http://127.0.0.1:$ETCD_PORT" \
  --bind-address=127.0.0.1 --secure-port="$APISERVER_PORT" \
  --advertise-address=127.0.0.1 --endpoint-reconciler-type=none \
  --tls-cert-file="$PKI/apiserver.crt" --tls-private-key-file="$PKI/apiserver.key" --client-ca-file="$PKI/ca.crt" \
  --kubelet-client-certificate="$PKI/apiserver-kubelet-client.crt" --kubelet-client-key="$PKI/apiserver-kubelet-client.key" \
  --kubelet-certificate-authority="$PKI/ca.crt" --kubelet-preferred-address-types=Hostname,InternalIP \
  --service-account-issuer=https://kubernetes.default.svc.cluster.local \
  --service-account-key-file="$PKI/sa.pub" --service-account-signing-key-file="$PKI/sa.key" \
  --service-cluster-ip-range="$SERVICE_CIDR" --authorization-mode=Node,RBAC --allow-privileged=true \
  --enable-aggregator-routing=true --profiling=false
wait_until kube-apiserver 120 sh -c "curl -sf --cacert '$PKI/ca.crt' --cert '$PKI/admin.crt' --key '$PKI/admin.key' https://127.0.0.1:$APISERVER_PORT/readyz | grep -qx ok"

start kube-controller-manager "$CLUSTER_BIN/kube-controller-manager" \
  --kubeconfig="$ETC/controller-manager.kubeconfig" \
  --authentication-kubeconfig="$ETC/controller-manager.kubeconfig" --authorization-kubeconfig="$ETC/controller-manager.kubeconfig" \
  --bind-address=127.0.0.1 --secure-port="$KCM_PORT" \
  --service-account-private-key-file="$PKI/sa.key" --root-ca-file="$PKI/ca.crt" \
  --cluster-signing-cert-file="$PKI/ca.crt" --cluster-signing-key-file="$PKI/ca.key" \
  --use-service-account-credentials=true --service-cluster-ip-range="$SERVICE_CIDR" \
  --leader-elect=false --profiling=false
start kube-scheduler "$CLUSTER_BIN/kube-scheduler" \
  --kubeconfig="$ETC/scheduler.kubeconfig" \
  --authentication-kubeconfig="$ETC/scheduler.kubeconfig" --authorization-kubeconfig="$ETC/scheduler.kubeconfig" \
  --bind-address=127.0.0.1 --secure-port="$SCHEDULER_PORT" --leader-elect=false --profiling=false
wait_until kube-controller-manager 60 sh -c "curl -skf https://127.0.0.1:$KCM_PORT/healthz | grep -qx ok"
wait_until kube-scheduler 60 sh -c "curl -skf https://127.0.0.1:$SCHEDULER_PORT/healthz | grep -qx ok"

# ---- network: the CNI bridge, and a kube-proxy stand-in for the one Service pods need
mkdir -p "$ETC/cni" "$VAR/cni" "$VAR/containerd" "$RUN/containerd"
[ -f "$RUN/ip_forward.orig" ] || cat /proc/sys/net/ipv4/ip_forward >"$RUN/ip_forward.orig"
if ! ip link show "$BRIDGE" >/dev/null 2>&1; then
  ip link add "$BRIDGE" type bridge
  touch "$RUN/bridge.created"
fi
ip link set "$BRIDGE" up
# kubernetes.default (APISERVER_SERVICE_IP:443) -> 127.0.0.1:APISERVER_PORT, from host-network
# processes (nat OUTPUT) and from pods (nat PREROUTING on the bridge, which needs route_localnet
# there); a guard chain drops every other packet from pods to 127.0.0.0/8, as kube-proxy does.
sysctl -qw "net.ipv4.conf.$BRIDGE.route_localnet=1"
touch "$RUN/iptables.added"
iptables -t nat -N "$CHAIN_DNAT" 2>/dev/null || iptables -t nat -F "$CHAIN_DNAT"
iptables -t nat -A "$CHAIN_DNAT" -d "$APISERVER_SERVICE_IP/32" -p tcp --dport 443 -j DNAT --to-destination "127.0.0.1:$APISERVER_PORT"
iptables -t nat -C OUTPUT -m comment --comment "$RULE_TAG" -j "$CHAIN_DNAT" 2>/dev/null \
  || iptables -t nat -A OUTPUT -m comment --comment "$RULE_TAG" -j "$CHAIN_DNAT"
iptables -t nat -C PREROUTING -i "$BRIDGE" -m comment --comment "$RULE_TAG" -j "$CHAIN_DNAT" 2>/dev/null \
  || iptables -t nat -A PREROUTING -i "$BRIDGE" -m comment --comment "$RULE_TAG" -j "$CHAIN_DNAT"
iptables -N "$CHAIN_GUARD" 2>/dev/null || iptables -F "$CHAIN_GUARD"
iptables -A "$CHAIN_GUARD" -d 127.0.0.0/8 -m conntrack ! --ctstate RELATED,ESTABLISHED,DNAT -j DROP
iptables -C INPUT -i "$BRIDGE" -m comment --comment "$RULE_TAG" -j "$CHAIN_GUARD" 2>/dev/null \
  || iptables -A INPUT -i "$BRIDGE" -m comment --comment "$RULE_TAG" -j "$CHAIN_GUARD"
cat >"$ETC/cni/10-cobalt-e2e.conflist" <<CNI
{
  "cniVersion": "1.0.0",
  "name": "cobalt-e2e",
  "plugins": [
    {"type": "bridge", "bridge": "$BRIDGE", "isGateway": true, "ipMasq": false, "hairpinMode": true,
     "ipam": {"type": "host-local", "dataDir": "$VAR/cni", "ranges": [[{"subnet": "$POD_SUBNET"}]], "routes": [{"dst": "0.0.0.0/0"}]}},
    {"type": "loopback"}
  ]
}
CNI

# ---- containerd
cat >"$ETC/containerd.toml" <<TOML
version = 2
root = "$VAR/containerd"
state = "$RUN/containerd"
disabled_plugins = ["io.containerd.snapshotter.v1.aufs", "io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.devmapper", "io.containerd.snapshotter.v1.zfs", "io.containerd.tracing.processor.v1.otlp", "io.containerd.internal.v1.tracing"]
[grpc]
  address = "$CONTAINERD_SOCK"
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "$SANDBOX_IMAGE"
  stream_server_address = "127.0.0.1"
  stream_server_port = "0"
  netns_mounts_under_state_dir = true
  # Processes here lack CAP_SYS_RESOURCE, so nobody may set a negative oom_score_adj; without this
  # runc fails every sandbox ("can't get final child's PID from pipe").
  restrict_oom_score_adj = true
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        SystemdCgroup = false
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/usr/lib/cni"
    conf_dir = "$ETC/cni"
TOML
start containerd containerd --config "$ETC/containerd.toml"
wait_until containerd 30 ctr --address "$CONTAINERD_SOCK" version
mkimage -o "$IMAGES/pause.tar" -t "$SANDBOX_IMAGE" -entrypoint /pause -f "/pause=$E2E_BIN/pause"
ctr_ images import "$IMAGES/pause.tar" >>"$LOGS/images.log" 2>&1 || die "import of the pause image failed, see $LOGS/images.log"

# ---- kubelet
# hostPath volumes with Bidirectional propagation need a shared mount; / is private without systemd.
mkdir -p "$SHARED" "$VAR/pod-logs" "$VAR/kubelet-plugins"
if ! mountpoint -q "$SHARED"; then mount --bind "$SHARED" "$SHARED"; fi
mount --make-rshared "$SHARED"
# The kubelet's root directory is in the shared mount, so what the CSI node plugin mounts there
# (Bidirectional) reaches the kubelet and the Pods.
mkdir -p "$KUBELET_DIR"
cat >"$ETC/kubelet.yaml" <<YAML
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
address: 127.0.0.1
port: $KUBELET_PORT
readOnlyPort: 0
healthzBindAddress: 127.0.0.1
healthzPort: $KUBELET_HEALTHZ_PORT
authentication:
  anonymous: {enabled: false}
  webhook: {enabled: true}
  x509: {clientCAFile: "$PKI/ca.crt"}
authorization: {mode: Webhook}
tlsCertFile: "$PKI/kubelet.crt"
tlsPrivateKeyFile: "$PKI/kubelet.key"
containerRuntimeEndpoint: "unix://$CONTAINERD_SOCK"
# this machine has cgroup v1 and no systemd
cgroupDriver: cgroupfs
failCgroupV1: false
failSwapOn: false
clusterDomain: cluster.local
resolvConf: /etc/resolv.conf
podLogsDir: "$VAR/pod-logs"
volumePluginDir: "$VAR/kubelet-plugins"
# nothing can be pulled back once collected
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
evictionHard: {memory.available: "100Mi", nodefs.available: "2%", imagefs.available: "2%", nodefs.inodesFree: "2%"}
rotateCertificates: false
serverTLSBootstrap: false
YAML
kubelet_started=$(date -u +%FT%TZ)
start kubelet "$CLUSTER_BIN/kubelet" --config="$ETC/kubelet.yaml" --kubeconfig="$ETC/kubelet.kubeconfig" \
  --root-dir="$KUBELET_DIR" --hostname-override="$NODE_NAME"
wait_until kubelet 90 sh -c "curl -sf http://127.0.0.1:$KUBELET_HEALTHZ_PORT/healthz | grep -qx ok"
# Ready, as posted by this kubelet (an earlier run's Ready does not count).
node_ready() {
  local s
  s=$(kc get node "$NODE_NAME" -o jsonpath='{range .status.conditions[?(@.type=="Ready")]}{.status} {.lastHeartbeatTime}{end}') || return 1
  [ "${s%% *}" = True ] && [[ ! "${s#* }" < "$kubelet_started" ]]
}
WHAT="node $NODE_NAME Ready" wait_until kubelet 120 node_ready
WHAT="ServiceAccount default/default created" wait_until kube-controller-manager 60 kc -n default get serviceaccount default
log "cluster up: KUBECONFIG=$ADMIN_KUBECONFIG"
