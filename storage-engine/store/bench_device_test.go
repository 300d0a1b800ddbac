package store

import (
	"fmt"
	"math/rand/v2"
	"runtime"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/cobaltstore/cobalt/storage-engine/blockdev"
	"github.com/cobaltstore/cobalt/storage-engine/blockdev/blockdevtest"
)

// The device benchmarks run on a direct-I/O loop device with the metadata on the device (the node
// daemon's layout), so they measure what group commit achieves against a real flush: transactions
// per group, device flushes per write and CPU per write, beside the time per write. They skip when
// not root.

// flushCounter is a device that counts its flushes (data flushes and the metadata region's syncs
// alike, since both go through the store's device).
type flushCounter struct {
	blockdev.Device
	flushes atomic.Int64
}

func (d *flushCounter) Flush() error {
	d.flushes.Add(1)
	return d.Device.Flush()
}

// benchLoopStore makes a store on a fresh 1 GiB loop device (its file written whole first, as a
// real device has every block: copy-on-write data lands in new space, which on a sparse file
// would make the host allocate blocks), metadata on the device, with
// collection "c" holding objects 4 MiB objects, and returns it with its flush-counting device.
func benchLoopStore(b *testing.B, objects int, opts Options) (*Store, *flushCounter) {
	b.Helper()
	path := blockdevtest.AllocatedLoopDevice(b, 1<<30)
	raw, err := blockdev.Open(path, blockdev.Options{})
	if err != nil {
		b.Fatalf("open %s: %v", path, err)
	}
	b.Cleanup(func() {
		if err := raw.Close(); err != nil {
			b.Errorf("close %s: %v", path, err)
		}
	})
	dev := &flushCounter{Device: raw}
	if _, err := Mkfs(ctx, dev, "", MkfsOptions{}); err != nil {
		b.Fatalf("Mkfs on %s: %v", path, err)
	}
	s, err := Open(ctx, dev, "", opts)
	if err != nil {
		b.Fatalf("Open: %v", err)
	}
	b.Cleanup(func() {
		if err := s.Close(); err != nil {
			b.Errorf("Close: %v", err)
		}
	})
	commit(b, s, NewTransaction().CreateCollection("c"))
	buf := pattern(1<<20, 1)
	for i := range objects {
		txn := NewTransaction()
		for off := 0; off < 4<<20; off += len(buf) {
			txn.Write("c", fmt.Sprintf("o%d", i), uint64(off), buf)
		}
		commit(b, s, txn)
	}
	return s, dev
}

// cpuTime is the CPU time (user and system) the process used so far.
func cpuTime(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatalf("getrusage: %v", err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkOverwrite4KDevice overwrites random 4 KiB blocks of 8 objects from 16 goroutines (a
// queue depth of 16, as cobalt-bench's QD16 row) and from one, each write durable when
// acknowledged, and reports transactions per commit group, device flushes per write, process CPU
// per write, the mean KV sync and staging time per group and the mean commit latency.
func BenchmarkOverwrite4KDevice(b *testing.B) {
	for _, mode := range []struct {
		name         string
		deferred, qd int
	}{{"deferred/qd16", 0, 16}, {"cow/qd16", -1, 16}, {"deferred/qd1", 0, 1}} {
		b.Run(mode.name, func(b *testing.B) {
			const objects = 8
			s, dev := benchLoopStore(b, objects, Options{PreferDeferredSize: mode.deferred})
			block := pattern(4096, 2)
			overwrite := func(rng *rand.Rand) bool {
				o, off := rng.IntN(objects), uint64(rng.IntN(1024))*4096
				if err := s.Commit(ctx, NewTransaction().Write("c", fmt.Sprintf("o%d", o), off, block)); err != nil {
					b.Error(err)
					return false
				}
				return true
			}
			b.SetBytes(4096)
			var seed atomic.Uint64
			m0, f0, c0 := s.Metrics(), dev.flushes.Load(), cpuTime(b)
			b.ResetTimer()
			if mode.qd == 1 {
				rng := rand.New(rand.NewPCG(seed.Add(1), 0))
				for range b.N {
					if !overwrite(rng) {
						break
					}
				}
			} else {
				b.SetParallelism((mode.qd + runtime.GOMAXPROCS(0) - 1) / runtime.GOMAXPROCS(0))
				b.RunParallel(func(pb *testing.PB) {
					rng := rand.New(rand.NewPCG(seed.Add(1), 0))
					for pb.Next() {
						if !overwrite(rng) {
							return
						}
					}
				})
			}
			b.StopTimer()
			m1, f1, c1 := s.Metrics(), dev.flushes.Load(), cpuTime(b)
			writes := float64(m1.Commits - m0.Commits)
			if groups := m1.CommitGroups - m0.CommitGroups; groups > 0 {
				b.ReportMetric(writes/float64(groups), "txns/group")
			}
			b.ReportMetric(float64(f1-f0)/writes, "flushes/write")
			b.ReportMetric(float64((c1-c0).Microseconds())/writes, "cpu-µs/write")
			b.ReportMetric(meanSince(m0.KVSyncLatency, m1.KVSyncLatency), "kvsync-µs/group")
			b.ReportMetric(meanSince(m0.StageLatency, m1.StageLatency), "stage-µs/group")
			b.ReportMetric(meanSince(m0.CommitLatency, m1.CommitLatency), "commit-µs")
		})
	}
}

// meanSince is the mean in microseconds of the latencies observed between summaries a and b.
func meanSince(a, b LatencySummary) float64 {
	n := b.Count - a.Count
	if n <= 0 {
		return 0
	}
	sum := float64(b.Mean)*float64(b.Count) - float64(a.Mean)*float64(a.Count)
	return sum / float64(n) / float64(time.Microsecond)
}
