package volume_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/cobaltstore/cobalt/node-daemon/volume"
)

// writeSparse writes one 4 KiB block at the start of n stripes spread evenly over the volume,
// from 8 writers so that the engine groups their commits.
func writeSparse(b *testing.B, m *volume.Manager, id string, size int64, n int) {
	b.Helper()
	ctx := context.Background()
	step := size / int64(n) / volume.DefaultStripeSize * volume.DefaultStripeSize
	block := make([]byte, 4096)
	for i := range block {
		block[i] = byte(i) | 1
	}
	var next atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := next.Add(1) - 1; i < int64(n); i = next.Add(1) - 1 {
				if err := m.Write(ctx, id, i*step, block); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		b.Fatal(err)
	}
}

// writeDense writes [0, n) of the volume in 1 MiB writes.
func writeDense(b *testing.B, m *volume.Manager, id string, n int64) {
	b.Helper()
	chunk := make([]byte, 1<<20)
	for i := range chunk {
		chunk[i] = byte(i>>12) | 1
	}
	for off := int64(0); off < n; off += int64(len(chunk)) {
		if err := m.Write(context.Background(), id, off, chunk); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkSnapshotCreate measures Snapshot on thin volumes of 1, 16 and 256 GiB (4 MiB stripes)
// with the same number of written stripes (one 4 KiB block each), and on a 16 GiB volume with
// more and more written stripes: the time follows the written stripes, not the size. The dense
// case writes its stripes whole: the engine adds a reference per allocation unit, so the time
// follows the written units (still metadata only, no data copied). Each
// iteration's snapshot is deleted outside the timer.
func BenchmarkSnapshotCreate(b *testing.B) {
	cases := []struct {
		size    int64
		written int
		dense   bool // stripes written whole (1024 allocation units each), not one block
	}{
		{1 << 30, 256, false}, {16 << 30, 256, false}, {256 << 30, 256, false},
		{16 << 30, 16, false}, {16 << 30, 1024, false}, {16 << 30, 4096, false},
		{256 << 20, 64, true},
	}
	for _, c := range cases {
		name := fmt.Sprintf("size=%dMiB/stripes=%d", c.size>>20, c.written)
		if c.dense {
			name += "/dense"
		}
		b.Run(name, func(b *testing.B) {
			m, _ := newEngineManager(b, c.size+c.size/8+(1<<30))
			ctx := context.Background()
			if _, err := m.Create(ctx, "v", c.size, 0); err != nil {
				b.Fatal(err)
			}
			if c.dense {
				writeDense(b, m, "v", int64(c.written)*volume.DefaultStripeSize)
			} else {
				writeSparse(b, m, "v", c.size, c.written)
			}
			b.ResetTimer()
			for i := 0; b.Loop(); i++ {
				id := fmt.Sprintf("s%d", i)
				if _, err := m.Snapshot(ctx, "v", id); err != nil {
					b.Fatal(err)
				}
				b.StopTimer()
				if err := m.DeleteSnapshot(ctx, id); err != nil {
					b.Fatal(err)
				}
				b.StartTimer()
			}
			b.ReportMetric(float64(c.written), "stripes")
		})
	}
}

// BenchmarkRandomWrite4K measures 4 KiB random writes (16 in flight) over a fully written
// 256 MiB volume, without a snapshot and right after one: after it, nearly every write is the
// first to its allocation unit, which is shared with the snapshot and so copied.
func BenchmarkRandomWrite4K(b *testing.B) {
	const size = 256 << 20
	for _, snap := range []bool{false, true} {
		b.Run(fmt.Sprintf("snapshot=%v", snap), func(b *testing.B) {
			m, _ := newEngineManager(b, 4<<30)
			ctx := context.Background()
			if _, err := m.Create(ctx, "v", size, 0); err != nil {
				b.Fatal(err)
			}
			writeDense(b, m, "v", size)
			if snap {
				if _, err := m.Snapshot(ctx, "v", "s"); err != nil {
					b.Fatal(err)
				}
			}
			var seed atomic.Uint64
			b.SetParallelism(8)
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				rng := rand.New(rand.NewPCG(seed.Add(1), 7))
				block := make([]byte, 4096)
				for pb.Next() {
					off := rng.Int64N(size/4096) * 4096
					block[0] = byte(off)
					if err := m.Write(ctx, "v", off, block); err != nil {
						b.Error(err)
						return
					}
				}
			})
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "IOPS")
		})
	}
}
