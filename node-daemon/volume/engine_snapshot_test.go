package volume_test

import (
	"bytes"
	"context"
	"path/filepath"
	"testing"

	"github.com/google/uuid"

	"github.com/cobaltstore/cobalt/node-daemon/app"
	"github.com/cobaltstore/cobalt/node-daemon/engine"
	"github.com/cobaltstore/cobalt/node-daemon/volume"
)

const unit = 4096 // the engine's allocation unit in these tests

// newEngineManager opens a volume manager on a file-backed engine store of size bytes. At cleanup
// a deep fsck of the store must be clean (reference counts equal to the references, no leaked
// space) before it is closed.
func newEngineManager(tb testing.TB, size int64) (*volume.Manager, *engine.Mounted) {
	tb.Helper()
	ctx := context.Background()
	e := engine.New(engine.Settings{EngineConfig: app.EngineConfig{CacheType: "2q", MinAllocSize: unit}})
	path := filepath.Join(tb.TempDir(), "dev.img")
	cluster := [16]byte{0xc1, 15: 0x0e}
	if err := e.Mkfs(ctx, app.MkfsRequest{DevicePath: path, UUID: uuid.NewString(), CreateSize: size, ClusterID: cluster}); err != nil {
		tb.Fatalf("Mkfs: %v", err)
	}
	ms, err := e.Open(ctx, app.OpenRequest{DevicePath: path, ClusterID: cluster})
	if err != nil {
		tb.Fatalf("Open: %v", err)
	}
	mnt := ms.(*engine.Mounted)
	tb.Cleanup(func() {
		r, err := mnt.Engine().Fsck(ctx, true)
		if err != nil || !r.OK() {
			tb.Errorf("fsck: %v, %+v", err, r)
		}
		if err := mnt.Close(); err != nil {
			tb.Errorf("Close: %v", err)
		}
	})
	m, err := volume.Open(ctx, mnt)
	if err != nil {
		tb.Fatalf("volume.Open: %v", err)
	}
	return m, mnt
}

func used(t *testing.T, mnt *engine.Mounted) int64 {
	t.Helper()
	fs, err := mnt.Statfs(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return fs.Used
}

// TestEngineSnapshotSpace follows the space of the engine store through a volume's life with
// snapshots: a snapshot uses no data space and holds nothing exclusively; the first write after
// it copies only the allocation unit it writes (copy-on-write), which becomes the snapshot's
// exclusive space, while the snapshot keeps the old data; a restore to a larger size shares the
// snapshot's data; deleting the source keeps the shared data alive (the snapshot then holds it
// exclusively); deleting everything returns the used space to what it was before the volume
// existed, and the cleanup's deep fsck checks the reference counts.
func TestEngineSnapshotSpace(t *testing.T) {
	m, mnt := newEngineManager(t, 256<<20)
	ctx := context.Background()
	const stripe, stripes = volume.MinStripeSize, 8
	before := used(t, mnt)
	if _, err := m.Create(ctx, "v", 16*stripe, stripe); err != nil {
		t.Fatal(err)
	}
	data := bytes.Repeat([]byte{0xd1}, stripes*stripe)
	if err := m.Write(ctx, "v", 0, data); err != nil {
		t.Fatal(err)
	}
	written := used(t, mnt)
	if written-before < int64(len(data)) {
		t.Fatalf("writing %d bytes used %d", len(data), written-before)
	}
	info, err := m.Snapshot(ctx, "v", "s")
	if err != nil {
		t.Fatal(err)
	}
	if got := used(t, mnt); got != written {
		t.Fatalf("the snapshot changed used space from %d to %d: it must share the data", written, got)
	}
	if info.Referenced != int64(len(data)) || info.Exclusive != 0 {
		t.Fatalf("fresh snapshot: referenced %d, exclusive %d; want %d and 0", info.Referenced, info.Exclusive, len(data))
	}

	// Copy-on-write: the first 4 KiB write into a shared stripe allocates one unit.
	newer := bytes.Repeat([]byte{0x22}, unit)
	if err := m.Write(ctx, "v", 3*unit, newer); err != nil {
		t.Fatal(err)
	}
	if got := used(t, mnt); got != written+unit {
		t.Fatalf("a 4 KiB write after the snapshot used %d bytes, want one unit (%d)", got-written, unit)
	}
	got, err := m.ReadSnapshot(ctx, "s", 0, int64(len(data)))
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("the snapshot changed with its volume (%v)", err)
	}
	if info, err = m.GetSnapshot(ctx, "s"); err != nil || info.Exclusive != unit {
		t.Fatalf("snapshot after one overwrite: %+v, %v; want exclusive %d", info, err, unit)
	}

	// Restore to a larger size: shares everything, reads the old data then zeros.
	if _, err := m.CreateFromSnapshot(ctx, "s", "r", 32*stripe); err != nil {
		t.Fatal(err)
	}
	if got := used(t, mnt); got != written+unit {
		t.Fatalf("the restore used %d bytes, want none", got-written-unit)
	}
	got, err = m.Read(ctx, "r", 0, 32*stripe)
	want := make([]byte, 32*stripe)
	copy(want, data)
	if err != nil || !bytes.Equal(got, want) {
		t.Fatalf("restored volume differs from the snapshot (%v)", err)
	}

	// Deleting the source: the snapshot and the restore keep the shared data.
	if err := m.Delete(ctx, "v"); err != nil {
		t.Fatal(err)
	}
	if got := used(t, mnt); got != written {
		t.Fatalf("after deleting the source %d bytes in use, want %d (only its private unit freed)", got, written)
	}
	got, err = m.ReadSnapshot(ctx, "s", 0, int64(len(data)))
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("snapshot after its source was deleted (%v)", err)
	}
	// Deleting the snapshot frees nothing: the restore still shares all of it.
	if err := m.DeleteSnapshot(ctx, "s"); err != nil {
		t.Fatal(err)
	}
	if got := used(t, mnt); got != written {
		t.Fatalf("deleting a snapshot whose data a restore shares changed used space to %d, want %d", got, written)
	}
	if err := m.Delete(ctx, "r"); err != nil {
		t.Fatal(err)
	}
	if got := used(t, mnt); got != before {
		t.Fatalf("after deleting everything %d bytes in use, %d before", got, before)
	}
}

// TestEngineSnapshotExclusiveAfterSourceDeleted: once its source is deleted, a snapshot holds all
// its data exclusively, and deleting it frees exactly that.
func TestEngineSnapshotExclusiveAfterSourceDeleted(t *testing.T) {
	m, mnt := newEngineManager(t, 256<<20)
	ctx := context.Background()
	before := used(t, mnt)
	if _, err := m.Create(ctx, "v", 1<<20, volume.MinStripeSize); err != nil {
		t.Fatal(err)
	}
	if err := m.Write(ctx, "v", 0, bytes.Repeat([]byte{1}, 512<<10)); err != nil {
		t.Fatal(err)
	}
	if _, err := m.Snapshot(ctx, "v", "s"); err != nil {
		t.Fatal(err)
	}
	if err := m.Delete(ctx, "v"); err != nil {
		t.Fatal(err)
	}
	list, err := m.ListSnapshots(ctx)
	if err != nil || len(list) != 1 || list[0].Exclusive != 512<<10 || list[0].Referenced != 512<<10 {
		t.Fatalf("snapshots after deleting the source: %+v, %v", list, err)
	}
	if got := used(t, mnt); got-before != list[0].Exclusive {
		t.Fatalf("used %d bytes above the empty store, the snapshot reports %d exclusive", got-before, list[0].Exclusive)
	}
	if err := m.DeleteSnapshot(ctx, "s"); err != nil {
		t.Fatal(err)
	}
	if got := used(t, mnt); got != before {
		t.Fatalf("after deleting everything %d bytes in use, %d before", got, before)
	}
}
