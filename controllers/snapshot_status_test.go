package controllers

import (
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/cobaltstore/cobalt/api/v1alpha1"
)

// snapshotAt builds a Snapshot of volume "v" at generation 3; taken on store s1 of node-a (with
// restore size 10Gi, 4Gi referenced, 1Gi exclusive) when taken is true; carrying conds.
func snapshotAt(taken bool, conds ...metav1.Condition) *v1alpha1.Snapshot {
	s := &v1alpha1.Snapshot{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "snap", UID: "snap-uid", Generation: 3},
		Spec: v1alpha1.SnapshotSpec{VolumeName: "v"}}
	s.Status.ObservedGeneration = 2
	if taken {
		s.Status.ReadyToUse = true
		s.Status.Placement = &v1alpha1.VolumePlacement{Store: "s1", Node: "node-a"}
		s.Status.SourceVolumeID = "vol-uid"
		s.Status.CreationTime = &metav1.Time{Time: unitNow.Add(-2 * time.Hour)}
		s.Status.RestoreSize, s.Status.ReferencedSize, s.Status.ExclusiveSize = qty("10Gi"), qty("4Gi"), qty("1Gi")
	}
	s.Status.Conditions = conds
	return s
}

func TestComputeSnapshotStatus(t *testing.T) {
	store := newStore("s1", newFileCluster("ns", "sc"), "node-a")
	takenMsg := "taken of volume v on store s1 of node node-a"
	takenCond := cond(v1alpha1.ConditionReady, metav1.ConditionTrue, v1alpha1.ReasonTaken, takenMsg)
	waitingCond := cond(v1alpha1.ConditionReady, metav1.ConditionFalse, v1alpha1.ReasonVolumeNotReady, "volume ns/v does not exist")
	nodeInfo := &SnapshotInfo{SourceVolumeID: "vol-uid", RestoreBytes: 10 << 30, ReferencedBytes: 4 << 30, ExclusiveBytes: 0,
		CreationTime: unitNow.Add(-time.Second)}
	grown := &SnapshotInfo{SourceVolumeID: "vol-uid", RestoreBytes: 10 << 30, ReferencedBytes: 4 << 30, ExclusiveBytes: 3 << 30}
	unchanged := func(c metav1.Condition) *want { return &want{c.Status, c.Reason, c.Message, false} }

	tests := []struct {
		name  string
		snap  *v1alpha1.Snapshot
		obs   snapshotObservation
		ready *want
		// readyToUse, placed and the sizes (restore/referenced/exclusive, "" = unset) afterwards.
		readyToUse bool
		placed     bool
		sizes      [3]string
		created    time.Time
	}{
		{name: "source volume missing: waits, naming it",
			snap:  snapshotAt(false),
			obs:   snapshotObservation{Now: unitNow, Waiting: "volume ns/v does not exist"},
			ready: &want{metav1.ConditionFalse, v1alpha1.ReasonVolumeNotReady, "volume ns/v does not exist", true}},
		{name: "still waiting: the transition time stays",
			snap:  snapshotAt(false, waitingCond),
			obs:   snapshotObservation{Now: unitNow, Waiting: "volume ns/v does not exist"},
			ready: &want{metav1.ConditionFalse, v1alpha1.ReasonVolumeNotReady, "volume ns/v does not exist", true}},
		{name: "the node failed: SnapshotFailed with its message, not ready to use",
			snap:  snapshotAt(false, waitingCond),
			obs:   snapshotObservation{Now: unitNow, Failed: "node node-a could not take the snapshot: connection refused"},
			ready: &want{metav1.ConditionFalse, v1alpha1.ReasonSnapshotFailed, "node node-a could not take the snapshot: connection refused", true}},
		{name: "taken: placement, source, creation time and sizes recorded, ready to use",
			snap:  snapshotAt(false, waitingCond),
			obs:   snapshotObservation{Now: unitNow, Store: store, Taken: nodeInfo},
			ready: &want{metav1.ConditionTrue, v1alpha1.ReasonTaken, takenMsg, true}, readyToUse: true, placed: true,
			sizes: [3]string{"10Gi", "4Gi", "0"}, created: unitNow.Add(-time.Second)},
		{name: "taken by a node that records no creation time: the reconcile's time",
			snap: snapshotAt(false),
			obs: snapshotObservation{Now: unitNow, Store: store,
				Taken: &SnapshotInfo{SourceVolumeID: "vol-uid", RestoreBytes: 1 << 30, ReferencedBytes: 0, ExclusiveBytes: 0}},
			ready: &want{metav1.ConditionTrue, v1alpha1.ReasonTaken, takenMsg, true}, readyToUse: true, placed: true,
			sizes: [3]string{"1Gi", "0", "0"}, created: unitNow},
		{name: "refreshed: exclusive size follows the node, the rest stays",
			snap:  snapshotAt(true, takenCond),
			obs:   snapshotObservation{Now: unitNow, Store: store, Refreshed: grown},
			ready: &want{metav1.ConditionTrue, v1alpha1.ReasonTaken, takenMsg, true}, readyToUse: true, placed: true,
			sizes: [3]string{"10Gi", "4Gi", "3Gi"}, created: unitNow.Add(-2 * time.Hour)},
		{name: "refresh not possible (store not Ready, node silent): everything stays",
			snap:  snapshotAt(true, takenCond),
			obs:   snapshotObservation{Now: unitNow},
			ready: unchanged(takenCond), readyToUse: true, placed: true,
			sizes: [3]string{"10Gi", "4Gi", "1Gi"}, created: unitNow.Add(-2 * time.Hour)},
		{name: "store gone: not ready to use, says so, keeps where it was",
			snap:   snapshotAt(true, takenCond),
			obs:    snapshotObservation{Now: unitNow, Lost: "store s1 that held the snapshot no longer exists: its data is gone"},
			ready:  &want{metav1.ConditionFalse, v1alpha1.ReasonSnapshotFailed, "store s1 that held the snapshot no longer exists: its data is gone", true},
			placed: true, sizes: [3]string{"10Gi", "4Gi", "1Gi"}, created: unitNow.Add(-2 * time.Hour)},
		{name: "deleting: only a delete failure is reported, nothing else changes",
			snap:       snapshotAt(true, takenCond),
			obs:        snapshotObservation{Now: unitNow, Deleting: true, DeleteFailed: "node node-a could not delete the snapshot"},
			ready:      &want{metav1.ConditionFalse, v1alpha1.ReasonDeleteFailed, "node node-a could not delete the snapshot", true},
			readyToUse: true, placed: true, sizes: [3]string{"10Gi", "4Gi", "1Gi"}, created: unitNow.Add(-2 * time.Hour)},
		{name: "deleting without failure: status untouched",
			snap:  snapshotAt(true, takenCond),
			obs:   snapshotObservation{Now: unitNow, Deleting: true},
			ready: unchanged(takenCond), readyToUse: true, placed: true,
			sizes: [3]string{"10Gi", "4Gi", "1Gi"}, created: unitNow.Add(-2 * time.Hour)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			orig := tt.snap.DeepCopy()
			st := computeSnapshotStatus(tt.snap, tt.obs)
			if !equality.Semantic.DeepEqual(orig, tt.snap) {
				t.Fatal("computeSnapshotStatus modified its input")
			}
			checkCondition(t, st.Conditions, tt.snap.Status.Conditions, v1alpha1.ConditionReady, tt.ready)
			if st.ReadyToUse != tt.readyToUse {
				t.Errorf("readyToUse = %v, want %v", st.ReadyToUse, tt.readyToUse)
			}
			if placed := st.Placement != nil; placed != tt.placed {
				t.Fatalf("placement = %+v, want placed %v", st.Placement, tt.placed)
			}
			if tt.placed {
				if *st.Placement != (v1alpha1.VolumePlacement{Store: "s1", Node: "node-a"}) || st.SourceVolumeID != "vol-uid" {
					t.Errorf("placement %+v, source %q", *st.Placement, st.SourceVolumeID)
				}
				if st.CreationTime == nil || !st.CreationTime.Time.Equal(tt.created) {
					t.Errorf("creationTime = %v, want %s", st.CreationTime, tt.created)
				}
			}
			for i, got := range []*string{quantityString(st.RestoreSize), quantityString(st.ReferencedSize), quantityString(st.ExclusiveSize)} {
				if want := tt.sizes[i]; (got == nil) != (want == "") || (got != nil && *got != want) {
					t.Errorf("size %d = %v, want %q", i, got, want)
				}
			}
			if !tt.obs.Deleting && st.ObservedGeneration != 3 {
				t.Errorf("observedGeneration = %d, want 3", st.ObservedGeneration)
			}
		})
	}
}

// quantityString is q as a string, nil when q is.
func quantityString(q *resource.Quantity) *string {
	if q == nil {
		return nil
	}
	s := q.String()
	return &s
}
