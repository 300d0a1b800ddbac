// Package devices decides which of a node's devices become stores: it finds the candidate devices
// a selection names (explicit paths, a name filter over the node's block devices, or the
// development file-backed device) and inspects each one, so that every device ends up either used
// or skipped with a reason a person can act on.
//
// A device is skipped when it is read-only, too small, a whole disk with partitions, mounted or
// held by another layer (device-mapper, md), or when it carries a filesystem, another storage
// layer or a Cobalt store whose metadata is in a directory that is not on this node. The last two
// may be overridden by AllowWipe; the others never are.
//
// A Cobalt store keeps its metadata either on its device (label version 2, every store the daemon
// makes now) or in the node daemon's state directory (label version 1, stores made before). The
// first kind is mounted wherever its device turns up, with nothing from the state directory: a
// disk moved to another node, or a node whose root disk was rebuilt, keeps its store. The label
// does not name a cluster, so such a store is mounted even if another cluster made it, and
// AllowWipe does not wipe it; wipe the device by hand to reuse it. The second kind is mounted only
// where its metadata directory is.
//
// Invariants:
//   - Inspection never writes: devices are opened read-only.
//   - A Decision with Action Mkfs is only made for a device with no signature, or when AllowWipe
//     is set (then Force is set too, and Reason says what will be overwritten).
//   - A device carrying a Cobalt label is mounted (Action Mount) only if its metadata is on the
//     device, or if this node holds that store's metadata directory.
package devices
