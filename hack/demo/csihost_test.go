package main

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"golang.org/x/sys/unix"
)

// TestCleanupCSIHostUndoesWhatTheNodePluginLeft: a staging mount with a Pod's bind mount on it
// under the kubelet directory, and a loop device on a file under the node state directory, as a
// node daemon killed with volumes published leaves them. It needs root (CI runs as root).
func TestCleanupCSIHostUndoesWhatTheNodePluginLeft(t *testing.T) {
	if ok, why := canUseLoopDevices(); !ok {
		t.Skipf("needs root and loop devices: %s", why)
	}
	base := t.TempDir()
	kubelet, nodeState := filepath.Join(base, "kubelet"), filepath.Join(base, "node")
	k := kubeletPaths{root: kubelet}
	staging, target := k.stagingPath("csi.cobalt.io", "pvc-1"), k.targetPath("uid-1", "pvc-1")
	for _, d := range []string{staging, target, nodeState} {
		if err := os.MkdirAll(d, 0o750); err != nil {
			t.Fatal(err)
		}
	}
	if err := unix.Mount("tmpfs", staging, "tmpfs", 0, "size=1m"); err != nil {
		t.Fatalf("mount tmpfs: %v", err)
	}
	t.Cleanup(func() { _ = unix.Unmount(target, unix.MNT_DETACH); _ = unix.Unmount(staging, unix.MNT_DETACH) })
	if err := os.WriteFile(filepath.Join(staging, "data"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := unix.Mount(staging, target, "", unix.MS_BIND, ""); err != nil {
		t.Fatalf("bind mount: %v", err)
	}
	backing := filepath.Join(nodeState, "csi", "fuse", "pvc-1")
	if err := os.MkdirAll(filepath.Dir(backing), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := createSparseFile(backing, 16<<20); err != nil {
		t.Fatal(err)
	}
	dev, err := attachLoop(t.Context(), backing)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = detachLoop(t.Context(), LoopDevice{Device: dev, BackingFile: backing}) })

	done, err := cleanupCSIHost(t.Context(), kubelet, nodeState)
	if err != nil {
		t.Fatalf("cleanupCSIHost: %v (did %v)", err, done)
	}
	for _, want := range []string{"unmounted " + target, "unmounted " + staging, "detached " + dev + " (" + backing + ")"} {
		if !slices.Contains(done, want) {
			t.Errorf("cleanupCSIHost did %q, want %q among them", done, want)
		}
	}
	if left, err := mountsUnder(kubelet, nodeState); err != nil || len(left) > 0 {
		t.Errorf("still mounted: %v (%v)", left, err)
	}
	if got := loopBackingFile(t.Context(), dev); got == backing {
		t.Errorf("%s is still attached to %s", dev, backing)
	}
	if _, err := os.Stat(kubelet); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("%s still exists (%v)", kubelet, err)
	}
	// Nothing left: a second run has nothing to do.
	if done, err := cleanupCSIHost(t.Context(), kubelet, nodeState); err != nil || len(done) > 0 {
		t.Errorf("second cleanupCSIHost: did %v, %v", done, err)
	}
}
