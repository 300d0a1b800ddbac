package main

import (
	"context"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/util/retry"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// helmReleaseAnnotation marks an object a Helm release manages (the chart rendered it).
const helmReleaseAnnotation = "meta.helm.sh/release-name"

// ownByServiceAccount makes the ServiceAccount owner an owner of obj (which names an existing
// object by namespace and name), so that removing the operator's installation (helm uninstall,
// kubectl delete -k), which deletes that ServiceAccount, garbage-collects what the operator
// created in its namespace for itself (its CA Secret, its leader election Lease) instead of
// leaving it behind. obj is read into.
//
// It does nothing when owner is empty (a manager run outside the cluster) or in another
// namespace than obj (owner references cannot cross namespaces), and leaves alone an object that
// Helm manages (e.g. a CA the user provided through the chart's values, which Helm deletes on
// uninstall itself). It is idempotent, and keeps any other owner obj already has: the garbage
// collector deletes it only once all of them are gone. It reports whether owner owns obj.
//
// It needs get on serviceaccounts, which the manager's ClusterRole grants for the StorageCluster
// reconciler (its RBAC markers in controllers/), and patch on obj's kind.
func ownByServiceAccount(ctx context.Context, c client.Client, obj client.Object, owner types.NamespacedName) (bool, error) {
	key := client.ObjectKeyFromObject(obj)
	if owner.Name == "" || owner.Namespace != key.Namespace {
		return false, nil
	}
	var sa corev1.ServiceAccount
	if err := c.Get(ctx, owner, &sa); err != nil {
		return false, fmt.Errorf("read the owner of %s, ServiceAccount %s: %w", key, owner, err)
	}
	owned := false
	// Manager replicas start together: each adds the same owner, and a conflict means another
	// replica (or the leader elector) changed the object first, so read it again.
	err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		if err := c.Get(ctx, key, obj); err != nil {
			return fmt.Errorf("read %s: %w", key, err)
		}
		if obj.GetAnnotations()[helmReleaseAnnotation] != "" {
			return nil
		}
		owned = true
		refs := obj.GetOwnerReferences()
		for _, ref := range refs {
			if ref.UID == sa.UID {
				return nil
			}
		}
		base := obj.DeepCopyObject().(client.Object)
		obj.SetOwnerReferences(append(refs, metav1.OwnerReference{
			APIVersion: "v1", Kind: "ServiceAccount", Name: sa.Name, UID: sa.UID,
		}))
		return c.Patch(ctx, obj, client.MergeFromWithOptions(base, client.MergeFromWithOptimisticLock{}))
	})
	if err != nil {
		return false, fmt.Errorf("make ServiceAccount %s an owner of %s: %w", owner, key, err)
	}
	return owned, nil
}
