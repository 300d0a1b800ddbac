// Command cobalt-demo runs `make demo`: a one-machine Cobalt on a local control plane, driven
// through the same binaries and manifests a real install uses, and `make demo-down`, which stops a
// demo started from another shell.
//
// `cobalt-demo up` runs the steps in order and names each one as it starts: build the binaries,
// start kube-apiserver and etcd from the envtest assets (or use $KUBECONFIG when
// DEMO_USE_KUBECONFIG=1), apply config/default as `kubectl apply -k` would except the operator's
// Deployment, run that Deployment's container (bin/manager) as a process with its arguments and
// its ServiceAccount's RBAC, give node demo-node-1 a device (a sparse file on a loop device as
// root, a plain file otherwise), run its node daemon with the arguments of the DaemonSet the
// operator made, create a Volume, write data through the volume API and read it back with a
// checksum, then (as root) use a volume as a Pod would through the CSI plugins: CreateVolume on
// the operator's controller plugin, NodeStageVolume and NodePublishVolume on the node daemon's
// node plugin at kubelet's paths under .demo/kubelet, files written with fsync, unstaged, staged
// again and read back with checksums, DeleteVolume; and print what the cluster and the CLI show.
// No kubelet runs: the demo plays its part (and csi-provisioner's).
//
// Invariants:
//   - Everything the demo starts or attaches is written to the state file (.demo/state.json)
//     before the demo depends on it, and is undone in reverse order on exit, on Ctrl-C and on
//     SIGTERM. `cobalt-demo down` signals a live demo and then undoes whatever a dead one left.
//   - A process or loop device is only stopped or detached when it still is the one the demo
//     recorded (same executable, same backing file), so a recycled PID or loop number is never
//     touched.
//   - A step that cannot run because a part of Cobalt is missing says so and the demo stops there
//     with a non-zero status; no step is ever pretended.
//   - Every process's output goes to its own file under .demo/logs, and a failing step names it.
//     Once everything is undone, every other file under .demo is removed (manifests, data,
//     kubeconfigs, sockets, the state file last): only .demo/logs is left. When something could
//     not be undone, the files and the state file stay for `make demo-down`.
//   - The node DaemonSet's kubelet paths are moved under .demo/kubelet: the demo never touches the
//     host's kubelet directory. Nothing under .demo/kubelet or the node state directory is removed
//     while anything is still mounted there.
package main
