package controllers

import (
	"context"
	"slices"
	"strings"
	"testing"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"
	"sigs.k8s.io/controller-runtime/pkg/client/interceptor"

	"github.com/cobaltstore/cobalt/api/v1alpha1"
)

func TestFinalizerHelpers(t *testing.T) {
	const fin = "storage.cobalt.io/test-protection"
	const other = "example.com/other"
	tests := []struct {
		name string
		// stored are the finalizers of the stored object; noStore: the object does not exist
		// (the caller holds a copy with the finalizer).
		stored     []string
		noStore    bool
		stale      bool // the caller's copy has an older resourceVersion
		remove     bool
		wantPatch  int
		wantErr    string
		wantFinals []string
	}{
		{name: "add when missing", stored: []string{other}, wantPatch: 1, wantFinals: []string{other, fin}},
		{name: "add when present writes nothing", stored: []string{fin}, wantPatch: 0, wantFinals: []string{fin}},
		{name: "add to a stale copy is refused", stored: nil, stale: true, wantPatch: 1, wantErr: "add finalizer " + fin + " to Volume ns/v"},
		{name: "remove when present", stored: []string{fin, other}, remove: true, wantPatch: 1, wantFinals: []string{other}},
		{name: "remove when absent writes nothing", stored: []string{other}, remove: true, wantPatch: 0, wantFinals: []string{other}},
		{name: "remove from an object already gone", noStore: true, remove: true, wantPatch: 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := context.Background()
			scheme := runtime.NewScheme()
			if err := v1alpha1.AddToScheme(scheme); err != nil {
				t.Fatal(err)
			}
			patches := 0
			b := fake.NewClientBuilder().WithScheme(scheme).WithInterceptorFuncs(interceptor.Funcs{
				Patch: func(ctx context.Context, c client.WithWatch, obj client.Object, p client.Patch, opts ...client.PatchOption) error {
					patches++
					return c.Patch(ctx, obj, p, opts...)
				},
			})
			vol := newVolume("ns", "v", "1Gi")
			vol.Finalizers = tt.stored
			if tt.noStore {
				vol.Finalizers = []string{fin}
				vol.ResourceVersion = "7"
			} else {
				b = b.WithObjects(vol.DeepCopy())
			}
			c := b.Build()
			if !tt.noStore {
				if err := c.Get(ctx, client.ObjectKeyFromObject(vol), vol); err != nil {
					t.Fatal(err)
				}
			}
			if tt.stale {
				cur := vol.DeepCopy()
				cur.Labels = map[string]string{"touched": "yes"}
				if err := c.Update(ctx, cur); err != nil {
					t.Fatal(err)
				}
			}
			rv := vol.ResourceVersion

			var err error
			if tt.remove {
				err = removeFinalizer(ctx, c, vol, fin)
			} else {
				err = ensureFinalizer(ctx, c, vol, fin)
			}
			if patches != tt.wantPatch {
				t.Errorf("%d patches, want %d", patches, tt.wantPatch)
			}
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) || !apierrors.IsConflict(err) {
					t.Fatalf("error %v, want a conflict saying %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if tt.noStore {
				return
			}
			if !slices.Equal(vol.Finalizers, tt.wantFinals) {
				t.Errorf("caller's copy has finalizers %v, want %v", vol.Finalizers, tt.wantFinals)
			}
			stored := &v1alpha1.Volume{}
			if err := c.Get(ctx, client.ObjectKeyFromObject(vol), stored); err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(stored.Finalizers, tt.wantFinals) {
				t.Errorf("stored finalizers %v, want %v", stored.Finalizers, tt.wantFinals)
			}
			if stored.ResourceVersion != vol.ResourceVersion {
				t.Errorf("caller's resourceVersion %s, stored %s: the caller must carry the new one", vol.ResourceVersion, stored.ResourceVersion)
			}
			if (tt.wantPatch == 0) != (rv == vol.ResourceVersion) {
				t.Errorf("resourceVersion went from %s to %s with %d patches", rv, vol.ResourceVersion, patches)
			}
		})
	}
}

// TestEnsureFinalizerKeepsStatus checks that adding the finalizer leaves what the caller holds
// in status alone, though the server's copy differs.
func TestEnsureFinalizerKeepsStatus(t *testing.T) {
	ctx := context.Background()
	scheme := runtime.NewScheme()
	if err := v1alpha1.AddToScheme(scheme); err != nil {
		t.Fatal(err)
	}
	stored := newVolume("ns", "v", "1Gi")
	stored.Status.Conditions = []metav1.Condition{{Type: v1alpha1.ConditionReady, Status: metav1.ConditionTrue, Reason: "Stored"}}
	c := fake.NewClientBuilder().WithScheme(scheme).WithObjects(stored).WithStatusSubresource(stored).Build()
	vol := &v1alpha1.Volume{}
	if err := c.Get(ctx, client.ObjectKeyFromObject(stored), vol); err != nil {
		t.Fatal(err)
	}
	vol.Status.Conditions[0].Reason = "Computed"
	if err := ensureFinalizer(ctx, c, vol, VolumeFinalizer); err != nil {
		t.Fatal(err)
	}
	if got := vol.Status.Conditions[0].Reason; got != "Computed" {
		t.Fatalf("status reason %q after ensureFinalizer, want the caller's %q", got, "Computed")
	}
}
