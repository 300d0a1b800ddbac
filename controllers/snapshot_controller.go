package controllers

import (
	"context"
	"errors"
	"fmt"
	"time"

	"k8s.io/client-go/tools/events"
	"k8s.io/utils/clock"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	"github.com/cobaltstore/cobalt/api/v1alpha1"
)

// SnapshotFinalizer keeps a Snapshot until its node deleted it on its Store.
const SnapshotFinalizer = "storage.cobalt.io/snapshot-protection"

// DefaultSnapshotRefreshInterval is how often a taken Snapshot's sizes are read again from its
// node: its exclusive size grows as its source Volume overwrites the data they share.
const DefaultSnapshotRefreshInterval = time.Minute

// SnapshotReconciler has the nodes take and delete Snapshots of Volumes, and keeps their sizes
// current. A Snapshot is taken once, on its source Volume's Store; from then on it depends only
// on that Store, so its source Volume may be deleted. No owner reference ties it to the Volume.
type SnapshotReconciler struct {
	client.Client
	// Recorder records events on Snapshots.
	Recorder events.EventRecorder
	// Nodes reaches the node daemons.
	Nodes NodeClient
	// Clock tells the time, for Store heartbeat staleness and retry backoff.
	Clock clock.PassiveClock
	// HeartbeatTimeout is how old a Store's heartbeat may be for the Store to be Ready.
	HeartbeatTimeout time.Duration
	// RefreshInterval is how often a taken Snapshot's sizes are read again from its node.
	RefreshInterval time.Duration
}

// +kubebuilder:rbac:groups=storage.cobalt.io,resources=snapshots,verbs=get;list;watch;update;patch
// +kubebuilder:rbac:groups=storage.cobalt.io,resources=snapshots/status,verbs=get;update;patch
// +kubebuilder:rbac:groups=storage.cobalt.io,resources=snapshots/finalizers,verbs=update
// +kubebuilder:rbac:groups=storage.cobalt.io,resources=volumes,verbs=get;list;watch
// +kubebuilder:rbac:groups=storage.cobalt.io,resources=stores,verbs=get;list;watch
// +kubebuilder:rbac:groups=events.k8s.io,resources=events,verbs=create;patch

// Reconcile drives one Snapshot: delete it on its node when it is deleted; otherwise wait for
// its source Volume, take it once on the Volume's Store, then refresh its sizes periodically.
// The phases only record what they observe; status is computed from that by
// computeSnapshotStatus and written once, at the end.
func (r *SnapshotReconciler) Reconcile(ctx context.Context, req ctrl.Request) (res ctrl.Result, retErr error) {
	snap := &v1alpha1.Snapshot{}
	if err := r.Get(ctx, req.NamespacedName, snap); err != nil {
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	before := snap.DeepCopy()
	obs := snapshotObservation{Now: r.Clock.Now(), Deleting: !snap.DeletionTimestamp.IsZero()}
	defer func() {
		snap.Status = computeSnapshotStatus(snap, obs)
		retErr = errors.Join(retErr, patchStatus(ctx, r.Client, before, snap))
	}()

	if obs.Deleting {
		return r.reconcileDelete(ctx, snap, &obs)
	}
	if err := ensureFinalizer(ctx, r.Client, snap, SnapshotFinalizer); err != nil {
		return ctrl.Result{}, err
	}
	if snapshotTaken(snap) {
		return r.reconcileRefresh(ctx, snap, &obs)
	}
	phases := []func(context.Context, *v1alpha1.Snapshot, *snapshotObservation) (ctrl.Result, bool, error){
		r.observeSourceVolume,
		r.reconcileTake,
	}
	for _, phase := range phases {
		res, done, err := phase(ctx, snap, &obs)
		if err != nil || done {
			return res, err
		}
	}
	return ctrl.Result{RequeueAfter: r.RefreshInterval}, nil
}

// SetupWithManager checks the reconciler's dependencies and registers it with mgr. Call
// SetupIndexes first.
func (r *SnapshotReconciler) SetupWithManager(mgr ctrl.Manager) error {
	switch {
	case r.Client == nil:
		return errors.New("snapshot reconciler: Client is required")
	case r.Recorder == nil:
		return errors.New("snapshot reconciler: Recorder is required")
	case r.Nodes == nil:
		return errors.New("snapshot reconciler: Nodes (a NodeClient) is required")
	case r.Clock == nil:
		return errors.New("snapshot reconciler: Clock is required")
	case r.HeartbeatTimeout <= 0:
		return fmt.Errorf("snapshot reconciler: HeartbeatTimeout must be positive, got %s", r.HeartbeatTimeout)
	case r.RefreshInterval <= 0:
		return fmt.Errorf("snapshot reconciler: RefreshInterval must be positive, got %s", r.RefreshInterval)
	}
	return ctrl.NewControllerManagedBy(mgr).
		For(&v1alpha1.Snapshot{}, builder.WithPredicates(predicate.Or(
			predicate.GenerationChangedPredicate{}, predicate.AnnotationChangedPredicate{}))).
		Watches(&v1alpha1.Volume{}, handler.EnqueueRequestsFromMapFunc(r.snapshotsOfVolume)).
		Watches(&v1alpha1.Store{}, handler.EnqueueRequestsFromMapFunc(r.snapshotsForStore), builder.WithPredicates(storeChanged())).
		Named("snapshot").
		Complete(r)
}

// snapshotsOfVolume maps a Volume event to the Snapshots of it not taken yet, which wait for it.
func (r *SnapshotReconciler) snapshotsOfVolume(ctx context.Context, o client.Object) []reconcile.Request {
	return r.untakenSnapshotsOf(ctx, o.GetNamespace(), o.GetName())
}

func (r *SnapshotReconciler) untakenSnapshotsOf(ctx context.Context, namespace, volume string) []reconcile.Request {
	var list v1alpha1.SnapshotList
	if err := r.List(ctx, &list, client.MatchingFields{snapshotVolumeIndex: namespace + "/" + volume}); err != nil {
		ctrl.LoggerFrom(ctx).Error(err, "list snapshots of volume", "volume", namespace+"/"+volume)
		return nil
	}
	var reqs []reconcile.Request
	for i := range list.Items {
		if !snapshotTaken(&list.Items[i]) {
			reqs = append(reqs, reconcile.Request{NamespacedName: client.ObjectKeyFromObject(&list.Items[i])})
		}
	}
	return reqs
}

// snapshotsForStore maps a Store event to the Snapshots it concerns: those it holds, and those
// not taken yet of the Volumes placed on it.
func (r *SnapshotReconciler) snapshotsForStore(ctx context.Context, o client.Object) []reconcile.Request {
	var held v1alpha1.SnapshotList
	if err := r.List(ctx, &held, client.MatchingFields{snapshotStoreIndex: o.GetName()}); err != nil {
		ctrl.LoggerFrom(ctx).Error(err, "list snapshots on store", "store", o.GetName())
		return nil
	}
	var reqs []reconcile.Request
	for i := range held.Items {
		reqs = append(reqs, reconcile.Request{NamespacedName: client.ObjectKeyFromObject(&held.Items[i])})
	}
	var vols v1alpha1.VolumeList
	if err := r.List(ctx, &vols, client.MatchingFields{volumeStoreIndex: o.GetName()}); err != nil {
		ctrl.LoggerFrom(ctx).Error(err, "list volumes on store", "store", o.GetName())
		return reqs
	}
	for _, v := range vols.Items {
		reqs = append(reqs, r.untakenSnapshotsOf(ctx, v.Namespace, v.Name)...)
	}
	return reqs
}
