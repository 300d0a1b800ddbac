package main

import (
	"testing"

	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"
)

func TestEnsureOwnedLease(t *testing.T) {
	ctx := t.Context()
	nsObj := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{GenerateName: "lease-"}}
	if err := testClient.Create(ctx, nsObj); err != nil {
		t.Fatal(err)
	}
	ns := nsObj.Name
	sa := &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "operator"}}
	if err := testClient.Create(ctx, sa); err != nil {
		t.Fatal(err)
	}
	owner := types.NamespacedName{Namespace: ns, Name: sa.Name}
	get := func(t *testing.T, key types.NamespacedName) *coordinationv1.Lease {
		t.Helper()
		var l coordinationv1.Lease
		if err := testClient.Get(ctx, key, &l); err != nil {
			t.Fatal(err)
		}
		return &l
	}
	ownedBySA := func(l *coordinationv1.Lease) bool {
		return len(l.OwnerReferences) == 1 && l.OwnerReferences[0].UID == sa.UID && l.OwnerReferences[0].Kind == "ServiceAccount"
	}

	t.Run("first start: an empty Lease owned by the ServiceAccount", func(t *testing.T) {
		key := types.NamespacedName{Namespace: ns, Name: "fresh"}
		if owned, err := ensureOwnedLease(ctx, testClient, key, owner); err != nil || !owned {
			t.Fatalf("ensureOwnedLease = %v, %v; want true, nil", owned, err)
		}
		l := get(t, key)
		if !ownedBySA(l) || l.Spec.HolderIdentity != nil {
			t.Fatalf("lease owners %v, holder %v; want the ServiceAccount and no holder", l.OwnerReferences, l.Spec.HolderIdentity)
		}
	})
	t.Run("a Lease a running replica holds gets the owner and keeps its holder", func(t *testing.T) {
		key := types.NamespacedName{Namespace: ns, Name: "held"}
		held := &coordinationv1.Lease{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: key.Name},
			Spec: coordinationv1.LeaseSpec{HolderIdentity: ptr.To("manager-a_1"), LeaseDurationSeconds: ptr.To[int32](15)}}
		if err := testClient.Create(ctx, held); err != nil {
			t.Fatal(err)
		}
		for range 2 {
			if _, err := ensureOwnedLease(ctx, testClient, key, owner); err != nil {
				t.Fatal(err)
			}
		}
		l := get(t, key)
		if !ownedBySA(l) || ptr.Deref(l.Spec.HolderIdentity, "") != "manager-a_1" || ptr.Deref(l.Spec.LeaseDurationSeconds, 0) != 15 {
			t.Fatalf("lease owners %v, spec %+v; want the ServiceAccount once and the holder's spec unchanged", l.OwnerReferences, l.Spec)
		}
	})
	t.Run("out of cluster: no Lease is made, the elector makes its own", func(t *testing.T) {
		key := types.NamespacedName{Namespace: ns, Name: "unowned"}
		if owned, err := ensureOwnedLease(ctx, testClient, key, types.NamespacedName{Namespace: ns}); err != nil || owned {
			t.Fatalf("ensureOwnedLease = %v, %v; want false, nil", owned, err)
		}
		if err := testClient.Get(ctx, key, &coordinationv1.Lease{}); !apierrors.IsNotFound(err) {
			t.Fatalf("Get = %v, want NotFound", err)
		}
	})
}
