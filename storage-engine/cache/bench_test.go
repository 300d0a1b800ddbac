package cache_test

import (
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/cobaltstore/cobalt/storage-engine/cache"
	"github.com/cobaltstore/cobalt/storage-engine/cache/cachesim"
)

// BenchmarkHitRatio replays the policy-comparison workloads; the figure of merit is the
// hit-ratio metric, not the time.
func BenchmarkHitRatio(b *testing.B) {
	const size = 10000
	workloads := map[string]func() (cachesim.Workload, error){
		"scan-hot": func() (cachesim.Workload, error) {
			return cachesim.NewScanHot(rand.New(rand.NewPCG(2, 2)), size, 0.2, 10, 8)
		},
		"zipf0.99": func() (cachesim.Workload, error) {
			return cachesim.NewZipfKeys(rand.New(rand.NewPCG(3, 3)), 20*size, 0.99)
		},
	}
	for _, name := range []string{"scan-hot", "zipf0.99"} {
		for _, p := range []cache.PolicyKind{cache.Policy2Q, cache.PolicyLRU} {
			b.Run(fmt.Sprintf("%s/%s", name, p), func(b *testing.B) {
				var r cachesim.Result
				for b.Loop() {
					w, err := workloads[name]()
					if err != nil {
						b.Fatal(err)
					}
					if r, err = cachesim.Replay(p, size, 1, w, 5*size, 50*size); err != nil {
						b.Fatal(err)
					}
				}
				b.ReportMetric(r.HitRatio(), "hit-ratio")
			})
		}
	}
}

// BenchmarkGetInsert measures read-through lookups (Get, Insert on a miss) on an Onode cache
// with 1 or 8 shards and 1, 2 or 8 goroutines.
func BenchmarkGetInsert(b *testing.B) {
	m, err := cachesim.NewMixed(200000, 8)
	if err != nil {
		b.Fatal(err)
	}
	for _, shards := range []int{1, 8} {
		for _, g := range []int{1, 2, 8} {
			b.Run(fmt.Sprintf("shards=%d/goroutines=%d", shards, g), func(b *testing.B) {
				c, err := cache.NewOnodeCache[int](cache.Options{Shards: shards, Capacity: 20000})
				if err != nil {
					b.Fatal(err)
				}
				if _, err := m.Run(c, g, 200000); err != nil { // warm up
					b.Fatal(err)
				}
				b.ResetTimer()
				hits, err := m.Run(c, g, b.N)
				if err != nil {
					b.Fatal(err)
				}
				b.ReportMetric(float64(hits)/float64(b.N), "hit-ratio")
			})
		}
	}
}

// BenchmarkBufferRead4K measures 4 KiB reads served from the buffer cache.
func BenchmarkBufferRead4K(b *testing.B) {
	c, err := cache.NewBufferCache(cache.BufferOptions{Options: cache.Options{Capacity: 64 << 20}})
	if err != nil {
		b.Fatal(err)
	}
	obj := cache.ObjectKey{Collection: "c", Object: "o"}
	data := make([]byte, 4096)
	for i := range uint64(1024) {
		_, tok, _ := c.ReadInto(obj, i*4096, data, nil)
		if _, err := c.InsertRead(obj, i*4096, data, tok); err != nil {
			b.Fatal(err)
		}
	}
	b.SetBytes(4096)
	i := uint64(0)
	for b.Loop() {
		gaps, _, err := c.ReadInto(obj, (i%1024)*4096, data, nil)
		if err != nil || len(gaps) != 0 {
			b.Fatalf("miss: %v %v", gaps, err)
		}
		i += 7
	}
}
