package main

import (
	"os"
	"path/filepath"
	"testing"
)

// TestLoopAttachDetach attaches a sparse file, checks that a detach naming another backing file
// leaves the device alone, and detaches it. It needs root and loop devices (CI runs as root).
func TestLoopAttachDetach(t *testing.T) {
	if ok, why := canUseLoopDevices(); !ok {
		t.Skipf("loop devices unavailable: %s", why)
	}
	backing := filepath.Join(t.TempDir(), "dev.img")
	if err := createSparseFile(backing, 64<<20); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(backing)
	if err != nil || fi.Size() != 64<<20 {
		t.Fatalf("sparse file: %v, size %d", err, fi.Size())
	}
	dev, err := attachLoop(t.Context(), backing)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = detachLoop(t.Context(), LoopDevice{Device: dev, BackingFile: backing}) })
	if got := loopBackingFile(t.Context(), dev); got != backing {
		t.Fatalf("backing file of %s = %q, want %q", dev, got, backing)
	}
	if err := detachLoop(t.Context(), LoopDevice{Device: dev, BackingFile: "/some/other/file"}); err != nil {
		t.Fatal(err)
	}
	if got := loopBackingFile(t.Context(), dev); got != backing {
		t.Fatalf("detach with another backing file detached %s", dev)
	}
	if err := detachLoop(t.Context(), LoopDevice{Device: dev, BackingFile: backing}); err != nil {
		t.Fatal(err)
	}
	if got := loopBackingFile(t.Context(), dev); got != "" {
		t.Fatalf("%s is still attached to %q", dev, got)
	}
}
