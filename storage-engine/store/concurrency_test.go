package store

import (
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"
)

// versionedBlock is a 4 KiB block that names its object, block index and version in every 8 bytes,
// so a reader can tell a torn or stale-mixed block from a consistent one.
func versionedBlock(obj, idx, ver int) []byte {
	b := make([]byte, 4096)
	for i := 0; i < len(b); i += 8 {
		binary.LittleEndian.PutUint64(b[i:], uint64(obj)<<40|uint64(idx)<<20|uint64(ver))
	}
	return b
}

func checkVersionedBlock(b []byte, obj, idx int) (int, error) {
	first := binary.LittleEndian.Uint64(b)
	for i := 0; i < len(b); i += 8 {
		if v := binary.LittleEndian.Uint64(b[i:]); v != first {
			return 0, fmt.Errorf("block %d of object %d is mixed: word %d is %#x, first %#x", idx, obj, i/8, v, first)
		}
	}
	if int(first>>40) != obj || int(first>>20&0xfffff) != idx {
		return 0, fmt.Errorf("block %d of object %d holds %#x", idx, obj, first)
	}
	return int(first & 0xfffff), nil
}

// TestConcurrentReadersAndWriters runs writers (one object each, deferred and copy-on-write
// overwrites, clones) against readers that check every block is consistent and never goes back in
// version once a commit returned, with and without buffered writes.
func TestConcurrentReadersAndWriters(t *testing.T) {
	for _, buffered := range []bool{false, true} {
		t.Run(fmt.Sprintf("buffered-writes=%v", buffered), func(t *testing.T) {
			testConcurrentReadersAndWriters(t, Options{PreferDeferredSize: 8192, DeferredBatch: 16, BufferedWrites: buffered})
		})
	}
}

func testConcurrentReadersAndWriters(t *testing.T, opts Options) {
	s := newStore(t, opts)
	const writers, blocks, rounds = 6, 16, 60
	setup := NewTransaction().CreateCollection("c")
	for w := range writers {
		for i := range blocks {
			setup.Write("c", fmt.Sprintf("o%d", w), uint64(i*4096), versionedBlock(w, i, 0))
		}
	}
	commit(t, s, setup)
	var mu sync.Mutex
	acked := make([][]int, writers) // acked[w][i]: last version acknowledged for block i
	for w := range acked {
		acked[w] = make([]int, blocks)
	}
	var wg sync.WaitGroup
	errs := make(chan error, 64)
	done := make(chan struct{})
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(w), 1))
			name := fmt.Sprintf("o%d", w)
			for r := 1; r <= rounds; r++ {
				txn := NewTransaction()
				n := 1 + rng.IntN(3)
				if rng.IntN(4) == 0 {
					n = blocks
				}
				start := rng.IntN(blocks - n + 1)
				for i := start; i < start+n; i++ {
					txn.Write("c", name, uint64(i*4096), versionedBlock(w, i, r))
				}
				if rng.IntN(10) == 0 {
					txn.Clone("c", name, name+"-clone")
				}
				if err := s.Commit(ctx, txn); err != nil {
					errs <- err
					return
				}
				mu.Lock()
				for i := start; i < start+n; i++ {
					acked[w][i] = r
				}
				mu.Unlock()
			}
		}()
	}
	var rwg sync.WaitGroup
	for rd := range 4 {
		rwg.Add(1)
		go func() {
			defer rwg.Done()
			rng := rand.New(rand.NewPCG(uint64(rd), 2))
			own := intoBuf(blocks*4096, rd%2 == 0)
			for {
				select {
				case <-done:
					return
				default:
				}
				w := rng.IntN(writers)
				mu.Lock()
				floor := append([]int(nil), acked[w]...)
				mu.Unlock()
				// Half the reads fill a buffer the reader reuses (aligned for the even readers,
				// so the device reads into it; unaligned for the others).
				var data []byte
				var err error
				if rng.IntN(2) == 0 {
					data, err = s.Read(ctx, "c", fmt.Sprintf("o%d", w), 0, 0)
				} else {
					var n int
					n, err = s.ReadInto(ctx, "c", fmt.Sprintf("o%d", w), 0, own)
					data = own[:n]
					if err == nil && n != blocks*4096 {
						err = fmt.Errorf("ReadInto of object %d: %d bytes, want %d", w, n, blocks*4096)
					}
				}
				if err != nil {
					errs <- err
					return
				}
				for i := range blocks {
					v, err := checkVersionedBlock(data[i*4096:(i+1)*4096], w, i)
					if err == nil && v < floor[i] {
						err = fmt.Errorf("object %d block %d went back to version %d after %d was acknowledged", w, i, v, floor[i])
					}
					if err != nil {
						errs <- err
						return
					}
				}
			}
		}()
	}
	wg.Wait()
	close(done)
	rwg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	m := s.Metrics()
	t.Logf("groups %d, avg txns/group %.2f, max %d, deferred applied %d", m.CommitGroups, m.CommitGroupTxnsAvg, m.CommitGroupTxnsMax, m.DeferredApplied)
}
