package app

import (
	"errors"
	"fmt"

	"github.com/cobaltstore/cobalt/storage-engine/blockdev"
)

// ErrOtherCluster is returned (wrapped) by an Engine asked to mount a store whose label names
// another cluster than the request's. The device inspection skips such devices first; the engine
// checks again on the device it holds open exclusively, so nothing that changed in between can
// make it mount another cluster's store.
var ErrOtherCluster = errors.New("the store belongs to another Cobalt cluster")

// ParseClusterID turns a StorageCluster's UID, the cluster identity recorded in store labels,
// into its 16 bytes.
func ParseClusterID(uid string) ([16]byte, error) {
	id, err := blockdev.ParseUUID(uid)
	if err != nil {
		return id, fmt.Errorf("the StorageCluster's UID %q is not a UUID, so it cannot name the cluster in store labels: %w", uid, err)
	}
	if id == [16]byte{} {
		return id, fmt.Errorf("the StorageCluster's UID %q is zero", uid)
	}
	return id, nil
}

// ClaimLabel decides from l, the label of the store req asks to mount, whether it may be mounted,
// and returns the label to write first when req adopts it (nil when the label stays as it is):
//   - a label naming req's cluster mounts as it is;
//   - a label naming another cluster is refused with ErrOtherCluster;
//   - a label naming no cluster, with the metadata on the device (version 2), mounts only when
//     req.Adopt is set, after its label is rewritten to name req's cluster;
//   - a label naming no cluster, with the metadata on a separate device (version 4, made by a
//     tool, never by a node daemon), is refused: adopting it would mean rewriting two labels;
//   - a label naming no cluster, with the metadata in a directory (version 1), mounts as it is:
//     its metadata directory on this node is what ties it to this node.
func ClaimLabel(l blockdev.Label, req OpenRequest) (*blockdev.Label, error) {
	switch {
	case l.HasCluster() && l.ClusterID == req.ClusterID:
		return nil, nil
	case l.HasCluster():
		return nil, fmt.Errorf("store %s on %s names cluster %s, not this cluster (%s): %w",
			l.UUIDString(), req.DevicePath, l.ClusterIDString(), clusterString(req.ClusterID), ErrOtherCluster)
	case l.MetaOnSeparateDevice || l.MetadataDevice:
		return nil, fmt.Errorf("store %s on %s names no cluster and keeps its metadata on a separate device (label version %d): such a store is not adopted into a cluster: %w",
			l.UUIDString(), req.DevicePath, l.Version, ErrOtherCluster)
	case !l.MetaOnDevice():
		return nil, nil
	case !req.Adopt || req.ClusterID == [16]byte{}:
		return nil, fmt.Errorf("store %s on %s names no cluster (label version %d) and was not to be adopted into this one: %w",
			l.UUIDString(), req.DevicePath, l.Version, ErrOtherCluster)
	}
	adopted := l
	adopted.Version, adopted.ClusterID = 0, req.ClusterID
	return &adopted, nil
}

func clusterString(id [16]byte) string {
	if id == [16]byte{} {
		return "unknown"
	}
	return blockdev.FormatUUID(id)
}
