//go:build !race

// The race detector changes allocation sizes and speed; this test measures the heap, so it runs
// in normal builds only (TestConcurrentUse covers the same operations under -race).

package cache

import (
	"fmt"
	"math/rand/v2"
	"runtime"
	"testing"
)

// TestHeapStaysWithinTarget runs a long random workload (Onode loads and updates, buffered
// reads and writes of 4–64 KiB, discards) with a 256 MiB memory target, the Tuner measuring the
// live heap, and checks after forced GCs that the Go heap stays within target + 10%.
func TestHeapStaysWithinTarget(t *testing.T) {
	const target = 256 << 20
	pool := NewMempool()
	onodes, err := NewOnodeCache[[]byte](Options{Pool: pool})
	if err != nil {
		t.Fatal(err)
	}
	bufs, err := NewBufferCache(BufferOptions{Options: Options{Pool: pool}, BufferedWrites: true})
	if err != nil {
		t.Fatal(err)
	}
	tu, err := NewTuner(pool, [NumTuned]Tunable{onodes, bufs, nil}, TunerOptions{
		Config:      TuneConfig{Target: target, Ratios: [NumTuned]float64{0.3, 0.7, 0}},
		MeasureHeap: true,
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tu.Step(); err != nil {
		t.Fatal(err)
	}
	var ms runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&ms)
	base := ms.HeapAlloc
	device := make([]byte, 64<<10) // what "reads from the device" return
	keys := make([]ObjectKey, 50000)
	for i := range keys {
		keys[i] = ObjectKey{Collection: fmt.Sprint("pg.", i%64), Object: fmt.Sprint("rbd_data.", i)}
	}
	rng := rand.New(rand.NewPCG(5, 6))
	var seq uint64
	var inserted, maxHeap int64
	const ops = 400000
	for i := range ops {
		// Skewed object choice: a warm quarter of the keys gets most accesses.
		k := keys[rng.IntN(len(keys))]
		if rng.IntN(4) != 0 {
			k = keys[rng.IntN(len(keys)/4)]
		}
		switch r := rng.IntN(10); {
		case r < 3:
			if _, ok := onodes.GetPinned(k); !ok {
				on := make([]byte, 300+rng.IntN(3000))
				if _, _, err := onodes.InsertPinned(k, on, int64(len(on))+onodeOverhead); err != nil {
					t.Fatal(err)
				}
			}
			if err := onodes.Unpin(k); err != nil {
				t.Fatal(err)
			}
		case r < 8:
			n := 4096 << rng.IntN(5)
			off := uint64(rng.IntN(64)) * 4096
			dst := make([]byte, n)
			gaps, tok, err := bufs.ReadInto(k, off, dst, nil)
			if err != nil {
				t.Fatal(err)
			}
			for _, g := range gaps {
				if _, err := bufs.InsertRead(k, g.Off, device[:g.Len], tok); err != nil {
					t.Fatal(err)
				}
				inserted += int64(g.Len)
			}
		case r < 9:
			seq++
			n := 4096 << rng.IntN(5)
			if err := bufs.Write(k, uint64(rng.IntN(64))*4096, device[:n], seq, false); err != nil {
				t.Fatal(err)
			}
			bufs.FinishWrite(k, seq)
			inserted += int64(n)
		default:
			if err := bufs.Discard(k, uint64(rng.IntN(64))*4096, 64<<10); err != nil {
				t.Fatal(err)
			}
		}
		if i%5000 == 4999 {
			if _, err := tu.Step(); err != nil {
				t.Fatal(err)
			}
		}
		if i%(ops/10) == ops/10-1 {
			runtime.GC()
			runtime.ReadMemStats(&ms)
			heap := int64(ms.HeapAlloc) - int64(base)
			maxHeap = max(maxHeap, heap)
			rep := tu.Last()
			t.Logf("op %d: heap %d MiB (accounted onodes %d MiB, buffers %d MiB; budgets %v MiB; other %d MiB)",
				i+1, heap>>20, pool.Bytes(CategoryOnodes)>>20, pool.Bytes(CategoryBuffers)>>20,
				[]int64{rep.Budgets[0] >> 20, rep.Budgets[1] >> 20}, rep.Other>>20)
			if heap > target*11/10 {
				t.Fatalf("op %d: heap %d bytes over target %d + 10%%", i+1, heap, target)
			}
		}
	}
	if inserted < 4*target || maxHeap < target/2 {
		t.Fatalf("workload too weak: %d MiB inserted, max heap %d MiB", inserted>>20, maxHeap>>20)
	}
	if err := onodes.Check(); err != nil {
		t.Fatal(err)
	}
	if err := bufs.Check(); err != nil {
		t.Fatal(err)
	}
}

// onodeOverhead is the test's estimate of an Onode entry's memory besides its payload.
const onodeOverhead = 256
