package store

import (
	"context"
	"testing"

	"github.com/cobaltstore/cobalt/storage-engine/blockdev"
)

// TestMkfsRecordsCluster: Mkfs records MkfsOptions.ClusterID in the label (version 3), wherever
// the metadata is, and the store mounts; without one the label names no cluster, as before.
func TestMkfsRecordsCluster(t *testing.T) {
	cluster := [16]byte{0x0f, 0x3c, 0x2a, 0x9e, 15: 0x34}
	for _, c := range []struct {
		name        string
		cluster     [16]byte
		dir         bool
		wantVersion uint32
	}{
		{"cluster, metadata on the device", cluster, false, 3},
		{"cluster, metadata in a directory", cluster, true, 3},
		{"no cluster, metadata on the device", [16]byte{}, false, 2},
		{"no cluster, metadata in a directory", [16]byte{}, true, 1},
	} {
		t.Run(c.name, func(t *testing.T) {
			mem := blockdev.NewMem(testDevSize, 4096)
			dir := ""
			if c.dir {
				dir = t.TempDir()
			}
			if _, err := Mkfs(context.Background(), mem, dir, MkfsOptions{MetadataSize: 8 << 20, ClusterID: c.cluster}); err != nil {
				t.Fatal(err)
			}
			label, err := blockdev.ReadLabel(mem)
			if err != nil {
				t.Fatal(err)
			}
			if label.Version != c.wantVersion || label.ClusterID != c.cluster || label.MetaOnDevice() == c.dir {
				t.Fatalf("label %+v, want version %d naming cluster %x", label, c.wantVersion, c.cluster)
			}
			s, err := Open(context.Background(), mem.Reopen(), dir, Options{})
			if err != nil {
				t.Fatal(err)
			}
			if err := s.Close(); err != nil {
				t.Fatal(err)
			}
		})
	}
}
