package engine

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"syscall"
	"testing"

	"github.com/google/uuid"

	"github.com/cobaltstore/cobalt/node-daemon/app"
	"github.com/cobaltstore/cobalt/node-daemon/metrics"
	"github.com/cobaltstore/cobalt/node-daemon/objstore"
	"github.com/cobaltstore/cobalt/storage-engine/blockdev"
	"github.com/cobaltstore/cobalt/storage-engine/blockdev/faultdev"
	"github.com/cobaltstore/cobalt/storage-engine/store"
)

// A store whose device starts failing under it (EIO on every write) reports Failed health with
// reason DeviceFailed and the device's error, although the engine itself only failed the
// transaction that met the error; a healthy one reports OK.
func TestSnapshotReportsAFailingDevice(t *testing.T) {
	ctx := context.Background()
	mem := blockdev.NewMem(256<<20, 4096)
	if _, err := store.Mkfs(ctx, mem, "", store.MkfsOptions{UUID: uuid.NewString(), ClusterID: testCluster}); err != nil {
		t.Fatalf("Mkfs: %v", err)
	}
	dev, err := faultdev.New(mem, faultdev.Options{})
	if err != nil {
		t.Fatal(err)
	}
	m, err := New(Settings{}).mount(ctx, dev, app.OpenRequest{ClusterID: testCluster})
	if err != nil {
		t.Fatalf("mount: %v", err)
	}
	t.Cleanup(func() { _ = m.Close() })
	data := bytes.Repeat([]byte{7}, 64<<10)
	if err := m.Commit(ctx, []objstore.Op{objstore.CreateCollection("c"), objstore.Write("c", "o", 0, data)}); err != nil {
		t.Fatalf("commit on a healthy device: %v", err)
	}
	if snap := m.Snapshot(); snap.Health != metrics.HealthOK {
		t.Fatalf("healthy device: health %s (%s: %s), want OK", snap.Health, snap.HealthReason, snap.HealthMessage)
	}

	dev.FailAfter(faultdev.OpWrite, 0, syscall.EIO)
	err = m.Commit(ctx, []objstore.Op{objstore.Write("c", "o", 1<<20, data)})
	if !errors.Is(err, syscall.EIO) {
		t.Fatalf("commit on a failing device: %v, want EIO", err)
	}
	snap := m.Snapshot()
	if snap.Health != metrics.HealthFailed || snap.HealthReason != metrics.HealthReasonDeviceFailed ||
		!strings.Contains(snap.HealthMessage, "the device failed at ") || !strings.Contains(snap.HealthMessage, syscall.EIO.Error()) {
		t.Fatalf("failing device: health %s (%s: %q), want Failed (DeviceFailed) naming the I/O error", snap.Health, snap.HealthReason, snap.HealthMessage)
	}
	// The failure stays although reads of what was written still work.
	if got, err := m.Read(ctx, "c", "o", 0, int64(len(data))); err != nil || !bytes.Equal(got, data) {
		t.Fatalf("read back after the failure: %v", err)
	}
	if snap := m.Snapshot(); snap.HealthReason != metrics.HealthReasonDeviceFailed {
		t.Fatalf("after a good read: health %s (%s), want it still DeviceFailed", snap.Health, snap.HealthReason)
	}
}

// The caller's mistakes (misaligned or out-of-range I/O, a closed device) do not mark the device
// failed; the first real I/O error does, and a later one does not replace it.
func TestWatchedDeviceRecordsTheFirstIOErrorOnly(t *testing.T) {
	base, err := faultdev.New(blockdev.NewMem(1<<20, 4096), faultdev.Options{})
	if err != nil {
		t.Fatal(err)
	}
	d := watch(base)
	buf := blockdev.AlignedBuffer(4096)
	if _, err := d.WriteAt(buf[:100], 0); !errors.Is(err, blockdev.ErrMisaligned) {
		t.Fatalf("misaligned write: %v, want ErrMisaligned", err)
	}
	if _, err := d.ReadAt(buf, 1<<20); !errors.Is(err, blockdev.ErrOutOfRange) {
		t.Fatalf("read past the end: %v, want ErrOutOfRange", err)
	}
	if err := d.failed(); err != nil {
		t.Fatalf("after the caller's mistakes: failed() = %v, want nil", err)
	}
	base.FailNext(faultdev.OpFlush, 1, syscall.EIO)
	if err := d.Flush(); !errors.Is(err, syscall.EIO) {
		t.Fatalf("flush: %v, want EIO", err)
	}
	base.FailNext(faultdev.OpRead, 1, syscall.ENOSPC)
	if _, err := d.ReadAt(buf, 0); !errors.Is(err, syscall.ENOSPC) {
		t.Fatalf("read: %v, want ENOSPC", err)
	}
	if err := d.failed(); !errors.Is(err, syscall.EIO) || errors.Is(err, syscall.ENOSPC) {
		t.Fatalf("failed() = %v, want the first error (EIO) only", err)
	}
}

// An I/O error of the separate metadata device fails the store as one of its device does, and the
// failure names the metadata device.
func TestDeviceFailureNamesTheMetadataDevice(t *testing.T) {
	data, err := faultdev.New(blockdev.NewMem(1<<20, 4096), faultdev.Options{})
	if err != nil {
		t.Fatal(err)
	}
	meta, err := faultdev.New(blockdev.NewMem(1<<20, 4096), faultdev.Options{})
	if err != nil {
		t.Fatal(err)
	}
	m := &Mounted{dev: watch(data), metaDev: watch(meta), metaDevPath: "/dev/meta0"}
	if err := m.deviceFailure(); err != nil {
		t.Fatalf("before any error: %v", err)
	}
	meta.FailNext(faultdev.OpFlush, 1, syscall.EIO)
	if err := m.metaDev.Flush(); !errors.Is(err, syscall.EIO) {
		t.Fatalf("flush of the metadata device: %v, want EIO", err)
	}
	if err := m.deviceFailure(); !errors.Is(err, syscall.EIO) || !strings.Contains(err.Error(), "metadata device /dev/meta0: the device failed at ") {
		t.Fatalf("deviceFailure() = %v, want the metadata device's EIO, naming it", err)
	}
}

// TestSnapshotHealth: a device's I/O error makes the snapshot Failed (DeviceFailed) whatever the
// engine says, keeping the engine's own verdict in the message; so does an engine whose metadata
// database stopped on a failed device that no watched device saw (a host directory); anything
// else is the engine's verdict as it is.
func TestSnapshotHealth(t *testing.T) {
	devErr := errors.New("the device failed at 12:00: write /dev/loop3: input/output error")
	tests := []struct {
		name                  string
		engine                store.Health
		devErr                error
		health, reason, inMsg string
	}{
		{"healthy", store.Health{State: store.HealthOK}, nil, metrics.HealthOK, "", ""},
		{"engine degraded", store.Health{State: store.HealthDegraded, Reason: store.ReasonMetadataDiskSlow, Message: "metadata disk slow"},
			nil, metrics.HealthDegraded, store.ReasonMetadataDiskSlow, "metadata disk slow"},
		{"commit failed, device fine", store.Health{State: store.HealthFailed, Reason: store.ReasonCommitFailed, Message: "a metadata commit failed"},
			nil, metrics.HealthFailed, store.ReasonCommitFailed, "a metadata commit failed"},
		{"device failed, engine OK", store.Health{State: store.HealthOK}, devErr, metrics.HealthFailed, metrics.HealthReasonDeviceFailed, "input/output error"},
		{"device failed, engine failed too", store.Health{State: store.HealthFailed, Reason: store.ReasonMetadataDeviceFailed, Message: "writes are refused"},
			devErr, metrics.HealthFailed, metrics.HealthReasonDeviceFailed, "; the engine also reports Failed: writes are refused"},
		{"metadata stopped on an unwatched device", store.Health{State: store.HealthFailed, Reason: store.ReasonMetadataDeviceFailed, Message: "the device under the metadata failed"},
			nil, metrics.HealthFailed, metrics.HealthReasonDeviceFailed, "the device under the metadata failed"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			health, reason, msg := snapshotHealth(tc.engine, tc.devErr)
			if health != tc.health || reason != tc.reason || !strings.Contains(msg, tc.inMsg) {
				t.Fatalf("snapshotHealth = %s, %s, %q; want %s, %s, a message containing %q", health, reason, msg, tc.health, tc.reason, tc.inMsg)
			}
		})
	}
}
