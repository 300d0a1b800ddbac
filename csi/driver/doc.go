// Package driver holds what Cobalt's two CSI plugins share: the driver's name, the topology key,
// the keys of the volume context that the controller plugin returns from CreateVolume and the node
// plugin reads in NodeStageVolume, the Identity service both serve, and the unix-socket gRPC server
// they run on.
//
// Invariants: the controller plugin (csi/controller, run by the operator) and the node plugin
// (node-daemon/csinode, run by the node daemon) agree on these names only through this package;
// a CSI volume ID is the name of the Volume object in the driver's namespace, so it is stable for
// the life of the PersistentVolume and never reused while that Volume exists.
package driver
