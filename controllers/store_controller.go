package controllers

import (
	"context"
	"errors"
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/client-go/tools/events"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/cobaltstore/cobalt/api/v1alpha1"
)

// StoreReconciler judges each Store's health from the heartbeat its node daemon writes and from
// its admin state.
type StoreReconciler struct {
	client.Client
	// Recorder records events on Stores.
	Recorder events.EventRecorder
	// Clock tells the time the heartbeat is compared with.
	Clock Clock
	// HeartbeatTimeout is how old a heartbeat may get before the Store turns not Ready.
	HeartbeatTimeout time.Duration
}

// +kubebuilder:rbac:groups=storage.cobalt.io,resources=stores,verbs=get;list;watch
// +kubebuilder:rbac:groups=storage.cobalt.io,resources=stores/status,verbs=get;update;patch
// +kubebuilder:rbac:groups=events.k8s.io,resources=events,verbs=create;patch

// Reconcile sets a Store's Ready, Degraded and Schedulable conditions, and comes back when a
// fresh heartbeat would go stale.
func (r *StoreReconciler) Reconcile(ctx context.Context, req ctrl.Request) (res ctrl.Result, retErr error) {
	store := &v1alpha1.Store{}
	if err := r.Get(ctx, req.NamespacedName, store); err != nil {
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	before := store.DeepCopy()
	defer func() {
		retErr = errors.Join(retErr, patchStatus(ctx, r.Client, before, store))
	}()

	health := evaluateStoreHealth(store, r.Clock.Now(), r.HeartbeatTimeout)
	storeConditions(store, health)
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
		Named("store").
		Complete(r)
}
