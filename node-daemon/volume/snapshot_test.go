package volume

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cobaltstore/cobalt/node-daemon/objstore"
)

func mustWrite(t *testing.T, m *Manager, id string, off int64, data []byte) {
	t.Helper()
	if err := m.Write(context.Background(), id, off, data); err != nil {
		t.Fatalf("Write %s at %d: %v", id, off, err)
	}
}

func mustReadEq(t *testing.T, what string, got []byte, err error, want []byte) {
	t.Helper()
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("%s: got %d bytes %x..., want %d bytes %x...", what, len(got), got[:min(len(got), 8)], len(want), want[:min(len(want), 8)])
	}
}

// TestSnapshotKeepsOldData: after a snapshot, overwriting the volume (a first write into a
// shared stripe) changes the volume and not the snapshot; the snapshot is listed with its source
// and size, survives a reopen, and taking it again is idempotent (of another volume: ErrConflict).
func TestSnapshotKeepsOldData(t *testing.T) {
	m, st := newManager(t, 1<<30)
	ctx := context.Background()
	if _, err := m.Create(ctx, "v", 4*testStripe, testStripe); err != nil {
		t.Fatal(err)
	}
	if _, err := m.Create(ctx, "w", 4*testStripe, testStripe); err != nil {
		t.Fatal(err)
	}
	old := bytes.Repeat([]byte{0xaa}, testStripe+8192) // stripe 0 and the start of stripe 1
	mustWrite(t, m, "v", 0, old)
	if err := m.SetUserAttr(ctx, "v", "gen", []byte("7")); err != nil {
		t.Fatal(err)
	}
	before := time.Now()
	info, err := m.Snapshot(ctx, "v", "s1")
	if err != nil {
		t.Fatalf("Snapshot: %v", err)
	}
	if info.ID != "s1" || info.Source != "v" || info.Size != 4*testStripe || info.StripeSize != testStripe {
		t.Fatalf("SnapshotInfo = %+v", info)
	}
	if info.Created.Before(before.Truncate(time.Microsecond)) || info.Created.After(time.Now()) {
		t.Fatalf("snapshot created at %v, not between %v and now", info.Created, before)
	}
	newer := bytes.Repeat([]byte{0x55}, 4096)
	mustWrite(t, m, "v", 4096, newer)
	mustWrite(t, m, "v", 3*testStripe, newer) // a stripe the snapshot does not have
	got, err := m.ReadSnapshot(ctx, "s1", 0, 4*testStripe)
	want := make([]byte, 4*testStripe)
	copy(want, old)
	mustReadEq(t, "snapshot after the volume was overwritten", got, err, want)
	got, err = m.Read(ctx, "v", 4096, 4096)
	mustReadEq(t, "volume after its overwrite", got, err, newer)

	if again, err := m.Snapshot(ctx, "v", "s1"); err != nil || !again.Created.Equal(info.Created) {
		t.Fatalf("repeated Snapshot = %+v, %v; want the first one, created at %v", again, err, info.Created)
	}
	if _, err := m.Snapshot(ctx, "w", "s1"); !errors.Is(err, ErrConflict) {
		t.Fatalf("Snapshot of another volume under an existing ID = %v, want ErrConflict", err)
	}
	if _, err := m.Snapshot(ctx, "missing", "s2"); !errors.Is(err, objstore.ErrNotFound) {
		t.Fatalf("Snapshot of a missing volume = %v, want ErrNotFound", err)
	}
	if _, err := m.Snapshot(ctx, "v", "bad/id"); !errors.Is(err, objstore.ErrInvalid) {
		t.Fatalf("Snapshot with a bad ID = %v, want ErrInvalid", err)
	}
	if _, err := m.ReadSnapshot(ctx, "s1", 4*testStripe-1, 2); !errors.Is(err, objstore.ErrInvalid) {
		t.Fatalf("ReadSnapshot past the end = %v, want ErrInvalid", err)
	}
	if _, err := m.Read(ctx, "s1", 0, 1); !errors.Is(err, objstore.ErrNotFound) {
		t.Fatalf("Read of a snapshot as a volume = %v, want ErrNotFound (snapshots are not volumes)", err)
	}
	if err := m.Write(ctx, "s1", 0, []byte{1}); !errors.Is(err, objstore.ErrNotFound) {
		t.Fatalf("Write to a snapshot = %v, want ErrNotFound (snapshots are read-only)", err)
	}

	m2, err := Open(ctx, st)
	if err != nil {
		t.Fatal(err)
	}
	list, err := m2.ListSnapshots(ctx)
	if err != nil || len(list) != 1 || list[0].ID != "s1" || list[0].Source != "v" || list[0].Size != 4*testStripe || !list[0].Created.Equal(info.Created) {
		t.Fatalf("ListSnapshots after reopen = %+v, %v (created at %v)", list, err, info.Created)
	}
	if list[0].Referenced < int64(len(old)) || list[0].Exclusive != list[0].Referenced {
		t.Fatalf("memstore snapshot usage %+v: it copies, so all it references is its own", list[0])
	}
	got, err = m2.ReadSnapshot(ctx, "s1", 0, 4*testStripe)
	mustReadEq(t, "snapshot after reopen", got, err, want)
	if m2.Count() != 2 {
		t.Fatalf("%d volumes after reopen, want 2 (a snapshot is not a volume)", m2.Count())
	}
}

// TestRestoreSizes restores a snapshot at its size, larger (the new range reads as zeros and is
// writable) and smaller (refused with ErrShrink); restores are idempotent and independent of the
// snapshot, and a restore carries none of the source's user attributes.
func TestRestoreSizes(t *testing.T) {
	m, _ := newManager(t, 1<<30)
	ctx := context.Background()
	if _, err := m.Create(ctx, "v", 2*testStripe, testStripe); err != nil {
		t.Fatal(err)
	}
	data := bytes.Repeat([]byte{7}, 2*testStripe)
	mustWrite(t, m, "v", 0, data)
	if err := m.SetUserAttr(ctx, "v", "gen", []byte("7")); err != nil {
		t.Fatal(err)
	}
	if _, err := m.Snapshot(ctx, "v", "s"); err != nil {
		t.Fatal(err)
	}
	if _, err := m.CreateFromSnapshot(ctx, "s", "small", testStripe); !errors.Is(err, ErrShrink) {
		t.Fatalf("restore to a smaller size = %v, want ErrShrink", err)
	}
	if _, ok := m.mu.vols["small"]; ok {
		t.Fatal("a refused restore created the volume")
	}
	same, err := m.CreateFromSnapshot(ctx, "s", "same", 0)
	if err != nil || same.Size != 2*testStripe || same.Origin != "snapshot/s" {
		t.Fatalf("restore at the snapshot's size = %+v, %v", same, err)
	}
	big, err := m.CreateFromSnapshot(ctx, "s", "big", 8*testStripe)
	if err != nil || big.Size != 8*testStripe {
		t.Fatalf("restore to a larger size = %+v, %v", big, err)
	}
	got, err := m.Read(ctx, "big", 0, 8*testStripe)
	want := make([]byte, 8*testStripe)
	copy(want, data)
	mustReadEq(t, "larger restore", got, err, want)
	mustWrite(t, m, "big", 7*testStripe, []byte{9})
	mustWrite(t, m, "big", 0, []byte{9})
	got, err = m.ReadSnapshot(ctx, "s", 0, 1)
	mustReadEq(t, "snapshot after its restore was written", got, err, []byte{7})
	if _, err := m.UserAttr(ctx, "big", "gen"); !errors.Is(err, objstore.ErrNotFound) {
		t.Fatalf("restore's user attribute = %v, want ErrNotFound (none carried over)", err)
	}
	if again, err := m.CreateFromSnapshot(ctx, "s", "big", 8*testStripe); err != nil || again.Size != 8*testStripe {
		t.Fatalf("repeated restore = %+v, %v", again, err)
	}
	if _, err := m.CreateFromSnapshot(ctx, "s", "big", 4*testStripe); !errors.Is(err, ErrConflict) {
		t.Fatalf("restore onto an existing volume of another size = %v, want ErrConflict", err)
	}
	if _, err := m.CreateFromSnapshot(ctx, "s", "v", 0); !errors.Is(err, ErrConflict) {
		t.Fatalf("restore onto an existing volume of another origin = %v, want ErrConflict", err)
	}
	if _, err := m.CreateFromSnapshot(ctx, "missing", "x", 0); !errors.Is(err, objstore.ErrNotFound) {
		t.Fatalf("restore of a missing snapshot = %v, want ErrNotFound", err)
	}
}

// TestCloneVolume clones a live volume at a larger size; the two evolve independently, and a
// smaller size is refused.
func TestCloneVolume(t *testing.T) {
	m, _ := newManager(t, 1<<30)
	ctx := context.Background()
	if _, err := m.Create(ctx, "v", 2*testStripe, testStripe); err != nil {
		t.Fatal(err)
	}
	mustWrite(t, m, "v", 100, []byte("before"))
	if _, err := m.CloneVolume(ctx, "v", "c", testStripe); !errors.Is(err, ErrShrink) {
		t.Fatalf("clone to a smaller size = %v, want ErrShrink", err)
	}
	info, err := m.CloneVolume(ctx, "v", "c", 3*testStripe)
	if err != nil || info.Size != 3*testStripe || info.Origin != "volume/v" {
		t.Fatalf("CloneVolume = %+v, %v", info, err)
	}
	mustWrite(t, m, "v", 100, []byte("source"))
	mustWrite(t, m, "c", 102, []byte("XX"))
	got, err := m.Read(ctx, "c", 100, 6)
	mustReadEq(t, "clone", got, err, []byte("beXXre"))
	got, err = m.Read(ctx, "v", 100, 6)
	mustReadEq(t, "source", got, err, []byte("source"))
}

// TestDeleteSourceWithSnapshots: deleting a volume that has a snapshot is allowed, and the
// snapshot keeps its data, can still be restored, and is deleted on its own.
func TestDeleteSourceWithSnapshots(t *testing.T) {
	m, st := newManager(t, 1<<30)
	ctx := context.Background()
	if _, err := m.Create(ctx, "v", 2*testStripe, testStripe); err != nil {
		t.Fatal(err)
	}
	data := bytes.Repeat([]byte{3}, 2*testStripe)
	mustWrite(t, m, "v", 0, data)
	if _, err := m.Snapshot(ctx, "v", "s"); err != nil {
		t.Fatal(err)
	}
	if err := m.Delete(ctx, "v"); err != nil {
		t.Fatalf("Delete of a volume with a snapshot: %v", err)
	}
	got, err := m.ReadSnapshot(ctx, "s", 0, 2*testStripe)
	mustReadEq(t, "snapshot of a deleted volume", got, err, data)
	if info, err := m.GetSnapshot(ctx, "s"); err != nil || info.Source != "v" {
		t.Fatalf("GetSnapshot = %+v, %v", info, err)
	}
	if _, err := m.CreateFromSnapshot(ctx, "s", "v", 0); err != nil {
		t.Fatalf("restore under the deleted source's ID: %v", err)
	}
	got, err = m.Read(ctx, "v", 0, 2*testStripe)
	mustReadEq(t, "restored volume", got, err, data)
	for _, err := range []error{m.DeleteSnapshot(ctx, "s"), m.DeleteSnapshot(ctx, "s"), m.Delete(ctx, "v")} {
		if err != nil {
			t.Fatal(err)
		}
	}
	if _, err := m.ReadSnapshot(ctx, "s", 0, 1); !errors.Is(err, objstore.ErrNotFound) {
		t.Fatalf("read of a deleted snapshot = %v, want ErrNotFound", err)
	}
	if colls, _ := st.ListCollections(ctx); len(colls) != 0 {
		t.Fatalf("collections left: %v", colls)
	}
	if fs, _ := st.Statfs(ctx); fs.Used != 0 {
		t.Fatalf("%d bytes used after deleting everything", fs.Used)
	}
}

// TestOpenFinishesInterruptedSnapshotDelete: a DeleteSnapshot that died after marking the
// snapshot and removing a stripe is finished by Open; the half-deleted snapshot is never listed.
func TestOpenFinishesInterruptedSnapshotDelete(t *testing.T) {
	m, st := newManager(t, 1<<30)
	ctx := context.Background()
	if _, err := m.Create(ctx, "v", 4*testStripe, testStripe); err != nil {
		t.Fatal(err)
	}
	mustWrite(t, m, "v", 0, make([]byte, 3*testStripe))
	if _, err := m.Snapshot(ctx, "v", "s"); err != nil {
		t.Fatal(err)
	}
	c := SnapshotCollectionName("s")
	if err := st.Commit(ctx, []objstore.Op{objstore.SetAttr(c, metaObject, attrDeleting, []byte{1})}); err != nil {
		t.Fatal(err)
	}
	if err := st.Commit(ctx, []objstore.Op{objstore.Remove(c, StripeName(0))}); err != nil {
		t.Fatal(err)
	}
	m2, err := Open(ctx, st)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	if list, err := m2.ListSnapshots(ctx); err != nil || len(list) != 0 {
		t.Fatalf("snapshots after Open = %+v, %v", list, err)
	}
	colls, err := st.ListCollections(ctx)
	if err != nil || len(colls) != 1 || colls[0] != CollectionName("v") {
		t.Fatalf("collections after Open = %v, %v", colls, err)
	}
}

// TestSnapshotUnderConcurrentWrites takes snapshots while writers stream writes, and checks that
// each snapshot is a prefix-consistent state: each writer writes blocks 0, 1, 2, ... of its own
// stripe in order, so a snapshot must hold exactly its first j blocks, where j is at least the
// number of writes acknowledged before Snapshot was called and at most the number started before
// it returned.
func TestSnapshotUnderConcurrentWrites(t *testing.T) {
	m, _ := newManager(t, 1<<30)
	ctx := context.Background()
	const writers, blocks, bs = 4, 16, 4096
	if _, err := m.Create(ctx, "v", writers*testStripe, testStripe); err != nil {
		t.Fatal(err)
	}
	block := func(w, i int) []byte {
		b := bytes.Repeat([]byte{byte(1 + w)}, bs)
		binary.LittleEndian.PutUint32(b, uint32(i+1))
		return b
	}
	var acked, started [writers]atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, writers)
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range blocks {
				started[w].Add(1)
				if err := m.Write(ctx, "v", int64(w)*testStripe+int64(i)*bs, block(w, i)); err != nil {
					errs <- err
					return
				}
				acked[w].Add(1)
			}
		}()
	}
	type taken struct {
		id         string
		lo, hi     [writers]int64
		info       SnapshotInfo
		infoErrors error
	}
	var snaps []taken
	for n := 0; ; n++ {
		var tk taken
		tk.id = "s" + string(rune('a'+n%26)) + string(rune('a'+n/26))
		for w := range writers {
			tk.lo[w] = acked[w].Load()
		}
		tk.info, tk.infoErrors = m.Snapshot(ctx, "v", tk.id)
		for w := range writers {
			tk.hi[w] = started[w].Load()
		}
		if tk.infoErrors != nil {
			t.Fatalf("Snapshot %s: %v", tk.id, tk.infoErrors)
		}
		snaps = append(snaps, tk)
		done := true
		for w := range writers {
			done = done && acked[w].Load() == blocks
		}
		if done || n == 200 {
			break
		}
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatalf("writer: %v", err)
	}
	inBetween := 0
	for _, tk := range snaps {
		for w := range writers {
			got, err := m.ReadSnapshot(ctx, tk.id, int64(w)*testStripe, blocks*bs)
			if err != nil {
				t.Fatal(err)
			}
			j := 0
			for j < blocks && bytes.Equal(got[j*bs:(j+1)*bs], block(w, j)) {
				j++
			}
			if !bytes.Equal(got[j*bs:], make([]byte, (blocks-j)*bs)) {
				t.Fatalf("snapshot %s, writer %d: blocks 0..%d written, then not zeros: not a prefix of the writes", tk.id, w, j)
			}
			if int64(j) < tk.lo[w] || int64(j) > tk.hi[w] {
				t.Fatalf("snapshot %s, writer %d: holds %d writes; %d were acknowledged before it and %d started before it returned",
					tk.id, w, j, tk.lo[w], tk.hi[w])
			}
			if int64(j) > tk.lo[w] && int64(j) < blocks {
				inBetween++
			}
		}
	}
	t.Logf("%d snapshots under %d writers; %d writer prefixes caught writes in flight at the snapshot", len(snaps), writers, inBetween)
}

// TestListSnapshotsPage: pages are sorted, start where the previous one said, hold at most limit
// snapshots, and filter by source; a page starting at an ID that does not exist starts after it.
func TestListSnapshotsPage(t *testing.T) {
	m, _ := newManager(t, 1<<30)
	ctx := context.Background()
	for _, id := range []string{"a", "b"} {
		if _, err := m.Create(ctx, id, testStripe, testStripe); err != nil {
			t.Fatal(err)
		}
	}
	// Snapshots s0..s9: the even ones of a, the odd ones of b; taken out of order.
	for _, i := range []int{7, 2, 9, 0, 4, 1, 8, 3, 6, 5} {
		src := "a"
		if i%2 == 1 {
			src = "b"
		}
		if _, err := m.Snapshot(ctx, src, "s"+string(rune('0'+i))); err != nil {
			t.Fatal(err)
		}
	}
	ids := func(infos []SnapshotInfo) (out string) {
		for _, i := range infos {
			out += i.ID + ","
		}
		return out
	}
	tests := []struct {
		source, start string
		limit         int
		want, next    string
	}{
		{"", "", 0, "s0,s1,s2,s3,s4,s5,s6,s7,s8,s9,", ""},
		{"", "", 4, "s0,s1,s2,s3,", "s4"},
		{"", "s4", 4, "s4,s5,s6,s7,", "s8"},
		{"", "s8", 4, "s8,s9,", ""},
		{"", "s8", 2, "s8,s9,", ""},
		{"", "s35", 2, "s4,s5,", "s6"},
		{"b", "", 2, "s1,s3,", "s5"},
		{"b", "s5", 2, "s5,s7,", "s9"},
		{"a", "s9", 0, "", ""},
		{"gone", "", 0, "", ""},
	}
	for _, tt := range tests {
		got, next, err := m.ListSnapshotsPage(ctx, tt.source, tt.start, tt.limit)
		if err != nil {
			t.Fatalf("ListSnapshotsPage(%q, %q, %d): %v", tt.source, tt.start, tt.limit, err)
		}
		if ids(got) != tt.want || next != tt.next {
			t.Errorf("ListSnapshotsPage(%q, %q, %d) = %s next %q, want %s next %q", tt.source, tt.start, tt.limit, ids(got), next, tt.want, tt.next)
		}
		for _, i := range got {
			if tt.source != "" && i.Source != tt.source || i.Size != testStripe {
				t.Errorf("ListSnapshotsPage(%q, ...) returned %+v", tt.source, i)
			}
		}
	}
}
