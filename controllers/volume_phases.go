package controllers

import (
	"context"
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"

	"github.com/cobaltstore/cobalt/api/v1alpha1"
)

// Phases return done=true when the reconcile should stop after them (waiting, or failed).

// reconcilePlacement picks a Store for an unplaced Volume and records it in spec.storeName.
func (r *VolumeReconciler) reconcilePlacement(ctx context.Context, vol *v1alpha1.Volume, obs *volumeObservation) (ctrl.Result, bool, error) {
	if vol.Spec.StoreName != "" {
		return ctrl.Result{}, false, nil
	}
	loads, err := r.storeLoads(ctx)
	if err != nil {
		return ctrl.Result{}, true, err
	}
	if obs.Source != nil {
		loads = pinToSource(loads, obs.Source)
	}
	decision, err := choosePlacement(vol, loads, obs.Now, r.HeartbeatTimeout)
	if err != nil {
		return ctrl.Result{}, true, err
	}
	if decision.Store == "" {
		if obs.Source != nil {
			decision.Message = sourcePlacementMessage(obs.Source, loads, decision.Message)
		}
		return r.unschedulable(vol, obs, decision.Message), true, nil
	}

	cp := vol.DeepCopy()
	cp.Spec.StoreName = decision.Store
	if err := r.Patch(ctx, cp, client.MergeFromWithOptions(vol, client.MergeFromWithOptimisticLock{})); err != nil {
		return ctrl.Result{}, true, fmt.Errorf("record placement of volume %s on store %s: %w", client.ObjectKeyFromObject(vol), decision.Store, err)
	}
	vol.ObjectMeta, vol.Spec = cp.ObjectMeta, cp.Spec
	r.assumed.assume(vol.UID, vol.Spec.Size.Value(), decision.Store)
	r.Recorder.Eventf(vol, nil, corev1.EventTypeNormal, "Placed", "Place", "placed on store %s", decision.Store)
	return ctrl.Result{}, false, nil
}

// backoff is the retry delay of a Volume whose Ready condition has been False since it last
// changed: about as long again as it has already been failing. It reads the status the reconcile
// started from: a Ready condition that turns False now has not been failing yet either way.
func backoff(vol *v1alpha1.Volume, now time.Time) time.Duration {
	failing := time.Duration(0)
	if c := meta.FindStatusCondition(vol.Status.Conditions, v1alpha1.ConditionReady); c != nil && c.Status == metav1.ConditionFalse {
		failing = now.Sub(c.LastTransitionTime.Time)
	}
	return retryBackoff(failing, minRetryDelay, maxRetryDelay)
}

// storeLoads gathers every Store with what is placed on it, its node's labels and whether its
// cluster is being deleted.
func (r *VolumeReconciler) storeLoads(ctx context.Context) ([]storeLoad, error) {
	var stores v1alpha1.StoreList
	if err := r.List(ctx, &stores); err != nil {
		return nil, fmt.Errorf("list stores: %w", err)
	}
	var clusters v1alpha1.StorageClusterList
	if err := r.List(ctx, &clusters); err != nil {
		return nil, fmt.Errorf("list storage clusters: %w", err)
	}
	deleting := map[string]bool{}
	for _, c := range clusters.Items {
		deleting[clusterKey(c.Namespace, c.Name)] = !c.DeletionTimestamp.IsZero()
	}
	loads := make([]storeLoad, 0, len(stores.Items))
	seen := map[types.UID]bool{}
	for i := range stores.Items {
		st := &stores.Items[i]
		l := storeLoad{Store: st}
		key := clusterKey(st.Spec.Cluster.Namespace, st.Spec.Cluster.Name)
		if d, ok := deleting[key]; !ok || d {
			// A Store whose cluster is gone or going takes no new Volumes.
			l.ClusterDeleting = true
		}
		var node corev1.Node
		switch err := r.Get(ctx, client.ObjectKey{Name: st.Spec.NodeName}, &node); {
		case err == nil:
			l.NodeFound, l.NodeLabels = true, labels.Set(node.Labels)
		case !apierrors.IsNotFound(err):
			return nil, fmt.Errorf("get node %s of store %s: %w", st.Spec.NodeName, st.Name, err)
		}
		var placed v1alpha1.VolumeList
		if err := r.List(ctx, &placed, client.MatchingFields{volumeStoreIndex: st.Name}); err != nil {
			return nil, fmt.Errorf("list volumes on store %s: %w", st.Name, err)
		}
		for _, v := range placed.Items {
			l.Volumes++
			l.Reserved += ReservedBytes(&v)
			seen[v.UID] = true
		}
		loads = append(loads, l)
	}
	r.assumed.addUnseen(loads, seen)
	return loads, nil
}

// ReservedBytes is what a placed Volume holds on its Store: the larger of its requested and its
// allocated size.
func ReservedBytes(v *v1alpha1.Volume) int64 {
	n := v.Spec.Size.Value()
	if v.Status.AllocatedSize != nil && v.Status.AllocatedSize.Value() > n {
		n = v.Status.AllocatedSize.Value()
	}
	return n
}

// observeStore fetches the Store a placed Volume lives on. When it is missing or not Ready the
// reconcile waits (the Store watch wakes it up), and the Volume's Ready condition says why.
func (r *VolumeReconciler) observeStore(ctx context.Context, vol *v1alpha1.Volume, obs *volumeObservation) (ctrl.Result, bool, error) {
	store := &v1alpha1.Store{}
	if err := r.Get(ctx, client.ObjectKey{Name: vol.Spec.StoreName}, store); err != nil {
		if !apierrors.IsNotFound(err) {
			return ctrl.Result{}, true, fmt.Errorf("get store %s of volume %s: %w", vol.Spec.StoreName, client.ObjectKeyFromObject(vol), err)
		}
		obs.StoreSeen = true
		return ctrl.Result{RequeueAfter: backoff(vol, obs.Now)}, true, nil
	}
	obs.StoreSeen, obs.Store = true, store
	obs.StoreHealth = evaluateStoreHealth(store, obs.Now, r.HeartbeatTimeout)
	if !obs.StoreHealth.Ready {
		return ctrl.Result{RequeueAfter: backoff(vol, obs.Now)}, true, nil
	}
	return ctrl.Result{}, false, nil
}

// reconcileProvisioning has the node create a placed Volume that it has not created yet, from
// its source when it has one.
func (r *VolumeReconciler) reconcileProvisioning(ctx context.Context, vol *v1alpha1.Volume, obs *volumeObservation) (ctrl.Result, bool, error) {
	if vol.Status.AllocatedSize != nil {
		return ctrl.Result{}, false, nil
	}
	store := obs.Store
	var source ContentSource
	if obs.Source != nil {
		source = obs.Source.Content
	}
	alloc, err := r.Nodes.CreateVolume(ctx, store, vol, source)
	if err != nil {
		msg := fmt.Sprintf("node %s could not create the volume on store %s: %v", store.Spec.NodeName, store.Name, err)
		reason := createFailure(obs, msg, err)
		r.Recorder.Eventf(vol, store, corev1.EventTypeWarning, reason, "Create", msg)
		return ctrl.Result{}, true, fmt.Errorf("create volume %s on store %s: %w", client.ObjectKeyFromObject(vol), store.Name, err)
	}
	obs.Created = resource.NewQuantity(alloc.AllocatedBytes, resource.BinarySI)
	r.Recorder.Eventf(vol, store, corev1.EventTypeNormal, v1alpha1.ReasonProvisioned, "Create",
		"created %s on store %s", obs.Created.String(), store.Name)
	return ctrl.Result{}, false, nil
}

// reconcileExpansion has the node grow a Volume whose requested size passed its allocation.
func (r *VolumeReconciler) reconcileExpansion(ctx context.Context, vol *v1alpha1.Volume, obs *volumeObservation) (ctrl.Result, bool, error) {
	want := vol.Spec.Size.Value()
	have := obs.allocated(vol)
	if have == nil || have.Value() >= want {
		return ctrl.Result{}, false, nil
	}
	store := obs.Store
	growth := want - have.Value()
	if free, err := r.freeBytesFor(ctx, store, vol, have.Value()); err != nil {
		return ctrl.Result{}, true, err
	} else if free < growth {
		obs.GrowthFailed = fmt.Sprintf("store %s has %s free, growing to %s needs %s more",
			store.Name, resource.NewQuantity(max(free, 0), resource.BinarySI).String(), vol.Spec.Size.String(),
			resource.NewQuantity(growth, resource.BinarySI).String())
		r.Recorder.Eventf(vol, store, corev1.EventTypeWarning, v1alpha1.ReasonExpansionFailed, "Expand", obs.GrowthFailed)
		return ctrl.Result{RequeueAfter: retryBackoff(resizingFor(vol, obs.Now), minRetryDelay, maxRetryDelay)}, true, nil
	}
	alloc, err := r.Nodes.ResizeVolume(ctx, store, vol)
	if err != nil {
		obs.GrowthFailed = fmt.Sprintf("node %s could not grow the volume to %s: %v", store.Spec.NodeName, vol.Spec.Size.String(), err)
		r.Recorder.Eventf(vol, store, corev1.EventTypeWarning, v1alpha1.ReasonExpansionFailed, "Expand", obs.GrowthFailed)
		return ctrl.Result{}, true, fmt.Errorf("resize volume %s on store %s: %w", client.ObjectKeyFromObject(vol), store.Name, err)
	}
	obs.Grown = resource.NewQuantity(alloc.AllocatedBytes, resource.BinarySI)
	r.Recorder.Eventf(vol, store, corev1.EventTypeNormal, v1alpha1.ReasonExpanded, "Expand", "expanded to %s", obs.Grown.String())
	return ctrl.Result{}, false, nil
}

// resizingFor is how long the Volume's Resizing condition has been True.
func resizingFor(vol *v1alpha1.Volume, now time.Time) time.Duration {
	if c := meta.FindStatusCondition(vol.Status.Conditions, v1alpha1.ConditionResizing); c != nil && c.Status == metav1.ConditionTrue {
		return now.Sub(c.LastTransitionTime.Time)
	}
	return 0
}

// freeBytesFor is the space store can still give vol: capacity minus what the node reports used
// or, if larger, what the other Volumes on it reserve plus vol's current allocation, allocated.
func (r *VolumeReconciler) freeBytesFor(ctx context.Context, store *v1alpha1.Store, vol *v1alpha1.Volume, allocated int64) (int64, error) {
	var placed v1alpha1.VolumeList
	if err := r.List(ctx, &placed, client.MatchingFields{volumeStoreIndex: store.Name}); err != nil {
		return 0, fmt.Errorf("list volumes on store %s: %w", store.Name, err)
	}
	l := storeLoad{Store: store}
	for _, v := range placed.Items {
		if v.UID == vol.UID {
			l.Reserved += allocated
			continue
		}
		l.Reserved += ReservedBytes(&v)
	}
	return l.freeBytes(), nil
}

// reconcileDelete frees the Volume's space on the Store of every copy (deleteCopies), then
// lets it go: the finalizer stays until every copy is gone.
func (r *VolumeReconciler) reconcileDelete(ctx context.Context, vol *v1alpha1.Volume, obs *volumeObservation) (ctrl.Result, error) {
	if !controllerutil.ContainsFinalizer(vol, VolumeFinalizer) {
		return ctrl.Result{}, nil
	}
	if err := r.deleteCopies(ctx, vol, obs); err != nil {
		return ctrl.Result{}, err
	}
	r.assumed.forget(vol.UID)
	r.inSyncSeen.forget(vol.UID)
	return ctrl.Result{}, removeFinalizer(ctx, r.Client, vol, VolumeFinalizer)
}

// unschedulable records that vol cannot be placed, and why: the Ready condition says so, and a
// Warning event does when the reason is new. The reconcile waits with backoff (the Store watches
// wake it up sooner).
func (r *VolumeReconciler) unschedulable(vol *v1alpha1.Volume, obs *volumeObservation, message string) ctrl.Result {
	obs.Unschedulable = message
	prev := meta.FindStatusCondition(vol.Status.Conditions, v1alpha1.ConditionReady)
	if prev == nil || prev.Reason != v1alpha1.ReasonUnschedulable || prev.Message != message {
		r.Recorder.Eventf(vol, nil, corev1.EventTypeWarning, v1alpha1.ReasonUnschedulable, "Place", message)
	}
	return ctrl.Result{RequeueAfter: backoff(vol, obs.Now)}
}
