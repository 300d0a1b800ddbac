package cachesim

import (
	"fmt"
	"math/rand/v2"
	"sync"

	"github.com/cobaltstore/cobalt/storage-engine/cache"
)

// Mixed is a read-through workload for throughput measurements: goroutines look up Onode keys
// drawn from Zipf(0.99) and insert on a miss.
type Mixed struct {
	keys []cache.ObjectKey
	// seqs holds one pre-drawn index sequence per goroutine (so drawing is not measured).
	seqs [][]uint32
}

// seqLen is the length of each goroutine's index sequence (a power of two).
const seqLen = 1 << 20

// NewMixed prepares nkeys keys spread over 64 collections and index sequences for up to
// goroutines goroutines.
func NewMixed(nkeys, goroutines int) (*Mixed, error) {
	if nkeys < 2 || goroutines < 1 {
		return nil, fmt.Errorf("cachesim: mixed workload needs >= 2 keys and >= 1 goroutine")
	}
	m := &Mixed{keys: make([]cache.ObjectKey, nkeys), seqs: make([][]uint32, goroutines)}
	for i := range m.keys {
		m.keys[i] = cache.ObjectKey{Collection: fmt.Sprintf("pg.%d", i%64), Object: fmt.Sprintf("obj.%08d", i)}
	}
	for g := range m.seqs {
		z, err := NewZipf(rand.New(rand.NewPCG(uint64(g), 42)), uint64(nkeys), 0.99)
		if err != nil {
			return nil, err
		}
		seq := make([]uint32, seqLen)
		for i := range seq {
			// Scatter the popular ranks over the key space.
			seq[i] = uint32((z.Next() * 2654435761) % uint64(nkeys))
		}
		m.seqs[g] = seq
	}
	return m, nil
}

// Run performs ops lookups (with inserts on misses) on c, split over goroutines goroutines,
// and returns the hits.
func (m *Mixed) Run(c *cache.Cache[cache.ObjectKey, int], goroutines, ops int) (int64, error) {
	if goroutines > len(m.seqs) {
		return 0, fmt.Errorf("cachesim: %d goroutines, prepared for %d", goroutines, len(m.seqs))
	}
	var wg sync.WaitGroup
	hits := make([]int64, goroutines)
	errs := make([]error, goroutines)
	for g := range goroutines {
		n := ops / goroutines
		if g < ops%goroutines {
			n++
		}
		wg.Go(func() {
			seq := m.seqs[g]
			for i := range n {
				k := m.keys[seq[i&(seqLen-1)]]
				if _, ok := c.Get(k); ok {
					hits[g]++
					continue
				}
				if _, _, err := c.Insert(k, i, 512); err != nil {
					errs[g] = err
					return
				}
			}
		})
	}
	wg.Wait()
	var total int64
	for g := range goroutines {
		if errs[g] != nil {
			return 0, errs[g]
		}
		total += hits[g]
	}
	return total, nil
}
