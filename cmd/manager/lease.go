package main

import (
	"context"
	"fmt"

	coordinationv1 "k8s.io/api/coordination/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// ensureOwnedLease makes sure the leader election Lease key exists and is owned by the
// ServiceAccount owner (ownByServiceAccount), before the manager starts electing: the operator's
// Lease then goes with its installation instead of staying behind after helm uninstall. It is
// done at start, not once elected, so the elector never finds its Lease changed under it; a Lease
// it creates is empty, which the elector acquires as it would a fresh one. With no owner it does
// nothing and leaves creating the Lease to the elector.
//
// Deleting the Lease as the manager stops would not do: on helm uninstall the operator's RBAC
// and ServiceAccount go at the same moment as its Deployment, so it may no longer be allowed to.
func ensureOwnedLease(ctx context.Context, c client.Client, key, owner types.NamespacedName) (bool, error) {
	if owner.Name == "" || owner.Namespace != key.Namespace {
		return false, nil
	}
	lease := &coordinationv1.Lease{ObjectMeta: metav1.ObjectMeta{Namespace: key.Namespace, Name: key.Name}}
	if err := c.Create(ctx, lease); err != nil && !apierrors.IsAlreadyExists(err) {
		return false, fmt.Errorf("create leader election lease %s: %w", key, err)
	}
	return ownByServiceAccount(ctx, c, &coordinationv1.Lease{ObjectMeta: metav1.ObjectMeta{Namespace: key.Namespace, Name: key.Name}}, owner)
}
