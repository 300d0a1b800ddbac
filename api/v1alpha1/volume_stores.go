package v1alpha1

// PlacedStores returns the Stores that hold (or are to hold) the Volume's copies: spec.storeName
// first, then spec.replicaStoreNames; empty while the Volume is not placed. Every consumer that
// needs "the Stores of this Volume" (placement accounting, deletion, Store and StorageCluster
// deletion blocking, the CSI controller's capacity) uses it, so a replica is never forgotten.
func (v *Volume) PlacedStores() []string {
	if v.Spec.StoreName == "" {
		return nil
	}
	return append([]string{v.Spec.StoreName}, v.Spec.ReplicaStoreNames...)
}

// FullyPlaced reports whether every copy the Volume asks for has a Store: storeName is set and,
// for replicas > 1, replicaStoreNames names the others.
func (v *Volume) FullyPlaced() bool {
	return v.Spec.StoreName != "" && len(v.Spec.ReplicaStoreNames) >= int(max(v.Spec.Replicas, 1))-1
}
