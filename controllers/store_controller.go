package controllers

import (
	"context"
	"errors"
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/client-go/tools/events"
	"k8s.io/utils/clock"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	"github.com/cobaltstore/cobalt/api/v1alpha1"
)

// StoreFinalizer keeps a Store while Volumes are placed on it or Snapshots are held on it:
// deleting the Store object must not make the operator forget where their data is.
const StoreFinalizer = "storage.cobalt.io/store-protection"

// StoreReconciler judges each Store's health from the heartbeat its node daemon writes and from
// its admin state.
type StoreReconciler struct {
	client.Client
	// Recorder records events on Stores.
	Recorder events.EventRecorder
	// Clock tells the time the heartbeat is compared with.
	Clock clock.PassiveClock
	// HeartbeatTimeout is how old a heartbeat may get before the Store turns not Ready.
	HeartbeatTimeout time.Duration
}

// +kubebuilder:rbac:groups=storage.cobalt.io,resources=stores,verbs=get;list;watch;update;patch
// +kubebuilder:rbac:groups=storage.cobalt.io,resources=stores/status,verbs=get;update;patch
// +kubebuilder:rbac:groups=storage.cobalt.io,resources=stores/finalizers,verbs=update
// +kubebuilder:rbac:groups=storage.cobalt.io,resources=volumes,verbs=get;list;watch
// +kubebuilder:rbac:groups=storage.cobalt.io,resources=snapshots,verbs=get;list;watch
// +kubebuilder:rbac:groups=events.k8s.io,resources=events,verbs=create;patch

// Reconcile sets a Store's Ready, Degraded and Schedulable conditions, and comes back when a
// fresh heartbeat would go stale. A deleted Store stays until no Volume is placed on it and no
// Snapshot is held on it.
func (r *StoreReconciler) Reconcile(ctx context.Context, req ctrl.Request) (res ctrl.Result, retErr error) {
	store := &v1alpha1.Store{}
	if err := r.Get(ctx, req.NamespacedName, store); err != nil {
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	before := store.DeepCopy()
	defer func() {
		retErr = errors.Join(retErr, patchStatus(ctx, r.Client, before, store))
	}()

	if !store.DeletionTimestamp.IsZero() {
		return r.reconcileDelete(ctx, store)
	}
	if err := ensureFinalizer(ctx, r.Client, store, StoreFinalizer); err != nil {
		return ctrl.Result{}, err
	}
	now := r.Clock.Now()
	health := evaluateStoreHealth(store, now, r.HeartbeatTimeout)
	storeConditions(store, health, now)
	r.recordTransitions(before, store)
	if health.Ready {
		// Come back just after the heartbeat would go stale; a new heartbeat re-triggers sooner.
		return ctrl.Result{RequeueAfter: health.StaleIn + time.Second}, nil
	}
	return ctrl.Result{}, nil
}

// recordTransitions emits an event when Ready or Schedulable changed.
func (r *StoreReconciler) recordTransitions(before, after *v1alpha1.Store) {
	for _, t := range []string{v1alpha1.ConditionReady, v1alpha1.ConditionSchedulable} {
		now := meta.FindStatusCondition(after.Status.Conditions, t)
		was := meta.FindStatusCondition(before.Status.Conditions, t)
		if now == nil || (was != nil && was.Status == now.Status && was.Reason == now.Reason) {
			continue
		}
		kind := corev1.EventTypeNormal
		if now.Status != "True" {
			kind = corev1.EventTypeWarning
		}
		r.Recorder.Eventf(after, nil, kind, now.Reason, "Evaluate"+t, "%s=%s: %s", t, now.Status, now.Message)
	}
}

// SetupWithManager checks the reconciler's dependencies and registers it with mgr.
func (r *StoreReconciler) SetupWithManager(mgr ctrl.Manager) error {
	switch {
	case r.Client == nil:
		return errors.New("store reconciler: Client is required")
	case r.Recorder == nil:
		return errors.New("store reconciler: Recorder is required")
	case r.Clock == nil:
		return errors.New("store reconciler: Clock is required")
	case r.HeartbeatTimeout <= 0:
		return fmt.Errorf("store reconciler: HeartbeatTimeout must be positive, got %s", r.HeartbeatTimeout)
	}
	return ctrl.NewControllerManagedBy(mgr).
		For(&v1alpha1.Store{}).
		Watches(&v1alpha1.Volume{}, handler.EnqueueRequestsFromMapFunc(storeOfVolume)).
		Watches(&v1alpha1.Snapshot{}, handler.EnqueueRequestsFromMapFunc(storeOfSnapshot)).
		Named("store").
		Complete(r)
}

// reconcileDelete lets a deleted Store go once no Volume is placed on it and no Snapshot is held
// on it; until then its Ready condition names those that hold it.
func (r *StoreReconciler) reconcileDelete(ctx context.Context, store *v1alpha1.Store) (ctrl.Result, error) {
	if !controllerutil.ContainsFinalizer(store, StoreFinalizer) {
		return ctrl.Result{}, nil
	}
	var vols v1alpha1.VolumeList
	if err := r.List(ctx, &vols, client.MatchingFields{volumeStoreIndex: store.Name}); err != nil {
		return ctrl.Result{}, fmt.Errorf("list volumes on store %s: %w", store.Name, err)
	}
	blocking := make([]string, 0, len(vols.Items))
	for _, v := range vols.Items {
		blocking = append(blocking, v.Namespace+"/"+v.Name)
	}
	var snaps v1alpha1.SnapshotList
	if err := r.List(ctx, &snaps, client.MatchingFields{snapshotStoreIndex: store.Name}); err != nil {
		return ctrl.Result{}, fmt.Errorf("list snapshots on store %s: %w", store.Name, err)
	}
	held := make([]string, 0, len(snaps.Items))
	for _, s := range snaps.Items {
		held = append(held, s.Namespace+"/"+s.Name)
	}
	if len(blocking) > 0 || len(held) > 0 {
		was := readyMessage(store)
		storeDeletionConditions(store, blocking, held, r.Clock.Now())
		if msg := readyMessage(store); msg != was {
			r.Recorder.Eventf(store, nil, corev1.EventTypeWarning, v1alpha1.ReasonDeletionBlocked, "Delete", msg)
		}
		return ctrl.Result{}, nil
	}
	return ctrl.Result{}, removeFinalizer(ctx, r.Client, store, StoreFinalizer)
}

// readyMessage is the message of store's Ready condition, empty when it has none.
func readyMessage(store *v1alpha1.Store) string {
	if c := meta.FindStatusCondition(store.Status.Conditions, v1alpha1.ConditionReady); c != nil {
		return c.Message
	}
	return ""
}

// storeOfVolume maps a Volume to the Stores its copies are placed on, so a Store waiting for
// its last Volume to go is reconciled when it goes.
func storeOfVolume(_ context.Context, o client.Object) []reconcile.Request {
	v, ok := o.(*v1alpha1.Volume)
	if !ok {
		return nil
	}
	var reqs []reconcile.Request
	for _, name := range v.PlacedStores() {
		reqs = append(reqs, reconcile.Request{NamespacedName: client.ObjectKey{Name: name}})
	}
	return reqs
}

// storeOfSnapshot maps a Snapshot to the Store that holds it, so a Store waiting for its last
// Snapshot to go is reconciled when it goes.
func storeOfSnapshot(_ context.Context, o client.Object) []reconcile.Request {
	s, ok := o.(*v1alpha1.Snapshot)
	if !ok || s.Status.Placement == nil {
		return nil
	}
	return []reconcile.Request{{NamespacedName: client.ObjectKey{Name: s.Status.Placement.Store}}}
}
