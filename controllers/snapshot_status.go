package controllers

import (
	"fmt"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/cobaltstore/cobalt/api/v1alpha1"
)

// snapshotObservation is everything a Snapshot's status is computed from: what one reconcile
// saw and what the node answered. As with volumeObservation, a field left at its zero value
// means the reconcile did not get there, and the status keeps what it said before.
type snapshotObservation struct {
	// Now is when the reconcile ran: the transition time of every condition that changes.
	Now time.Time
	// Deleting is true when the Snapshot has a deletion timestamp; DeleteFailed is then the
	// node's error deleting it, if any.
	Deleting     bool
	DeleteFailed string
	// Waiting says why the snapshot cannot be taken yet: its source Volume is missing, not
	// Ready or not placed, or the Store holding it is not Ready.
	Waiting string
	// Volume is the source Volume and Store the Store that holds it (before the snapshot is
	// taken) or the snapshot (after), when the reconcile found them.
	Volume *v1alpha1.Volume
	Store  *v1alpha1.Store
	// Failed is the node's error taking the snapshot.
	Failed string
	// Taken is what the node reported when it took the snapshot in this reconcile.
	Taken *SnapshotInfo
	// Refreshed is what the node reports now about a snapshot taken before.
	Refreshed *SnapshotInfo
	// Lost says why a snapshot taken before cannot be restored from any more: its Store is gone
	// or its node no longer has it.
	Lost string
}

// snapshotTaken is true once the node took snap: from then on it lives on its Store and never
// depends on its source Volume again.
func snapshotTaken(snap *v1alpha1.Snapshot) bool {
	return snap.Status.Placement != nil && snap.Status.SourceVolumeID != ""
}

// computeSnapshotStatus returns snap's status after a reconcile that observed obs. It does not
// modify snap.
//
// Ready is True (Taken) once the node took the snapshot, and stays so while the node reports it;
// readyToUse follows it. Before that it is False: VolumeNotReady while the source Volume (or its
// Store) is not there yet, SnapshotFailed with the node's error when taking it failed. A taken
// snapshot whose Store is gone or whose node lost it turns False (SnapshotFailed) and not ready
// to use. On deletion only a failure to delete it on its node is reported (DeleteFailed).
//
// Placement, sourceVolumeID and creationTime are set once, when the snapshot is taken;
// restoreSize, referencedSize and exclusiveSize follow what the node reports.
func computeSnapshotStatus(snap *v1alpha1.Snapshot, obs snapshotObservation) v1alpha1.SnapshotStatus {
	st := *snap.Status.DeepCopy()
	gen := snap.Generation
	set := func(status metav1.ConditionStatus, reason, msg string) {
		meta.SetStatusCondition(&st.Conditions, metav1.Condition{Type: v1alpha1.ConditionReady, Status: status, Reason: reason,
			Message: msg, ObservedGeneration: gen, LastTransitionTime: metav1.NewTime(obs.Now)})
	}

	if obs.Deleting {
		if obs.DeleteFailed != "" {
			set(metav1.ConditionFalse, v1alpha1.ReasonDeleteFailed, obs.DeleteFailed)
		}
		return st
	}
	st.ObservedGeneration = gen
	if info := obs.Taken; info != nil && obs.Store != nil {
		st.Placement = &v1alpha1.VolumePlacement{Store: obs.Store.Name, Node: obs.Store.Spec.NodeName}
		st.SourceVolumeID = info.SourceVolumeID
		created := info.CreationTime
		if created.IsZero() {
			created = obs.Now
		}
		st.CreationTime = &metav1.Time{Time: created}
		setSnapshotSizes(&st, info)
	}
	if info := obs.Refreshed; info != nil {
		setSnapshotSizes(&st, info)
	}

	switch {
	case obs.Lost != "":
		st.ReadyToUse = false
		set(metav1.ConditionFalse, v1alpha1.ReasonSnapshotFailed, obs.Lost)
	case (obs.Taken != nil || obs.Refreshed != nil) && st.Placement != nil:
		st.ReadyToUse = true
		set(metav1.ConditionTrue, v1alpha1.ReasonTaken, fmt.Sprintf("taken of volume %s on store %s of node %s",
			snap.Spec.VolumeName, st.Placement.Store, st.Placement.Node))
	case obs.Failed != "":
		set(metav1.ConditionFalse, v1alpha1.ReasonSnapshotFailed, obs.Failed)
	case obs.Waiting != "":
		set(metav1.ConditionFalse, v1alpha1.ReasonVolumeNotReady, obs.Waiting)
	}
	return st
}

// setSnapshotSizes copies the sizes the node reported into st.
func setSnapshotSizes(st *v1alpha1.SnapshotStatus, info *SnapshotInfo) {
	if info.RestoreBytes > 0 {
		st.RestoreSize = resource.NewQuantity(info.RestoreBytes, resource.BinarySI)
	}
	st.ReferencedSize = resource.NewQuantity(info.ReferencedBytes, resource.BinarySI)
	st.ExclusiveSize = resource.NewQuantity(info.ExclusiveBytes, resource.BinarySI)
}
