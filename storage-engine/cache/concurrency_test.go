package cache

import (
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"
)

// TestConcurrentUse hammers one Onode cache and one BufferCache (sharing a Mempool) from many
// goroutines with every operation, while another goroutine changes capacities. Run it under
// -race. At the end the invariants hold and the Mempool equals the sum over shards.
func TestConcurrentUse(t *testing.T) {
	for _, p := range []PolicyKind{Policy2Q, PolicyLRU} {
		t.Run(string(p), func(t *testing.T) {
			pool := NewMempool()
			onodes, err := NewOnodeCache[int](Options{Policy: p, Pool: pool, Capacity: 200})
			if err != nil {
				t.Fatal(err)
			}
			bufs, err := NewBufferCache(BufferOptions{Options: Options{Policy: p, Pool: pool, Capacity: 256 << 10}, BufferedWrites: true})
			if err != nil {
				t.Fatal(err)
			}
			const workers, ops = 8, 4000
			var wg sync.WaitGroup
			for w := range workers {
				wg.Go(func() {
					rng := rand.New(rand.NewPCG(uint64(w), 99))
					buf := make([]byte, 8192)
					var seq uint64
					for i := range ops {
						k := ObjectKey{Collection: fmt.Sprint("c", rng.IntN(4)), Object: fmt.Sprint("o", rng.IntN(500))}
						switch rng.IntN(8) {
						case 0:
							if _, _, err := onodes.InsertPinned(k, i, int64(200+rng.IntN(2000))); err != nil {
								t.Error(err)
								return
							}
							_ = onodes.MarkDirty(k)
							_ = onodes.MarkClean(k)
							if err := onodes.Unpin(k); err != nil {
								t.Error(err)
								return
							}
						case 1:
							if _, ok := onodes.GetPinned(k); ok {
								_ = onodes.Resize(k, int64(100+rng.IntN(3000)))
								if err := onodes.Unpin(k); err != nil {
									t.Error(err)
									return
								}
							}
						case 2:
							onodes.Get(k)
						case 3:
							seq++
							off := uint64(rng.IntN(64)) * 512
							if err := bufs.Write(k, off, buf[:1+rng.IntN(4096)], seq, rng.IntN(3) == 0); err != nil {
								t.Error(err)
								return
							}
							bufs.FinishWrite(k, seq)
						case 4, 5:
							off := uint64(rng.IntN(64)) * 512
							n := 1 + rng.IntN(8192)
							gaps, tok, err := bufs.ReadInto(k, off, buf[:n], nil)
							if err != nil {
								t.Error(err)
								return
							}
							for _, g := range gaps {
								if _, err := bufs.InsertRead(k, g.Off, buf[:g.Len], tok); err != nil {
									t.Error(err)
									return
								}
							}
						case 6:
							if err := bufs.Discard(k, uint64(rng.IntN(32768)), uint64(rng.IntN(8192))); err != nil {
								t.Error(err)
								return
							}
						default:
							if rng.IntN(50) == 0 {
								onodes.Remove(k)
								bufs.DiscardObject(k)
							}
						}
					}
				})
			}
			wg.Go(func() {
				rng := rand.New(rand.NewPCG(7, 7))
				for range 200 {
					onodes.SetCapacity(int64(rng.IntN(400)))
					bufs.SetBudget(int64(rng.IntN(512 << 10)))
					_ = onodes.Metrics()
					_ = bufs.Metrics()
				}
			})
			wg.Wait()
			if err := onodes.Check(); err != nil {
				t.Fatal(err)
			}
			if err := bufs.Check(); err != nil {
				t.Fatal(err)
			}
			checkAccounting(t, pool, onodes, bufs)
		})
	}
}

// checkAccounting: the Mempool's categories equal the sums over the caches' shards.
func checkAccounting(t *testing.T, pool *Mempool, onodes *Cache[ObjectKey, int], bufs *BufferCache) {
	t.Helper()
	var onodeSum, bufSum int64
	for _, s := range onodes.Metrics().Shards {
		onodeSum += s.Bytes
	}
	for _, s := range bufs.Metrics().Shards {
		bufSum += s.Bytes
	}
	if got := pool.Bytes(CategoryOnodes); got != onodeSum || got != onodes.Bytes() {
		t.Fatalf("onodes: mempool %d, shards %d, Bytes %d", got, onodeSum, onodes.Bytes())
	}
	if got := pool.Bytes(CategoryBuffers); got != bufSum || got != bufs.Bytes() {
		t.Fatalf("buffers: mempool %d, shards %d, Bytes %d", got, bufSum, bufs.Bytes())
	}
	// The resizer may end on a budget so small that nothing stays cached at the end (the race
	// detector's timing made it so), so what the workload must have done is insert.
	if onodes.Metrics().Total.Inserts == 0 || bufs.Metrics().Total.Inserts == 0 {
		t.Fatalf("nothing was ever cached (onodes %d, buffers %d bytes at the end): the workload is too weak", onodeSum, bufSum)
	}
}
