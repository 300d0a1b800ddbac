package store

import (
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
