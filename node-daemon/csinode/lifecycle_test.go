package csinode_test

import (
	"bytes"
	"crypto/rand"
	"os"
	"path/filepath"
	"testing"

	"github.com/container-storage-interface/spec/lib/go/csi"
	"golang.org/x/sys/unix"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

const (
	writer       = csi.VolumeCapability_AccessMode_SINGLE_NODE_WRITER
	singleWriter = csi.VolumeCapability_AccessMode_SINGLE_NODE_SINGLE_WRITER
)

// TestMountLifecycle runs a file system volume through everything kubelet does, on a real
// store, the real frontend and real mounts: stage (format), publish read-write and read-only,
// write, stats, online expansion, unpublish, unstage, and a second stage that finds the data.
// Every call is repeated to check it is idempotent.
func TestMountLifecycle(t *testing.T) {
	for _, fs := range []string{"ext4", "xfs"} {
		t.Run(fs, func(t *testing.T) {
			requireHost(t)
			requireTools(t, "blkid", "mkfs."+fs, map[string]string{"ext4": "resize2fs", "xfs": "xfs_growfs"}[fs])
			n := newNode(t)
			ctx := t.Context()
			const size = 512 * MiB
			vctx := n.createVolume(size)
			uid := vctx["storage.cobalt.io/volume-uid"]
			staging := filepath.Join(n.dir, "staging")
			rw, ro := filepath.Join(n.dir, "pods", "a", "mount"), filepath.Join(n.dir, "pods", "b", "mount")
			stage := &csi.NodeStageVolumeRequest{VolumeId: "pvc-1", StagingTargetPath: staging, VolumeCapability: mountCap(fs, writer), VolumeContext: vctx}
			for i := range 2 {
				must[*csi.NodeStageVolumeResponse](t, "stage")(n.server.NodeStageVolume(ctx, stage))
				_ = i
			}
			dev, ok := n.frontend.Device(uid)
			if !ok {
				t.Fatal("no device after stage")
			}
			if got := must[string](t, "blkid")(blkidType(dev.Path)); got != fs {
				t.Fatalf("device carries %q, want %s", got, fs)
			}
			publish := func(target string, readonly bool) *csi.NodePublishVolumeRequest {
				return &csi.NodePublishVolumeRequest{VolumeId: "pvc-1", StagingTargetPath: staging, TargetPath: target, VolumeCapability: mountCap(fs, writer), Readonly: readonly, VolumeContext: vctx}
			}
			for range 2 {
				must[*csi.NodePublishVolumeResponse](t, "publish rw")(n.server.NodePublishVolume(ctx, publish(rw, false)))
				must[*csi.NodePublishVolumeResponse](t, "publish ro")(n.server.NodePublishVolume(ctx, publish(ro, true)))
			}
			_, err := n.server.NodePublishVolume(ctx, publish(rw, true))
			if status.Code(err) != codes.AlreadyExists {
				t.Errorf("publish rw target again read-only: %v, want AlreadyExists", err)
			}
			data := make([]byte, 3*MiB+17)
			rand.Read(data)
			writeSynced(t, filepath.Join(rw, "data"), data)
			if got, err := os.ReadFile(filepath.Join(ro, "data")); err != nil || !bytes.Equal(got, data) {
				t.Fatalf("read through the read-only target: %d bytes, %v", len(got), err)
			}
			if err := os.WriteFile(filepath.Join(ro, "nope"), []byte("x"), 0o600); !errorsIs(err, unix.EROFS) {
				t.Errorf("write through the read-only target: %v, want EROFS", err)
			}

			stats := must[*csi.NodeGetVolumeStatsResponse](t, "stats")(n.server.NodeGetVolumeStats(ctx, &csi.NodeGetVolumeStatsRequest{VolumeId: "pvc-1", VolumePath: rw}))
			bytesUsage, inodes := stats.Usage[0], stats.Usage[1]
			if bytesUsage.Unit != csi.VolumeUsage_BYTES || bytesUsage.Total <= 400*MiB || bytesUsage.Total > size || bytesUsage.Used < int64(len(data)) || bytesUsage.Available <= 0 {
				t.Errorf("byte usage = %+v", bytesUsage)
			}
			if inodes.Unit != csi.VolumeUsage_INODES || inodes.Total == 0 || inodes.Used == 0 {
				t.Errorf("inode usage = %+v", inodes)
			}
			health := must[*csi.NodeGetVolumeHealthResponse](t, "health")(n.server.NodeGetVolumeHealth(ctx, &csi.NodeGetVolumeHealthRequest{VolumeId: "pvc-1", VolumePublishPath: rw}))
			if st := health.GetVolumeHealth().GetHealthStatuses(); len(st) != 0 {
				t.Errorf("health of a served volume: %v", st)
			}

			// The controller grows the volume on its store; the node grows device and file system.
			const bigger = 768 * MiB
			if _, err := n.vols.Resize(ctx, uid, bigger); err != nil {
				t.Fatal(err)
			}
			expand := &csi.NodeExpandVolumeRequest{VolumeId: "pvc-1", VolumePath: rw, CapacityRange: &csi.CapacityRange{RequiredBytes: bigger}}
			if fs == "ext4" && !hasCapSysResource(t) {
				// Without CAP_SYS_RESOURCE the kernel refuses ext4's online resize: the device still
				// grows and the error says what the daemon lacks.
				_, err := n.server.NodeExpandVolume(ctx, expand)
				if status.Code(err) != codes.FailedPrecondition || !bytes.Contains([]byte(status.Convert(err).Message()), []byte("CAP_SYS_RESOURCE")) {
					t.Errorf("expand of ext4 without CAP_SYS_RESOURCE: %v, want FailedPrecondition naming it", err)
				}
				t.Log("this process lacks CAP_SYS_RESOURCE: ext4's online file system growth is checked only up to the device")
			} else {
				for range 2 {
					resp := must[*csi.NodeExpandVolumeResponse](t, "expand")(n.server.NodeExpandVolume(ctx, expand))
					if resp.CapacityBytes != bigger {
						t.Errorf("expanded capacity = %d, want %d", resp.CapacityBytes, bigger)
					}
				}
				grown := must[*csi.NodeGetVolumeStatsResponse](t, "stats")(n.server.NodeGetVolumeStats(ctx, &csi.NodeGetVolumeStatsRequest{VolumeId: "pvc-1", VolumePath: rw}))
				if grown.Usage[0].Total <= size {
					t.Errorf("file system total after expand = %d, want more than %d", grown.Usage[0].Total, size)
				}
			}
			if dev, _ := n.frontend.Device(uid); dev.Size != bigger {
				t.Errorf("device size after expand = %d", dev.Size)
			}
			_, err = n.server.NodeExpandVolume(ctx, &csi.NodeExpandVolumeRequest{VolumeId: "pvc-1", VolumePath: rw, CapacityRange: &csi.CapacityRange{RequiredBytes: 2 * bigger}})
			if status.Code(err) != codes.Unavailable {
				t.Errorf("expand past the volume's size: %v, want Unavailable", err)
			}

			_, err = n.server.NodeUnstageVolume(ctx, &csi.NodeUnstageVolumeRequest{VolumeId: "pvc-1", StagingTargetPath: staging})
			if status.Code(err) != codes.FailedPrecondition {
				t.Errorf("unstage while published: %v, want FailedPrecondition", err)
			}
			for range 2 {
				for _, target := range []string{rw, ro} {
					must[*csi.NodeUnpublishVolumeResponse](t, "unpublish")(n.server.NodeUnpublishVolume(ctx, &csi.NodeUnpublishVolumeRequest{VolumeId: "pvc-1", TargetPath: target}))
				}
			}
			for _, target := range []string{rw, ro} {
				if _, err := os.Stat(target); !os.IsNotExist(err) {
					t.Errorf("target %s after unpublish: %v", target, err)
				}
			}
			for range 2 {
				must[*csi.NodeUnstageVolumeResponse](t, "unstage")(n.server.NodeUnstageVolume(ctx, &csi.NodeUnstageVolumeRequest{VolumeId: "pvc-1", StagingTargetPath: staging}))
			}
			if _, ok := n.frontend.Device(uid); ok {
				t.Error("device still exposed after unstage")
			}
			if m := mountsUnder(t, n.dir); len(m) != 0 {
				t.Errorf("mounts left after unstage: %v", m)
			}

			// The volume keeps its file system: another fs type is refused, the same one finds the data.
			other := map[string]string{"ext4": "xfs", "xfs": "ext4"}[fs]
			_, err = n.server.NodeStageVolume(ctx, &csi.NodeStageVolumeRequest{VolumeId: "pvc-1", StagingTargetPath: staging, VolumeCapability: mountCap(other, writer), VolumeContext: vctx})
			if status.Code(err) != codes.FailedPrecondition || !bytes.Contains([]byte(status.Convert(err).Message()), []byte("never re-formats")) {
				t.Errorf("stage as %s: %v, want FailedPrecondition (never re-formats)", other, err)
			}
			if _, ok := n.frontend.Device(uid); ok {
				t.Error("a refused stage left the device exposed")
			}
			must[*csi.NodeStageVolumeResponse](t, "stage again")(n.server.NodeStageVolume(ctx, stage))
			if got, err := os.ReadFile(filepath.Join(staging, "data")); err != nil || !bytes.Equal(got, data) {
				t.Fatalf("data after unstage and stage: %d bytes, %v", len(got), err)
			}
			must[*csi.NodeUnstageVolumeResponse](t, "unstage")(n.server.NodeUnstageVolume(ctx, &csi.NodeUnstageVolumeRequest{VolumeId: "pvc-1", StagingTargetPath: staging}))
			if m := mountsUnder(t, n.dir); len(m) != 0 {
				t.Errorf("mounts left: %v", m)
			}
		})
	}
}

// TestSingleWriterPublishedOnce: a ReadWriteOncePod volume is published at one target only.
func TestSingleWriterPublishedOnce(t *testing.T) {
	requireHost(t)
	requireTools(t, "blkid", "mkfs.ext4")
	n := newNode(t)
	ctx := t.Context()
	vctx := n.createVolume(64 * MiB)
	staging := filepath.Join(n.dir, "staging")
	c := mountCap("", singleWriter)
	must[*csi.NodeStageVolumeResponse](t, "stage")(n.server.NodeStageVolume(ctx, &csi.NodeStageVolumeRequest{VolumeId: "v", StagingTargetPath: staging, VolumeCapability: c, VolumeContext: vctx}))
	t1, t2 := filepath.Join(n.dir, "t1"), filepath.Join(n.dir, "t2")
	must[*csi.NodePublishVolumeResponse](t, "publish")(n.server.NodePublishVolume(ctx, &csi.NodePublishVolumeRequest{VolumeId: "v", StagingTargetPath: staging, TargetPath: t1, VolumeCapability: c}))
	_, err := n.server.NodePublishVolume(ctx, &csi.NodePublishVolumeRequest{VolumeId: "v", StagingTargetPath: staging, TargetPath: t2, VolumeCapability: c})
	if status.Code(err) != codes.FailedPrecondition {
		t.Errorf("second publish of a single-writer volume: %v, want FailedPrecondition", err)
	}
	must[*csi.NodeUnpublishVolumeResponse](t, "unpublish")(n.server.NodeUnpublishVolume(ctx, &csi.NodeUnpublishVolumeRequest{VolumeId: "v", TargetPath: t1}))
	must[*csi.NodeUnstageVolumeResponse](t, "unstage")(n.server.NodeUnstageVolume(ctx, &csi.NodeUnstageVolumeRequest{VolumeId: "v", StagingTargetPath: staging}))
	if m := mountsUnder(t, n.dir); len(m) != 0 {
		t.Errorf("mounts left: %v", m)
	}
}

// TestBlockLifecycle stages and publishes a raw block volume, does O_DIRECT I/O through the
// published target, expands it online and tears it down.
func TestBlockLifecycle(t *testing.T) {
	requireHost(t)
	n := newNode(t)
	ctx := t.Context()
	const size = 64 * MiB
	vctx := n.createVolume(size)
	uid := vctx["storage.cobalt.io/volume-uid"]
	staging := filepath.Join(n.dir, "staging")
	target := filepath.Join(n.dir, "pods", "a", "dev")
	stage := &csi.NodeStageVolumeRequest{VolumeId: "blk", StagingTargetPath: staging, VolumeCapability: blockCap(writer), VolumeContext: vctx}
	publish := &csi.NodePublishVolumeRequest{VolumeId: "blk", StagingTargetPath: staging, TargetPath: target, VolumeCapability: blockCap(writer)}
	for range 2 {
		must[*csi.NodeStageVolumeResponse](t, "stage")(n.server.NodeStageVolume(ctx, stage))
	}
	for range 2 {
		must[*csi.NodePublishVolumeResponse](t, "publish")(n.server.NodePublishVolume(ctx, publish))
	}
	_, err := n.server.NodePublishVolume(ctx, &csi.NodePublishVolumeRequest{VolumeId: "blk", StagingTargetPath: staging, TargetPath: filepath.Join(n.dir, "fs"), VolumeCapability: mountCap("", writer)})
	if status.Code(err) != codes.InvalidArgument {
		t.Errorf("publish a block volume as a file system: %v, want InvalidArgument", err)
	}

	// O_DIRECT through the published target reaches the volume on the store.
	buf := alignedBuf(MiB)
	rand.Read(buf)
	f, err := os.OpenFile(target, os.O_RDWR|unix.O_DIRECT, 0)
	if err != nil {
		t.Fatalf("open the published device: %v", err)
	}
	if _, err := f.WriteAt(buf, 8*MiB); err != nil {
		t.Fatalf("O_DIRECT write: %v", err)
	}
	if err := f.Sync(); err != nil {
		t.Fatal(err)
	}
	back := alignedBuf(MiB)
	if _, err := f.ReadAt(back, 8*MiB); err != nil || !bytes.Equal(back, buf) {
		t.Fatalf("O_DIRECT read back: %v, equal=%v", err, bytes.Equal(back, buf))
	}
	f.Close()
	onStore, err := n.vols.Read(ctx, uid, 8*MiB, MiB)
	if err != nil || !bytes.Equal(onStore, buf) {
		t.Fatalf("the volume on the store does not hold the write: %v", err)
	}

	stats := must[*csi.NodeGetVolumeStatsResponse](t, "stats")(n.server.NodeGetVolumeStats(ctx, &csi.NodeGetVolumeStatsRequest{VolumeId: "blk", VolumePath: target}))
	if len(stats.Usage) != 1 || stats.Usage[0].Total != size {
		t.Errorf("block stats = %v, want total %d", stats.Usage, size)
	}
	if _, err := n.vols.Resize(ctx, uid, 2*size); err != nil {
		t.Fatal(err)
	}
	resp := must[*csi.NodeExpandVolumeResponse](t, "expand")(n.server.NodeExpandVolume(ctx, &csi.NodeExpandVolumeRequest{VolumeId: "blk", VolumePath: target}))
	stats = must[*csi.NodeGetVolumeStatsResponse](t, "stats")(n.server.NodeGetVolumeStats(ctx, &csi.NodeGetVolumeStatsRequest{VolumeId: "blk", VolumePath: target}))
	if resp.CapacityBytes != 2*size || stats.Usage[0].Total != 2*size {
		t.Errorf("after expand: capacity %d, device size %d; want %d", resp.CapacityBytes, stats.Usage[0].Total, 2*size)
	}

	for range 2 {
		must[*csi.NodeUnpublishVolumeResponse](t, "unpublish")(n.server.NodeUnpublishVolume(ctx, &csi.NodeUnpublishVolumeRequest{VolumeId: "blk", TargetPath: target}))
	}
	if _, err := os.Stat(target); !os.IsNotExist(err) {
		t.Errorf("target file after unpublish: %v", err)
	}
	for range 2 {
		must[*csi.NodeUnstageVolumeResponse](t, "unstage")(n.server.NodeUnstageVolume(ctx, &csi.NodeUnstageVolumeRequest{VolumeId: "blk", StagingTargetPath: staging}))
	}
	if _, ok := n.frontend.Device(uid); ok {
		t.Error("device still exposed after unstage")
	}
	if m := mountsUnder(t, n.dir); len(m) != 0 {
		t.Errorf("mounts left: %v", m)
	}
}
