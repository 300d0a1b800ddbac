package driver

import (
	"slices"
	"testing"
)

// TestSidecarLeaseNames: the names the sidecars give their Leases (csi-lib-utils turns every
// character but letters, digits and '-' of the name it is given into '-').
func TestSidecarLeaseNames(t *testing.T) {
	want := []string{"csi-cobalt-io", "external-attacher-leader-csi-cobalt-io", "external-resizer-csi-cobalt-io",
		"external-snapshotter-leader-csi-cobalt-io"}
	if got := SidecarLeaseNames(); !slices.Equal(got, want) {
		t.Fatalf("SidecarLeaseNames() = %v, want %v", got, want)
	}
}
