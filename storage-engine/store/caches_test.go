package store

import (
	"errors"
	"testing"

	"github.com/cobaltstore/cobalt/storage-engine/onode"
)

// TestOnodeCacheAdapter checks the sharded cache behind the OnodeCache interface with the
// store's commit protocol: pin (a placeholder when absent) and mark dirty before the KV commit,
// then insert or remove, mark clean and unpin; held entries survive any trim.
func TestOnodeCacheAdapter(t *testing.T) {
	caches, err := newStoreCaches(Options{CacheType: "2q", CacheShards: 2, MemoryTarget: 64 << 20})
	if err != nil {
		t.Fatal(err)
	}
	defer caches.close()
	oc := caches.onodeCache(Options{})
	k := OnodeKey{"c", "o"}

	oc.Pin(k)
	oc.MarkDirty(k)
	if _, ok := oc.Get(k); ok {
		t.Fatal("a pinned placeholder reads as present")
	}
	caches.onodes.SetCapacity(0)
	o := &onode.Onode{Nid: 7, Size: 4096, Extents: []onode.Extent{{Logical: 0, Phys: 65536, Length: 4096, Csums: []uint32{1}}}}
	oc.Insert(k, o)
	if got, ok := oc.Get(k); !ok || got != o || oc.Len() != 1 {
		t.Fatalf("held entry lost at capacity 0: %v %v len %d", got, ok, oc.Len())
	}
	oc.MarkClean(k)
	if oc.Len() != 1 {
		t.Fatal("a pinned entry was evicted when marked clean")
	}
	oc.Unpin(k)
	if oc.Len() != 0 {
		t.Fatal("a clean unpinned entry stayed over capacity")
	}
	caches.onodes.SetCapacity(100)
	oc.Insert(k, o)
	oc.Pin(k)
	oc.Remove(k)
	oc.MarkClean(k) // no-ops on a removed key
	oc.Unpin(k)
	if _, ok := oc.Get(k); ok || oc.Len() != 0 {
		t.Fatal("removed entry still cached")
	}
	if err := caches.onodes.Check(); err != nil {
		t.Fatal(err)
	}
	m := caches.metrics()
	if m.Memory[0] != caches.onodes.Bytes() || m.Budgets[1] == 0 || len(m.Onodes.Shards) != 2 {
		t.Fatalf("metrics: %+v", m)
	}
	if _, err := newStoreCaches(Options{CacheType: "arc", MemoryTarget: 1 << 20}); err == nil {
		t.Fatal("unknown cache type accepted")
	}
}

func TestOnodeBytesGrowsWithContent(t *testing.T) {
	small := onodeBytes(&onode.Onode{})
	big := onodeBytes(&onode.Onode{
		Extents:    make([]onode.Extent, 10),
		Xattrs:     map[string][]byte{"name": make([]byte, 100)},
		OmapHeader: make([]byte, 50),
	})
	if small != onodeBytes(nil) || big < small+10*40+150 {
		t.Fatalf("onodeBytes: empty %d, with content %d", small, big)
	}
}

// TestStoreReadsThroughBufferCache: a second read of the same range is served by the buffer
// cache, and every kind of change to an object (overwrite, zero, truncate, clone onto it,
// rename onto it, remove) is visible to the next read, never the cached bytes.
func TestStoreReadsThroughBufferCache(t *testing.T) {
	s := newStore(t, Options{})
	hits := func() int64 { return s.Metrics().Cache.Buffers.Total.Hits }
	data := pattern(64<<10, 3)
	commit(t, s, NewTransaction().CreateCollection("c").Write("c", "o", 0, data).Write("c", "p", 0, pattern(8192, 9)))
	mustRead(t, s, "c", "o", 4096, 8192, data[4096:12288])
	before := hits()
	mustRead(t, s, "c", "o", 4096, 8192, data[4096:12288])
	if hits() != before+1 {
		t.Fatalf("second read: %d cache hits, want %d", hits(), before+1)
	}
	// Partly cached: the cached part is copied, the rest read from the device.
	mustRead(t, s, "c", "o", 0, 16384, data[:16384])

	steps := []struct {
		name string
		txn  *Transaction
		edit func()
	}{
		{"overwrite", NewTransaction().Write("c", "o", 5000, []byte("new bytes")), func() { copy(data[5000:], "new bytes") }},
		{"zero", NewTransaction().Zero("c", "o", 8000, 3000), func() { clear(data[8000:11000]) }},
		{"truncate", NewTransaction().Truncate("c", "o", 10000), func() { data = data[:10000] }},
		{"clone onto", NewTransaction().Clone("c", "p", "o"), func() { data = pattern(8192, 9) }},
		{"remove, then rename onto", NewTransaction().Remove("c", "o").Write("c", "q", 0, []byte("renamed")).Rename("c", "q", "o"), func() { data = []byte("renamed") }},
	}
	for _, st := range steps {
		mustRead(t, s, "c", "o", 0, 0, data) // cache what is there now
		commit(t, s, st.txn)
		st.edit()
		mustRead(t, s, "c", "o", 0, 0, data)
	}
	commit(t, s, NewTransaction().Remove("c", "o"))
	if _, err := s.Read(ctx, "c", "o", 0, 0); !errors.Is(err, ErrNotFound) {
		t.Fatalf("read after remove: %v", err)
	}
	if err := s.caches.buffers.Check(); err != nil {
		t.Fatal(err)
	}
	m := s.Metrics().Cache
	if m.Buffers.Total.Entries != 0 && m.Memory[1] == 0 {
		t.Fatalf("buffers cached but not accounted: %+v", m.Memory)
	}
}
