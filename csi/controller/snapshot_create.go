package controller

import (
	"context"
	"errors"
	"fmt"

	"github.com/container-storage-interface/spec/lib/go/csi"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/cobaltstore/cobalt/api/v1alpha1"
	"github.com/cobaltstore/cobalt/csi/driver"
)

// CreateSnapshot creates the Snapshot for a request, or finds the one an earlier attempt created,
// and waits until the source Volume's node has taken it. It never answers ready_to_use=false: a
// Cobalt snapshot is usable the moment it is taken, and before that there is no point in time
// to report, so the call returns only then (or DeadlineExceeded, and the sidecar retries). A
// Snapshot the node failed to take is deleted (it holds no data) and reported with the node's
// message: ResourceExhausted when its Store is full, Internal otherwise. One taken before that
// can no longer be restored from (its Store or its node lost it) is FailedPrecondition, and kept.
func (s *Server) CreateSnapshot(ctx context.Context, req *csi.CreateSnapshotRequest) (*csi.CreateSnapshotResponse, error) {
	if req.GetName() == "" {
		return nil, status.Error(codes.InvalidArgument, "name is required")
	}
	if req.GetSourceVolumeId() == "" {
		return nil, status.Error(codes.InvalidArgument, "source_volume_id is required")
	}
	params, err := parseSnapshotParameters(req.GetParameters())
	if err != nil {
		return nil, err
	}
	want := &v1alpha1.Snapshot{
		ObjectMeta: metav1.ObjectMeta{
			Namespace:   s.namespace,
			Name:        SnapshotName(req.GetName()),
			Labels:      params.Labels,
			Annotations: params.Annotations,
		},
		Spec: v1alpha1.SnapshotSpec{VolumeName: req.GetSourceVolumeId()},
	}
	want.Labels[v1alpha1.LabelCSIDriver] = driver.Name
	want.Annotations[v1alpha1.AnnotationCSIName] = req.GetName()

	done, err := s.beginSnapshot(want.Name)
	if err != nil {
		return nil, err
	}
	defer done()

	snap, err := s.ensureSnapshot(ctx, req, want)
	if err != nil {
		return nil, err
	}
	snap, err = s.waitTaken(ctx, snap)
	if err != nil {
		return nil, err
	}
	if c := snapshotFailure(snap); c != nil {
		if wasTaken(snap) {
			return nil, status.Errorf(codes.FailedPrecondition,
				"snapshot %q was taken but can no longer be restored from: %s; delete it and take another", req.GetName(), c.Message)
		}
		return nil, s.abandonFailed(ctx, snap)
	}
	return &csi.CreateSnapshotResponse{Snapshot: csiSnapshot(snap)}, nil
}

// ensureSnapshot creates want, or returns the Snapshot of that name when it exists and is this
// request's. A new snapshot needs its source Volume: NotFound when there is none. An existing one
// is answered even when its source has been deleted since: the snapshot outlives it.
func (s *Server) ensureSnapshot(ctx context.Context, req *csi.CreateSnapshotRequest, want *v1alpha1.Snapshot) (*v1alpha1.Snapshot, error) {
	key := want.Namespace + "/" + want.Name
	existing, err := s.getSnapshot(ctx, want.Name)
	if err != nil {
		return nil, internal(err, "look for an existing Snapshot")
	}
	if existing == nil {
		if err := s.checkSnapshotSource(ctx, req.GetSourceVolumeId()); err != nil {
			return nil, err
		}
		err := s.client.Create(ctx, want)
		switch {
		case err == nil:
			s.log.Info("created Snapshot", "snapshot", key, "volume", want.Spec.VolumeName, "csiName", req.GetName())
			return want, nil
		case apierrors.IsInvalid(err):
			return nil, status.Errorf(codes.InvalidArgument, "the API server refused Snapshot %s: %v", key, err)
		case !apierrors.IsAlreadyExists(err):
			return nil, internal(err, "create Snapshot "+key)
		}
		// Another replica of the plugin created it meanwhile.
		if existing, err = s.getSnapshot(ctx, want.Name); err != nil || existing == nil {
			return nil, status.Errorf(codes.Aborted, "Snapshot %s was created and deleted concurrently; retry", key)
		}
	}
	if err := checkExistingSnapshot(existing, req); err != nil {
		return nil, err
	}
	return existing, nil
}

// checkSnapshotSource refuses a snapshot of a volume that does not exist (NotFound) or is being
// deleted (FailedPrecondition).
func (s *Server) checkSnapshotSource(ctx context.Context, id string) error {
	if !validVolumeID(id) {
		return status.Errorf(codes.NotFound, "source volume %q does not exist", id)
	}
	vol, err := s.getVolume(ctx, id)
	if err != nil {
		return internal(err, "look up the source volume")
	}
	if vol == nil {
		return status.Errorf(codes.NotFound, "source volume %q does not exist in namespace %s", id, s.namespace)
	}
	if !vol.DeletionTimestamp.IsZero() {
		return status.Errorf(codes.FailedPrecondition, "source Volume %s/%s is being deleted; it cannot be snapshotted", vol.Namespace, vol.Name)
	}
	return nil
}

// checkExistingSnapshot refuses an existing Snapshot that a request cannot be answered with: one
// made for another request name (or not through CSI), one of another volume, or one being
// deleted.
func checkExistingSnapshot(snap *v1alpha1.Snapshot, req *csi.CreateSnapshotRequest) error {
	key := snap.Namespace + "/" + snap.Name
	if got := snap.Annotations[v1alpha1.AnnotationCSIName]; got != req.GetName() {
		if got == "" {
			return status.Errorf(codes.AlreadyExists, "Snapshot %s exists and was not created through CSI; it is not handed out for request %q", key, req.GetName())
		}
		return status.Errorf(codes.AlreadyExists, "Snapshot %s belongs to CSI request %q, not %q: their names map to the same Snapshot; choose another name", key, got, req.GetName())
	}
	if snap.Spec.VolumeName != req.GetSourceVolumeId() {
		return status.Errorf(codes.AlreadyExists, "snapshot %q exists, of volume %q; the request asks for one of volume %q",
			req.GetName(), snap.Spec.VolumeName, req.GetSourceVolumeId())
	}
	if !snap.DeletionTimestamp.IsZero() {
		return status.Errorf(codes.Aborted, "Snapshot %s from an earlier attempt is being deleted; retry", key)
	}
	return nil
}

// waitTaken polls snap until its node took it, or failed to.
func (s *Server) waitTaken(ctx context.Context, snap *v1alpha1.Snapshot) (*v1alpha1.Snapshot, error) {
	key := snap.Namespace + "/" + snap.Name
	gone := status.Errorf(codes.Aborted, "Snapshot %s was deleted while waiting for it to be taken; retry", key)
	last, err := s.pollSnapshot(ctx, snap.Name, gone, func(sn *v1alpha1.Snapshot) bool { return isTaken(sn) || snapshotFailure(sn) != nil })
	if err != nil {
		if last == nil {
			last = snap
		}
		return nil, waitError(err, fmt.Sprintf("Snapshot %s to be taken of Volume %s (%s)", key, snap.Spec.VolumeName, snapshotState(last)))
	}
	return last, nil
}

// abandonFailed deletes a Snapshot its node failed to take and returns the status to answer
// with. The delete is conditional on the Snapshot being the one read, so one taken in the
// meantime (the operator may retry) is kept, and the call is Aborted, to be retried.
func (s *Server) abandonFailed(ctx context.Context, snap *v1alpha1.Snapshot) error {
	key := snap.Namespace + "/" + snap.Name
	c := snapshotFailure(snap)
	uid, rv := snap.UID, snap.ResourceVersion
	err := s.client.Delete(ctx, snap, client.Preconditions{UID: &uid, ResourceVersion: &rv})
	switch {
	case apierrors.IsConflict(err):
		return status.Errorf(codes.Aborted, "Snapshot %s changed while being deleted after a failure; retry", key)
	case err != nil && !apierrors.IsNotFound(err):
		return internal(err, "delete failed Snapshot "+key)
	}
	s.log.Info("deleted a Snapshot its node failed to take", "snapshot", key, "reason", c.Message)
	// Wait until it is gone, so that the next attempt takes it afresh instead of finding it being
	// deleted.
	if err := s.waitSnapshotGone(ctx, snap.Name); err != nil && !errors.Is(err, context.DeadlineExceeded) && !errors.Is(err, context.Canceled) {
		s.log.Error(err, "waiting for a failed Snapshot to be gone", "snapshot", key)
	}
	return status.Errorf(failureCode(c.Message), "the snapshot of Volume %s failed: %s (Snapshot %s was deleted; the next attempt takes it again)",
		snap.Spec.VolumeName, c.Message, key)
}
