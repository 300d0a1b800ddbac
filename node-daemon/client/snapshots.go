package client

import (
	"context"
	"fmt"

	nodepb "github.com/cobaltstore/cobalt/node-daemon/proto"
)

// Snapshot, restore and clone calls of VolumeService. Errors wrap the daemon's status, so
// status.Code of an error is the code volume.proto documents (NotFound, AlreadyExists, OutOfRange,
// ...).

// CreateSnapshot takes snapshot snapshotID of volume src; repeating it returns the snapshot.
func (c *Client) CreateSnapshot(ctx context.Context, src *nodepb.VolumeRef, snapshotID string) (*nodepb.SnapshotInfo, error) {
	resp, err := c.Volumes.CreateSnapshot(ctx, &nodepb.CreateSnapshotRequest{Source: src, SnapshotId: snapshotID})
	if err != nil {
		return nil, fmt.Errorf("client: snapshot %q of volume %q: %w", snapshotID, src.GetVolumeId(), err)
	}
	return resp.GetSnapshot(), nil
}

// DeleteSnapshot deletes a snapshot; deleting a missing one succeeds.
func (c *Client) DeleteSnapshot(ctx context.Context, ref *nodepb.SnapshotRef) error {
	if _, err := c.Volumes.DeleteSnapshot(ctx, &nodepb.DeleteSnapshotRequest{Ref: ref}); err != nil {
		return fmt.Errorf("client: delete snapshot %q: %w", ref.GetSnapshotId(), err)
	}
	return nil
}

// GetSnapshot describes a snapshot.
func (c *Client) GetSnapshot(ctx context.Context, ref *nodepb.SnapshotRef) (*nodepb.SnapshotInfo, error) {
	resp, err := c.Volumes.GetSnapshot(ctx, &nodepb.GetSnapshotRequest{Ref: ref})
	if err != nil {
		return nil, fmt.Errorf("client: get snapshot %q: %w", ref.GetSnapshotId(), err)
	}
	return resp.GetSnapshot(), nil
}

// ListSnapshots returns every snapshot of store storeUUID, only those of volume sourceVolumeID
// when it is not "", sorted by ID: it follows the daemon's pages to the end.
func (c *Client) ListSnapshots(ctx context.Context, storeUUID, sourceVolumeID string) ([]*nodepb.SnapshotInfo, error) {
	var out []*nodepb.SnapshotInfo
	for start := ""; ; {
		resp, err := c.Volumes.ListSnapshots(ctx, &nodepb.ListSnapshotsRequest{StoreUuid: storeUUID, SourceVolumeId: sourceVolumeID, Start: start})
		if err != nil {
			return nil, fmt.Errorf("client: list snapshots of store %s from %q: %w", storeUUID, start, err)
		}
		out = append(out, resp.GetSnapshots()...)
		if resp.GetNext() == "" {
			return out, nil
		}
		if resp.GetNext() <= start {
			return nil, fmt.Errorf("client: list snapshots of store %s: page after %q starts at %q, not after it", storeUUID, start, resp.GetNext())
		}
		start = resp.GetNext()
	}
}

// RestoreSnapshot creates volume dst from snapshot src (on dst's store) of sizeBytes, 0 meaning
// the snapshot's size; a size smaller than the snapshot's is refused with OutOfRange.
func (c *Client) RestoreSnapshot(ctx context.Context, dst *nodepb.VolumeRef, src string, sizeBytes int64) (*nodepb.VolumeInfo, error) {
	resp, err := c.Volumes.CreateVolume(ctx, &nodepb.CreateVolumeRequest{Ref: dst, SizeBytes: sizeBytes,
		ContentSource: &nodepb.VolumeContentSource{Source: &nodepb.VolumeContentSource_SnapshotId{SnapshotId: src}}})
	if err != nil {
		return nil, fmt.Errorf("client: restore snapshot %q to volume %q: %w", src, dst.GetVolumeId(), err)
	}
	return resp.GetVolume(), nil
}

// CloneVolume creates volume dst as a copy of volume src (on dst's store) of sizeBytes, 0 meaning
// the source's size; a size smaller than the source's is refused with OutOfRange.
func (c *Client) CloneVolume(ctx context.Context, dst *nodepb.VolumeRef, src string, sizeBytes int64) (*nodepb.VolumeInfo, error) {
	resp, err := c.Volumes.CreateVolume(ctx, &nodepb.CreateVolumeRequest{Ref: dst, SizeBytes: sizeBytes,
		ContentSource: &nodepb.VolumeContentSource{Source: &nodepb.VolumeContentSource_VolumeId{VolumeId: src}}})
	if err != nil {
		return nil, fmt.Errorf("client: clone volume %q to %q: %w", src, dst.GetVolumeId(), err)
	}
	return resp.GetVolume(), nil
}
