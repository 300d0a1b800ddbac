package controllers

import (
	"context"
	"fmt"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"

	"github.com/cobaltstore/cobalt/api/v1alpha1"
)

func (r *StorageClusterReconciler) ensureFinalizer(ctx context.Context, cluster *v1alpha1.StorageCluster) error {
	if controllerutil.ContainsFinalizer(cluster, StorageClusterFinalizer) {
		return nil
	}
	cp := cluster.DeepCopy()
	controllerutil.AddFinalizer(cp, StorageClusterFinalizer)
	if err := r.Patch(ctx, cp, client.MergeFromWithOptions(cluster, client.MergeFromWithOptimisticLock{})); err != nil {
		return fmt.Errorf("add finalizer to storage cluster %s: %w", client.ObjectKeyFromObject(cluster), err)
	}
	cluster.ObjectMeta = cp.ObjectMeta
	return nil
}

func (r *StorageClusterReconciler) reconcileServiceAccount(ctx context.Context, cluster *v1alpha1.StorageCluster, _ *clusterObservation) error {
	if err := r.Apply(ctx, desiredServiceAccount(cluster), fieldOwner, client.ForceOwnership); err != nil {
		return fmt.Errorf("apply node daemon service account: %w", err)
	}
	return nil
}

func (r *StorageClusterReconciler) reconcileRBAC(ctx context.Context, cluster *v1alpha1.StorageCluster, _ *clusterObservation) error {
	if err := r.Apply(ctx, desiredClusterRole(cluster), fieldOwner, client.ForceOwnership); err != nil {
		return fmt.Errorf("apply node daemon cluster role: %w", err)
	}
	if err := r.Apply(ctx, desiredClusterRoleBinding(cluster), fieldOwner, client.ForceOwnership); err != nil {
		return fmt.Errorf("apply node daemon cluster role binding: %w", err)
	}
	return nil
}

func (r *StorageClusterReconciler) reconcileDaemonSet(ctx context.Context, cluster *v1alpha1.StorageCluster, obs *clusterObservation) error {
	image, err := nodeDaemonImage(cluster, r.NodeDaemonImage)
	if err != nil {
		return err
	}
	if err := r.Apply(ctx, desiredDaemonSet(cluster, image), fieldOwner, client.ForceOwnership); err != nil {
		return fmt.Errorf("apply node daemon daemonset: %w", err)
	}
	ds := &appsv1.DaemonSet{}
	if err := r.Get(ctx, client.ObjectKey{Namespace: cluster.Namespace, Name: nodeDaemonName(cluster)}, ds); err != nil {
		if apierrors.IsNotFound(err) {
			return nil // applied but not in the cache yet; the DaemonSet watch brings it back
		}
		return fmt.Errorf("get node daemon daemonset: %w", err)
	}
	obs.DaemonSet = ds
	return nil
}

func (r *StorageClusterReconciler) observeStores(ctx context.Context, cluster *v1alpha1.StorageCluster, obs *clusterObservation) error {
	stores, err := r.clusterStores(ctx, cluster)
	if err != nil {
		return err
	}
	obs.Stores = stores
	return nil
}

func (r *StorageClusterReconciler) clusterStores(ctx context.Context, cluster *v1alpha1.StorageCluster) ([]v1alpha1.Store, error) {
	var list v1alpha1.StoreList
	if err := r.List(ctx, &list, client.MatchingFields{storeClusterIndex: clusterKey(cluster.Namespace, cluster.Name)}); err != nil {
		return nil, fmt.Errorf("list stores of storage cluster %s: %w", client.ObjectKeyFromObject(cluster), err)
	}
	return list.Items, nil
}

// reconcileDelete lets a StorageCluster go only when no Volume is placed on its Stores; then it
// deletes its Stores and its cluster-scoped RBAC (the DaemonSet and ServiceAccount go with their
// owner) and removes the finalizer.
func (r *StorageClusterReconciler) reconcileDelete(ctx context.Context, cluster *v1alpha1.StorageCluster) (ctrl.Result, error) {
	if !controllerutil.ContainsFinalizer(cluster, StorageClusterFinalizer) {
		return ctrl.Result{}, nil
	}
	obs := clusterObservation{Now: r.Clock.Now(), HeartbeatTimeout: r.HeartbeatTimeout, Deleting: true}
	stores, err := r.clusterStores(ctx, cluster)
	if err != nil {
		return ctrl.Result{}, err
	}
	obs.Stores = stores
	for _, s := range stores {
		var vols v1alpha1.VolumeList
		if err := r.List(ctx, &vols, client.MatchingFields{volumeStoreIndex: s.Name}); err != nil {
			return ctrl.Result{}, fmt.Errorf("list volumes on store %s: %w", s.Name, err)
		}
		for _, v := range vols.Items {
			obs.BlockingVolumes = append(obs.BlockingVolumes, v.Namespace+"/"+v.Name)
		}
	}
	computeClusterStatus(cluster, obs)
	if len(obs.BlockingVolumes) > 0 {
		r.Recorder.Eventf(cluster, nil, corev1.EventTypeWarning, v1alpha1.ReasonDeletionBlocked, "Delete",
			deletionBlockedMessage(obs.BlockingVolumes))
		return ctrl.Result{RequeueAfter: deletionRecheck}, nil
	}

	for i := range stores {
		if err := r.Delete(ctx, &stores[i]); client.IgnoreNotFound(err) != nil {
			return ctrl.Result{}, fmt.Errorf("delete store %s: %w", stores[i].Name, err)
		}
	}
	name := nodeDaemonClusterRoleName(cluster)
	for _, o := range []client.Object{&rbacv1.ClusterRoleBinding{}, &rbacv1.ClusterRole{}} {
		o.SetName(name)
		if err := r.Delete(ctx, o); client.IgnoreNotFound(err) != nil {
			return ctrl.Result{}, fmt.Errorf("delete node daemon %T %s: %w", o, name, err)
		}
	}
	r.Recorder.Eventf(cluster, nil, corev1.EventTypeNormal, v1alpha1.ReasonDeleting, "Delete",
		"no volumes left; removed %d stores and the node daemon's RBAC", len(stores))
	cp := cluster.DeepCopy()
	controllerutil.RemoveFinalizer(cp, StorageClusterFinalizer)
	if err := r.Patch(ctx, cp, client.MergeFromWithOptions(cluster, client.MergeFromWithOptimisticLock{})); err != nil && !apierrors.IsNotFound(err) {
		return ctrl.Result{}, fmt.Errorf("remove finalizer of storage cluster %s: %w", client.ObjectKeyFromObject(cluster), err)
	}
	return ctrl.Result{}, nil
}
