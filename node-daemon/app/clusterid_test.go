package app

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/cobaltstore/cobalt/storage-engine/blockdev"
)

// TestClaimLabel: which labels mount as they are, which are adopted (rewritten to name the
// cluster first) and which are refused as another cluster's.
func TestClaimLabel(t *testing.T) {
	this, other := [16]byte{0xc1, 15: 1}, [16]byte{0xc2, 15: 2}
	base := blockdev.Label{UUID: [16]byte{7}, DeviceSize: 64 << 20, MinAllocSize: 4096, BlockSize: 4096, Created: time.Unix(1, 0)}
	with := func(edit func(*blockdev.Label)) blockdev.Label {
		l := base
		edit(&l)
		return l
	}
	onDevice := func(l *blockdev.Label) { l.MetaOffset, l.MetaLength = 1<<20, 4<<20 }
	cases := []struct {
		name      string
		label     blockdev.Label
		adopt     bool
		wantAdopt bool
		wantErr   string
	}{
		{"this cluster", with(func(l *blockdev.Label) { onDevice(l); l.ClusterID = this }), false, false, ""},
		{"this cluster, separate metadata device", with(func(l *blockdev.Label) { l.MetaOnSeparateDevice, l.ClusterID = true, this }), false, false, ""},
		{"other cluster", with(func(l *blockdev.Label) { onDevice(l); l.ClusterID = other }), true, false, "names cluster " + blockdev.FormatUUID(other)},
		{"version 2, adopted", with(onDevice), true, true, ""},
		{"version 2, not to be adopted", with(onDevice), false, false, "was not to be adopted"},
		{"version 1", base, false, false, ""},
		{"version 4 without a cluster", with(func(l *blockdev.Label) { l.MetaOnSeparateDevice = true }), true, false, "such a store is not adopted"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			adopted, err := ClaimLabel(c.label, OpenRequest{DevicePath: "/dev/x", ClusterID: this, Adopt: c.adopt})
			if c.wantErr != "" {
				if !errors.Is(err, ErrOtherCluster) || !strings.Contains(err.Error(), c.wantErr) {
					t.Fatalf("ClaimLabel: %v, want ErrOtherCluster saying %q", err, c.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if (adopted != nil) != c.wantAdopt || (adopted != nil && adopted.ClusterID != this) {
				t.Fatalf("adopted label %+v, want adoption %v into %s", adopted, c.wantAdopt, blockdev.FormatUUID(this))
			}
		})
	}
}
