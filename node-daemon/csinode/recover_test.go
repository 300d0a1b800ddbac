package csinode_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/container-storage-interface/spec/lib/go/csi"
	"golang.org/x/sys/unix"
)

// TestRecoverAfterRestart simulates a node daemon that dies with a mount volume and a block
// volume staged and published: its devices start failing (EIO), its frontend is torn down
// without any unstage, and a new daemon — a fresh frontend and Server on the same state
// directory — runs Recover. The staging mount and the publish targets must then hold new
// devices with every fsync'd write.
func TestRecoverAfterRestart(t *testing.T) {
	requireHost(t)
	requireTools(t, "blkid", "mkfs.ext4")
	n := newNode(t)
	ctx := t.Context()
	fsCtx, blkCtx := n.createVolume(128*MiB), n.createVolume(64*MiB)
	fsUID, blkUID := fsCtx["storage.cobalt.io/volume-uid"], blkCtx["storage.cobalt.io/volume-uid"]
	staging, target := filepath.Join(n.dir, "staging-fs"), filepath.Join(n.dir, "pods", "a", "mount")
	blkStaging, blkTarget := filepath.Join(n.dir, "staging-blk"), filepath.Join(n.dir, "pods", "a", "dev")

	must[*csi.NodeStageVolumeResponse](t, "stage fs")(n.server.NodeStageVolume(ctx, &csi.NodeStageVolumeRequest{VolumeId: "fs", StagingTargetPath: staging, VolumeCapability: mountCap("", writer), VolumeContext: fsCtx}))
	must[*csi.NodePublishVolumeResponse](t, "publish fs")(n.server.NodePublishVolume(ctx, &csi.NodePublishVolumeRequest{VolumeId: "fs", StagingTargetPath: staging, TargetPath: target, VolumeCapability: mountCap("", writer)}))
	must[*csi.NodeStageVolumeResponse](t, "stage block")(n.server.NodeStageVolume(ctx, &csi.NodeStageVolumeRequest{VolumeId: "blk", StagingTargetPath: blkStaging, VolumeCapability: blockCap(writer), VolumeContext: blkCtx}))
	must[*csi.NodePublishVolumeResponse](t, "publish block")(n.server.NodePublishVolume(ctx, &csi.NodePublishVolumeRequest{VolumeId: "blk", StagingTargetPath: blkStaging, TargetPath: blkTarget, VolumeCapability: blockCap(writer)}))

	data := make([]byte, 2*MiB)
	rand.Read(data)
	writeSynced(t, filepath.Join(target, "before"), data)
	block := alignedBuf(64 * 1024)
	rand.Read(block)
	writeDirect(t, blkTarget, block, 4*MiB)
	oldFsDev, _ := n.frontend.Device(fsUID)

	// The daemon dies: its devices fail from now on, and its frontend goes away without unstage.
	n.volumes.kill()
	f, err := os.Create(filepath.Join(target, "after-death"))
	if err == nil {
		_, _ = f.Write([]byte("lost"))
		if err = f.Sync(); err == nil {
			t.Error("fsync on the mount of a dead device succeeded")
		}
		f.Close()
	}
	closeCtx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	_ = n.frontend.Close(closeCtx) // busy: the devices are mounted

	n.start()
	if failed := n.server.Recover(ctx); len(failed) != 0 {
		t.Fatalf("Recover failed for %+v", failed)
	}
	newFsDev, ok := n.frontend.Device(fsUID)
	if !ok || newFsDev.Path == oldFsDev.Path {
		t.Fatalf("fs volume after Recover: device %+v (exposed %v), old %s", newFsDev, ok, oldFsDev.Path)
	}
	for _, dir := range []string{staging, target} {
		if got, err := os.ReadFile(filepath.Join(dir, "before")); err != nil || !bytes.Equal(got, data) {
			t.Errorf("%s after Recover: %d bytes, %v", dir, len(got), err)
		}
	}
	writeSynced(t, filepath.Join(target, "after-recover"), []byte("served again"))
	for _, p := range []struct{ id, path string }{{"fs", target}, {"fs", staging}, {"blk", blkTarget}} {
		h := must[*csi.NodeGetVolumeHealthResponse](t, "health")(n.server.NodeGetVolumeHealth(ctx, &csi.NodeGetVolumeHealthRequest{VolumeId: p.id, VolumePublishPath: publishPath(p.path, staging)}))
		if st := h.GetVolumeHealth().GetHealthStatuses(); len(st) != 0 {
			t.Errorf("health of %s at %s after Recover: %v", p.id, p.path, st)
		}
	}
	got := readDirect(t, blkTarget, len(block), 4*MiB)
	if !bytes.Equal(got, block) {
		t.Error("block target after Recover does not hold the synced write")
	}
	if _, ok := n.frontend.Device(blkUID); !ok {
		t.Error("block volume not exposed after Recover")
	}

	// A second Recover (another restart before any call) changes nothing.
	if failed := n.server.Recover(ctx); len(failed) != 0 {
		t.Fatalf("second Recover: %+v", failed)
	}
	must[*csi.NodeUnpublishVolumeResponse](t, "unpublish fs")(n.server.NodeUnpublishVolume(ctx, &csi.NodeUnpublishVolumeRequest{VolumeId: "fs", TargetPath: target}))
	must[*csi.NodeUnstageVolumeResponse](t, "unstage fs")(n.server.NodeUnstageVolume(ctx, &csi.NodeUnstageVolumeRequest{VolumeId: "fs", StagingTargetPath: staging}))
	must[*csi.NodeUnpublishVolumeResponse](t, "unpublish block")(n.server.NodeUnpublishVolume(ctx, &csi.NodeUnpublishVolumeRequest{VolumeId: "blk", TargetPath: blkTarget}))
	must[*csi.NodeUnstageVolumeResponse](t, "unstage block")(n.server.NodeUnstageVolume(ctx, &csi.NodeUnstageVolumeRequest{VolumeId: "blk", StagingTargetPath: blkStaging}))
	if m := mountsUnder(t, n.dir); len(m) != 0 {
		t.Errorf("mounts left: %v", m)
	}
}

// publishPath is the publish path argument of NodeGetVolumeHealth: empty for the staging path.
func publishPath(path, staging string) string {
	if path == staging {
		return ""
	}
	return path
}

func writeDirect(t *testing.T, path string, buf []byte, off int64) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_RDWR|unix.O_DIRECT, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteAt(buf, off); err != nil {
		t.Fatalf("O_DIRECT write to %s: %v", path, err)
	}
	if err := f.Sync(); err != nil {
		t.Fatalf("fsync %s: %v", path, err)
	}
}

func readDirect(t *testing.T, path string, n int, off int64) []byte {
	t.Helper()
	f, err := os.OpenFile(path, os.O_RDONLY|unix.O_DIRECT, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	buf := alignedBuf(n)
	if _, err := f.ReadAt(buf, off); err != nil {
		t.Fatalf("O_DIRECT read of %s: %v", path, err)
	}
	return buf
}
