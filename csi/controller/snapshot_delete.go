package controller

import (
	"context"

	"github.com/container-storage-interface/spec/lib/go/csi"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/cobaltstore/cobalt/api/v1alpha1"
)

// DeleteSnapshot deletes the Snapshot and returns once it is gone, that is once its node freed
// what only it referenced (the Snapshot's finalizer). A snapshot that does not exist is deleted
// already. A snapshot that a Volume is still being restored from is FailedPrecondition: the
// restore needs it until its node has created the volume; volumes restored before keep their
// data without it.
func (s *Server) DeleteSnapshot(ctx context.Context, req *csi.DeleteSnapshotRequest) (*csi.DeleteSnapshotResponse, error) {
	id := req.GetSnapshotId()
	if id == "" {
		return nil, status.Error(codes.InvalidArgument, "snapshot_id is required")
	}
	if !validVolumeID(id) {
		return &csi.DeleteSnapshotResponse{}, nil
	}
	done, err := s.beginSnapshot(id)
	if err != nil {
		return nil, err
	}
	defer done()

	err = deleteAndWait(ctx, s, "Snapshot", id, s.getSnapshot, snapshotState, s.waitSnapshotGone,
		func(src *v1alpha1.VolumeSource) bool { return src.SnapshotName == id })
	if err != nil {
		return nil, err
	}
	return &csi.DeleteSnapshotResponse{}, nil
}

// waitSnapshotGone polls until the Snapshot named name no longer exists.
func (s *Server) waitSnapshotGone(ctx context.Context, name string) error {
	_, err := s.pollSnapshot(ctx, name, nil, func(*v1alpha1.Snapshot) bool { return false })
	return err
}
