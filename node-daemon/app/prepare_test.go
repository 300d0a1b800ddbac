package app

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cobaltstore/cobalt/node-daemon/devices"
)

func prepareConfig(t *testing.T) *Config {
	cfg := DefaultConfig()
	cfg.StateDir = t.TempDir()
	return &cfg
}

func pathsSelection(paths ...string) devices.Selection {
	return devices.Selection{Paths: paths, MinSize: 1 << 20}
}

// TestMkfsIsIdempotentAcrossCrashes simulates the two crash points of mkfs: before the label
// reached the device (the next start formats again with the same UUID) and after it, before the
// pending marker was cleared (the next start sees its own label, redoes mkfs with that UUID and
// mounts). In neither case is the device taken for a foreign store or given a second identity.
func TestMkfsIsIdempotentAcrossCrashes(t *testing.T) {
	ctx := context.Background()
	dev := sparseFile(t, t.TempDir(), "dev.img", 64<<20, 0, nil)
	cfg := prepareConfig(t)
	eng := newMemEngine()
	p := &preparer{cfg: cfg, sel: pathsSelection(dev), engine: eng}

	// Crash before the label: a pending marker for the device, nothing on the device.
	const early = "0b5b6a8e-51a9-4d0c-9d36-8f8d3f0e2a11"
	if err := os.MkdirAll(filepath.Join(cfg.StoresDir(), early, "db", "junk"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(cfg.StoresDir(), early, pendingMarker), []byte(dev), 0o600); err != nil {
		t.Fatal(err)
	}
	devs, err := p.prepareAll(ctx)
	if err != nil || len(devs) != 1 || devs[0].store == nil {
		t.Fatalf("prepareAll after an early crash = %+v, %v", devs, err)
	}
	if got := devs[0].store.UUID(); got != early {
		t.Fatalf("store UUID %s, want the pending attempt's %s", got, early)
	}
	if _, err := os.Stat(filepath.Join(cfg.StoresDir(), early, "db", "junk")); !os.IsNotExist(err) {
		t.Fatalf("the interrupted attempt's partial metadata was kept (%v)", err)
	}
	if _, err := os.Stat(filepath.Join(cfg.StoresDir(), early)); !os.IsNotExist(err) {
		t.Fatalf("store directory (pending marker) left after a completed mkfs (%v)", err)
	}

	// Crash after the label: the marker is back, the device carries our label.
	if err := os.MkdirAll(filepath.Join(cfg.StoresDir(), early), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(cfg.StoresDir(), early, pendingMarker), []byte(dev), 0o600); err != nil {
		t.Fatal(err)
	}
	devs, err = p.prepareAll(ctx)
	if err != nil || devs[0].store == nil || devs[0].decision.Action != devices.Mount || devs[0].store.UUID() != early {
		t.Fatalf("prepareAll after a late crash = %+v, %v", devs[0], err)
	}
	if eng.mkfs != 2 {
		t.Fatalf("mkfs ran %d times, want 2 (first attempt, redo after the late crash)", eng.mkfs)
	}

	// A clean restart mounts without mkfs.
	devs, err = p.prepareAll(ctx)
	if err != nil || devs[0].store == nil || devs[0].decision.Action != devices.Mount || eng.mkfs != 2 {
		t.Fatalf("clean restart = %+v, %v, mkfs %d", devs[0], err, eng.mkfs)
	}

	// The metadata is on the device: another node, whose state directory is empty, mounts it.
	other := &preparer{cfg: prepareConfig(t), sel: pathsSelection(dev), engine: eng}
	devs, err = other.prepareAll(ctx)
	if err != nil || devs[0].store == nil || devs[0].decision.Action != devices.Mount || devs[0].store.UUID() != early || eng.mkfs != 2 {
		t.Fatalf("another node = %+v, %v, mkfs %d", devs[0], err, eng.mkfs)
	}
}

// TestLegacyStoreMountsFromItsStateDirectory: a store made before label version 2 keeps its
// metadata in the state directory; it mounts from there, and not on a node without it.
func TestLegacyStoreMountsFromItsStateDirectory(t *testing.T) {
	ctx := context.Background()
	dev := sparseFile(t, t.TempDir(), "dev.img", 64<<20, 0, nil)
	cfg := prepareConfig(t)
	eng := newMemEngine()
	const id = "5f1d0c2e-7a64-4b8e-9c21-3d6b0e9a4f70"
	p := &preparer{cfg: cfg, sel: pathsSelection(dev), engine: eng}
	if err := eng.Mkfs(ctx, MkfsRequest{DevicePath: dev, DBDir: p.legacyDBDir(id), UUID: id}); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(p.legacyDBDir(id), 0o700); err != nil {
		t.Fatal(err)
	}
	devs, err := p.prepareAll(ctx)
	if err != nil || devs[0].store == nil || devs[0].decision.MetaOnDevice || eng.mkfs != 1 {
		t.Fatalf("prepareAll = %+v, %v, mkfs %d", devs[0], err, eng.mkfs)
	}
	if snap := devs[0].store.Snapshot(); snap.MetadataOnDevice || snap.MetadataLocation != "directory "+p.legacyDBDir(id) {
		t.Fatalf("metadata on device %v at %q, want the state directory", snap.MetadataOnDevice, snap.MetadataLocation)
	}

	other := &preparer{cfg: prepareConfig(t), sel: pathsSelection(dev), engine: eng}
	devs, err = other.prepareAll(ctx)
	if err != nil || devs[0].store != nil || !strings.Contains(devs[0].reason, "another cluster's store") {
		t.Fatalf("node without the metadata directory = %+v, %v", devs[0], err)
	}
}

func TestPreparationFailureIsReported(t *testing.T) {
	dev := sparseFile(t, t.TempDir(), "dev.img", 64<<20, 0, nil)
	p := &preparer{cfg: prepareConfig(t), sel: pathsSelection(dev), engine: failingEngine{}}
	devs, err := p.prepareAll(context.Background())
	if err != nil || len(devs) != 1 || devs[0].store != nil || !strings.Contains(devs[0].reason, "preparation failed: mkfs") {
		t.Fatalf("prepareAll with a failing engine = %+v, %v", devs, err)
	}
}

// failingEngine fails every mkfs, as a device with I/O errors would.
type failingEngine struct{}

func (failingEngine) Mkfs(context.Context, MkfsRequest) error { return os.ErrPermission }
func (failingEngine) Open(context.Context, string, string) (MountedStore, error) {
	return nil, os.ErrPermission
}
