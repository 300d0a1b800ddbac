package controller

import (
	"context"
	"fmt"
	"strings"

	"github.com/container-storage-interface/spec/lib/go/csi"
	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/types/known/timestamppb"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/cobaltstore/cobalt/api/v1alpha1"
)

// getSnapshot reads the Snapshot named name from the API server; nil, nil when there is none.
func (s *Server) getSnapshot(ctx context.Context, name string) (*v1alpha1.Snapshot, error) {
	snap := &v1alpha1.Snapshot{}
	err := s.reader.Get(ctx, client.ObjectKey{Namespace: s.namespace, Name: name}, snap)
	if apierrors.IsNotFound(err) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("get Snapshot %s/%s: %w", s.namespace, name, err)
	}
	return snap, nil
}

// isTaken reports whether the node took snap: a Volume can be restored from it. A Snapshot's
// spec never changes, so its status is always about the spec it has.
func isTaken(snap *v1alpha1.Snapshot) bool {
	return snap.Status.ReadyToUse
}

// wasTaken reports whether the node took snap at some point (the operator records where and of
// which node volume), even if it can no longer be restored from.
func wasTaken(snap *v1alpha1.Snapshot) bool {
	return snap.Status.Placement != nil && snap.Status.SourceVolumeID != ""
}

// snapshotFailure is the Ready condition of a Snapshot the node refused or failed to take, else
// nil.
func snapshotFailure(snap *v1alpha1.Snapshot) *metav1.Condition {
	c := meta.FindStatusCondition(snap.Status.Conditions, v1alpha1.ConditionReady)
	if c == nil || c.Status != metav1.ConditionFalse || c.Reason != v1alpha1.ReasonSnapshotFailed || snap.Status.ReadyToUse {
		return nil
	}
	return c
}

// failureCode is the status code of a snapshot the node failed to take with message:
// ResourceExhausted when its Store lacks room (the node's ResourceExhausted, which the operator's
// node client reports as insufficient capacity), else Internal.
func failureCode(message string) codes.Code {
	m := strings.ToLower(message)
	for _, full := range []string{"insufficient capacity", "resourceexhausted", "no space", "not enough space", "store is full"} {
		if strings.Contains(m, full) {
			return codes.ResourceExhausted
		}
	}
	return codes.Internal
}

// snapshotState describes snap's Ready condition for error messages.
func snapshotState(snap *v1alpha1.Snapshot) string {
	c := meta.FindStatusCondition(snap.Status.Conditions, v1alpha1.ConditionReady)
	if c == nil {
		return "the operator has not reported on it yet"
	}
	return fmt.Sprintf("Ready=%s, %s: %s", c.Status, c.Reason, c.Message)
}

// csiSnapshot describes a taken Snapshot to the CO. Its creation time is when the node took it;
// an operator that did not record that is answered with when the snapshot became Ready.
func csiSnapshot(snap *v1alpha1.Snapshot) *csi.Snapshot {
	out := &csi.Snapshot{
		SnapshotId:     snap.Name,
		SourceVolumeId: snap.Spec.VolumeName,
		ReadyToUse:     snap.Status.ReadyToUse,
	}
	if snap.Status.RestoreSize != nil {
		out.SizeBytes = snap.Status.RestoreSize.Value()
	}
	switch c := meta.FindStatusCondition(snap.Status.Conditions, v1alpha1.ConditionReady); {
	case snap.Status.CreationTime != nil:
		out.CreationTime = timestamppb.New(snap.Status.CreationTime.Time)
	case c != nil && c.Status == metav1.ConditionTrue:
		out.CreationTime = timestamppb.New(c.LastTransitionTime.Time)
	}
	return out
}
