package controller

import (
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/cobaltstore/cobalt/api/v1alpha1"
)

func TestFailureCode(t *testing.T) {
	for _, tc := range []struct {
		message string
		want    codes.Code
	}{
		{"snapshot on store s1: insufficient capacity on store: rpc error: code = ResourceExhausted desc = no space", codes.ResourceExhausted},
		{"rpc error: code = ResourceExhausted desc = metadata region full", codes.ResourceExhausted},
		{"No space left on device", codes.ResourceExhausted},
		{"snapshot on store s1: connection refused", codes.Internal},
		{"", codes.Internal},
	} {
		if got := failureCode(tc.message); got != tc.want {
			t.Errorf("failureCode(%q) = %v, want %v", tc.message, got, tc.want)
		}
	}
}

func TestCSISnapshot(t *testing.T) {
	taken := time.Date(2026, 12, 6, 3, 0, 0, 0, time.UTC)
	ready := time.Date(2026, 12, 6, 3, 0, 5, 0, time.UTC)
	size := resource.MustParse("16Mi")
	snap := func(creation *metav1.Time, readyCond bool) *v1alpha1.Snapshot {
		s := &v1alpha1.Snapshot{
			ObjectMeta: metav1.ObjectMeta{Name: "snapshot-1"},
			Spec:       v1alpha1.SnapshotSpec{VolumeName: "pvc-1"},
			Status:     v1alpha1.SnapshotStatus{ReadyToUse: true, RestoreSize: &size, CreationTime: creation},
		}
		if readyCond {
			s.Status.Conditions = []metav1.Condition{{Type: v1alpha1.ConditionReady, Status: metav1.ConditionTrue,
				Reason: v1alpha1.ReasonTaken, LastTransitionTime: metav1.Time{Time: ready}}}
		}
		return s
	}
	got := csiSnapshot(snap(&metav1.Time{Time: taken}, true))
	if got.GetSnapshotId() != "snapshot-1" || got.GetSourceVolumeId() != "pvc-1" || got.GetSizeBytes() != 16<<20 ||
		!got.GetReadyToUse() || !got.GetCreationTime().AsTime().Equal(taken) {
		t.Errorf("csiSnapshot = %v", got)
	}
	if got := csiSnapshot(snap(nil, true)); !got.GetCreationTime().AsTime().Equal(ready) {
		t.Errorf("without a creation time, the time it became Ready: got %v", got.GetCreationTime())
	}
	if got := csiSnapshot(snap(nil, false)); got.GetCreationTime() != nil {
		t.Errorf("no time known: got %v", got.GetCreationTime())
	}
}

func TestSnapshotFailure(t *testing.T) {
	cond := func(status metav1.ConditionStatus, reason string) []metav1.Condition {
		return []metav1.Condition{{Type: v1alpha1.ConditionReady, Status: status, Reason: reason, Message: "m"}}
	}
	for _, tc := range []struct {
		name   string
		status v1alpha1.SnapshotStatus
		failed bool
	}{
		{name: "no status"},
		{name: "failed", status: v1alpha1.SnapshotStatus{Conditions: cond(metav1.ConditionFalse, v1alpha1.ReasonSnapshotFailed)}, failed: true},
		{name: "waiting for its volume", status: v1alpha1.SnapshotStatus{Conditions: cond(metav1.ConditionFalse, v1alpha1.ReasonVolumeNotReady)}},
		{name: "taken", status: v1alpha1.SnapshotStatus{ReadyToUse: true, Conditions: cond(metav1.ConditionTrue, v1alpha1.ReasonTaken)}},
	} {
		if got := snapshotFailure(&v1alpha1.Snapshot{Status: tc.status}) != nil; got != tc.failed {
			t.Errorf("%s: snapshotFailure = %v, want %v", tc.name, got, tc.failed)
		}
	}
}
