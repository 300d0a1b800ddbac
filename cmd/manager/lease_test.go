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

func TestDeleteReleasedLease(t *testing.T) {
	ctx := t.Context()
	nsObj := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{GenerateName: "lease-"}}
	if err := testClient.Create(ctx, nsObj); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		holder  *string
		deleted bool
	}{
		{"held by a replica: kept", ptr.To("manager-7d9f_1234"), false},
		{"released (empty holder): deleted", ptr.To(""), true},
		{"no holder field: deleted", nil, true},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			key := types.NamespacedName{Namespace: nsObj.Name, Name: "lease-" + string(rune('a'+i))}
			lease := &coordinationv1.Lease{ObjectMeta: metav1.ObjectMeta{Namespace: key.Namespace, Name: key.Name},
				Spec: coordinationv1.LeaseSpec{HolderIdentity: tt.holder}}
			if err := testClient.Create(ctx, lease); err != nil {
				t.Fatal(err)
			}
			deleted, err := deleteReleasedLease(ctx, testClient, key)
			if err != nil || deleted != tt.deleted {
				t.Fatalf("deleteReleasedLease = %v, %v; want %v, nil", deleted, err, tt.deleted)
			}
			err = testClient.Get(ctx, key, &coordinationv1.Lease{})
			if gone := apierrors.IsNotFound(err); gone != tt.deleted {
				t.Fatalf("after deleteReleasedLease: Get = %v; want gone=%v", err, tt.deleted)
			}
		})
	}
	t.Run("missing: nothing to do", func(t *testing.T) {
		deleted, err := deleteReleasedLease(ctx, testClient, types.NamespacedName{Namespace: nsObj.Name, Name: "none"})
		if err != nil || deleted {
			t.Fatalf("deleteReleasedLease = %v, %v; want false, nil", deleted, err)
		}
	})
}
