package main

import (
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/cobaltstore/cobalt/node-daemon/pki"
)

// TestOwnByServiceAccount, on CA Secrets as the operator creates them.
func TestOwnByServiceAccount(t *testing.T) {
	ctx := t.Context()
	nsObj := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{GenerateName: "ca-owner-"}}
	if err := testClient.Create(ctx, nsObj); err != nil {
		t.Fatal(err)
	}
	ns := nsObj.Name
	sa := &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "operator"}}
	other := &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "previous-operator"}}
	for _, a := range []*corev1.ServiceAccount{sa, other} {
		if err := testClient.Create(ctx, a); err != nil {
			t.Fatal(err)
		}
	}
	owner := types.NamespacedName{Namespace: ns, Name: sa.Name}
	// newCA creates a CA Secret as the operator does (pki.EnsureCASecret), then lets edit change it.
	newCA := func(t *testing.T, name string, edit func(*corev1.Secret)) types.NamespacedName {
		t.Helper()
		key := types.NamespacedName{Namespace: ns, Name: name}
		if _, err := pki.EnsureCASecret(ctx, testClient, key, time.Now()); err != nil {
			t.Fatal(err)
		}
		if edit != nil {
			var s corev1.Secret
			if err := testClient.Get(ctx, key, &s); err != nil {
				t.Fatal(err)
			}
			edit(&s)
			if err := testClient.Update(ctx, &s); err != nil {
				t.Fatal(err)
			}
		}
		return key
	}
	owners := func(t *testing.T, key types.NamespacedName) []string {
		t.Helper()
		var s corev1.Secret
		if err := testClient.Get(ctx, key, &s); err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, r := range s.OwnerReferences {
			out = append(out, r.Kind+"/"+r.Name+"/"+string(r.UID))
		}
		return out
	}
	// own makes o an owner of the Secret key.
	own := func(key, o types.NamespacedName) (bool, error) {
		return ownByServiceAccount(ctx, testClient, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: key.Namespace, Name: key.Name}}, o)
	}
	saRef, otherRef := "ServiceAccount/operator/"+string(sa.UID), "ServiceAccount/previous-operator/"+string(other.UID)

	t.Run("the operator's CA gets its ServiceAccount as owner, once", func(t *testing.T) {
		key := newCA(t, "created", nil)
		for range 2 {
			if owned, err := own(key, owner); err != nil || !owned {
				t.Fatalf("ownByServiceAccount = %v, %v; want true, nil", owned, err)
			}
		}
		if got := owners(t, key); len(got) != 1 || got[0] != saRef {
			t.Fatalf("owners %v, want [%s]", got, saRef)
		}
	})
	t.Run("replicas starting together add the owner once", func(t *testing.T) {
		key := newCA(t, "replicas", nil)
		errs := make(chan error, 4)
		for range cap(errs) {
			go func() {
				_, err := own(key, owner)
				errs <- err
			}()
		}
		for range cap(errs) {
			if err := <-errs; err != nil {
				t.Fatalf("ownByServiceAccount: %v", err)
			}
		}
		if got := owners(t, key); len(got) != 1 || got[0] != saRef {
			t.Fatalf("owners %v, want [%s]", got, saRef)
		}
	})
	t.Run("an owner the Secret already has is kept", func(t *testing.T) {
		key := newCA(t, "two-owners", func(s *corev1.Secret) {
			s.OwnerReferences = []metav1.OwnerReference{{APIVersion: "v1", Kind: "ServiceAccount", Name: other.Name, UID: other.UID}}
		})
		if _, err := own(key, owner); err != nil {
			t.Fatal(err)
		}
		if got := owners(t, key); len(got) != 2 || got[0] != otherRef || got[1] != saRef {
			t.Fatalf("owners %v, want [%s %s]", got, otherRef, saRef)
		}
	})
	t.Run("a CA the chart rendered is Helm's to delete", func(t *testing.T) {
		key := newCA(t, "from-helm", func(s *corev1.Secret) {
			s.Annotations = map[string]string{helmReleaseAnnotation: "cobalt"}
		})
		if owned, err := own(key, owner); err != nil || owned {
			t.Fatalf("ownByServiceAccount = %v, %v; want false, nil", owned, err)
		}
		if got := owners(t, key); len(got) != 0 {
			t.Fatalf("owners %v, want none", got)
		}
	})
	t.Run("no owner out of cluster, none across namespaces", func(t *testing.T) {
		key := newCA(t, "unowned", nil)
		for _, o := range []types.NamespacedName{{Namespace: ns}, {Namespace: "elsewhere", Name: "operator"}} {
			if owned, err := own(key, o); err != nil || owned {
				t.Fatalf("ownByServiceAccount(owner %v) = %v, %v; want false, nil", o, owned, err)
			}
		}
		if got := owners(t, key); len(got) != 0 {
			t.Fatalf("owners %v, want none", got)
		}
	})
	t.Run("a missing ServiceAccount is an error that names it", func(t *testing.T) {
		key := newCA(t, "orphan", nil)
		_, err := own(key, types.NamespacedName{Namespace: ns, Name: "gone"})
		if err == nil || !strings.Contains(err.Error(), "ServiceAccount "+ns+"/gone") {
			t.Fatalf("ownByServiceAccount = %v, want an error naming ServiceAccount %s/gone", err, ns)
		}
	})
}
