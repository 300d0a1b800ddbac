package controller

import (
	"context"
	"fmt"
	"time"

	"github.com/container-storage-interface/spec/lib/go/csi"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	apierrors "k8s.io/apimachinery/pkg/api/errors"

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

	snap, err := s.getSnapshot(ctx, id)
	if err != nil {
		return nil, internal(err, "look up the snapshot")
	}
	if snap == nil {
		return &csi.DeleteSnapshotResponse{}, nil
	}
	key := snap.Namespace + "/" + snap.Name
	if snap.DeletionTimestamp.IsZero() {
		if err := s.refuseIfRestoring(ctx, "snapshot", id, func(src *v1alpha1.VolumeSource) bool { return src.SnapshotName == id }); err != nil {
			return nil, err
		}
		if err := s.client.Delete(ctx, snap); err != nil && !apierrors.IsNotFound(err) {
			return nil, internal(err, "delete Snapshot "+key)
		}
		s.log.Info("deleted Snapshot", "snapshot", key)
	}
	if err := s.waitSnapshotGone(ctx, id); err != nil {
		// One last read, past the call's end, to say what holds the Snapshot up.
		readCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		state := "it is gone"
		if sn, _ := s.getSnapshot(readCtx, id); sn != nil {
			state = snapshotState(sn)
		}
		return nil, waitError(err, fmt.Sprintf("Snapshot %s to be freed on its node (%s)", key, state))
	}
	return &csi.DeleteSnapshotResponse{}, nil
}

// waitSnapshotGone polls until the Snapshot named name no longer exists.
func (s *Server) waitSnapshotGone(ctx context.Context, name string) error {
	_, err := s.pollSnapshot(ctx, name, nil, func(*v1alpha1.Snapshot) bool { return false })
	return err
}
