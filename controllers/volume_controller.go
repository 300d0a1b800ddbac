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

// VolumeFinalizer keeps a Volume until its space is freed on its Store.
const VolumeFinalizer = "storage.cobalt.io/volume-protection"

// Retry delays for a Volume that cannot be placed or whose Store is not usable yet.
const (
	minRetryDelay = 5 * time.Second
	maxRetryDelay = 5 * time.Minute
)

// staleStatusRetry is how soon a Volume is reconciled again when its status patch was refused
// because another writer (the node serving it) changed it after the reconcile read it.
const staleStatusRetry = 100 * time.Millisecond

// VolumeReconciler places Volumes on Stores and has the nodes create, grow and delete them.
type VolumeReconciler struct {
	client.Client
	// Recorder records events on Volumes.
	Recorder events.EventRecorder
	// Nodes reaches the node daemons.
	Nodes NodeClient
	// Clock tells the time, for Store heartbeat staleness and retry backoff.
	Clock clock.PassiveClock
	// HeartbeatTimeout is how old a Store's heartbeat may be for the Store to take Volumes.
	HeartbeatTimeout time.Duration
	// ReplicationEnabled lets the reconciler place and create Volumes with replicas > 1. Off,
	// such a Volume stays unplaced with Ready False (ReplicationUnavailable): replication is
	// opt-in while it is new. cmd/manager sets it from --enable-replication.
	ReplicationEnabled bool
	// ReplicaReplacementDelay is how long a copy of a replicated Volume may stay Lost before it
	// is replaced by a new copy on another Store (cmd/manager's --replica-replacement-delay,
	// DefaultReplicaReplacementDelay, which SetupWithManager sets when it is zero). A copy whose
	// Store returns within it catches up instead.
	ReplicaReplacementDelay time.Duration

	// assumed holds placements the cache may not show yet.
	assumed assumedPlacements
	// inSyncSeen remembers the copies' states, for the ReplicaInSync event.
	inSyncSeen replicaStatesSeen
}

// +kubebuilder:rbac:groups=storage.cobalt.io,resources=volumes,verbs=get;list;watch;update;patch
// +kubebuilder:rbac:groups=storage.cobalt.io,resources=volumes/status,verbs=get;update;patch
// +kubebuilder:rbac:groups=storage.cobalt.io,resources=volumes/finalizers,verbs=update
// +kubebuilder:rbac:groups=storage.cobalt.io,resources=stores,verbs=get;list;watch
// +kubebuilder:rbac:groups=storage.cobalt.io,resources=storageclusters,verbs=get;list;watch
// +kubebuilder:rbac:groups=storage.cobalt.io,resources=snapshots,verbs=get;list;watch
// +kubebuilder:rbac:groups="",resources=nodes,verbs=get;list;watch
// +kubebuilder:rbac:groups=events.k8s.io,resources=events,verbs=create;patch

// Reconcile drives one Volume: free its space when it is deleted; otherwise wait for its source
// (if it has one), place it, create it on its node and grow it to the requested size. The
// phases only record what they observe; status is computed from that by computeVolumeStatus
// and written once, at the end.
func (r *VolumeReconciler) Reconcile(ctx context.Context, req ctrl.Request) (res ctrl.Result, retErr error) {
	vol := &v1alpha1.Volume{}
	if err := r.Get(ctx, req.NamespacedName, vol); err != nil {
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	before := vol.DeepCopy()
	obs := volumeObservation{Now: r.Clock.Now(), Deleting: !vol.DeletionTimestamp.IsZero()}
	defer func() {
		vol.Status = computeVolumeStatus(vol, obs)
		if vol.Spec.Replicas > 1 && !obs.Deleting {
			r.inSyncSeen.remember(vol.UID, vol.Status.Replicas)
		}
		stale, err := patchStatusLocked(ctx, r.Client, before, vol)
		if err == nil && !stale {
			r.announceRetired(vol, obs.Retired)
		}
		retErr = errors.Join(retErr, err)
		if stale && retErr == nil && (res.RequeueAfter == 0 || res.RequeueAfter > staleStatusRetry) {
			res = ctrl.Result{RequeueAfter: staleStatusRetry}
		}
	}()

	if obs.Deleting {
		return r.reconcileDelete(ctx, vol, &obs)
	}
	if err := ensureFinalizer(ctx, r.Client, vol, VolumeFinalizer); err != nil {
		return ctrl.Result{}, err
	}

	phases := []func(context.Context, *v1alpha1.Volume, *volumeObservation) (ctrl.Result, bool, error){
		r.reconcileSource,
		r.reconcilePlacement,
		r.observeStore,
		r.reconcileProvisioning,
		r.reconcileExpansion,
	}
	if vol.Spec.Replicas > 1 {
		phases = r.replicatedPhases()
	}
	for _, phase := range phases {
		res, done, err := phase(ctx, vol, &obs)
		if err != nil || done {
			return res, err
		}
	}
	return ctrl.Result{}, nil
}

// SetupWithManager checks the reconciler's dependencies and registers it with mgr. Call
// SetupIndexes first.
func (r *VolumeReconciler) SetupWithManager(mgr ctrl.Manager) error {
	switch {
	case r.Client == nil:
		return errors.New("volume reconciler: Client is required")
	case r.Recorder == nil:
		return errors.New("volume reconciler: Recorder is required")
	case r.Nodes == nil:
		return errors.New("volume reconciler: Nodes (a NodeClient) is required")
	case r.Clock == nil:
		return errors.New("volume reconciler: Clock is required")
	case r.HeartbeatTimeout <= 0:
		return fmt.Errorf("volume reconciler: HeartbeatTimeout must be positive, got %s", r.HeartbeatTimeout)
	case r.ReplicaReplacementDelay < 0:
		return fmt.Errorf("volume reconciler: ReplicaReplacementDelay must not be negative, got %s", r.ReplicaReplacementDelay)
	case r.ReplicaReplacementDelay == 0:
		r.ReplicaReplacementDelay = DefaultReplicaReplacementDelay
	}
	return ctrl.NewControllerManagedBy(mgr).
		For(&v1alpha1.Volume{}, builder.WithPredicates(predicate.Or(
			predicate.GenerationChangedPredicate{}, predicate.AnnotationChangedPredicate{}, volumeCopiesChanged()))).
		Watches(&v1alpha1.Store{}, handler.EnqueueRequestsFromMapFunc(r.volumesForStore), builder.WithPredicates(storeChanged())).
		Watches(&v1alpha1.Snapshot{}, handler.EnqueueRequestsFromMapFunc(r.volumesFromSource(sourceKindSnapshot))).
		Watches(&v1alpha1.Volume{}, handler.EnqueueRequestsFromMapFunc(r.volumesFromSource(sourceKindVolume))).
		Named("volume").
		Complete(r)
}

// volumesForStore maps a Store event to the Volumes it may unblock: those placed on the Store,
// those not placed yet, and those with a copy there that is moving away or still to be deleted.
func (r *VolumeReconciler) volumesForStore(ctx context.Context, o client.Object) []reconcile.Request {
	var reqs []reconcile.Request
	for _, f := range []client.MatchingFields{{volumeStoreIndex: o.GetName()}, {volumeStoreIndex: unplacedKey}, {volumeFormerStoreIndex: o.GetName()}} {
		var list v1alpha1.VolumeList
		if err := r.List(ctx, &list, f); err != nil {
			ctrl.LoggerFrom(ctx).Error(err, "list volumes for store", "store", o.GetName())
			continue
		}
		for _, v := range list.Items {
			reqs = append(reqs, reconcile.Request{NamespacedName: client.ObjectKeyFromObject(&v)})
		}
	}
	return reqs
}
