// Package devices decides which of a node's devices become stores: it finds the candidate devices
// a selection names (explicit paths, a name filter over the node's block devices, or the
// development file-backed device) and inspects each one, so that every device ends up either used
// or skipped with a reason a person can act on.
//
// A device is skipped when it is read-only, too small, a whole disk with partitions, mounted or
// held by another layer (device-mapper, md), or when it carries a filesystem, another storage
// layer, a Cobalt label this daemon cannot read, or a Cobalt store of another cluster. The last
// three may be overridden by AllowWipe (which the daemon accepts only with explicit device paths);
// the others never are.
//
// Which cluster a store belongs to: a store's label (version 3) records the ID of the cluster that
// made it, the UID of the StorageCluster whose daemon ran mkfs (Inspector.ClusterID is the daemon's
// own). A store of this cluster that keeps its metadata on its device is mounted on whichever node
// of the cluster its device turns up: a disk moved to another node, or a node whose root disk was
// rebuilt, keeps its store. A store whose label names another cluster is never mounted and never
// written: the device is skipped with a reason naming both clusters and what to do, and is wiped
// (a new store of this cluster) only with AllowWipe. Stores made before labels named a cluster:
//   - label version 2 (metadata on the device, no cluster): adopted by the first cluster that
//     mounts it (Decision.Adopt; the mount records the cluster in the label, RewriteLabel, before
//     it opens the store). Such stores were made only by the one development build before this
//     one, which mounted them wherever they turned up; refusing them would strand every one of
//     them with no way back but a wipe, while adopting them on first mount protects them from
//     then on. The daemon logs and reports each adoption (event StoreAdopted).
//   - label version 1 (metadata in the node daemon's state directory, no cluster): mounted only
//     where its metadata directory is, as before; elsewhere it is treated as another cluster's
//     (it cannot be mounted without its metadata) and wiped only with AllowWipe. Its label is not
//     rewritten.
//
// Invariants:
//   - Inspection never writes: devices are opened read-only.
//   - A Decision with Action Mkfs is only made for a device with no signature, or when AllowWipe
//     is set (then Force is set too, and Reason says what will be overwritten).
//   - A device carrying a Cobalt label is mounted (Action Mount) only if the label names this
//     cluster or no cluster, and its metadata is on the device, on a separate metadata device
//     (version 4, this cluster only; Decision.MetaOnSeparateDevice), or this node holds that
//     store's metadata directory. A label naming another cluster is never mounted.
//   - A separate metadata device (label version 4, LabelFlagMetadataDevice) is never a store: it
//     is skipped, and one of this cluster or of no cluster is never wiped, whatever AllowWipe says.
package devices
