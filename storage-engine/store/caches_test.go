package store

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/cobaltstore/cobalt/storage-engine/blockdev"
	"github.com/cobaltstore/cobalt/storage-engine/cache"
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
	// The test sets the Onode cache's capacity itself: stop the Tuner, which would otherwise
	// resize it in the background (close stops it again harmlessly).
	caches.stop()
	<-caches.done
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
	for _, buffered := range []bool{false, true} {
		t.Run(fmt.Sprintf("buffered-writes=%v", buffered), func(t *testing.T) {
			testStoreReadsThroughBufferCache(t, Options{BufferedWrites: buffered})
		})
	}
}

func testStoreReadsThroughBufferCache(t *testing.T, opts Options) {
	s := newStore(t, opts)
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

// TestTunerSplitsTargetWithPebbleCache: the Tuner splits the memory target among the Onode
// cache, the buffer cache and pebble's block cache (the store's kv.Open uses that cache). Under
// random reads of more data than the buffer budget (ghost hits in the buffer cache, nothing to
// gain elsewhere) the buffer budget grows round after round at the others' expense, the three
// budgets always sum to the target, pebble's cache is held to its budget, and the Mempool's kv
// category is pebble's cache usage.
func TestTunerSplitsTargetWithPebbleCache(t *testing.T) {
	const target = 32 << 20
	// An object's buffers live in one shard: many objects fill every shard. The data read (42 MiB)
	// is larger than the whole target, so the buffer cache fills whatever budget it reaches: with
	// 24 MiB it could hold nearly all of it once it had grown (its gain then drops to zero and it
	// stops growing), which happened in about one run of 15 because the budgets' path depends on
	// pebble's background memory use.
	const objects, blocks = 112, 384 << 10 / 4096
	s := newStore(t, Options{MemoryTarget: target})
	// The test runs the Tuner's rounds itself: stop the background rounds, which would consume
	// the counters between the test's rounds (close stops it again harmlessly).
	s.caches.stop()
	<-s.caches.done
	commit(t, s, NewTransaction().CreateCollection("c"))
	for i := range objects {
		commit(t, s, NewTransaction().Write("c", fmt.Sprintf("o%d", i), 0, pattern(blocks*4096, byte(i))))
	}
	// Omap entries in a compacted sstable: reading them goes through pebble's block cache (and
	// no later compaction drops the blocks read).
	kvs := map[string][]byte{}
	for i := range 2000 {
		kvs[fmt.Sprintf("k%05d", i)] = make([]byte, 64)
	}
	commit(t, s, NewTransaction().OmapSet("c", "o0", kvs))
	if err := s.db.Compact(ctx, []byte{0}, []byte{0xff}, false); err != nil {
		t.Fatal(err)
	}

	rng := rand.New(rand.NewPCG(3, 4))
	readRandom := func(n int) {
		for range n {
			o, off := rng.IntN(objects), uint64(rng.IntN(blocks))*4096
			if _, err := s.Read(ctx, "c", fmt.Sprintf("o%d", o), off, 4096); err != nil {
				t.Fatal(err)
			}
		}
	}
	readRandom(30000) // fills the buffer cache (A1in and Am)
	tuner := s.caches.tuner
	sum := func(b [cache.NumTuned]int64) int64 { return b[0] + b[1] + b[2] }
	start, err := tuner.Step()
	if err != nil {
		t.Fatal(err)
	}
	if sum(start.Budgets) != target || start.Budgets[cache.TunedKV] == 0 {
		t.Fatalf("start budgets %v do not split the target %d among three caches", start.Budgets, target)
	}
	prev := start
	for round := range 4 {
		readRandom(15000)
		rep, err := tuner.Step()
		if err != nil {
			t.Fatal(err)
		}
		b := rep.Budgets
		t.Logf("round %d: budgets onodes %d buffers %d kv %d, gains %v", round, b[0], b[1], b[2], rep.Gains)
		if sum(b) != target {
			t.Fatalf("round %d: budgets %v sum to %d, want %d", round, b, sum(b), target)
		}
		if b[cache.TunedBuffers] <= prev.Budgets[cache.TunedBuffers] {
			t.Fatalf("round %d: buffer budget %d did not grow from %d (gains %v)", round, b[cache.TunedBuffers], prev.Budgets[cache.TunedBuffers], rep.Gains)
		}
		if got := s.caches.kvTuned.Budget(); got != b[cache.TunedKV] {
			t.Fatalf("round %d: pebble cache budget %d, tuner set %d", round, got, b[cache.TunedKV])
		}
		prev = rep
	}
	if prev.Budgets[cache.TunedOnodes]+prev.Budgets[cache.TunedKV] >= start.Budgets[cache.TunedOnodes]+start.Budgets[cache.TunedKV] {
		t.Fatalf("onode and kv budgets did not shrink: %v -> %v", start.Budgets, prev.Budgets)
	}
	if _, err := s.OmapGet(ctx, "c", "o0", "k00007", "k01999"); err != nil {
		t.Fatal(err)
	}
	if _, err := tuner.Step(); err != nil {
		t.Fatal(err)
	}
	kvUsage := s.caches.kvCache.Metrics().Size
	m := s.Metrics().Cache
	if kvUsage == 0 || m.Memory[cache.CategoryKV] != kvUsage {
		t.Fatalf("mempool kv category %d, pebble cache usage %d", m.Memory[cache.CategoryKV], kvUsage)
	}
	if kvUsage > m.Budgets[cache.TunedKV] {
		t.Fatalf("pebble cache uses %d, over its budget %d", kvUsage, m.Budgets[cache.TunedKV])
	}
}

// TestBufferedWrites: with Options.BufferedWrites a read right after a commit is served from the
// buffer cache (a hit, no device read), including over an overwrite that splits the cached
// data, and the buffers are clean once Commit returns; WriteNoCache data and, without the
// option, all written data leave the cache at commit, so the next read goes to the device.
func TestBufferedWrites(t *testing.T) {
	const size = 64 << 10
	for _, tc := range []struct {
		name     string
		buffered bool
		nocache  bool
		cached   bool
	}{
		{"on", true, false, true},
		{"on/nocache", true, true, false},
		{"off", false, false, false},
		{"off/nocache", false, true, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dev := blockdev.NewMem(testDevSize, 4096)
			s := newEnv(t, dev, Options{BufferedWrites: tc.buffered}).open(t)
			write := (*Transaction).Write
			if tc.nocache {
				write = (*Transaction).WriteNoCache
			}
			data := pattern(size, 5)
			commit(t, s, write(NewTransaction().CreateCollection("c"), "c", "o", 0, data))
			// An unaligned overwrite in the middle: the cached data is split around it.
			commit(t, s, write(NewTransaction(), "c", "o", 5000, []byte("overwritten")))
			copy(data[5000:], "overwritten")

			m := s.Metrics().Cache.Buffers.Total
			if m.Dirty != 0 {
				t.Fatalf("%d buffers still writing after Commit returned", m.Dirty)
			}
			if got := m.Entries > 0; got != tc.cached {
				t.Fatalf("%d clean buffers after commit, want cached=%v", m.Entries, tc.cached)
			}
			reads, hits := dev.Stats().Reads, m.Hits
			mustRead(t, s, "c", "o", 0, 0, data)
			m = s.Metrics().Cache.Buffers.Total
			servedFromCache := m.Hits == hits+1 && dev.Stats().Reads == reads
			if servedFromCache != tc.cached {
				t.Fatalf("read after commit: hits %d -> %d, device reads %d -> %d; want served from cache = %v",
					hits, m.Hits, reads, dev.Stats().Reads, tc.cached)
			}
			if err := s.caches.buffers.Check(); err != nil {
				t.Fatal(err)
			}
		})
	}
}
