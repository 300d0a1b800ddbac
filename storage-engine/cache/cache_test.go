package cache

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"testing"
)

func newTestCache(t *testing.T, o Options) *Cache[ObjectKey, string] {
	t.Helper()
	c, err := NewOnodeCache[string](o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := c.Check(); err != nil {
			t.Errorf("check at cleanup: %v", err)
		}
		if got, want := c.Pool().Bytes(c.opts.Category), c.Bytes(); got != want {
			t.Errorf("mempool says %d bytes, shards sum to %d", got, want)
		}
	})
	return c
}

func key(i int) ObjectKey {
	return ObjectKey{Collection: fmt.Sprint("c", i%3), Object: fmt.Sprint("o", i)}
}

func TestOptionsValidate(t *testing.T) {
	for _, o := range []Options{
		{Policy: "arc"},
		{Shards: -1},
		{Shards: maxShards + 1},
		{Capacity: -1},
		{KinRatio: 1},
		{KoutRatio: -0.5},
		{Unit: 7},
		{Category: NumCategories},
		{EntryBytesHint: -1},
	} {
		if _, err := NewOnodeCache[int](o); err == nil {
			t.Errorf("options %+v accepted", o)
		}
	}
	for _, tc := range []struct {
		in   string
		want PolicyKind
	}{{"", Policy2Q}, {"2Q", Policy2Q}, {" lru ", PolicyLRU}} {
		if got, err := ParsePolicy(tc.in); err != nil || got != tc.want {
			t.Errorf("ParsePolicy(%q) = %q, %v", tc.in, got, err)
		}
	}
	c, err := NewOnodeCache[int](Options{Rotational: true})
	if err != nil || len(c.shards) != DefaultShardsRotational {
		t.Fatalf("rotational default: %v shards, %v", len(c.shards), err)
	}
	c, _ = NewOnodeCache[int](Options{})
	if len(c.shards) != DefaultShardsNonRotational || c.opts.Policy != Policy2Q {
		t.Fatalf("defaults: %d shards, %s", len(c.shards), c.opts.Policy)
	}
}

func TestInsertKeepsResidentValue(t *testing.T) {
	// Capacity is large enough that nothing is evicted: whether two keys share a shard depends on
	// the per-process hash seed, and eviction is not what this test is about.
	c := newTestCache(t, Options{Capacity: 1000})
	if v, ins, err := c.Insert(key(1), "first", 100); err != nil || !ins || v != "first" {
		t.Fatalf("insert: %q %v %v", v, ins, err)
	}
	if v, ins, _ := c.Insert(key(1), "second", 100); ins || v != "first" {
		t.Fatalf("second insert: %q %v", v, ins)
	}
	if err := c.Replace(key(1), "third", 300); err != nil {
		t.Fatal(err)
	}
	if v, ok := c.Get(key(1)); !ok || v != "third" || c.Bytes() != 300 {
		t.Fatalf("after replace: %q %v bytes %d", v, ok, c.Bytes())
	}
	if err := c.Set(key(1), "fourth", 50); err != nil {
		t.Fatal(err)
	}
	if err := c.Set(key(3), "new", 10); err != nil {
		t.Fatal(err)
	}
	if v, _ := c.Get(key(1)); v != "fourth" || c.Bytes() != 60 || c.Len() != 2 {
		t.Fatalf("after set: %q bytes %d len %d", v, c.Bytes(), c.Len())
	}
	if err := c.Set(key(3), "x", -1); err == nil {
		t.Fatal("negative size accepted by set")
	}
	if _, _, err := c.Insert(key(2), "x", -1); err == nil {
		t.Fatal("negative size accepted")
	}
	for _, err := range []error{c.Unpin(key(9)), c.MarkDirty(key(9)), c.MarkClean(key(9)), c.Resize(key(9), 1), c.Pin(key(9))} {
		if !errors.Is(err, ErrNotCached) {
			t.Fatalf("operation on a missing key: %v", err)
		}
	}
	if err := c.Unpin(key(1)); err == nil {
		t.Fatal("unpin of an unpinned entry accepted")
	}
}

func TestSetBudgetUsesMeanEntrySize(t *testing.T) {
	c := newTestCache(t, Options{Shards: 2, EntryBytesHint: 1000})
	c.SetBudget(10000)
	if got := c.Capacity(); got != 10 {
		t.Fatalf("capacity from hint: %d, want 10", got)
	}
	for i := range 10 {
		if _, _, err := c.Insert(key(i), "", 500); err != nil {
			t.Fatal(err)
		}
	}
	c.SetBudget(10000)
	if got := c.Capacity(); got != 20 {
		t.Fatalf("capacity from the mean (500 B): %d, want 20", got)
	}
}

// TestHeldEntriesSurviveAnyTrim runs random pins, dirties, inserts and capacity changes (down
// to 0) on both policies: a pinned or dirty entry must always still be cached.
func TestHeldEntriesSurviveAnyTrim(t *testing.T) {
	for _, p := range []PolicyKind{Policy2Q, PolicyLRU} {
		t.Run(string(p), func(t *testing.T) {
			rng := rand.New(rand.NewPCG(3, 4))
			c := newTestCache(t, Options{Policy: p, Shards: 3, Capacity: 50})
			pins := map[ObjectKey]int{}
			dirty := map[ObjectKey]bool{}
			for step := range 20000 {
				k := key(rng.IntN(200))
				switch r := rng.IntN(10); {
				case r < 3:
					if _, _, err := c.Insert(k, "v", int64(100+rng.IntN(1000))); err != nil {
						t.Fatal(err)
					}
				case r < 5:
					if _, ok := c.GetPinned(k); ok {
						pins[k]++
					}
				case r < 6:
					if pins[k] > 0 {
						if err := c.Unpin(k); err != nil {
							t.Fatal(err)
						}
						pins[k]--
					}
				case r < 7:
					if c.MarkDirty(k) == nil {
						dirty[k] = true
					}
				case r < 8:
					if dirty[k] {
						if err := c.MarkClean(k); err != nil {
							t.Fatal(err)
						}
						delete(dirty, k)
					}
				default:
					c.SetCapacity(int64(rng.IntN(60)))
				}
				for k, n := range pins {
					if n > 0 {
						if _, ok := c.shardFor(k).mu.index[k]; !ok {
							t.Fatalf("step %d: pinned %v was evicted", step, k)
						}
					}
				}
				for k := range dirty {
					if _, ok := c.shardFor(k).mu.index[k]; !ok {
						t.Fatalf("step %d: dirty %v was evicted", step, k)
					}
				}
				if step%1000 == 0 {
					if err := c.Check(); err != nil {
						t.Fatalf("step %d: %v", step, err)
					}
				}
			}
			m := c.Metrics().Total
			if m.Evictions == 0 || m.Pinned == 0 {
				t.Fatalf("workload too weak: %d evictions, %d pinned at the end", m.Evictions, m.Pinned)
			}
		})
	}
}

// TestCollectionSpreadsOverShards: the objects of one collection land on every shard.
func TestCollectionSpreadsOverShards(t *testing.T) {
	c := newTestCache(t, Options{Capacity: 1 << 20})
	for i := range 1000 {
		if _, _, err := c.Insert(ObjectKey{Collection: "one", Object: fmt.Sprint(i)}, "", 1); err != nil {
			t.Fatal(err)
		}
	}
	for i, s := range c.Metrics().Shards {
		if s.Entries < 1000/8/2 {
			t.Fatalf("shard %d holds %d of 1000 entries of one collection", i, s.Entries)
		}
	}
}
