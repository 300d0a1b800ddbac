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

// ownCASecret makes the ServiceAccount owner an owner of the CA Secret key, so that removing the
// operator's installation (helm uninstall, kubectl delete -k) garbage-collects the CA the operator
// created for it instead of leaving it behind. The CA is not user data: a new operator makes a
// new one, and the node daemons issue their certificates from whatever CA their namespace holds.
//
// It does nothing when owner is empty (a manager run outside the cluster) or in another
// namespace than the Secret (owner references cannot cross namespaces), and leaves alone a Secret
// that Helm manages (a CA the user provided through the chart's values, which Helm deletes on
// uninstall itself). It is idempotent, and keeps any other owner the Secret already has: the
// garbage collector deletes it only once all of them are gone.
//
// It needs get on serviceaccounts and patch on secrets, which the manager's ClusterRole grants
// for the StorageCluster reconciler (its RBAC markers in controllers/).
func ownCASecret(ctx context.Context, c client.Client, key, owner types.NamespacedName) (bool, error) {
	if owner.Name == "" || owner.Namespace != key.Namespace {
		return false, nil
	}
	var sa corev1.ServiceAccount
	if err := c.Get(ctx, owner, &sa); err != nil {
		return false, fmt.Errorf("read the CA secret's owner, ServiceAccount %s: %w", owner, err)
	}
	owned := false
	// Manager replicas start together: each adds the same owner, and a conflict means another
	// replica changed the Secret first, so read it again.
	err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		var secret corev1.Secret
		if err := c.Get(ctx, key, &secret); err != nil {
			return fmt.Errorf("read CA secret %s: %w", key, err)
		}
		if secret.Annotations[helmReleaseAnnotation] != "" {
			return nil
		}
		owned = true
		for _, ref := range secret.OwnerReferences {
			if ref.UID == sa.UID {
				return nil
			}
		}
		base := secret.DeepCopy()
		secret.OwnerReferences = append(secret.OwnerReferences, metav1.OwnerReference{
			APIVersion: "v1", Kind: "ServiceAccount", Name: sa.Name, UID: sa.UID,
		})
		return c.Patch(ctx, &secret, client.MergeFromWithOptions(base, client.MergeFromWithOptimisticLock{}))
	})
	if err != nil {
		return false, fmt.Errorf("make ServiceAccount %s the owner of CA secret %s: %w", owner, key, err)
	}
	return owned, nil
}
