package replica_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"
)

// BenchmarkReplicatedWrite measures the replicated write path in one process: a coordinator on
// node-a with 1 (local only), 2 or 3 replicas (the others over mTLS on loopback), each on a
// file-backed engine store, beside direct writes to node-a's volume (no coordinator). Workloads:
// 4 KiB random writes at queue depth 16, and 1 MiB sequential writes at queue depth 1. The
// replicas keep write-intent logs: the first write of each 1 MiB region saves its mark.
func BenchmarkReplicatedWrite(b *testing.B) {
	const size = 256 << 20
	const id = "bench"
	// Every run gets fresh stores, so runs do not inherit each other's fragmentation or metadata.
	newVolume := func(b *testing.B, nodes int) *cluster {
		c := newCluster(b, nodes, 4<<30)
		c.createVolume(b, id, size, 0)
		return c
	}
	type writeFunc func(ctx context.Context, off int64, data []byte) error
	paths := []struct {
		name string
		open func(b *testing.B) writeFunc
	}{
		{"direct", func(b *testing.B) writeFunc {
			a := newVolume(b, 1).nodes[0]
			return func(ctx context.Context, off int64, data []byte) error { return a.vols.Write(ctx, id, off, data) }
		}},
	}
	for n := 1; n <= 3; n++ {
		paths = append(paths, struct {
			name string
			open func(b *testing.B) writeFunc
		}{fmt.Sprintf("replicas=%d", n), func(b *testing.B) writeFunc {
			c := newVolume(b, n)
			co, err := c.coordinate(b, id, 1, &recorder{}, c.nodes[0], c.nodes[1:]...)
			if err != nil {
				b.Fatal(err)
			}
			// Start the replicas' write-intent logs, as the reconcile at open does, so every
			// first write of a region pays for its mark.
			if err := co.ClearAllIntent(context.Background()); err != nil {
				b.Fatal(err)
			}
			return co.Write
		}})
	}
	for _, p := range paths {
		b.Run(p.name+"/4KiB-random-QD16", func(b *testing.B) {
			write := p.open(b)
			data := make([]byte, 4096)
			var next atomic.Int64
			var wg sync.WaitGroup
			errs := make(chan error, 16)
			b.SetBytes(4096)
			b.ResetTimer()
			for w := range 16 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					rng := rand.New(rand.NewPCG(uint64(w), 7))
					for next.Add(1) <= int64(b.N) {
						if err := write(context.Background(), rng.Int64N(size/4096)*4096, data); err != nil {
							errs <- err
							return
						}
					}
				}()
			}
			wg.Wait()
			b.StopTimer()
			close(errs)
			if err := <-errs; err != nil {
				b.Fatal(err)
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "IOPS")
		})
		b.Run(p.name+"/1MiB-sequential", func(b *testing.B) {
			write := p.open(b)
			data := make([]byte, 1<<20)
			b.SetBytes(1 << 20)
			b.ResetTimer()
			for i := range b.N {
				if err := write(context.Background(), int64(i%(size>>20))<<20, data); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
