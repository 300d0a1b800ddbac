package app

import (
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	storagev1alpha1 "github.com/cobaltstore/cobalt/api/v1alpha1"
	"github.com/cobaltstore/cobalt/node-daemon/metrics"
)

// TestApplyStatusReportsMetadata: the Store's status says where its metadata is, and says nothing
// once the device is not used.
func TestApplyStatusReportsMetadata(t *testing.T) {
	now := metav1.Now()
	for _, tt := range []struct {
		name string
		snap *metrics.StoreSnapshot
		want *storagev1alpha1.StoreMetadata
	}{
		{"on the device", &metrics.StoreSnapshot{UUID: "u", MetadataOnDevice: true, MetadataLocation: "device region [65536, +67108864)"},
			&storagev1alpha1.StoreMetadata{Placement: storagev1alpha1.MetadataOnDevice, Location: "device region [65536, +67108864)"}},
		{"on a separate metadata device", &metrics.StoreSnapshot{UUID: "u", MetadataOnDevice: true, MetadataDevice: "/dev/nvme0n1",
			MetadataLocation: "metadata device region [65536, +1073676288) on /dev/nvme0n1"},
			&storagev1alpha1.StoreMetadata{Placement: storagev1alpha1.MetadataOnSeparateDevice, Location: "metadata device region [65536, +1073676288) on /dev/nvme0n1"}},
		{"in the state directory", &metrics.StoreSnapshot{UUID: "u", MetadataLocation: "directory /var/lib/cobalt/stores/u/db"},
			&storagev1alpha1.StoreMetadata{Placement: storagev1alpha1.MetadataInStateDirectory, Location: "directory /var/lib/cobalt/stores/u/db"}},
		{"device not used", nil, nil},
	} {
		t.Run(tt.name, func(t *testing.T) {
			st := storagev1alpha1.Store{Status: storagev1alpha1.StoreStatus{Metadata: &storagev1alpha1.StoreMetadata{Placement: "stale"}}}
			applyStatus(&st, "not used", tt.snap, now)
			got := st.Status.Metadata
			if (got == nil) != (tt.want == nil) || got != nil && *got != *tt.want {
				t.Fatalf("status metadata = %+v, want %+v", got, tt.want)
			}
		})
	}
}
