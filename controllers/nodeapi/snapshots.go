package nodeapi

import (
	"context"
	"fmt"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	storagev1alpha1 "github.com/cobaltstore/cobalt/api/v1alpha1"
	"github.com/cobaltstore/cobalt/controllers"
	nodepb "github.com/cobaltstore/cobalt/node-daemon/proto"
)

// snapshotInfo converts the node's description of a snapshot.
func snapshotInfo(info *nodepb.SnapshotInfo) controllers.SnapshotInfo {
	out := controllers.SnapshotInfo{
		SourceVolumeID:  info.GetSourceVolumeId(),
		RestoreBytes:    info.GetSizeBytes(),
		ReferencedBytes: info.GetReferencedBytes(),
		ExclusiveBytes:  info.GetExclusiveBytes(),
	}
	if t := info.GetCreationTime(); t != nil {
		out.CreationTime = t.AsTime()
	}
	return out
}

// snapshotRef is snap's reference on store.
func snapshotRef(store *storagev1alpha1.Store, snap *storagev1alpha1.Snapshot) *nodepb.SnapshotRef {
	return &nodepb.SnapshotRef{StoreUuid: store.Status.UUID, SnapshotId: snap.NodeSnapshotID()}
}

// CreateSnapshot implements controllers.NodeClient: it takes snap of vol on store (vol's Store);
// a repeat describes the snapshot taken before.
func (n *Client) CreateSnapshot(ctx context.Context, store *storagev1alpha1.Store, vol *storagev1alpha1.Volume, snap *storagev1alpha1.Snapshot) (controllers.SnapshotInfo, error) {
	c, ref, err := n.daemon(store, vol)
	if err != nil {
		return controllers.SnapshotInfo{}, err
	}
	info, err := c.CreateSnapshot(ctx, ref, snap.NodeSnapshotID())
	if err != nil {
		return controllers.SnapshotInfo{}, wrapNodeError("create snapshot", store, err)
	}
	return snapshotInfo(info), nil
}

// GetSnapshot implements controllers.NodeClient. A snapshot the node does not have is reported
// with controllers.ErrSnapshotNotFound.
func (n *Client) GetSnapshot(ctx context.Context, store *storagev1alpha1.Store, snap *storagev1alpha1.Snapshot) (controllers.SnapshotInfo, error) {
	c, err := n.daemonFor(store)
	if err != nil {
		return controllers.SnapshotInfo{}, err
	}
	info, err := c.GetSnapshot(ctx, snapshotRef(store, snap))
	if status.Code(err) == codes.NotFound {
		return controllers.SnapshotInfo{}, fmt.Errorf("get snapshot on store %s: %w: %w", store.Name, controllers.ErrSnapshotNotFound, err)
	}
	if err != nil {
		return controllers.SnapshotInfo{}, wrapNodeError("get snapshot", store, err)
	}
	return snapshotInfo(info), nil
}

// DeleteSnapshot implements controllers.NodeClient. Deleting a missing snapshot succeeds (the
// node says so itself; a NotFound, for a store that no longer knows it, counts as done too).
func (n *Client) DeleteSnapshot(ctx context.Context, store *storagev1alpha1.Store, snap *storagev1alpha1.Snapshot) error {
	c, err := n.daemonFor(store)
	if err != nil {
		return err
	}
	err = c.DeleteSnapshot(ctx, snapshotRef(store, snap))
	if err != nil && status.Code(err) != codes.NotFound {
		return wrapNodeError("delete snapshot", store, err)
	}
	return nil
}
