package controllers

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/cobaltstore/cobalt/api/v1alpha1"
)

// DefaultReplicaReplacementDelay is how long a copy of a replicated Volume may stay Lost before
// the operator replaces it on another Store (cmd/manager's --replica-replacement-delay).
const DefaultReplicaReplacementDelay = 10 * time.Minute

// reconcileReplicaMoves moves at most one copy of a replicated Volume per reconcile (planMove
// says which): it picks the new Store (chooseMoveTarget), swaps it for the old one in spec with
// optimistic locking, and records the new copy in obs.Copies (created by the provisioning phase
// after it, CatchingUp) and, for a drain, the old one in obs.Outgoing (kept listed while it is
// InSync). A copy that cannot move yet is reported in obs.MoveBlocked; a Lost copy not due yet
// is waited for (obs.MoveWait). It never stops the reconcile except on an API error.
func (r *VolumeReconciler) reconcileReplicaMoves(ctx context.Context, vol *v1alpha1.Volume, obs *volumeObservation) (ctrl.Result, bool, error) {
	plan := planMove(vol, obs.Copies, obs.Now, r.ReplicaReplacementDelay)
	obs.MoveWait, obs.MoveBlocked = plan.Wait, plan.Blocked
	if plan.Kind == moveNone {
		return ctrl.Result{}, false, nil
	}
	loads, err := r.storeLoads(ctx)
	if err != nil {
		return ctrl.Result{}, true, err
	}
	target, msg, err := chooseMoveTarget(vol, loads, plan.Store, obs.Now, r.HeartbeatTimeout)
	if err != nil {
		return ctrl.Result{}, true, err
	}
	if target == "" {
		obs.MoveBlocked = msg
		if c := meta.FindStatusCondition(vol.Status.Conditions, v1alpha1.ConditionDegraded); c == nil || !strings.Contains(c.Message, msg) {
			r.Recorder.Eventf(vol, nil, corev1.EventTypeWarning, "ReplicaMoveBlocked", "Move", msg)
		}
		return ctrl.Result{}, false, nil
	}

	cp := vol.DeepCopy()
	if cp.Spec.StoreName == plan.Store {
		cp.Spec.StoreName = target
	} else {
		cp.Spec.ReplicaStoreNames = slices.Clone(cp.Spec.ReplicaStoreNames)
		cp.Spec.ReplicaStoreNames[slices.Index(cp.Spec.ReplicaStoreNames, plan.Store)] = target
	}
	if err := r.Patch(ctx, cp, client.MergeFromWithOptions(vol, client.MergeFromWithOptimisticLock{})); err != nil {
		return ctrl.Result{}, true, fmt.Errorf("move the copy of volume %s on store %s to store %s: %w", client.ObjectKeyFromObject(vol), plan.Store, target, err)
	}
	vol.ObjectMeta, vol.Spec = cp.ObjectMeta, cp.Spec
	r.assumed.assume(vol.UID, vol.Spec.Size.Value(), vol.PlacedStores()...)

	moved, err := r.observeCopy(ctx, vol, target, obs.Now)
	if err != nil {
		return ctrl.Result{}, true, err
	}
	moved.Joining = vol.Status.AllocatedSize != nil
	i := slices.IndexFunc(obs.Copies, func(c copyObservation) bool { return c.StoreName == plan.Store })
	old := obs.Copies[i]
	switch plan.Kind {
	case moveReplace:
		moved.Note = fmt.Sprintf("replaces the copy on store %s, lost since %s", plan.Store, plan.LostSince.UTC().Format(time.RFC3339))
		r.Recorder.Eventf(vol, moved.Store, corev1.EventTypeNormal, "ReplicaReplaced", "Move",
			"copy on store %s (Lost since %s) replaced by a new copy on store %s, rebuilt from the in-sync copies",
			plan.Store, plan.LostSince.UTC().Format(time.RFC3339), target)
	case moveDrain:
		moved.Note = fmt.Sprintf("takes over from the copy on store %s (set out)", plan.Store)
		obs.Outgoing = append(obs.Outgoing, old)
		r.Recorder.Eventf(vol, moved.Store, corev1.EventTypeNormal, "ReplicaMoving", "Move",
			"store %s is set out: its copy moves to store %s; the old copy keeps the writes until the new one is in sync",
			plan.Store, target)
	}
	obs.Copies[i] = moved
	return ctrl.Result{}, false, nil
}

// reconcileRetirement retires the copies no longer in spec that copiesToRetire names (they
// leave status.replicas for status.retiredReplicas), and has the node of every copy retired
// by an earlier reconcile delete it: one whose Store is gone has nothing left to delete; one
// whose Store is not Ready waits for it (its return wakes the Volume up through the
// volumeFormerStoreIndex). A copy is deleted only after its retirement was written, so the
// serving node, which reads status.replicas, has stopped writing it. Node errors are returned
// together after every copy was tried; they do not hold the reconcile back.
func (r *VolumeReconciler) reconcileRetirement(ctx context.Context, vol *v1alpha1.Volume, obs *volumeObservation) (ctrl.Result, bool, error) {
	obs.Retired = copiesToRetire(vol, obs.Copies, obs.Outgoing)
	var errs []error
	for _, e := range vol.Status.RetiredReplicas {
		if slices.Contains(vol.PlacedStores(), e.Store) {
			// A Store listed again in spec holds a live copy now: never delete it.
			obs.Freed = append(obs.Freed, e.Store)
			continue
		}
		freed, err := r.freeRetired(ctx, vol, e.Store, obs.Now)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if freed {
			obs.Freed = append(obs.Freed, e.Store)
		}
	}
	if len(vol.Status.RetiredReplicas) > len(obs.Freed) {
		obs.RetiredLeft = true
	}
	if err := errors.Join(errs...); err != nil {
		// The other phases go on; the error requeues the Volume.
		obs.RetireErr = err
	}
	return ctrl.Result{}, false, nil
}

// announceRetired says ReplicaRetired for each copy retired; call it once the status that
// retires them is written (a status write that lost a race retires them again next time, and
// only that one is announced).
func (r *VolumeReconciler) announceRetired(vol *v1alpha1.Volume, retired []retirement) {
	for _, rt := range retired {
		r.Recorder.Eventf(vol, nil, corev1.EventTypeNormal, "ReplicaRetired", "Retire", "%s; it is deleted on its node", rt.Why)
	}
}

// freeRetired has the node of store delete vol's retired copy there. freed is true when the
// copy is gone (deleted now, or its Store no longer exists), false while the Store is not
// Ready.
func (r *VolumeReconciler) freeRetired(ctx context.Context, vol *v1alpha1.Volume, name string, now time.Time) (freed bool, err error) {
	store := &v1alpha1.Store{}
	switch err := r.Get(ctx, client.ObjectKey{Name: name}, store); {
	case apierrors.IsNotFound(err):
		r.Recorder.Eventf(vol, nil, corev1.EventTypeNormal, "Freed", "Retire", "store %s of the retired copy no longer exists; nothing to free", name)
		return true, nil
	case err != nil:
		return false, fmt.Errorf("get store %s of a retired copy of volume %s: %w", name, client.ObjectKeyFromObject(vol), err)
	}
	if !evaluateStoreHealth(store, now, r.HeartbeatTimeout).Ready {
		return false, nil
	}
	if err := r.Nodes.DeleteVolume(ctx, store, vol); err != nil {
		msg := fmt.Sprintf("node %s could not delete the retired copy on store %s: %v", store.Spec.NodeName, name, err)
		r.Recorder.Eventf(vol, store, corev1.EventTypeWarning, v1alpha1.ReasonDeleteFailed, "Retire", msg)
		return false, fmt.Errorf("delete retired copy of volume %s on store %s: %w", client.ObjectKeyFromObject(vol), name, err)
	}
	r.Recorder.Eventf(vol, store, corev1.EventTypeNormal, "Freed", "Retire", "retired copy deleted on store %s", name)
	return true, nil
}

// finishReplicated ends a replicated Volume's reconcile: it returns the error of a retired
// copy's deletion, else requeues when a Lost copy is due for replacement later, when a retired
// copy waits for its Store, or when a copy could not move.
func (r *VolumeReconciler) finishReplicated(_ context.Context, vol *v1alpha1.Volume, obs *volumeObservation) (ctrl.Result, bool, error) {
	if obs.RetireErr != nil {
		return ctrl.Result{}, true, obs.RetireErr
	}
	var after time.Duration
	if obs.MoveWait > 0 {
		after = obs.MoveWait
	}
	if obs.RetiredLeft || obs.MoveBlocked != "" {
		b := backoff(vol, obs.Now)
		if after == 0 || b < after {
			after = b
		}
	}
	return ctrl.Result{RequeueAfter: after}, after > 0, nil
}
