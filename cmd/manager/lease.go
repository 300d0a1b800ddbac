package main

import (
	"context"
	"fmt"

	coordinationv1 "k8s.io/api/coordination/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// deleteReleasedLease deletes the leader election Lease key when nobody holds it, so that
// removing the operator (helm uninstall, kubectl delete -k) leaves no Lease behind. The manager
// releases the Lease as it stops (LeaderElectionReleaseOnCancel) and calls this afterwards. A
// Lease that another replica holds is left alone, and the delete is conditional on the version
// read, so a replica that acquires it meanwhile keeps it; a replica that finds it gone creates it
// again. It reports whether it deleted the Lease.
func deleteReleasedLease(ctx context.Context, c client.Client, key types.NamespacedName) (bool, error) {
	var lease coordinationv1.Lease
	if err := c.Get(ctx, key, &lease); err != nil {
		if apierrors.IsNotFound(err) {
			return false, nil
		}
		return false, fmt.Errorf("read leader election lease %s: %w", key, err)
	}
	if h := lease.Spec.HolderIdentity; h != nil && *h != "" {
		return false, nil
	}
	err := c.Delete(ctx, &lease, client.Preconditions{UID: &lease.UID, ResourceVersion: &lease.ResourceVersion})
	switch {
	case apierrors.IsNotFound(err), apierrors.IsConflict(err):
		return false, nil
	case err != nil:
		return false, fmt.Errorf("delete released leader election lease %s: %w", key, err)
	}
	return true, nil
}
