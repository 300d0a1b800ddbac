package controllers

import (
	"context"
	"errors"
	"fmt"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/client-go/tools/events"
	"k8s.io/utils/clock"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	"github.com/cobaltstore/cobalt/api/v1alpha1"
)

// StorageClusterFinalizer keeps a StorageCluster until no Volume is placed on its Stores.
const StorageClusterFinalizer = "storage.cobalt.io/cluster-protection"

// fieldOwner is the server-side apply field manager of everything the operator applies.
const fieldOwner = client.FieldOwner("cobalt-operator")

// deletionRecheck is how often a blocked deletion looks again, besides the Volume watch.
const deletionRecheck = 30 * time.Second

// daemonStopRecheck is how often a deletion looks again while node daemon pods are stopping.
const daemonStopRecheck = 2 * time.Second

// statusRefresh is how often a cluster's status is recomputed without any event, so that the
// used and available capacity follow the Stores' heartbeats (which the Store watch ignores).
const statusRefresh = time.Minute

// StorageClusterReconciler runs a StorageCluster's node daemon (DaemonSet, ServiceAccount and
// RBAC), reports its Stores in its status and guards its deletion.
type StorageClusterReconciler struct {
	client.Client
	// Recorder records events on StorageClusters.
	Recorder events.EventRecorder
	// Clock tells the time, for Store heartbeat staleness.
	Clock clock.PassiveClock
	// HeartbeatTimeout is how old a Store's heartbeat may get before it counts as down.
	HeartbeatTimeout time.Duration
	// NodeDaemonImage is the node daemon image of clusters that do not name one.
	NodeDaemonImage string
	// CSI says whether the node daemons serve the CSI node plugin, and where the kubelet keeps
	// its state on the nodes.
	CSI CSINodePlugin
	// CASecret is the operator's CA Secret (keys ca.crt and ca.key), copied into each
	// cluster's namespace as CASecretName for the node daemons.
	CASecret client.ObjectKey
	// APIReader reads CASecret directly from the API server, so the manager need not cache
	// every Secret of the cluster.
	APIReader client.Reader
}

// +kubebuilder:rbac:groups=storage.cobalt.io,resources=storageclusters,verbs=get;list;watch;update;patch
// +kubebuilder:rbac:groups=storage.cobalt.io,resources=storageclusters/status,verbs=get;update;patch
// +kubebuilder:rbac:groups=storage.cobalt.io,resources=storageclusters/finalizers,verbs=update
// +kubebuilder:rbac:groups=storage.cobalt.io,resources=stores,verbs=get;list;watch;create;update;patch;delete
// +kubebuilder:rbac:groups=storage.cobalt.io,resources=stores/status,verbs=get;update;patch
// +kubebuilder:rbac:groups=storage.cobalt.io,resources=volumes,verbs=get;list;watch
// +kubebuilder:rbac:groups=apps,resources=daemonsets,verbs=get;list;watch;create;update;patch;delete
// +kubebuilder:rbac:groups="",resources=serviceaccounts,verbs=get;list;watch;create;update;patch;delete
// +kubebuilder:rbac:groups="",resources=secrets,verbs=get;create;update;patch;delete
// +kubebuilder:rbac:groups=rbac.authorization.k8s.io,resources=roles;rolebindings,verbs=get;list;watch;create;update;patch;delete
// +kubebuilder:rbac:groups=rbac.authorization.k8s.io,resources=clusterroles;clusterrolebindings,verbs=get;list;watch;create;update;patch;delete
// +kubebuilder:rbac:groups="",resources=nodes,verbs=get;list;watch
// +kubebuilder:rbac:groups="",resources=pods,verbs=list;delete
// +kubebuilder:rbac:groups=events.k8s.io,resources=events,verbs=create;patch

// Reconcile keeps a StorageCluster's node daemon in place and its status current, or, when the
// cluster is deleted, waits for its Volumes to go and then removes what it created.
func (r *StorageClusterReconciler) Reconcile(ctx context.Context, req ctrl.Request) (res ctrl.Result, retErr error) {
	cluster := &v1alpha1.StorageCluster{}
	if err := r.Get(ctx, req.NamespacedName, cluster); err != nil {
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	before := cluster.DeepCopy()
	defer func() {
		retErr = errors.Join(retErr, patchStatus(ctx, r.Client, before, cluster))
	}()

	if !cluster.DeletionTimestamp.IsZero() {
		return r.reconcileDelete(ctx, cluster)
	}
	if err := ensureFinalizer(ctx, r.Client, cluster, StorageClusterFinalizer); err != nil {
		return ctrl.Result{}, err
	}
	return r.reconcileNormal(ctx, cluster)
}

// reconcileNormal applies the node daemon's objects, then computes status from them and the
// cluster's Stores.
func (r *StorageClusterReconciler) reconcileNormal(ctx context.Context, cluster *v1alpha1.StorageCluster) (ctrl.Result, error) {
	obs := clusterObservation{Now: r.Clock.Now(), HeartbeatTimeout: r.HeartbeatTimeout}
	phases := []func(context.Context, *v1alpha1.StorageCluster, *clusterObservation) error{
		r.reconcileServiceAccount,
		r.reconcileRBAC,
		r.reconcileCA,
		r.reconcileDaemonSet,
		r.observeStores,
		r.reconcileRollout,
	}
	var err error
	for _, phase := range phases {
		if err = phase(ctx, cluster, &obs); err != nil {
			break
		}
	}
	obs.ReconcileError = err
	computeClusterStatus(cluster, obs)
	if err != nil {
		r.Recorder.Eventf(cluster, nil, corev1.EventTypeWarning, v1alpha1.ReasonReconcileFailed, "Reconcile", err.Error())
		return ctrl.Result{}, err
	}
	// Store health depends on time as well as on events: look again when the earliest
	// heartbeat of a Ready Store would go stale, and at least every statusRefresh.
	next := statusRefresh
	if s := earliestStaleIn(obs); s > 0 && s < next {
		next = s
	}
	if len(obs.Rollout.Outdated) > 0 {
		next = rolloutRecheck
	}
	return ctrl.Result{RequeueAfter: next}, nil
}

// earliestStaleIn is when the first currently-Ready Store would go stale, or 0 when none is.
func earliestStaleIn(obs clusterObservation) time.Duration {
	var next time.Duration
	for i := range obs.Stores {
		h := evaluateStoreHealth(&obs.Stores[i], obs.Now, obs.HeartbeatTimeout)
		if h.Ready && (next == 0 || h.StaleIn < next) {
			next = h.StaleIn
		}
	}
	if next > 0 {
		next += time.Second
	}
	return next
}

// SetupWithManager checks the reconciler's dependencies and registers it with mgr. Call
// SetupIndexes first.
func (r *StorageClusterReconciler) SetupWithManager(mgr ctrl.Manager) error {
	switch {
	case r.Client == nil:
		return errors.New("storagecluster reconciler: Client is required")
	case r.Recorder == nil:
		return errors.New("storagecluster reconciler: Recorder is required")
	case r.Clock == nil:
		return errors.New("storagecluster reconciler: Clock is required")
	case r.HeartbeatTimeout <= 0:
		return fmt.Errorf("storagecluster reconciler: HeartbeatTimeout must be positive, got %s", r.HeartbeatTimeout)
	case r.CASecret.Name == "" || r.CASecret.Namespace == "":
		return errors.New("storagecluster reconciler: CASecret (namespace and name) is required")
	case r.APIReader == nil:
		return errors.New("storagecluster reconciler: APIReader is required")
	}
	if err := r.CSI.Validate(); err != nil {
		return fmt.Errorf("storagecluster reconciler: CSI: %w", err)
	}
	return ctrl.NewControllerManagedBy(mgr).
		For(&v1alpha1.StorageCluster{}).
		Owns(&appsv1.DaemonSet{}).
		Owns(&corev1.ServiceAccount{}).
		Watches(&v1alpha1.Store{}, handler.EnqueueRequestsFromMapFunc(clusterOfStore), builder.WithPredicates(storeChanged())).
		Watches(&v1alpha1.Volume{}, handler.EnqueueRequestsFromMapFunc(r.clusterOfVolume)).
		Named("storagecluster").
		Complete(r)
}

// clusterOfStore maps a Store to its StorageCluster.
func clusterOfStore(_ context.Context, o client.Object) []reconcile.Request {
	s, ok := o.(*v1alpha1.Store)
	if !ok {
		return nil
	}
	return []reconcile.Request{{NamespacedName: client.ObjectKey{Namespace: s.Spec.Cluster.Namespace, Name: s.Spec.Cluster.Name}}}
}

// clusterOfVolume maps a placed Volume to the StorageClusters of its copies' Stores, so a blocked deletion
// proceeds as soon as the last Volume goes.
func (r *StorageClusterReconciler) clusterOfVolume(ctx context.Context, o client.Object) []reconcile.Request {
	v, ok := o.(*v1alpha1.Volume)
	if !ok {
		return nil
	}
	var reqs []reconcile.Request
	for _, name := range v.PlacedStores() {
		store := &v1alpha1.Store{}
		if err := r.Get(ctx, client.ObjectKey{Name: name}, store); err != nil {
			continue
		}
		reqs = append(reqs, clusterOfStore(ctx, store)...)
	}
	return reqs
}
