#!/usr/bin/env bash
# down.sh — undo what up.sh and the e2e suite set up, and only that:
#   the kubelet (first, so it restarts nothing), every container and pod sandbox in the
#   cluster's containerd (SIGTERM, then SIGKILL after a grace period, so the node daemon can
#   unmount its stores), containerd, the control plane; then the CSI volumes mounted under the
#   kubelet's directory, the loop devices backed by files under $E2E_DIR (also through the node
#   daemon's FUSE mounts; other users' loop devices are left alone), the FUSE mounts and every
#   other mount under $E2E_DIR, the
#   iptables chains and rules tagged cobalt-e2e, the bridge, ip_forward, empty pod cgroups.
# Processes are found through the PID files of up.sh only. Safe to run twice, or when up.sh
# stopped half way. DOWN_WIPE=0 keeps cluster state (etcd, containerd, kubelet); logs are kept.
set -uo pipefail
LOG_TAG=down
# shellcheck source=env.sh
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
[ -d "$E2E_DIR" ] || { log "nothing to do ($E2E_DIR does not exist)"; exit 0; }

# stop NAME GRACE_SECONDS: SIGTERM the process of NAME's PID file, SIGKILL it after the grace.
stop() {
  local name=$1 grace=$2 p i
  if running "$name"; then
    p=$(cat "$(pidfile "$name")")
    kill -TERM "$p" 2>/dev/null
    for ((i = 0; i < grace * 10; i++)); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
    if kill -0 "$p" 2>/dev/null; then
      log "$name (pid $p) still running after ${grace}s: SIGKILL"
      kill -KILL "$p" 2>/dev/null; sleep 0.3
    fi
    log "stopped $name (pid $p)"
  fi
  rm -f "$(pidfile "$name")" "$RUN/$name.exe"
}

stop kubelet 30
# the kubelet hard-codes its device-plugin socket outside --root-dir
rm -f /var/lib/kubelet/device-plugins/kubelet.sock

# Containers: containerd 1.6 leaves its shims (and so the containers) running when it stops, so
# the tasks are ended through it first: SIGTERM everywhere, a grace period, then SIGKILL.
if running containerd; then
  tasks=$(ctr_ tasks ls -q 2>/dev/null)
  if [ -n "$tasks" ]; then
    for t in $tasks; do ctr_ tasks kill -s SIGTERM "$t" >/dev/null 2>&1; done
    for ((i = 0; i < ${DOWN_GRACE:-30} * 2; i++)); do
      left=$(ctr_ tasks ls 2>/dev/null | awk 'NR > 1 && $3 != "STOPPED" {print $1}')
      [ -z "$left" ] && break
      sleep 0.5
    done
    for t in $left; do log "container $t ignored SIGTERM: SIGKILL"; ctr_ tasks kill -a -s SIGKILL "$t" >/dev/null 2>&1; done
    sleep 0.5
    for t in $tasks; do ctr_ tasks delete -f "$t" >/dev/null 2>&1; done
    log "ended $(echo "$tasks" | wc -w) containers"
  fi
  for c in $(ctr_ containers ls -q 2>/dev/null); do ctr_ containers delete "$c" >/dev/null 2>&1; done
fi
stop containerd 20
stop kube-scheduler 10
stop kube-controller-manager 10
stop kube-apiserver 30
stop etcd 30

# mounts_under DIR [FSTYPE_REGEX]: mount points at or below DIR (of a file system type matching
# the regex, default any), deepest first.
mounts_under() {
  awk -v d="$1/" -v t="${2:-.}" '(index($2, d) == 1 || $2 == substr(d, 1, length(d) - 1)) && $3 ~ t {print $2}' /proc/self/mounts | sort -r | uniq
}
unmount_all() {
  while read -r m; do umount "$m" 2>/dev/null || umount -l "$m" 2>/dev/null || log "cannot unmount $m"; done
}

# 1. Volumes the CSI node plugin staged and published under the kubelet's directory (file systems
#    on loop devices), so that their loop devices can go.
mounts_under "$KUBELET_DIR" | unmount_all
# 2. Loop devices whose backing file lives under E2E_DIR: the suite's device images, and the CSI
#    volumes' files, which the node daemon serves through FUSE mounts under E2E_DIR (their paths
#    stay readable in sysfs when the FUSE server is gone, unlike the files). Other users' loop
#    devices are left alone.
if [ -d /sys/block ]; then
  for bf in /sys/block/loop*/loop/backing_file; do
    [ -r "$bf" ] || continue
    f=$(cat "$bf" 2>/dev/null) || continue
    case $f in
      "$E2E_DIR"/*) dev=/dev/$(basename "$(dirname "$(dirname "$bf")")")
        losetup -d "$dev" 2>/dev/null && log "detached $dev ($f)" ;;
    esac
  done
fi
# 3. FUSE mounts under E2E_DIR (the node daemon's volume files), then every other mount there
#    (container root filesystems, network namespaces, kubelet volumes, the shared bind mount),
#    deepest first; a busy one is detached lazily.
mounts_under "$E2E_DIR" '^fuse' | unmount_all
mounts_under "$E2E_DIR" | unmount_all

# Loop devices of device images under E2E_DIR that step 2 could not see (no sysfs).
if command -v losetup >/dev/null && [ -d "$E2E_DIR" ]; then
  while read -r f; do
    for dev in $(losetup -j "$f" -O NAME -n 2>/dev/null | awk '{print $1}'); do
      losetup -d "$dev" && log "detached $dev ($f)"
    done
  done < <(find "$E2E_DIR" -xdev -type f -name '*.img' 2>/dev/null)
fi

if [ -f "$RUN/iptables.added" ]; then
  while iptables -t nat -D OUTPUT -m comment --comment "$RULE_TAG" -j "$CHAIN_DNAT" 2>/dev/null; do :; done
  while iptables -t nat -D PREROUTING -i "$BRIDGE" -m comment --comment "$RULE_TAG" -j "$CHAIN_DNAT" 2>/dev/null; do :; done
  while iptables -D INPUT -i "$BRIDGE" -m comment --comment "$RULE_TAG" -j "$CHAIN_GUARD" 2>/dev/null; do :; done
  iptables -t nat -F "$CHAIN_DNAT" 2>/dev/null && iptables -t nat -X "$CHAIN_DNAT" 2>/dev/null
  iptables -F "$CHAIN_GUARD" 2>/dev/null && iptables -X "$CHAIN_GUARD" 2>/dev/null
  rm -f "$RUN/iptables.added"
  log "removed iptables chains $CHAIN_DNAT, $CHAIN_GUARD"
fi
if [ -f "$RUN/bridge.created" ]; then
  ip link delete "$BRIDGE" 2>/dev/null && log "deleted bridge $BRIDGE"
  rm -f "$RUN/bridge.created"
fi
if [ -f "$RUN/ip_forward.orig" ]; then
  cat "$RUN/ip_forward.orig" >/proc/sys/net/ipv4/ip_forward && rm -f "$RUN/ip_forward.orig"
fi
# pod cgroups the kubelet made (rmdir only removes empty ones)
for c in /sys/fs/cgroup/*/kubepods /sys/fs/cgroup/kubepods; do
  [ -d "$c" ] && find "$c" -depth -type d -exec rmdir {} \; 2>/dev/null
done
if [ "${DOWN_WIPE:-1}" = 1 ]; then
  rm -rf "$VAR" "$RUN" "$PKI" "$ETC" "$SHARED" "$IMAGES" "$E2E_DIR/devices" "$E2E_DIR/state" "$E2E_DIR/work"
  log "removed cluster state under $E2E_DIR (logs kept in $LOGS)"
fi
log "done"
