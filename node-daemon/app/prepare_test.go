package app

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cobaltstore/cobalt/node-daemon/devices"
	"github.com/cobaltstore/cobalt/storage-engine/blockdev"
)

func prepareConfig(t *testing.T) *Config {
	cfg := DefaultConfig()
	cfg.StateDir = t.TempDir()
	return &cfg
}

// testClusterID is the cluster the tests' daemons serve.
var testClusterID = [16]byte{0xc1, 0x05, 15: 0x01}

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
	p := &preparer{cfg: cfg, sel: pathsSelection(dev), clusterID: testClusterID, engine: eng}

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
	other := &preparer{cfg: prepareConfig(t), sel: pathsSelection(dev), clusterID: testClusterID, engine: eng}
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
	p := &preparer{cfg: cfg, sel: pathsSelection(dev), clusterID: testClusterID, engine: eng}
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

	other := &preparer{cfg: prepareConfig(t), sel: pathsSelection(dev), clusterID: testClusterID, engine: eng}
	devs, err = other.prepareAll(ctx)
	if err != nil || devs[0].store != nil || !strings.Contains(devs[0].reason, "another cluster's store") {
		t.Fatalf("node without the metadata directory = %+v, %v", devs[0], err)
	}
}

func TestPreparationFailureIsReported(t *testing.T) {
	dev := sparseFile(t, t.TempDir(), "dev.img", 64<<20, 0, nil)
	p := &preparer{cfg: prepareConfig(t), sel: pathsSelection(dev), clusterID: testClusterID, engine: failingEngine{}}
	devs, err := p.prepareAll(context.Background())
	if err != nil || len(devs) != 1 || devs[0].store != nil || !strings.Contains(devs[0].reason, "preparation failed: mkfs") {
		t.Fatalf("prepareAll with a failing engine = %+v, %v", devs, err)
	}
}

// failingEngine fails every mkfs, as a device with I/O errors would.
type failingEngine struct{}

func (failingEngine) Mkfs(context.Context, MkfsRequest) error { return os.ErrPermission }
func (failingEngine) Open(context.Context, OpenRequest) (MountedStore, error) {
	return nil, os.ErrPermission
}

// TestPrepareChecksTheCluster: what the daemon does with a device that carries a store, by the
// cluster its label names. A store of this cluster mounts (on any node); one of another cluster
// is neither mounted nor written, and is wiped into a new store of this cluster only with
// allowWipe; a store whose label names no cluster (version 2) is adopted: its label is rewritten
// to name this cluster, and it mounts with its data; a store made with its metadata in a state
// directory (version 1) mounts where that directory is, its label untouched.
func TestPrepareChecksTheCluster(t *testing.T) {
	ctx := context.Background()
	other := [16]byte{0xc2, 0x05, 15: 0x02}
	const id = "2c7e4f1a-0b9d-4c3e-8a5f-6d1b2e3f4a5b"
	cases := []struct {
		name        string
		cluster     [16]byte // the cluster the store was made for (zero: none)
		legacy      bool     // metadata in the state directory (label version 1)
		allowWipe   bool
		wantAction  devices.Action
		wantMounted bool
		wantUUID    string // the UUID of the store on the device afterwards
		wantCluster [16]byte
		wantReason  []string
	}{
		{name: "same cluster", cluster: testClusterID, wantAction: devices.Mount, wantMounted: true, wantUUID: id, wantCluster: testClusterID},
		{name: "other cluster", cluster: other, wantAction: devices.Skip, wantUUID: id, wantCluster: other,
			wantReason: []string{"another Cobalt cluster", blockdev.FormatUUID(other), "allowWipe"}},
		{name: "other cluster, wipe allowed", cluster: other, allowWipe: true, wantAction: devices.Mkfs, wantMounted: true, wantCluster: testClusterID},
		{name: "no cluster id", wantAction: devices.Mount, wantMounted: true, wantUUID: id, wantCluster: testClusterID},
		{name: "dir-layout v1 store", legacy: true, wantAction: devices.Mount, wantMounted: true, wantUUID: id},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dev := sparseFile(t, t.TempDir(), "dev.img", 64<<20, 0, nil)
			eng := newMemEngine()
			sel := pathsSelection(dev)
			sel.AllowWipe = c.allowWipe
			p := &preparer{cfg: prepareConfig(t), sel: sel, clusterID: testClusterID, engine: eng}
			req := MkfsRequest{DevicePath: dev, UUID: id, ClusterID: c.cluster}
			if c.legacy {
				req.DBDir = p.legacyDBDir(id)
				if err := os.MkdirAll(req.DBDir, 0o700); err != nil {
					t.Fatal(err)
				}
			}
			if err := eng.Mkfs(ctx, req); err != nil {
				t.Fatal(err)
			}
			devs, err := p.prepareAll(ctx)
			if err != nil || len(devs) != 1 {
				t.Fatalf("prepareAll = %+v, %v", devs, err)
			}
			d := devs[0]
			if d.decision.Action != c.wantAction || (d.store != nil) != c.wantMounted {
				t.Fatalf("device %+v (reason %q), want action %s mounted %v", d.decision, d.reason, c.wantAction, c.wantMounted)
			}
			for _, r := range c.wantReason {
				if !strings.Contains(d.reason, r) {
					t.Fatalf("reason %q does not say %q", d.reason, r)
				}
			}
			l := readLabel(t, dev)
			if (c.wantUUID != "" && l.UUIDString() != c.wantUUID) || (c.wantUUID == "" && l.UUIDString() == id) || l.ClusterID != c.wantCluster {
				t.Fatalf("label afterwards %+v, want store %q of cluster %x", l, c.wantUUID, c.wantCluster)
			}
			if d.store != nil && d.store.UUID() != l.UUIDString() {
				t.Fatalf("mounted %s, the device carries %s", d.store.UUID(), l.UUIDString())
			}
		})
	}
}

func readLabel(t *testing.T, path string) blockdev.Label {
	t.Helper()
	dev, err := blockdev.Open(path, blockdev.Options{ReadOnly: true, Buffered: true})
	if err != nil {
		t.Fatal(err)
	}
	defer dev.Close()
	l, err := blockdev.ReadLabel(dev)
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// TestPrepareSeparateMetadataDevice: a listed device with a metadata device gets a new store made
// with it; at the next start the store mounts with it, found among the node's metadata devices
// even when listed for another path (disks moved); without it the device is skipped with a
// reason naming the store and what to do, and the metadata device itself is never a store.
func TestPrepareSeparateMetadataDevice(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	dev := sparseFile(t, dir, "dev.img", 64<<20, 0, nil)
	meta := sparseFile(t, dir, "meta.img", 64<<20, 0, nil)
	cfg := prepareConfig(t)
	eng := newMemEngine()
	sel := pathsSelection(dev)
	sel.MetadataDevices = map[string]string{dev: meta}
	p := &preparer{cfg: cfg, sel: sel, clusterID: testClusterID, engine: eng}

	devs, err := p.prepareAll(ctx)
	if err != nil || len(devs) != 1 || devs[0].store == nil {
		t.Fatalf("prepareAll = %+v, %v", devs, err)
	}
	if len(eng.requests) != 1 || eng.requests[0].MetadataDevicePath != meta {
		t.Fatalf("mkfs requests %+v, want one with metadata device %s", eng.requests, meta)
	}
	id := devs[0].store.UUID()
	if snap := devs[0].store.Snapshot(); snap.MetadataDevice != meta {
		t.Fatalf("snapshot names metadata device %q, want %s", snap.MetadataDevice, meta)
	}

	// Restart: mounted with its metadata device, no second mkfs.
	devs, err = p.prepareAll(ctx)
	if err != nil || devs[0].store == nil || devs[0].decision.Action != devices.Mount || devs[0].decision.MetadataDevice != meta || eng.mkfs != 1 {
		t.Fatalf("restart = %+v, %v, mkfs %d", devs[0].decision, err, eng.mkfs)
	}

	// The disks moved: the metadata device is listed for another path of this node.
	other := sparseFile(t, dir, "other.img", 64<<20, 0, nil)
	p.sel = pathsSelection(dev, other)
	p.sel.MetadataDevices = map[string]string{other: meta}
	devs, err = p.prepareAll(ctx)
	if err != nil || len(devs) != 2 {
		t.Fatalf("after the move = %+v, %v", devs, err)
	}
	for _, d := range devs {
		switch d.decision.Path {
		case dev:
			if d.store == nil || d.store.UUID() != id || d.decision.MetadataDevice != meta {
				t.Fatalf("the moved store: %+v (%s)", d.decision, d.reason)
			}
		case other:
			// A new store for other wants meta, which is the moved store's: refused, not wiped.
			if d.store != nil || !strings.Contains(d.reason, "is the metadata device of store "+id) {
				t.Fatalf("the device listed with the moved store's metadata device: %+v (%s)", d.decision, d.reason)
			}
		}
	}

	// No metadata device listed: skipped, saying why.
	p.sel = pathsSelection(dev)
	devs, err = p.prepareAll(ctx)
	if err != nil || devs[0].store != nil || !strings.Contains(devs[0].reason, "carries store "+id) ||
		!strings.Contains(devs[0].reason, "spec.devices.metadataDevices") {
		t.Fatalf("without its metadata device = %+v (%s), %v", devs[0].decision, devs[0].reason, err)
	}

	// The metadata device listed as a data device is never a store, even with allowWipe.
	p.sel = pathsSelection(meta)
	p.sel.AllowWipe = true
	devs, err = p.prepareAll(ctx)
	if err != nil || devs[0].store != nil || !strings.Contains(devs[0].reason, "is the metadata device of store "+id) || eng.mkfs != 1 {
		t.Fatalf("the metadata device as a data device = %+v (%s), %v, mkfs %d", devs[0].decision, devs[0].reason, err, eng.mkfs)
	}
}
