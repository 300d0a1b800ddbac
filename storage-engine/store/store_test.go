package store

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"

	"github.com/cobaltstore/cobalt/storage-engine/blockdev"
)

var ctx = context.Background()

func TestWriteReadAcrossSizesAndOffsets(t *testing.T) {
	for _, deferred := range []int{-1, 0} {
		t.Run(fmt.Sprintf("deferred=%d", deferred), func(t *testing.T) {
			s := newStore(t, Options{PreferDeferredSize: deferred})
			commit(t, s, NewTransaction().CreateCollection("c"))
			model := []byte{}
			writes := []struct {
				off uint64
				n   int
			}{{0, 4096}, {100, 10}, {4000, 200}, {8192, 65536}, {70000, 5}, {1 << 20, 3}, {5, 1 << 17}, {4096, 4096}}
			for i, w := range writes {
				data := pattern(w.n, byte(i+1))
				commit(t, s, NewTransaction().Write("c", "o", w.off, data))
				if end := int(w.off) + w.n; end > len(model) {
					model = append(model, make([]byte, end-len(model))...)
				}
				copy(model[w.off:], data)
				mustRead(t, s, "c", "o", 0, 0, model)
				if len(model) > 4090 {
					mustRead(t, s, "c", "o", 4090, 9000, model[4090:min(len(model), 13090)])
				}
			}
			st, err := s.Stat(ctx, "c", "o")
			if err != nil || st.Size != uint64(len(model)) {
				t.Fatalf("Stat = %+v, %v; want size %d", st, err, len(model))
			}
			mustRead(t, s, "c", "o", uint64(len(model))+10, 5, []byte{})
		})
	}
}

func TestDataAndMetadataSurviveReopen(t *testing.T) {
	e := newEnv(t, nil, Options{})
	s, err := Open(ctx, e.dev, e.dir, e.opts)
	if err != nil {
		t.Fatal(err)
	}
	data := pattern(300000, 3)
	commit(t, s, NewTransaction().CreateCollection("c").Write("c", "a", 0, data))
	txn := NewTransaction().Write("c", "a", 10, []byte("small")).
		SetAttr("c", "a", "x", []byte("1")).OmapSet("c", "a", map[string][]byte{"k1": []byte("v1"), "k2": nil}).
		OmapSetHeader("c", "a", []byte("hdr"))
	commit(t, s, txn)
	copy(data[10:], "small")
	if m := s.Metrics(); m.DeferredQueue == 0 && m.DeferredApplied == 0 {
		t.Fatalf("the small overwrite should be pending as a deferred write, metrics %+v", m)
	}
	mustCheck(t, s)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = e.open(t)
	mustRead(t, s, "c", "a", 0, 0, data)
	if v, err := s.GetAttr(ctx, "c", "a", "x"); err != nil || string(v) != "1" {
		t.Fatalf("GetAttr = %q, %v", v, err)
	}
	om, err := s.OmapGet(ctx, "c", "a", "k1", "k2", "k3")
	if err != nil || string(om["k1"]) != "v1" || om["k2"] == nil || len(om) != 2 {
		t.Fatalf("OmapGet = %q, %v", om, err)
	}
	if h, err := s.OmapGetHeader(ctx, "c", "a"); err != nil || string(h) != "hdr" {
		t.Fatalf("OmapGetHeader = %q, %v", h, err)
	}
	if s.UUID() == "" {
		t.Fatal("empty UUID")
	}
}

func TestErrors(t *testing.T) {
	s := newStore(t, Options{})
	commit(t, s, NewTransaction().CreateCollection("c").Touch("c", "o"))
	cases := []struct {
		name string
		txn  *Transaction
		want error
	}{
		{"create existing collection", NewTransaction().CreateCollection("c"), ErrExists},
		{"write to missing collection", NewTransaction().Write("nope", "o", 0, []byte("x")), ErrNotFound},
		{"remove missing object", NewTransaction().Remove("c", "missing"), ErrNotFound},
		{"setattr on missing object", NewTransaction().SetAttr("c", "missing", "a", nil), ErrNotFound},
		{"truncate missing object", NewTransaction().Truncate("c", "missing", 0), ErrNotFound},
		{"rename onto existing", NewTransaction().Touch("c", "p").Rename("c", "o", "p"), ErrExists},
		{"remove non-empty collection", NewTransaction().RemoveCollection("c"), ErrNotEmpty},
		{"invalid object name", NewTransaction().Touch("c", "a\x00b"), ErrInvalid},
		{"empty collection name", NewTransaction().CreateCollection(""), ErrInvalid},
	}
	for _, tc := range cases {
		if err := s.Commit(ctx, tc.txn); !errors.Is(err, tc.want) {
			t.Errorf("%s: Commit = %v, want %v", tc.name, err, tc.want)
		}
	}
	// A failed transaction leaves nothing behind, even ops before the failing one.
	if ok, _ := s.Exists(ctx, "c", "p"); ok {
		t.Fatal("object p from a failed transaction exists")
	}
	if _, err := s.Read(ctx, "c", "missing", 0, 0); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Read missing = %v", err)
	}
	if _, err := s.GetAttr(ctx, "c", "o", "nope"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("GetAttr missing = %v", err)
	}
}

func TestCollectionsAndListing(t *testing.T) {
	s := newStore(t, Options{})
	txn := NewTransaction().CreateCollection("b").CreateCollection("a").CreateCollection("a\x01")
	var want []string
	for i := range 25 {
		name := fmt.Sprintf("obj-%03d", i)
		want = append(want, name)
		txn.Touch("a", name)
	}
	txn.Touch("a\x01", "other").Touch("b", "zzz")
	commit(t, s, txn)
	colls, err := s.ListCollections(ctx)
	if err != nil || !slices.Equal(colls, []string{"a", "a\x01", "b"}) {
		t.Fatalf("ListCollections = %q, %v", colls, err)
	}
	var got []string
	start := ""
	for {
		page, next, err := s.ListObjects(ctx, "a", start, 10)
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, page...)
		if next == "" {
			break
		}
		start = next
	}
	if !slices.Equal(got, want) {
		t.Fatalf("listed %q, want %q", got, want)
	}
	rm := NewTransaction()
	for _, n := range want {
		rm.Remove("a", n)
	}
	rm.RemoveCollection("a")
	commit(t, s, rm)
	if ok, _ := s.CollectionExists(ctx, "a"); ok {
		t.Fatal("collection a still exists")
	}
	if _, _, err := s.ListObjects(ctx, "a", "", 0); !errors.Is(err, ErrNotFound) {
		t.Fatalf("ListObjects on removed collection = %v", err)
	}
	if page, _, err := s.ListObjects(ctx, "a\x01", "", 0); err != nil || !slices.Equal(page, []string{"other"}) {
		t.Fatalf("neighbor collection lists %q, %v", page, err)
	}
}

func TestCloneSharesAndCopiesOnWrite(t *testing.T) {
	for _, deferred := range []int{-1, 0} {
		t.Run(fmt.Sprintf("deferred=%d", deferred), func(t *testing.T) {
			s := newStore(t, Options{PreferDeferredSize: deferred})
			data := pattern(1<<20, 9)
			commit(t, s, NewTransaction().CreateCollection("c").Write("c", "src", 0, data).
				SetAttr("c", "src", "a", []byte("x")).OmapSet("c", "src", map[string][]byte{"k": []byte("v")}))
			before := s.Statfs().Used
			commit(t, s, NewTransaction().Clone("c", "src", "dst"))
			if used := s.Statfs().Used; used != before {
				t.Fatalf("clone used %d more bytes; it should share extents", used-before)
			}
			commit(t, s, NewTransaction().Write("c", "dst", 4096, []byte("changed")))
			mustRead(t, s, "c", "src", 0, 0, data)
			d2 := slices.Clone(data)
			copy(d2[4096:], "changed")
			mustRead(t, s, "c", "dst", 0, 0, d2)
			if om, _ := s.OmapGet(ctx, "c", "dst", "k"); string(om["k"]) != "v" {
				t.Fatalf("clone omap = %q", om)
			}
			commit(t, s, NewTransaction().Remove("c", "src"))
			mustRead(t, s, "c", "dst", 0, 0, d2)
			commit(t, s, NewTransaction().Remove("c", "dst"))
			if used := s.Statfs().Used; used != 0 {
				t.Fatalf("after removing both, %d bytes still used", used)
			}
		})
	}
}

func TestRenameKeepsDataAndOmap(t *testing.T) {
	s := newStore(t, Options{})
	commit(t, s, NewTransaction().CreateCollection("c").Write("c", "a", 0, []byte("hello")).
		OmapSet("c", "a", map[string][]byte{"k": []byte("v")}))
	commit(t, s, NewTransaction().Rename("c", "a", "b"))
	mustRead(t, s, "c", "b", 0, 0, []byte("hello"))
	if ok, _ := s.Exists(ctx, "c", "a"); ok {
		t.Fatal("source still exists")
	}
	var keys []string
	if err := s.OmapIterate(ctx, "c", "b", "", func(k string, v []byte) bool { keys = append(keys, k+"="+string(v)); return true }); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(keys, []string{"k=v"}) {
		t.Fatalf("omap after rename = %q", keys)
	}
}

func TestTruncateZeroAndOmapOps(t *testing.T) {
	s := newStore(t, Options{})
	data := pattern(50000, 1)
	commit(t, s, NewTransaction().CreateCollection("c").Write("c", "o", 0, data))
	commit(t, s, NewTransaction().Truncate("c", "o", 5000).Truncate("c", "o", 20000))
	want := append(slices.Clone(data[:5000]), make([]byte, 15000)...)
	mustRead(t, s, "c", "o", 0, 0, want)
	commit(t, s, NewTransaction().Zero("c", "o", 100, 9000).Zero("c", "o", 30000, 10))
	clear(want[100:9100])
	want = append(want, make([]byte, 10010)...)
	mustRead(t, s, "c", "o", 0, 0, want)
	commit(t, s, NewTransaction().OmapSet("c", "o", map[string][]byte{"a": {1}, "b": {2}, "c": {3}}).
		OmapRmKeys("c", "o", "b").OmapSetHeader("c", "o", []byte("h")))
	om, _ := s.OmapGet(ctx, "c", "o", "a", "b", "c")
	if len(om) != 2 {
		t.Fatalf("omap = %v", om)
	}
	commit(t, s, NewTransaction().OmapClear("c", "o").RmAttr("c", "o", "nope"))
	om, _ = s.OmapGet(ctx, "c", "o", "a", "c")
	if h, _ := s.OmapGetHeader(ctx, "c", "o"); len(om) != 0 || h != nil {
		t.Fatalf("after clear: omap %v header %q", om, h)
	}
}

func TestStatfsAndMetrics(t *testing.T) {
	s := newStore(t, Options{PreferDeferredSize: -1})
	st := s.Statfs()
	if st.Used != 0 || st.Available != st.Total || st.Total == 0 {
		t.Fatalf("fresh Statfs = %+v", st)
	}
	commit(t, s, NewTransaction().CreateCollection("c").Write("c", "o", 0, make([]byte, 10000)))
	st = s.Statfs()
	if st.Used != 12288 || st.Objects != 1 || st.StoredBytes != 10000 {
		t.Fatalf("Statfs = %+v", st)
	}
	if _, err := s.Read(ctx, "c", "o", 0, 0); err != nil {
		t.Fatal(err)
	}
	m := s.Metrics()
	if m.Commits != 1 || m.Reads != 1 || m.BytesRead != 10000 || m.CommitGroups != 1 || m.CommitLatency.Count != 1 ||
		m.AllocFree != int64(st.Available) {
		t.Fatalf("Metrics = %+v", m)
	}
}

func TestMkfsRefusesForeignSignatures(t *testing.T) {
	dev := blockdev.NewMem(testDevSize, 4096)
	e := newEnv(t, dev, Options{})
	_ = e
	// The device now carries a Cobalt label: mkfs again must refuse without force.
	_, err := Mkfs(ctx, dev, "other", MkfsOptions{FS: e.fs})
	if !errors.Is(err, ErrForeignSignature) {
		t.Fatalf("second Mkfs = %v, want ErrForeignSignature", err)
	}
	// An ext4 superblock magic at 1080.
	dev2 := blockdev.NewMem(testDevSize, 4096)
	buf := blockdev.AlignedBuffer(4096)
	buf[1080], buf[1081] = 0x53, 0xEF
	if _, err := dev2.WriteAt(buf, 0); err != nil {
		t.Fatal(err)
	}
	if _, err := Mkfs(ctx, dev2, "db2", MkfsOptions{FS: e.fs}); !errors.Is(err, ErrForeignSignature) {
		t.Fatalf("Mkfs on ext4-looking device = %v", err)
	}
	if _, err := Mkfs(ctx, dev2, "db2", MkfsOptions{FS: e.fs, Force: true}); err != nil {
		t.Fatalf("forced Mkfs = %v", err)
	}
	sig, err := blockdev.DetectSignature(dev2)
	if err != nil || sig.Kind != "cobalt" {
		t.Fatalf("after mkfs the device shows %v, %v", sig, err)
	}
	// Metadata of another store cannot be mounted with this device.
	if _, err := Open(ctx, dev2, e.dir, Options{FS: e.fs}); !errors.Is(err, ErrInvalid) {
		t.Fatalf("Open with mismatched metadata = %v", err)
	}
}

func TestBitRotIsReportedNeverReturned(t *testing.T) {
	mem := blockdev.NewMem(testDevSize, 4096)
	e := newEnv(t, mem, Options{PreferDeferredSize: -1})
	s, err := Open(ctx, e.dev, e.dir, e.opts)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	commit(t, s, NewTransaction().CreateCollection("c").Write("c", "o", 0, pattern(3*4096, 4)))
	on, err := s.loadOnode(OnodeKey{"c", "o"})
	if err != nil {
		t.Fatal(err)
	}
	phys := int64(on.Extents[0].Phys) + 4096 + 17
	blk := blockdev.AlignedBuffer(4096)
	if _, err := mem.ReadAt(blk, phys-17); err != nil {
		t.Fatal(err)
	}
	blk[17] ^= 0x10
	if _, err := mem.WriteAt(blk, phys-17); err != nil {
		t.Fatal(err)
	}
	got, err := s.Read(ctx, "c", "o", 0, 0)
	var ce *CorruptionError
	if !IsCorruption(err) || !errors.As(err, &ce) || got != nil {
		t.Fatalf("Read after bit flip = %d bytes, %v", len(got), err)
	}
	if ce.Collection != "c" || ce.Object != "o" || ce.Offset != 4096 {
		t.Fatalf("corruption error names %+v", ce)
	}
	// Blocks that are intact still read.
	mustRead(t, s, "c", "o", 0, 4096, pattern(3*4096, 4)[:4096])
	r, err := s.Fsck(ctx, true)
	if err != nil || r.CorruptBlocks != 1 || r.OK() {
		t.Fatalf("deep fsck = %+v, %v", r, err)
	}
	if r, err := s.Fsck(ctx, false); err != nil || !r.OK() {
		t.Fatalf("shallow fsck should not read data: %+v, %v", r, err)
	}
	// A partial overwrite of the rotten block must fail rather than spread bad data.
	if err := s.Commit(ctx, NewTransaction().Write("c", "o", 4096+5, []byte("x"))); !IsCorruption(err) {
		t.Fatalf("read-modify-write over a rotten block = %v", err)
	}
	// Overwriting it whole heals it.
	commit(t, s, NewTransaction().Write("c", "o", 4096, bytes.Repeat([]byte{1}, 4096)))
	if r, err := s.Fsck(ctx, true); err != nil || !r.OK() {
		t.Fatalf("fsck after healing = %+v, %v", r, err)
	}
}

func TestClosedStoreRefusesCalls(t *testing.T) {
	e := newEnv(t, nil, Options{})
	s, err := Open(ctx, e.dev, e.dir, e.opts)
	if err != nil {
		t.Fatal(err)
	}
	commit(t, s, NewTransaction().CreateCollection("c").Touch("c", "o"))
	mustCheck(t, s)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("second Close = %v", err)
	}
	if err := s.Commit(ctx, NewTransaction().Touch("c", "p")); !errors.Is(err, ErrClosed) {
		t.Fatalf("Commit after Close = %v", err)
	}
	if _, err := s.Read(ctx, "c", "o", 0, 0); !errors.Is(err, ErrClosed) {
		t.Fatalf("Read after Close = %v", err)
	}
	if _, _, err := s.ListObjects(ctx, "c", "", 0); !errors.Is(err, ErrClosed) {
		t.Fatalf("ListObjects after Close = %v", err)
	}
	if _, err := s.Fsck(ctx, false); !errors.Is(err, ErrClosed) {
		t.Fatalf("Fsck after Close = %v", err)
	}
}

func TestOmapClearThenCloneInOneTransaction(t *testing.T) {
	s := newStore(t, Options{})
	commit(t, s, NewTransaction().CreateCollection("c").Touch("c", "a").
		OmapSet("c", "a", map[string][]byte{"old1": {1}, "old2": {2}}))
	commit(t, s, NewTransaction().OmapClear("c", "a").OmapSet("c", "a", map[string][]byte{"new": {3}}).
		Clone("c", "a", "b").OmapRmKeys("c", "a", "new"))
	var keys []string
	if err := s.OmapIterate(ctx, "c", "b", "", func(k string, _ []byte) bool { keys = append(keys, k); return true }); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(keys, []string{"new"}) {
		t.Fatalf("clone's omap = %q, want [new]", keys)
	}
	if om, _ := s.OmapGet(ctx, "c", "a", "new", "old1"); len(om) != 0 {
		t.Fatalf("source omap = %q", om)
	}
}

func TestFailedLargeWriteReleasesPreparedSpace(t *testing.T) {
	s := newStore(t, Options{})
	commit(t, s, NewTransaction().CreateCollection("c"))
	before := s.Statfs()
	// The write's data is written to new space before staging finds the missing object.
	err := s.Commit(ctx, NewTransaction().Write("c", "o", 0, pattern(1<<20, 1)).SetAttr("c", "missing", "a", nil))
	if !errors.Is(err, ErrNotFound) {
		t.Fatalf("Commit = %v, want ErrNotFound", err)
	}
	if m := s.Metrics(); m.PreparedBytes != 1<<20 {
		t.Fatalf("prepared %d bytes, want the 1 MiB write prepared", m.PreparedBytes)
	}
	if after := s.Statfs(); after != before {
		t.Fatalf("space after the failed transaction %+v, before %+v", after, before)
	}
	if ok, _ := s.Exists(ctx, "c", "o"); ok {
		t.Fatal("object of the failed transaction exists")
	}
}

// TestSmallWritesAfterPreparedWriteInOneTransaction: a large write (its whole units prepared
// before staging) then two small writes into the same block, all in one transaction: the second
// small write merges with the first one's deferred block, not with the prepared data under it
// (it used to, losing the first small write).
func TestSmallWritesAfterPreparedWriteInOneTransaction(t *testing.T) {
	s := newStore(t, Options{})
	data := pattern(64<<10, 1)
	commit(t, s, NewTransaction().CreateCollection("c").Write("c", "o", 0, data).
		Write("c", "o", 100, []byte("aaaaaaaaaa")).Write("c", "o", 200, []byte("bbbbbbbbbb")))
	copy(data[100:], "aaaaaaaaaa")
	copy(data[200:], "bbbbbbbbbb")
	mustRead(t, s, "c", "o", 0, 0, data)
	if m := s.Metrics(); m.PreparedBytes == 0 || m.DeferredQueue == 0 {
		t.Fatalf("the test no longer exercises a prepared write and deferred writes: %+v", m)
	}
}

// TestWriteRenameWriteInOneTransaction: an object written, renamed and written again in one
// transaction keeps both writes once its metadata is read back from the KV: the extent shards
// the first write changed are stored although the object changed names in between.
func TestWriteRenameWriteInOneTransaction(t *testing.T) {
	for _, verify := range []bool{true, false} {
		e := newEnv(t, nil, Options{})
		e.opts.verifyShards = verify
		s := e.open(t)
		commit(t, s, NewTransaction().CreateCollection("c").Write("c", "a", 200000, []byte("zz")))
		commit(t, s, NewTransaction().Write("c", "a", 100, []byte("xx")).Rename("c", "a", "b").
			Write("c", "b", 200010, []byte("yy")))
		want := make([]byte, 200012)
		copy(want[100:], "xx")
		copy(want[200000:], "zz")
		copy(want[200010:], "yy")
		mustRead(t, s, "c", "b", 0, 0, want)
		s = reopen(t, e, s)
		mustRead(t, s, "c", "b", 0, 0, want)
	}
}
