// Package app is the node daemon: a controller-runtime Manager whose Runnables share one
// lifecycle (see the TopoLVM notes in the style guide).
//
//   - Configuration: the flags (Config) name the daemon's StorageCluster, its node (downward
//     API), addresses, state directory and intervals. NewManager reads the StorageCluster once,
//     straight from the API server (the daemon's Role allows get on that one object; no list, no
//     watch, nothing cached), and SettingsFromSpec turns spec.devices and spec.engine into the
//     device selection and the engine settings, with the CRD's defaults. A StorageCluster that is
//     missing or unreadable, or a spec the daemon cannot use, is an error: the process exits
//     non-zero and its DaemonSet restarts it. The settings hold for the daemon's life; the
//     operator rolls the DaemonSet when they change (a hash of them in the pod template).
//   - The node runnable prepares the node's devices into stores (package devices decides; Engine
//     formats and mounts), serves them over mTLS gRPC (package server) and, when the Manager's
//     context ends (SIGTERM), stops accepting, lets in-flight calls finish (GracefulStop, bounded
//     by the shutdown grace), then closes every store, which flushes deferred writes and unmounts
//     cleanly so the next start mounts without repair.
//   - The heartbeat runnable creates and updates one Store object per selected device, every
//     HeartbeatInterval: capacity, usage, cache statistics, the daemon's endpoint, or the reason
//     the device was skipped. The endpoint annotation is set only while the gRPC server serves,
//     before the status of the same heartbeat, and the heartbeat runs again the moment the server
//     starts serving; when the daemon stops, the heartbeat withdraws it. The operator treats a Store
//     without it as not Ready (EndpointPending). A store whose device failed under it (its
//     snapshot's health reason metrics.HealthReasonDeviceFailed) is taken out of service at the
//     next heartbeat (node.retireFailed): no longer served, its device reported not used with the
//     failure as the reason and a DeviceFailed event, as a restart on the dead device would find
//     it, so the operator counts its copies Lost; it stays open until the node closes its stores.
//   - Metrics (package metrics) are registered with the Manager's registry and served by its
//     metrics server; liveness and readiness are the Manager's probes (ready once stores are
//     prepared and the gRPC server is serving), and grpc.health.v1 is also served on a local unix
//     socket for the `health` exec probe.
//   - The CSI node plugin (package csinode; on when --csi-endpoint is set) starts once the stores
//     are registered: the FUSE + loop frontend (cleaning up after a daemon that died), then
//     Recover re-serves every staged volume, then the CSI socket serves and, with
//     --kubelet-registration-dir, the daemon registers itself with kubelet (no
//     node-driver-registrar). Its Identity Probe is ready while the stores are served; the
//     Manager's liveness calls that Probe on the socket (no livenessprobe sidecar) and its
//     readiness waits for the socket.
//
// Layering: the daemon shares with the operator only the API types (api/v1alpha1), the CSI names
// (csi/driver) and the node API (node-daemon/proto, node-daemon/client); no package of
// node-daemon/... imports controllers/... or csi/controller, so the daemon links none of the
// operator's reconcilers (test/layers checks it). The engine adapter (package engine) imports
// this package for the Engine interface it implements; the interface stays with its consumer.
//
// Invariants: the Manager's cache holds only this node's Store objects (label selector); no store
// whose label names another cluster is mounted or written (a forced Mkfs aside, which needs
// allowWipe with explicit paths); no device is formatted unless devices.Inspector decided Mkfs
// and, read just before, the StorageCluster exists and is not being deleted; a label is rewritten
// only for a Mount with Adopt, and then only to add this cluster; mkfs is idempotent across crashes (a
// pending marker in StateDir/stores/<uuid> makes a repeated attempt reuse the same UUID);
// stores are closed only after the gRPC server and the CSI node plugin have stopped.
//
// Store metadata: the daemon makes every store with its metadata database on the device (label
// version 2), so a store mounts from its device alone: nothing in the state directory is needed to
// mount it, and a device moved to another node, or a node whose state directory was lost, keeps
// its store. Stores made before keep their metadata in StateDir/stores/<uuid>/db and still mount
// from there (only there). The state directory still holds the daemon's own state: the health
// socket, the CSI stage records, the file-backed device and mkfs-pending markers. The daemon logs
// where each store's metadata is when it mounts it and reports it in the Store's status.metadata.
//
// Cluster identity: the daemon's cluster is its StorageCluster's UID, read with the object
// (ClusterSettings.ClusterID); the operator also passes it as --cluster-uid, and a daemon whose
// StorageCluster has another UID (deleted and created again) does not start. Every store the
// daemon makes records the cluster in its label (label version 3). A store of another cluster is
// skipped by the inspection (devices.Inspector.ClusterID), reported in its Store's notUsedReason
// and a StoreOfAnotherCluster event, and wiped only with allowWipe (explicit paths); the Engine
// checks the label again under its exclusive open (ClaimLabel, ErrOtherCluster), so a store of
// another cluster is never mounted or written. A store whose label names no cluster (version 2)
// is adopted on its first mount: the Engine rewrites its label to name this cluster
// (blockdev.RewriteLabel, crash-safe) before mounting it, and the daemon records a StoreAdopted
// event (package devices explains why adoption rather than refusal).
package app
