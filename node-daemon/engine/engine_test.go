package engine

import (
	"bytes"
	"context"
	"errors"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/uuid"

	"github.com/cobaltstore/cobalt/node-daemon/app"
	"github.com/cobaltstore/cobalt/node-daemon/metrics"
	"github.com/cobaltstore/cobalt/node-daemon/objstore"
	"github.com/cobaltstore/cobalt/node-daemon/volume"
	"github.com/cobaltstore/cobalt/storage-engine/blockdev"
	"github.com/cobaltstore/cobalt/storage-engine/store"
)

type testDevice struct {
	path, db, uuid string // db is "" for a store with its metadata on the device
	meta           string // the separate metadata device, "" for none
}

// testCluster is the cluster the tests' daemon serves.
var testCluster = [16]byte{0xc1, 0x05, 15: 0x01}

// newDevice formats a sparse file of size bytes as a store with its metadata on the device, as
// the daemon makes them.
func newDevice(t *testing.T, e *Engine, size int64) testDevice {
	t.Helper()
	return mkfsDevice(t, e, size, "", testCluster)
}

// newLegacyDevice formats a sparse file as a store with its metadata in a host directory, as the
// daemon made them before label version 2.
func newLegacyDevice(t *testing.T, e *Engine, size int64) testDevice {
	t.Helper()
	return mkfsDevice(t, e, size, filepath.Join(t.TempDir(), "db"), [16]byte{})
}

// newSeparateDevice formats a sparse file as a store whose metadata is on a second sparse file of
// metaSize bytes (a separate metadata device).
func newSeparateDevice(t *testing.T, e *Engine, size, metaSize int64) testDevice {
	t.Helper()
	d := testDevice{path: filepath.Join(t.TempDir(), "dev.img"), meta: filepath.Join(t.TempDir(), "meta.img"), uuid: uuid.NewString()}
	if err := os.WriteFile(d.meta, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(d.meta, metaSize); err != nil {
		t.Fatal(err)
	}
	req := app.MkfsRequest{DevicePath: d.path, UUID: d.uuid, CreateSize: size, ClusterID: testCluster, MetadataDevicePath: d.meta}
	if err := e.Mkfs(context.Background(), req); err != nil {
		t.Fatalf("Mkfs: %v", err)
	}
	return d
}

// mkfsDevice formats a sparse file as a store of cluster (none when zero), its metadata in db or
// on the device when db is "".
func mkfsDevice(t *testing.T, e *Engine, size int64, db string, cluster [16]byte) testDevice {
	t.Helper()
	d := testDevice{path: filepath.Join(t.TempDir(), "dev.img"), db: db, uuid: uuid.NewString()}
	if err := e.Mkfs(context.Background(), app.MkfsRequest{DevicePath: d.path, DBDir: d.db, UUID: d.uuid, CreateSize: size, ClusterID: cluster}); err != nil {
		t.Fatalf("Mkfs: %v", err)
	}
	return d
}

func open(t *testing.T, e *Engine, d testDevice) *Mounted {
	t.Helper()
	m, err := e.Open(context.Background(), app.OpenRequest{DevicePath: d.path, LegacyDBDir: d.db, ClusterID: testCluster, MetadataDevicePath: d.meta})
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	return m.(*Mounted)
}

// fsck checks the closed store on d deeply.
func fsck(t *testing.T, d testDevice) {
	t.Helper()
	dev, err := blockdev.Open(d.path, blockdev.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer dev.Close()
	var opts store.Options
	if d.meta != "" {
		md, err := blockdev.Open(d.meta, blockdev.Options{})
		if err != nil {
			t.Fatal(err)
		}
		defer md.Close()
		opts.MetadataDevice = md
	}
	st, err := store.Open(context.Background(), dev, d.db, opts)
	if err != nil {
		t.Fatalf("reopen for fsck: %v", err)
	}
	defer st.Close()
	rep, err := st.Fsck(context.Background(), true)
	if err != nil {
		t.Fatalf("fsck: %v", err)
	}
	if len(rep.Errors) > 0 || rep.LeakedBytes > 0 || rep.CorruptBlocks > 0 {
		t.Fatalf("fsck found problems: %+v", rep)
	}
}

// TestSnapshotAndUUID checks what the conformance suite does not: the UUID is the one mkfs was
// given, and the metrics snapshot reflects commits, capacity, the cache settings and where the
// metadata lives, for a store with its metadata on the device and one made with a directory.
func TestSnapshotAndUUID(t *testing.T) {
	e := New(Settings{EngineConfig: app.EngineConfig{CacheType: "2q", MinAllocSize: 4096}})
	for _, tt := range []struct {
		name     string
		d        testDevice
		onDevice bool
		location string
	}{
		{"metadata on the device", newDevice(t, e, 64<<20), true, "device region ["},
		{"metadata in a directory", newLegacyDevice(t, e, 64<<20), false, "directory /"},
		{"metadata on a separate device", newSeparateDevice(t, e, 64<<20, 32<<20), true, "metadata device region [65536, +33488896) on /"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			m := open(t, e, tt.d)
			ctx := context.Background()
			if m.UUID() != tt.d.uuid {
				t.Fatalf("UUID = %s, want %s", m.UUID(), tt.d.uuid)
			}
			if err := m.Commit(ctx, []objstore.Op{objstore.CreateCollection("c"), objstore.Write("c", "o", 0, []byte("hello"))}); err != nil {
				t.Fatalf("Commit: %v", err)
			}
			snap := m.Snapshot()
			if snap.Commits < 1 || snap.TotalBytes <= 0 || snap.UsedBytes <= 0 || snap.CacheType != "2q" || len(snap.CacheShards) == 0 || snap.Health != metrics.HealthOK {
				t.Fatalf("Snapshot = %+v", snap)
			}
			if snap.MetadataOnDevice != tt.onDevice || !strings.HasPrefix(snap.MetadataLocation, tt.location) || snap.MetadataDevice != tt.d.meta {
				t.Fatalf("Snapshot metadata on device %v at %q, want %v at %q...", snap.MetadataOnDevice, snap.MetadataLocation, tt.onDevice, tt.location)
			}
			if err := m.Close(); err != nil {
				t.Fatalf("Close: %v", err)
			}
			fsck(t, tt.d)
		})
	}
}

// TestLegacyStoreNeedsItsDirectory: a store made with a metadata directory does not mount
// without it, and the error says why.
func TestLegacyStoreNeedsItsDirectory(t *testing.T) {
	e := New(Settings{})
	d := newLegacyDevice(t, e, 64<<20)
	_, err := e.Open(context.Background(), app.OpenRequest{DevicePath: d.path, ClusterID: testCluster})
	if !errors.Is(err, objstore.ErrInvalid) || !strings.Contains(err.Error(), "keeps its metadata in a host directory") {
		t.Fatalf("Open without the directory = %v", err)
	}
	open(t, e, d).Close()
}

// TestSeparateMetadataDeviceNeeded: a store made with a separate metadata device does not mount
// without it nor with another file, and the errors say why; with it, it mounts.
func TestSeparateMetadataDeviceNeeded(t *testing.T) {
	e := New(Settings{})
	d := newSeparateDevice(t, e, 64<<20, 32<<20)
	other := newSeparateDevice(t, e, 64<<20, 32<<20)
	for _, c := range []struct {
		name, meta, want string
	}{
		{"without it", "", "keeps its metadata on a separate metadata device, and none was given"},
		{"with another store's", other.meta, "is the metadata device of store " + other.uuid},
	} {
		_, err := e.Open(context.Background(), app.OpenRequest{DevicePath: d.path, ClusterID: testCluster, MetadataDevicePath: c.meta})
		if !errors.Is(err, objstore.ErrInvalid) || !strings.Contains(err.Error(), c.want) {
			t.Fatalf("Open %s = %v, want ErrInvalid saying %q", c.name, err, c.want)
		}
	}
	if err := open(t, e, d).Close(); err != nil {
		t.Fatal(err)
	}
	fsck(t, d)
}

// TestVolumesOverTheEngine runs random volume I/O against a byte-slice model on the real engine,
// then checks the data after a clean unmount and remount and runs a deep fsck.
func TestVolumesOverTheEngine(t *testing.T) {
	const size = 8 * volume.MinStripeSize
	e := New(Settings{EngineConfig: app.EngineConfig{CacheType: "2q"}})
	d := newDevice(t, e, 256<<20)
	m := open(t, e, d)
	ctx := context.Background()
	vm, err := volume.Open(ctx, m)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := vm.Create(ctx, "v", size, volume.MinStripeSize); err != nil {
		t.Fatal(err)
	}
	model := make([]byte, size)
	rng := rand.New(rand.NewPCG(7, 8))
	for i := range 300 {
		off := rng.Int64N(size)
		length := rng.Int64N(min(size-off, 2*volume.MinStripeSize)) + 1
		switch r := rng.IntN(10); {
		case r < 5:
			data := make([]byte, length)
			for j := range data {
				data[j] = byte(rng.IntN(255) + 1)
			}
			if err := vm.Write(ctx, "v", off, data); err != nil {
				t.Fatalf("op %d: write: %v", i, err)
			}
			copy(model[off:], data)
		case r < 7:
			if err := vm.Trim(ctx, "v", off, length); err != nil {
				t.Fatalf("op %d: trim: %v", i, err)
			}
			clear(model[off : off+length])
		default:
			got, err := vm.Read(ctx, "v", off, length)
			if err != nil || !bytes.Equal(got, model[off:off+length]) {
				t.Fatalf("op %d: read [%d,+%d) differs from the model (err %v)", i, off, length, err)
			}
		}
	}
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
	fsck(t, d)
	m = open(t, e, d)
	defer m.Close()
	vm, err = volume.Open(ctx, m)
	if err != nil {
		t.Fatal(err)
	}
	got, err := vm.Read(ctx, "v", 0, size)
	if err != nil || !bytes.Equal(got, model) {
		t.Fatalf("volume after remount differs from the model (err %v)", err)
	}
	if err := vm.Delete(ctx, "v"); err != nil {
		t.Fatal(err)
	}
	if fs, _ := m.Statfs(ctx); fs.Used > 1<<20 {
		t.Fatalf("%d bytes still used after deleting the only volume", fs.Used)
	}
}

func TestFullStoreIsNoSpace(t *testing.T) {
	e := New(Settings{EngineConfig: app.EngineConfig{CacheType: "lru"}})
	// 80 MiB, of which the metadata region takes a quarter: about 60 MiB of data space.
	d := newDevice(t, e, 80<<20)
	m := open(t, e, d)
	defer m.Close()
	ctx := context.Background()
	vm, err := volume.Open(ctx, m)
	if err != nil {
		t.Fatal(err)
	}
	// Thin provisioning lets two 48 MiB volumes share 60 MiB; writing both fills the store.
	chunk := bytes.Repeat([]byte{1}, 4<<20)
	var werr error
	for _, id := range []string{"v", "w"} {
		if _, err := vm.Create(ctx, id, 48<<20, 0); err != nil {
			t.Fatal(err)
		}
		for off := int64(0); off < 48<<20 && werr == nil; off += int64(len(chunk)) {
			werr = vm.Write(ctx, id, off, chunk)
		}
	}
	if !errors.Is(werr, objstore.ErrNoSpace) {
		t.Fatalf("filling past the device = %v, want ErrNoSpace", werr)
	}
}

func TestMkfsRefusesForeignSignatureUnlessForced(t *testing.T) {
	e := New(Settings{})
	dir := t.TempDir()
	path := filepath.Join(dir, "dev.img")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Truncate(64 << 20); err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteAt([]byte("XFSB"), 0); err != nil {
		t.Fatal(err)
	}
	f.Close()
	req := app.MkfsRequest{DevicePath: path, UUID: uuid.NewString()}
	if err := e.Mkfs(context.Background(), req); !errors.Is(err, store.ErrForeignSignature) {
		t.Fatalf("Mkfs over XFS = %v, want ErrForeignSignature", err)
	}
	req.Force = true
	if err := e.Mkfs(context.Background(), req); err != nil {
		t.Fatalf("forced Mkfs: %v", err)
	}
}

// TestOpenChecksTheCluster: Open mounts a store of its cluster, refuses one of another cluster
// without writing to it, adopts a store whose label names no cluster only when asked (rewriting
// its label to name the cluster), and mounts a store made before label version 2 (metadata in a
// directory) as it is.
func TestOpenChecksTheCluster(t *testing.T) {
	other := [16]byte{0xc2, 0x05, 15: 0x02}
	e := New(Settings{})
	cases := []struct {
		name        string
		d           testDevice
		adopt       bool
		wantErr     error
		wantCluster [16]byte
		wantVersion uint32
	}{
		{"same cluster", newDevice(t, e, 64<<20), false, nil, testCluster, 3},
		{"other cluster", mkfsDevice(t, e, 64<<20, "", other), false, app.ErrOtherCluster, other, 3},
		{"other cluster, adopt asked", mkfsDevice(t, e, 64<<20, "", other), true, app.ErrOtherCluster, other, 3},
		{"no cluster id, adopted", mkfsDevice(t, e, 64<<20, "", [16]byte{}), true, nil, testCluster, 3},
		{"no cluster id, not adopted", mkfsDevice(t, e, 64<<20, "", [16]byte{}), false, app.ErrOtherCluster, [16]byte{}, 2},
		{"dir-layout v1 store", newLegacyDevice(t, e, 64<<20), false, nil, [16]byte{}, 1},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			before, err := os.ReadFile(c.d.path)
			if err != nil {
				t.Fatal(err)
			}
			m, err := e.Open(context.Background(), app.OpenRequest{DevicePath: c.d.path, LegacyDBDir: c.d.db, ClusterID: testCluster, Adopt: c.adopt})
			if !errors.Is(err, c.wantErr) || (err == nil) != (c.wantErr == nil) {
				t.Fatalf("Open = %v, want %v", err, c.wantErr)
			}
			if err == nil {
				if m.Snapshot().UUID != c.d.uuid {
					t.Fatalf("mounted store %s, want %s", m.Snapshot().UUID, c.d.uuid)
				}
				if err := m.Close(); err != nil {
					t.Fatal(err)
				}
			} else {
				after, err := os.ReadFile(c.d.path)
				if err != nil {
					t.Fatal(err)
				}
				if !bytes.Equal(before, after) {
					t.Fatal("a refused Open wrote to the device")
				}
			}
			dev, err := blockdev.Open(c.d.path, blockdev.Options{ReadOnly: true})
			if err != nil {
				t.Fatal(err)
			}
			defer dev.Close()
			l, err := blockdev.ReadLabel(dev)
			if err != nil || l.ClusterID != c.wantCluster || l.Version != c.wantVersion {
				t.Fatalf("label after Open: %+v, %v; want version %d naming cluster %x", l, err, c.wantVersion, c.wantCluster)
			}
			if c.wantErr == nil {
				fsck(t, c.d)
			}
		})
	}
}
