package controllers

import (
	"context"
	"fmt"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"

	"github.com/cobaltstore/cobalt/api/v1alpha1"
)

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

// reconcileCA gives the node daemon the node API's CA: a copy of the operator's CA Secret in
// the cluster's namespace, and a Role that lets the daemon read just that Secret (and its own
// StorageCluster, whose devices and engine settings it reads at start). It records the
// CA certificate's hash in obs, so that a new CA (the operator made one after its old one was
// deleted) rolls the node daemons, which issue their serving certificates from it at start.
func (r *StorageClusterReconciler) reconcileCA(ctx context.Context, cluster *v1alpha1.StorageCluster, obs *clusterObservation) error {
	if err := r.Apply(ctx, desiredCARole(cluster), fieldOwner, client.ForceOwnership); err != nil {
		return fmt.Errorf("apply node daemon CA role: %w", err)
	}
	if err := r.Apply(ctx, desiredCARoleBinding(cluster), fieldOwner, client.ForceOwnership); err != nil {
		return fmt.Errorf("apply node daemon CA role binding: %w", err)
	}
	src := &corev1.Secret{}
	if err := r.APIReader.Get(ctx, r.CASecret, src); err != nil {
		return fmt.Errorf("read the operator's CA secret %s: %w", r.CASecret, err)
	}
	data := map[string][]byte{}
	for _, k := range []string{"ca.crt", "ca.key"} {
		if len(src.Data[k]) == 0 {
			return fmt.Errorf("the operator's CA secret %s has no %s", r.CASecret, k)
		}
		data[k] = src.Data[k]
	}
	obs.CAHash = caHash(data["ca.crt"])
	target := client.ObjectKey{Namespace: cluster.Namespace, Name: CASecretName}
	if r.CASecret == target {
		return nil
	}
	if err := r.Apply(ctx, desiredCASecret(cluster, data), fieldOwner, client.ForceOwnership); err != nil {
		return fmt.Errorf("apply CA secret %s: %w", target, err)
	}
	return nil
}

// deleteCASecretCopy removes the CA copy from the cluster's namespace when no other
// StorageCluster there needs it (and it is not the operator's own CA Secret).
func (r *StorageClusterReconciler) deleteCASecretCopy(ctx context.Context, cluster *v1alpha1.StorageCluster) error {
	target := client.ObjectKey{Namespace: cluster.Namespace, Name: CASecretName}
	if r.CASecret == target {
		return nil
	}
	var others v1alpha1.StorageClusterList
	if err := r.List(ctx, &others, client.InNamespace(cluster.Namespace)); err != nil {
		return fmt.Errorf("list storage clusters in %s: %w", cluster.Namespace, err)
	}
	for _, o := range others.Items {
		if o.UID != cluster.UID && o.DeletionTimestamp.IsZero() {
			return nil
		}
	}
	s := &corev1.Secret{}
	s.Namespace, s.Name = target.Namespace, target.Name
	if err := r.Delete(ctx, s); client.IgnoreNotFound(err) != nil {
		return fmt.Errorf("delete CA secret %s: %w", target, err)
	}
	return nil
}

func (r *StorageClusterReconciler) reconcileDaemonSet(ctx context.Context, cluster *v1alpha1.StorageCluster, obs *clusterObservation) error {
	image, err := nodeDaemonImage(cluster, r.NodeDaemonImage)
	if err != nil {
		return err
	}
	desired, err := desiredDaemonSet(cluster, image, obs.CAHash, r.CSI)
	if err != nil {
		return err
	}
	if err := r.Apply(ctx, desired, fieldOwner, client.ForceOwnership); err != nil {
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

	// The node daemons stop before their Stores go: a daemon still running would recreate a
	// Store deleted here on its next heartbeat, and that Store would outlive its cluster.
	running, err := r.stopNodeDaemons(ctx, cluster)
	if err != nil {
		return ctrl.Result{}, err
	}
	if running > 0 {
		obs.StoppingDaemons = running
		computeClusterStatus(cluster, obs)
		r.Recorder.Eventf(cluster, nil, corev1.EventTypeNormal, v1alpha1.ReasonDeleting, "Delete",
			"waiting for %d node daemon pod(s) to stop before removing the Stores", running)
		return ctrl.Result{RequeueAfter: daemonStopRecheck}, nil
	}

	for i := range stores {
		if err := r.Delete(ctx, &stores[i]); client.IgnoreNotFound(err) != nil {
			return ctrl.Result{}, fmt.Errorf("delete store %s: %w", stores[i].Name, err)
		}
	}
	if err := r.deleteCASecretCopy(ctx, cluster); err != nil {
		return ctrl.Result{}, err
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
	return ctrl.Result{}, removeFinalizer(ctx, r.Client, cluster, StorageClusterFinalizer)
}

// stopNodeDaemons deletes the cluster's node daemon DaemonSet and returns how many of its pods
// still exist. The pods are listed from the API server (metadata only), not from a cache of
// every Pod in the cluster.
func (r *StorageClusterReconciler) stopNodeDaemons(ctx context.Context, cluster *v1alpha1.StorageCluster) (int, error) {
	ds := &appsv1.DaemonSet{}
	ds.Namespace, ds.Name = cluster.Namespace, nodeDaemonName(cluster)
	if err := r.Delete(ctx, ds, client.PropagationPolicy(metav1.DeletePropagationBackground)); client.IgnoreNotFound(err) != nil {
		return 0, fmt.Errorf("delete node daemon DaemonSet %s: %w", client.ObjectKeyFromObject(ds), err)
	}
	pods := &metav1.PartialObjectMetadataList{}
	pods.SetGroupVersionKind(corev1.SchemeGroupVersion.WithKind("PodList"))
	if err := r.APIReader.List(ctx, pods, client.InNamespace(cluster.Namespace), client.MatchingLabels(nodeDaemonLabels(cluster))); err != nil {
		return 0, fmt.Errorf("list node daemon pods of storage cluster %s: %w", client.ObjectKeyFromObject(cluster), err)
	}
	return len(pods.Items), nil
}
