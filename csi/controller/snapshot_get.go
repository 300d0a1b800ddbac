package controller

import (
	"context"

	"github.com/container-storage-interface/spec/lib/go/csi"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/cobaltstore/cobalt/api/v1alpha1"
	"github.com/cobaltstore/cobalt/csi/driver"
)

// GetSnapshot describes one snapshot created through CSI, as ListSnapshots would list it. A
// snapshot that does not exist, was not created through CSI, or was never taken (CreateSnapshot
// has not returned it) is NotFound. One that was taken and has since been lost on its node is
// returned with ready_to_use false.
func (s *Server) GetSnapshot(ctx context.Context, req *csi.GetSnapshotRequest) (*csi.GetSnapshotResponse, error) {
	id := req.GetSnapshotId()
	if id == "" {
		return nil, status.Error(codes.InvalidArgument, "snapshot_id is required")
	}
	snap, err := s.getSnapshot(ctx, id)
	if err != nil {
		return nil, internal(err, "get Snapshot "+id)
	}
	switch {
	case snap == nil || snap.Labels[v1alpha1.LabelCSIDriver] != driver.Name:
		return nil, status.Errorf(codes.NotFound, "snapshot %s does not exist", id)
	case !wasTaken(snap):
		return nil, status.Errorf(codes.NotFound, "snapshot %s is not taken yet (%s)", id, snapshotState(snap))
	}
	return &csi.GetSnapshotResponse{Snapshot: csiSnapshot(snap)}, nil
}
