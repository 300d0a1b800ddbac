package driver

import "strings"

const (
	// Name is the CSI driver's name: the StorageClass provisioner and the CSIDriver object's name.
	Name = "csi.cobalt.io"

	// TopologyKeyNode is the one topology key: the name of the node that hosts a Volume's Store.
	// A Volume is reachable only from that node while it has one copy.
	TopologyKeyNode = "topology.cobalt.io/node"

	// ContextStoreUUID is the volume context key naming the UUID of the Store holding the volume.
	ContextStoreUUID = "storage.cobalt.io/store-uuid"
	// ContextVolumeUID is the volume context key naming the volume's identity on its node (the
	// Volume object's UID, as the node daemon's volume API names it).
	ContextVolumeUID = "storage.cobalt.io/volume-uid"
	// ContextVolume is the volume context key naming the Volume object, "<namespace>/<name>".
	ContextVolume = "storage.cobalt.io/volume"
	// ContextReplicas is the volume context key giving a replicated volume's number of copies
	// (absent for a volume with one copy): the node plugin then serves it through the replicated
	// data path (node-daemon/replica) instead of the local store alone.
	ContextReplicas = "storage.cobalt.io/replicas"

	// PublishContextGeneration is the publish context key carrying the attachment's generation
	// (Volume status.attachment.generation, decimal) from ControllerPublishVolume to
	// NodeStageVolume and NodePublishVolume. ControllerPublishVolume sends it for every volume;
	// it is the only publish context key.
	PublishContextGeneration = "storage.cobalt.io/generation"
)

// SidecarLeaseNames are the leader election Leases of the upstream sidecars the controller plugin
// runs with, as they name them from the driver's name: csi-provisioner's, csi-attacher's,
// csi-resizer's and csi-snapshotter's. The operator creates them owned by its ServiceAccount, so that uninstalling
// it removes them.
func SidecarLeaseNames() []string {
	base := strings.ReplaceAll(Name, ".", "-")
	return []string{base, "external-attacher-leader-" + base, "external-resizer-" + base, "external-snapshotter-leader-" + base}
}
