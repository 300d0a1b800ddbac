package controllers

import (
	"context"
	"errors"
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"

	"github.com/cobaltstore/cobalt/api/v1alpha1"
)

// Phases return done=true when the reconcile should stop after them (waiting, or failed).

// observeSourceVolume finds the Volume to snapshot and the Store that holds it. Until the
// Volume exists, is Ready and placed, and its Store is Ready, the reconcile waits (the Volume
// and Store watches wake it up) and Ready says what for.
func (r *SnapshotReconciler) observeSourceVolume(ctx context.Context, snap *v1alpha1.Snapshot, obs *snapshotObservation) (ctrl.Result, bool, error) {
	wait := func(format string, args ...any) (ctrl.Result, bool, error) {
		obs.Waiting = fmt.Sprintf(format, args...)
		return ctrl.Result{RequeueAfter: snapshotBackoff(snap, obs.Now)}, true, nil
	}
	name := snap.Namespace + "/" + snap.Spec.VolumeName
	vol := &v1alpha1.Volume{}
	if err := r.Get(ctx, client.ObjectKey{Namespace: snap.Namespace, Name: snap.Spec.VolumeName}, vol); err != nil {
		if apierrors.IsNotFound(err) {
			return wait("volume %s does not exist", name)
		}
		return ctrl.Result{}, true, fmt.Errorf("get source volume %s of snapshot %s: %w", name, client.ObjectKeyFromObject(snap), err)
	}
	if !vol.DeletionTimestamp.IsZero() {
		return wait("volume %s is being deleted", name)
	}
	if vol.Spec.Replicas > 1 {
		// A snapshot of a replicated Volume must be taken on every copy with the same content,
		// which needs the replicated data path's barrier; until then none is taken.
		return wait("volume %s has %d replicas: snapshots of replicated volumes are not supported yet", name, vol.Spec.Replicas)
	}
	ready := meta.FindStatusCondition(vol.Status.Conditions, v1alpha1.ConditionReady)
	if vol.Status.Placement == nil || ready == nil || ready.Status != metav1.ConditionTrue {
		if ready != nil && ready.Message != "" {
			return wait("volume %s is not Ready yet: %s", name, ready.Message)
		}
		return wait("volume %s is not Ready yet", name)
	}
	store := &v1alpha1.Store{}
	if err := r.Get(ctx, client.ObjectKey{Name: vol.Status.Placement.Store}, store); err != nil {
		if apierrors.IsNotFound(err) {
			return wait("store %s of volume %s does not exist", vol.Status.Placement.Store, name)
		}
		return ctrl.Result{}, true, fmt.Errorf("get store %s of volume %s: %w", vol.Status.Placement.Store, name, err)
	}
	if health := evaluateStoreHealth(store, obs.Now, r.HeartbeatTimeout); !health.Ready {
		return wait("store %s of volume %s is not Ready: %s", store.Name, name, health.Message)
	}
	obs.Volume, obs.Store = vol, store
	return ctrl.Result{}, false, nil
}

// reconcileTake has the Volume's node take the snapshot. A failure is reported and retried with
// the controller's backoff (the node recognizes a repeat).
func (r *SnapshotReconciler) reconcileTake(ctx context.Context, snap *v1alpha1.Snapshot, obs *snapshotObservation) (ctrl.Result, bool, error) {
	store, vol := obs.Store, obs.Volume
	info, err := r.Nodes.CreateSnapshot(ctx, store, vol, snap)
	if err != nil {
		obs.Failed = fmt.Sprintf("node %s could not take the snapshot of volume %s on store %s: %v", store.Spec.NodeName, vol.Name, store.Name, err)
		r.Recorder.Eventf(snap, store, corev1.EventTypeWarning, v1alpha1.ReasonSnapshotFailed, "Take", obs.Failed)
		return ctrl.Result{}, true, fmt.Errorf("take snapshot %s of volume %s on store %s: %w", client.ObjectKeyFromObject(snap), vol.Name, store.Name, err)
	}
	obs.Taken = &info
	r.Recorder.Eventf(snap, vol, corev1.EventTypeNormal, v1alpha1.ReasonTaken, "Take", "took a snapshot of volume %s (%s) on store %s",
		vol.Name, resource.NewQuantity(info.RestoreBytes, resource.BinarySI).String(), store.Name)
	return ctrl.Result{}, false, nil
}

// reconcileRefresh reads a taken Snapshot's sizes again from its node, and reports a Snapshot
// whose Store is gone or whose node lost it. A Store that is not Ready, or a node that does not
// answer, leaves the status as it was until the next refresh.
func (r *SnapshotReconciler) reconcileRefresh(ctx context.Context, snap *v1alpha1.Snapshot, obs *snapshotObservation) (ctrl.Result, error) {
	name := snap.Status.Placement.Store
	store := &v1alpha1.Store{}
	if err := r.Get(ctx, client.ObjectKey{Name: name}, store); err != nil {
		if !apierrors.IsNotFound(err) {
			return ctrl.Result{}, fmt.Errorf("get store %s of snapshot %s: %w", name, client.ObjectKeyFromObject(snap), err)
		}
		r.lost(snap, obs, nil, fmt.Sprintf("store %s that held the snapshot no longer exists: its data is gone", name))
		return ctrl.Result{RequeueAfter: r.RefreshInterval}, nil
	}
	if health := evaluateStoreHealth(store, obs.Now, r.HeartbeatTimeout); !health.Ready {
		return ctrl.Result{RequeueAfter: r.RefreshInterval}, nil
	}
	info, err := r.Nodes.GetSnapshot(ctx, store, snap)
	switch {
	case errors.Is(err, ErrSnapshotNotFound):
		r.lost(snap, obs, store, fmt.Sprintf("node %s no longer has the snapshot on store %s", store.Spec.NodeName, store.Name))
	case err != nil:
		ctrl.LoggerFrom(ctx).Info("could not refresh the snapshot's sizes; keeping the last ones", "store", store.Name, "error", err.Error())
	default:
		obs.Store, obs.Refreshed = store, &info
	}
	return ctrl.Result{RequeueAfter: r.RefreshInterval}, nil
}

// lost records that a taken Snapshot cannot be restored from any more, with an event (related
// to the Store, when there is one) the first time it says so.
func (r *SnapshotReconciler) lost(snap *v1alpha1.Snapshot, obs *snapshotObservation, related runtime.Object, msg string) {
	obs.Lost = msg
	if c := meta.FindStatusCondition(snap.Status.Conditions, v1alpha1.ConditionReady); c == nil || c.Message != msg {
		r.Recorder.Eventf(snap, related, corev1.EventTypeWarning, v1alpha1.ReasonSnapshotFailed, "Refresh", msg)
	}
}

// snapshotBackoff is the retry delay of a Snapshot whose Ready condition has been False since it
// last changed (see backoff).
func snapshotBackoff(snap *v1alpha1.Snapshot, now time.Time) time.Duration {
	failing := time.Duration(0)
	if c := meta.FindStatusCondition(snap.Status.Conditions, v1alpha1.ConditionReady); c != nil && c.Status == metav1.ConditionFalse {
		failing = now.Sub(c.LastTransitionTime.Time)
	}
	return retryBackoff(failing, minRetryDelay, maxRetryDelay)
}

// reconcileDelete deletes a taken Snapshot on its Store, then lets it go. A Snapshot never taken
// holds nothing and goes at once; one whose Store is gone has nothing left to free.
func (r *SnapshotReconciler) reconcileDelete(ctx context.Context, snap *v1alpha1.Snapshot, obs *snapshotObservation) (ctrl.Result, error) {
	if !controllerutil.ContainsFinalizer(snap, SnapshotFinalizer) {
		return ctrl.Result{}, nil
	}
	if snap.Status.Placement != nil {
		name := snap.Status.Placement.Store
		store := &v1alpha1.Store{}
		err := r.Get(ctx, client.ObjectKey{Name: name}, store)
		switch {
		case apierrors.IsNotFound(err):
			r.Recorder.Eventf(snap, nil, corev1.EventTypeWarning, v1alpha1.ReasonStoreMissing, "Delete",
				"store %s no longer exists; nothing to free", name)
		case err != nil:
			return ctrl.Result{}, fmt.Errorf("get store %s of snapshot %s: %w", name, client.ObjectKeyFromObject(snap), err)
		default:
			if err := r.Nodes.DeleteSnapshot(ctx, store, snap); err != nil {
				obs.DeleteFailed = fmt.Sprintf("node %s could not delete the snapshot on store %s: %v", store.Spec.NodeName, store.Name, err)
				r.Recorder.Eventf(snap, store, corev1.EventTypeWarning, v1alpha1.ReasonDeleteFailed, "Delete", obs.DeleteFailed)
				return ctrl.Result{}, fmt.Errorf("delete snapshot %s on store %s: %w", client.ObjectKeyFromObject(snap), store.Name, err)
			}
			r.Recorder.Eventf(snap, store, corev1.EventTypeNormal, "Deleted", "Delete", "deleted on store %s", store.Name)
		}
	}
	return ctrl.Result{}, removeFinalizer(ctx, r.Client, snap, SnapshotFinalizer)
}
