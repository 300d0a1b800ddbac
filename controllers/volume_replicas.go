package controllers

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/apimachinery/pkg/runtime"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/cobaltstore/cobalt/api/v1alpha1"
)

// The phases of a replicated Volume (spec.replicas > 1). They mirror the single-copy phases of
// volume_phases.go, once per copy: every copy is placed at once, created, and grown, and one
// copy whose Store is down or whose node fails does not hold the others back. What each copy
// went through is recorded in volumeObservation.Copies; computeReplicatedStatus turns it into
// status.replicas and the conditions.

// copyObservation is what one reconcile saw and did for one copy of a replicated Volume.
type copyObservation struct {
	// StoreName is the Store that holds (or is to hold) the copy.
	StoreName string
	// Seen is true when the reconcile looked the Store up; Store is nil when it does not exist,
	// Health is the verdict on it otherwise.
	Seen   bool
	Store  *v1alpha1.Store
	Health storeHealth
	// CreateFailed is the node's error creating the copy; Created what it allocated when it
	// created it in this reconcile.
	CreateFailed string
	Created      *resource.Quantity
	// GrowthFailed says why the copy did not grow to the requested size; Grown is what the node
	// allocated when it grew it in this reconcile.
	GrowthFailed string
	Grown        *resource.Quantity
	// Joining is true when the copy is created after the Volume was in service (its first
	// copies all created): it starts empty, CatchingUp, and the serving node rebuilds it. Note
	// says why it was added (the copy it replaces), for its status message.
	Joining bool
	Note    string
}

// usable is true when the copy's Store exists and is Ready, so its node can be called.
func (c copyObservation) usable() bool { return c.Seen && c.Store != nil && c.Health.Ready }

// unusableReason says why the copy's Store cannot be used; empty when it can.
func (c copyObservation) unusableReason() string {
	switch {
	case !c.Seen:
		return ""
	case c.Store == nil:
		return fmt.Sprintf("store %s does not exist", c.StoreName)
	case !c.Health.Ready:
		return fmt.Sprintf("store %s is not Ready: %s", c.StoreName, c.Health.Message)
	}
	return ""
}

// replicatedPhases are the phases of a Volume with replicas > 1.
func (r *VolumeReconciler) replicatedPhases() []func(context.Context, *v1alpha1.Volume, *volumeObservation) (ctrl.Result, bool, error) {
	return []func(context.Context, *v1alpha1.Volume, *volumeObservation) (ctrl.Result, bool, error){
		r.checkReplicationEnabled,
		r.reconcileReplicaPlacement,
		r.observeCopies,
		r.reconcileReplicaMoves,
		r.reconcileRetirement,
		r.reconcileCopyProvisioning,
		r.reconcileCopyExpansion,
		r.finishReplicated,
	}
}

// replicationUnavailableMessage is the Ready message of a replicated Volume while the operator
// runs without replication.
func replicationUnavailableMessage(vol *v1alpha1.Volume) string {
	return fmt.Sprintf("spec.replicas is %d, but the operator runs with replication disabled (it is opt-in while it is new) "+
		"and does not place or create the copies; use replicas: 1, or start the operator with --enable-replication "+
		"(chart value operator.replication.enabled: true)",
		vol.Spec.Replicas)
}

// checkReplicationEnabled stops a replicated Volume's reconcile when the operator runs without
// replication. It does not requeue: enabling replication restarts the operator, which
// reconciles every Volume.
func (r *VolumeReconciler) checkReplicationEnabled(_ context.Context, vol *v1alpha1.Volume, obs *volumeObservation) (ctrl.Result, bool, error) {
	if r.ReplicationEnabled {
		return ctrl.Result{}, false, nil
	}
	obs.ReplicationUnavailable = replicationUnavailableMessage(vol)
	if c := meta.FindStatusCondition(vol.Status.Conditions, v1alpha1.ConditionReady); c == nil || c.Reason != v1alpha1.ReasonReplicationUnavailable {
		r.Recorder.Eventf(vol, nil, corev1.EventTypeWarning, v1alpha1.ReasonReplicationUnavailable, "Place", obs.ReplicationUnavailable)
	}
	return ctrl.Result{}, true, nil
}

// reconcileReplicaPlacement picks the Stores of every copy not placed yet and records them,
// all in one write, in spec.storeName and spec.replicaStoreNames.
func (r *VolumeReconciler) reconcileReplicaPlacement(ctx context.Context, vol *v1alpha1.Volume, obs *volumeObservation) (ctrl.Result, bool, error) {
	if vol.FullyPlaced() {
		return ctrl.Result{}, false, nil
	}
	loads, err := r.storeLoads(ctx)
	if err != nil {
		return ctrl.Result{}, true, err
	}
	decision, err := chooseReplicaPlacement(vol, loads, obs.Now, r.HeartbeatTimeout)
	if err != nil {
		return ctrl.Result{}, true, err
	}
	if decision.Message != "" {
		return r.unschedulable(vol, obs, decision.Message), true, nil
	}

	cp := vol.DeepCopy()
	placed := decision.Others
	if decision.Primary != "" {
		cp.Spec.StoreName = decision.Primary
		placed = append([]string{decision.Primary}, placed...)
	}
	cp.Spec.ReplicaStoreNames = decision.Others
	if err := r.Patch(ctx, cp, client.MergeFromWithOptions(vol, client.MergeFromWithOptimisticLock{})); err != nil {
		return ctrl.Result{}, true, fmt.Errorf("record placement of volume %s on stores %v: %w", client.ObjectKeyFromObject(vol), placed, err)
	}
	vol.ObjectMeta, vol.Spec = cp.ObjectMeta, cp.Spec
	r.assumed.assume(vol.UID, vol.Spec.Size.Value(), placed...)
	r.Recorder.Eventf(vol, nil, corev1.EventTypeNormal, "Placed", "Place", "placed %d copies on stores %v", vol.Spec.Replicas, vol.PlacedStores())
	return ctrl.Result{}, false, nil
}

// observeCopies looks up the Store of every copy in spec (obs.Copies) and of every copy listed
// in status.replicas that is no longer in spec, a copy moving away (obs.Outgoing). It never
// stops the reconcile: a copy whose Store is missing or not Ready is skipped by the phases after
// it, and the others go on. It says ReplicaLost for a copy that was InSync or CatchingUp and
// whose Store can no longer be used, and ReplicaInSync for a copy the serving node made InSync
// since the reconciler last saw it CatchingUp.
func (r *VolumeReconciler) observeCopies(ctx context.Context, vol *v1alpha1.Volume, obs *volumeObservation) (ctrl.Result, bool, error) {
	placed := vol.PlacedStores()
	obs.Copies = make([]copyObservation, 0, len(placed))
	for _, name := range placed {
		c, err := r.observeCopy(ctx, vol, name, obs.Now)
		if err != nil {
			return ctrl.Result{}, true, err
		}
		c.Joining = vol.Status.AllocatedSize != nil
		obs.Copies = append(obs.Copies, c)
	}
	for _, name := range formerStores(vol) {
		if findReplica(vol.Status.Replicas, name) == nil {
			continue // retired already
		}
		c, err := r.observeCopy(ctx, vol, name, obs.Now)
		if err != nil {
			return ctrl.Result{}, true, err
		}
		obs.Outgoing = append(obs.Outgoing, c)
	}
	for _, store := range r.inSyncSeen.backInSync(vol.UID, vol.Status.Replicas) {
		r.Recorder.Eventf(vol, nil, corev1.EventTypeNormal, "ReplicaInSync", "Observe",
			"copy on store %s is in sync again: the serving node resynced or rebuilt it", store)
	}
	return ctrl.Result{}, false, nil
}

// observeCopy looks up the Store name of a copy of vol and judges its health at now, and says
// ReplicaLost when the copy was InSync or CatchingUp and its Store can no longer be used.
func (r *VolumeReconciler) observeCopy(ctx context.Context, vol *v1alpha1.Volume, name string, now time.Time) (copyObservation, error) {
	c := copyObservation{StoreName: name, Seen: true}
	store := &v1alpha1.Store{}
	switch err := r.Get(ctx, client.ObjectKey{Name: name}, store); {
	case apierrors.IsNotFound(err):
	case err != nil:
		return c, fmt.Errorf("get store %s of volume %s: %w", name, client.ObjectKeyFromObject(vol), err)
	default:
		c.Store, c.Health = store, evaluateStoreHealth(store, now, r.HeartbeatTimeout)
	}
	if prev := findReplica(vol.Status.Replicas, name); prev != nil && !c.usable() &&
		(prev.State == v1alpha1.ReplicaInSync || prev.State == v1alpha1.ReplicaCatchingUp) {
		var related runtime.Object // an untyped nil when the Store is gone
		if c.Store != nil {
			related = c.Store
		}
		r.Recorder.Eventf(vol, related, corev1.EventTypeWarning, "ReplicaLost", "Observe",
			"copy on store %s lost: %s", name, c.unusableReason())
	}
	return c, nil
}

// reconcileCopyProvisioning has the node of every copy not created yet create it. A copy whose
// Store cannot be used waits (the Store watch wakes the Volume up, and it retries with
// backoff), and the reconcile stops after this phase until every copy exists; node errors are
// returned together, after every copy was tried.
func (r *VolumeReconciler) reconcileCopyProvisioning(ctx context.Context, vol *v1alpha1.Volume, obs *volumeObservation) (ctrl.Result, bool, error) {
	var errs []error
	waiting := false
	for i := range obs.Copies {
		c := &obs.Copies[i]
		if copyAllocated(vol, c) != nil {
			continue
		}
		if !c.usable() {
			waiting = true
			continue
		}
		alloc, err := r.Nodes.CreateVolume(ctx, c.Store, vol, ContentSource{}) // replicated Volumes have no source (the API refuses one)
		if err != nil {
			c.CreateFailed = fmt.Sprintf("node %s could not create the copy on store %s: %v", c.Store.Spec.NodeName, c.StoreName, err)
			r.Recorder.Eventf(vol, c.Store, corev1.EventTypeWarning, v1alpha1.ReasonProvisioningFailed, "Create", c.CreateFailed)
			errs = append(errs, fmt.Errorf("create volume %s on store %s: %w", client.ObjectKeyFromObject(vol), c.StoreName, err))
			continue
		}
		c.Created = resource.NewQuantity(alloc.AllocatedBytes, resource.BinarySI)
		r.Recorder.Eventf(vol, c.Store, corev1.EventTypeNormal, v1alpha1.ReasonProvisioned, "Create",
			"created copy of %s on store %s", c.Created.String(), c.StoreName)
	}
	if err := errors.Join(errs...); err != nil {
		return ctrl.Result{}, true, err
	}
	if waiting {
		// Growth waits for every copy to exist, as Ready does.
		return ctrl.Result{RequeueAfter: backoff(vol, obs.Now)}, true, nil
	}
	return ctrl.Result{}, false, nil
}

// reconcileCopyExpansion has the node of every created copy smaller than the requested size
// grow it, when its Store has room. Copies that cannot grow now are reported in their
// GrowthFailed; node errors are returned together.
func (r *VolumeReconciler) reconcileCopyExpansion(ctx context.Context, vol *v1alpha1.Volume, obs *volumeObservation) (ctrl.Result, bool, error) {
	want := vol.Spec.Size.Value()
	var errs []error
	retry := false
	for i := range obs.Copies {
		c := &obs.Copies[i]
		have := copyAllocated(vol, c)
		if have == nil || have.Value() >= want {
			continue
		}
		if !c.usable() {
			c.GrowthFailed = fmt.Sprintf("copy on %s waits: %s", c.StoreName, c.unusableReason())
			retry = true
			continue
		}
		growth := want - have.Value()
		free, err := r.freeBytesFor(ctx, c.Store, vol, have.Value())
		if err != nil {
			return ctrl.Result{}, true, err
		}
		if free < growth {
			c.GrowthFailed = fmt.Sprintf("store %s has %s free, growing to %s needs %s more",
				c.StoreName, resource.NewQuantity(max(free, 0), resource.BinarySI).String(), vol.Spec.Size.String(),
				resource.NewQuantity(growth, resource.BinarySI).String())
			r.Recorder.Eventf(vol, c.Store, corev1.EventTypeWarning, v1alpha1.ReasonExpansionFailed, "Expand", c.GrowthFailed)
			retry = true
			continue
		}
		alloc, err := r.Nodes.ResizeVolume(ctx, c.Store, vol)
		if err != nil {
			c.GrowthFailed = fmt.Sprintf("node %s could not grow the copy on store %s to %s: %v", c.Store.Spec.NodeName, c.StoreName, vol.Spec.Size.String(), err)
			r.Recorder.Eventf(vol, c.Store, corev1.EventTypeWarning, v1alpha1.ReasonExpansionFailed, "Expand", c.GrowthFailed)
			errs = append(errs, fmt.Errorf("resize volume %s on store %s: %w", client.ObjectKeyFromObject(vol), c.StoreName, err))
			continue
		}
		c.Grown = resource.NewQuantity(alloc.AllocatedBytes, resource.BinarySI)
		r.Recorder.Eventf(vol, c.Store, corev1.EventTypeNormal, v1alpha1.ReasonExpanded, "Expand",
			"expanded the copy on store %s to %s", c.StoreName, c.Grown.String())
	}
	if err := errors.Join(errs...); err != nil {
		return ctrl.Result{}, true, err
	}
	if retry {
		return ctrl.Result{RequeueAfter: retryBackoff(resizingFor(vol, obs.Now), minRetryDelay, maxRetryDelay)}, true, nil
	}
	return ctrl.Result{}, false, nil
}

// copyAllocated is what the copy holds after this reconcile: what its node answered now, else
// what status said; nil while it is not created.
func copyAllocated(vol *v1alpha1.Volume, c *copyObservation) *resource.Quantity {
	switch {
	case c.Grown != nil:
		return c.Grown
	case c.Created != nil:
		return c.Created
	}
	if prev := findReplica(vol.Status.Replicas, c.StoreName); prev != nil && prev.State != v1alpha1.ReplicaPending {
		return prev.AllocatedSize
	}
	return nil
}

// findReplica returns the entry of store in replicas, nil when there is none.
func findReplica(replicas []v1alpha1.VolumeReplica, store string) *v1alpha1.VolumeReplica {
	for i := range replicas {
		if replicas[i].Store == store {
			return &replicas[i]
		}
	}
	return nil
}

// deleteCopies frees every copy of vol on its Store (those in spec, one moving away, and the
// retired ones not deleted yet: holdingStores), trying all of them even when some fail.
// A copy whose Store no longer exists has nothing left to free. It returns the joined errors
// of the copies that could not be freed, and says so in obs.DeleteFailed.
func (r *VolumeReconciler) deleteCopies(ctx context.Context, vol *v1alpha1.Volume, obs *volumeObservation) error {
	var errs []error
	var failed []string
	for _, name := range holdingStores(vol) {
		store := &v1alpha1.Store{}
		err := r.Get(ctx, client.ObjectKey{Name: name}, store)
		switch {
		case apierrors.IsNotFound(err):
			// The Store and its data are gone already: nothing is left to free.
			r.Recorder.Eventf(vol, nil, corev1.EventTypeWarning, v1alpha1.ReasonStoreMissing, "Delete",
				"store %s no longer exists; nothing to free", name)
		case err != nil:
			errs = append(errs, fmt.Errorf("get store %s of volume %s: %w", name, client.ObjectKeyFromObject(vol), err))
		default:
			if err := r.Nodes.DeleteVolume(ctx, store, vol); err != nil {
				msg := fmt.Sprintf("node %s could not free the volume on store %s: %v", store.Spec.NodeName, store.Name, err)
				failed = append(failed, msg)
				r.Recorder.Eventf(vol, store, corev1.EventTypeWarning, v1alpha1.ReasonDeleteFailed, "Delete", msg)
				errs = append(errs, fmt.Errorf("delete volume %s on store %s: %w", client.ObjectKeyFromObject(vol), store.Name, err))
				continue
			}
			r.Recorder.Eventf(vol, store, corev1.EventTypeNormal, "Freed", "Delete", "freed on store %s", store.Name)
		}
	}
	obs.DeleteFailed = strings.Join(failed, "; ")
	return errors.Join(errs...)
}
