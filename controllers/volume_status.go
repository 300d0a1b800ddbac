package controllers

import (
	"fmt"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/cobaltstore/cobalt/api/v1alpha1"
)

// volumeObservation is everything a Volume's status is computed from: what one reconcile saw
// and what the node answered. The phases fill it in as far as they get; a field left at its zero
// value means the reconcile did not get there (it stopped earlier, waiting or on an error), and
// the status it would decide keeps what it said before.
type volumeObservation struct {
	// Now is when the reconcile ran: the transition time of every condition that changes.
	Now time.Time
	// Deleting is true when the Volume has a deletion timestamp; DeleteFailed is then the node's
	// error freeing its space, if any.
	Deleting     bool
	DeleteFailed string
	// Unschedulable says why no Store can take the unplaced Volume; empty when it was placed
	// or placement was not tried.
	Unschedulable string
	// Source is the resolved spec.source of a Volume not created yet (volume_source.go).
	// SourceWaiting says why that source cannot be used yet, SourceTooLarge that the Volume is
	// smaller than it (from the Volume's size or the node's refusal), SourceMisplaced that the
	// Volume is pinned to another Store than its source's.
	Source          *volumeSource
	SourceWaiting   string
	SourceTooLarge  string
	SourceMisplaced string
	// StoreSeen is true when the reconcile looked up the placed Volume's Store. Store is nil
	// when it does not exist; StoreHealth is the verdict on it otherwise.
	StoreSeen   bool
	Store       *v1alpha1.Store
	StoreHealth storeHealth
	// CreateFailed is the node's error creating the Volume; Created is what the node allocated
	// when it created it in this reconcile.
	CreateFailed string
	Created      *resource.Quantity
	// GrowthFailed says why the Volume did not grow to its requested size: its Store has no
	// room, or the node's error; Grown is what the node allocated when it grew it in this
	// reconcile.
	GrowthFailed string
	Grown        *resource.Quantity

	// ReplicationUnavailable says why a replicated Volume (replicas > 1) is neither placed nor
	// created: the operator runs without replication (VolumeReconciler.ReplicationEnabled).
	ReplicationUnavailable string
	// Copies is what the reconcile saw and did for each copy of a placed replicated Volume, in
	// PlacedStores order; nil when it did not get that far. A replicated Volume's reconcile
	// records its outcome here, not in the single-copy fields above.
	Copies []copyObservation
	// Outgoing is what the reconcile saw of the copies listed in status.replicas whose Store is
	// no longer in spec (a copy moving away); Retired the copies leaving status.replicas now
	// (copiesToRetire); Freed the Stores of retired copies deleted on their node now (or whose
	// Store is gone); RetiredLeft is true when retired copies wait for their Store, RetireErr
	// the nodes' errors deleting them.
	Outgoing    []copyObservation
	Retired     []retirement
	Freed       []string
	RetiredLeft bool
	RetireErr   error
	// MoveWait is how long until a Lost copy is due for replacement; MoveBlocked says why a
	// copy that should move (replaced or drained) cannot now.
	MoveWait    time.Duration
	MoveBlocked string
}

// allocated is what the Volume holds on its Store after this reconcile: what the node answered
// now, else what status said; nil when it is not created.
func (o *volumeObservation) allocated(vol *v1alpha1.Volume) *resource.Quantity {
	switch {
	case o.Grown != nil:
		return o.Grown
	case o.Created != nil:
		return o.Created
	}
	return vol.Status.AllocatedSize
}

// computeVolumeStatus returns vol's status after a reconcile that observed obs. It does not
// modify vol.
//
// Ready says whether the Volume can be used: False while its source is not ready
// (SourceNotReady) or larger than the Volume (SourceTooLarge), while it is not placed
// (Unschedulable, also when it is pinned to another Store than its source's), its
// Store is gone (StoreMissing) or not Ready (StoreNotReady), the node failed to create it
// (ProvisioningFailed) or to free it while it is deleted (DeleteFailed); True (Provisioned) once
// it is created on a Ready Store. A Volume that fails to grow keeps serving at its old size, so
// growth never touches Ready. A replicated Volume (replicas > 1) gets its Ready, Degraded and
// replicas from computeReplicatedStatus instead; a single-copy Volume lists its one copy in
// replicas too (setSingleCopyReplica), so every Volume shows desired and in-sync copies.
//
// Resizing is True while the requested size is larger than the allocation: Expanding while it
// waits to be tried, ExpansionFailed when its Store has no room or the node failed. It turns
// False (Expanded) when the Volume reached its size, and is absent on a Volume never grown.
func computeVolumeStatus(vol *v1alpha1.Volume, obs volumeObservation) v1alpha1.VolumeStatus {
	st := *vol.Status.DeepCopy()
	gen := vol.Generation
	set := func(t string, status metav1.ConditionStatus, reason, msg string) {
		meta.SetStatusCondition(&st.Conditions, metav1.Condition{Type: t, Status: status, Reason: reason,
			Message: msg, ObservedGeneration: gen, LastTransitionTime: metav1.NewTime(obs.Now)})
	}

	if obs.Deleting {
		if obs.DeleteFailed != "" {
			set(v1alpha1.ConditionReady, metav1.ConditionFalse, v1alpha1.ReasonDeleteFailed, obs.DeleteFailed)
		}
		return st
	}
	st.ObservedGeneration = gen
	if vol.Spec.Replicas > 1 {
		growthFailed, grown := computeReplicatedStatus(&st, vol, obs, set)
		setResizing(&st, vol, growthFailed, grown, set)
		return st
	}
	if a := obs.allocated(vol); a != nil {
		q := a.DeepCopy()
		st.AllocatedSize = &q
	}
	if obs.Created != nil && obs.Store != nil {
		st.Placement = &v1alpha1.VolumePlacement{Store: obs.Store.Name, Node: obs.Store.Spec.NodeName}
	}

	switch {
	case obs.SourceTooLarge != "":
		set(v1alpha1.ConditionReady, metav1.ConditionFalse, v1alpha1.ReasonSourceTooLarge, obs.SourceTooLarge)
	case obs.SourceWaiting != "":
		set(v1alpha1.ConditionReady, metav1.ConditionFalse, v1alpha1.ReasonSourceNotReady, obs.SourceWaiting)
	case obs.SourceMisplaced != "":
		set(v1alpha1.ConditionReady, metav1.ConditionFalse, v1alpha1.ReasonUnschedulable, obs.SourceMisplaced)
	case vol.Spec.StoreName == "":
		if obs.Unschedulable != "" {
			set(v1alpha1.ConditionReady, metav1.ConditionFalse, v1alpha1.ReasonUnschedulable, obs.Unschedulable)
		}
	case !obs.StoreSeen:
	case obs.Store == nil:
		set(v1alpha1.ConditionReady, metav1.ConditionFalse, v1alpha1.ReasonStoreMissing,
			fmt.Sprintf("store %s does not exist", vol.Spec.StoreName))
	case !obs.StoreHealth.Ready:
		set(v1alpha1.ConditionReady, metav1.ConditionFalse, v1alpha1.ReasonStoreNotReady,
			fmt.Sprintf("store %s is not Ready: %s", obs.Store.Name, obs.StoreHealth.Message))
	case obs.CreateFailed != "":
		set(v1alpha1.ConditionReady, metav1.ConditionFalse, v1alpha1.ReasonProvisioningFailed, obs.CreateFailed)
	case st.AllocatedSize != nil:
		set(v1alpha1.ConditionReady, metav1.ConditionTrue, v1alpha1.ReasonProvisioned,
			fmt.Sprintf("created on store %s of node %s", obs.Store.Name, obs.Store.Spec.NodeName))
	}

	setSingleCopyReplica(&st, vol, obs)
	setResizing(&st, vol, obs.GrowthFailed, obs.Grown != nil, set)
	return st
}

// setResizing sets st's Resizing condition from its allocation and the growth this reconcile
// tried: growthFailed says why it did not grow, grown that it grew now.
func setResizing(st *v1alpha1.VolumeStatus, vol *v1alpha1.Volume, growthFailed string, grown bool, set func(t string, status metav1.ConditionStatus, reason, msg string)) {
	if st.AllocatedSize == nil {
		return
	}
	resizing := meta.FindStatusCondition(st.Conditions, v1alpha1.ConditionResizing)
	wasResizing := resizing != nil && resizing.Status == metav1.ConditionTrue
	switch have, want := st.AllocatedSize.Value(), vol.Spec.Size.Value(); {
	case have >= want:
		if wasResizing || grown {
			set(v1alpha1.ConditionResizing, metav1.ConditionFalse, v1alpha1.ReasonExpanded,
				fmt.Sprintf("expanded to %s", st.AllocatedSize.String()))
		}
	case growthFailed != "":
		set(v1alpha1.ConditionResizing, metav1.ConditionTrue, v1alpha1.ReasonExpansionFailed, growthFailed)
	case !wasResizing || grown:
		// Not tried yet in this reconcile (its Store is not usable, or it stopped earlier): say it
		// is under way, but keep a failure reported before, which stays the latest news.
		set(v1alpha1.ConditionResizing, metav1.ConditionTrue, v1alpha1.ReasonExpanding,
			fmt.Sprintf("growing from %s to %s", st.AllocatedSize.String(), vol.Spec.Size.String()))
	}
}
