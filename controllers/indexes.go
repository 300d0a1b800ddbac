package controllers

import (
	"context"
	"fmt"

	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	storagev1alpha1 "github.com/cobaltstore/cobalt/api/v1alpha1"
)

// Field indexes the reconcilers list children by.
const (
	// volumeStoreIndex indexes Volumes by every Store holding a copy (spec.storeName and
	// spec.replicaStoreNames); Volumes with copies not placed yet also by unplacedKey.
	volumeStoreIndex = "spec.storeName"
	// unplacedKey is the volumeStoreIndex value of Volumes not placed yet. It cannot be a Store
	// name, as names have no colon.
	unplacedKey = ":unplaced"
	// volumeFormerStoreIndex indexes Volumes by every Store that holds a copy no longer in spec:
	// one moving away (listed in status.replicas) or a retired one still to be deleted there
	// (status.retiredReplicas), so that such a Store's return wakes the Volume up.
	volumeFormerStoreIndex = "status.formerStores"
	// storeClusterIndex indexes Stores by "namespace/name" of their StorageCluster.
	storeClusterIndex = "spec.cluster"
	// volumeSourceIndex indexes Volumes made from a source by sourceKey of that source.
	volumeSourceIndex = "spec.source"
	// snapshotVolumeIndex indexes Snapshots by "namespace/name" of the Volume they are of.
	snapshotVolumeIndex = "spec.volumeName"
	// snapshotStoreIndex indexes Snapshots by status.placement.store, the Store that holds them;
	// Snapshots not taken yet are not indexed.
	snapshotStoreIndex = "status.placement.store"
)

func clusterKey(namespace, name string) string { return namespace + "/" + name }

// Kinds of a volume source in sourceKey.
const (
	sourceKindSnapshot = "snapshot"
	sourceKindVolume   = "volume"
)

// sourceKey is the volumeSourceIndex value of a source of kind sourceKindSnapshot or
// sourceKindVolume named namespace/name.
func sourceKey(kind, namespace, name string) string { return kind + ":" + namespace + "/" + name }

// SetupIndexes registers the field indexes the reconcilers rely on. Call it once per manager,
// before setting up the reconcilers.
func SetupIndexes(ctx context.Context, mgr ctrl.Manager) error {
	idx := mgr.GetFieldIndexer()
	if err := idx.IndexField(ctx, &storagev1alpha1.Volume{}, volumeStoreIndex, func(o client.Object) []string {
		v, ok := o.(*storagev1alpha1.Volume)
		if !ok {
			return nil
		}
		keys := v.PlacedStores()
		if !v.FullyPlaced() {
			keys = append(keys, unplacedKey)
		}
		return keys
	}); err != nil {
		return fmt.Errorf("index Volumes by %s: %w", volumeStoreIndex, err)
	}
	if err := idx.IndexField(ctx, &storagev1alpha1.Volume{}, volumeFormerStoreIndex, func(o client.Object) []string {
		v, ok := o.(*storagev1alpha1.Volume)
		if !ok {
			return nil
		}
		return formerStores(v)
	}); err != nil {
		return fmt.Errorf("index Volumes by %s: %w", volumeFormerStoreIndex, err)
	}
	if err := idx.IndexField(ctx, &storagev1alpha1.Store{}, storeClusterIndex, func(o client.Object) []string {
		s, ok := o.(*storagev1alpha1.Store)
		if !ok {
			return nil
		}
		return []string{clusterKey(s.Spec.Cluster.Namespace, s.Spec.Cluster.Name)}
	}); err != nil {
		return fmt.Errorf("index Stores by %s: %w", storeClusterIndex, err)
	}
	if err := idx.IndexField(ctx, &storagev1alpha1.Volume{}, volumeSourceIndex, func(o client.Object) []string {
		v, ok := o.(*storagev1alpha1.Volume)
		if !ok || v.Spec.Source == nil {
			return nil
		}
		if v.Spec.Source.SnapshotName != "" {
			return []string{sourceKey(sourceKindSnapshot, v.Namespace, v.Spec.Source.SnapshotName)}
		}
		return []string{sourceKey(sourceKindVolume, v.Namespace, v.Spec.Source.VolumeName)}
	}); err != nil {
		return fmt.Errorf("index Volumes by %s: %w", volumeSourceIndex, err)
	}
	if err := idx.IndexField(ctx, &storagev1alpha1.Snapshot{}, snapshotVolumeIndex, func(o client.Object) []string {
		s, ok := o.(*storagev1alpha1.Snapshot)
		if !ok {
			return nil
		}
		return []string{s.Namespace + "/" + s.Spec.VolumeName}
	}); err != nil {
		return fmt.Errorf("index Snapshots by %s: %w", snapshotVolumeIndex, err)
	}
	if err := idx.IndexField(ctx, &storagev1alpha1.Snapshot{}, snapshotStoreIndex, func(o client.Object) []string {
		s, ok := o.(*storagev1alpha1.Snapshot)
		if !ok || s.Status.Placement == nil {
			return nil
		}
		return []string{s.Status.Placement.Store}
	}); err != nil {
		return fmt.Errorf("index Snapshots by %s: %w", snapshotStoreIndex, err)
	}
	return nil
}
