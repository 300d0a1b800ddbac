package store

import (
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"testing"

	"github.com/cobaltstore/cobalt/storage-engine/blockdev"
	"github.com/cobaltstore/cobalt/storage-engine/cache"
)

// BenchmarkRead4KWarmCold reads random 4 KiB blocks of 8 × 4 MiB objects through the store,
// cold (buffered reads disabled: every read goes to the device and verifies its checksums) and
// warm (every block read once first, so reads are served by the BufferCache), on the in-memory
// device and on an O_DIRECT file.
func BenchmarkRead4KWarmCold(b *testing.B) {
	const objects, blocks = 8, 4 << 20 / 4096
	for _, dev := range []string{"mem", "file"} {
		for _, mode := range []string{"cold", "warm"} {
			b.Run(dev+"/"+mode, func(b *testing.B) {
				s := readBenchStore(b, dev, objects, Options{DisableBufferedReads: mode == "cold"})
				if mode == "warm" {
					for o := range objects {
						if _, err := s.Read(ctx, "c", fmt.Sprintf("o%d", o), 0, 0); err != nil {
							b.Fatal(err)
						}
					}
				}
				benchRandomReads(b, s, objects, blocks)
			})
		}
	}
}

// BenchmarkRead4KBufferedWrites is BenchmarkRead4KWarmCold with Options.BufferedWrites: warm
// reads are served by what the writes left in the BufferCache (no read pass first); cold reads
// run after the objects' cached data is discarded, with buffered reads disabled. An object's
// buffers live in one shard, so the memory target is large enough for several of the 4 MiB
// objects to share a shard without eviction.
func BenchmarkRead4KBufferedWrites(b *testing.B) {
	const objects, blocks = 8, 4 << 20 / 4096
	for _, dev := range []string{"mem", "file"} {
		for _, mode := range []string{"cold", "warm"} {
			b.Run(dev+"/"+mode, func(b *testing.B) {
				cold := mode == "cold"
				s := readBenchStore(b, dev, objects, Options{BufferedWrites: true, DisableBufferedReads: cold, MemoryTarget: 1 << 30})
				if cold {
					for o := range objects {
						s.caches.buffers.DiscardObject(cache.ObjectKey{Collection: "c", Object: fmt.Sprintf("o%d", o)})
					}
				}
				benchRandomReads(b, s, objects, blocks)
			})
		}
	}
}

// benchRandomReads reads random 4 KiB blocks of objects o0..o<objects-1> (blocks blocks each)
// and reports the buffer cache's hit ratio over the loop.
func benchRandomReads(b *testing.B, s *Store, objects, blocks int) {
	before := s.Metrics().Cache.Buffers.Total
	rng := rand.New(rand.NewPCG(1, 2))
	b.SetBytes(4096)
	for b.Loop() {
		o, off := rng.IntN(objects), uint64(rng.IntN(blocks))*4096
		if _, err := s.Read(ctx, "c", fmt.Sprintf("o%d", o), off, 4096); err != nil {
			b.Fatal(err)
		}
	}
	after := s.Metrics().Cache.Buffers.Total
	if n := (after.Hits - before.Hits) + (after.Misses - before.Misses); n > 0 {
		b.ReportMetric(float64(after.Hits-before.Hits)/float64(n), "hit-ratio")
	}
}

// readBenchStore is benchStore on the in-memory device ("mem") or on a sparse file opened with
// O_DIRECT in a temporary directory ("file").
func readBenchStore(b *testing.B, dev string, objects int, opts Options) *Store {
	b.Helper()
	if dev == "mem" {
		return benchStore(b, objects, opts)
	}
	path := filepath.Join(b.TempDir(), "dev")
	d, err := blockdev.Open(path, blockdev.Options{CreateSize: 256 << 20})
	if err != nil {
		b.Fatalf("open %s: %v", path, err)
	}
	b.Cleanup(func() {
		if err := d.Close(); err != nil {
			b.Errorf("close %s: %v", path, err)
		}
	})
	return benchStoreOn(b, d, objects, opts)
}
