package volbench

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"
)

// memTarget records every request.
type memTarget struct {
	mu     sync.Mutex
	data   []byte
	writes map[int64]int
	failAt int64 // offset that fails, or -1
}

func (m *memTarget) WriteAt(_ context.Context, off int64, p []byte) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if off == m.failAt {
		return errors.New("injected")
	}
	copy(m.data[off:], p)
	m.writes[off]++
	return nil
}

func (m *memTarget) ReadAt(_ context.Context, off, n int64) ([]byte, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return append([]byte(nil), m.data[off:off+n]...), nil
}

func newTarget(size int64) *memTarget {
	return &memTarget{data: make([]byte, size), writes: map[int64]int{}, failAt: -1}
}

func TestRunCountsAndAlignment(t *testing.T) {
	const region = 1 << 20
	for _, w := range []Workload{
		{Name: "rw", Pattern: RandWrite, BlockSize: 4096, QueueDepth: 4, MaxOps: 500},
		{Name: "rr", Pattern: RandRead, BlockSize: 4096, QueueDepth: 16, MaxOps: 500},
		{Name: "seq", Pattern: SeqWrite, BlockSize: 64 << 10, QueueDepth: 1, MaxOps: 16},
	} {
		t.Run(w.Name, func(t *testing.T) {
			tg := newTarget(region)
			r, err := Run(context.Background(), tg, region, w, 1)
			if err != nil {
				t.Fatal(err)
			}
			if r.Ops != w.MaxOps || r.Bytes != w.MaxOps*w.BlockSize {
				t.Fatalf("ops %d bytes %d, want %d ops", r.Ops, r.Bytes, w.MaxOps)
			}
			if r.P50 > r.P99 || r.IOPS() <= 0 {
				t.Fatalf("bad percentiles or rate: %+v", r)
			}
			for off := range tg.writes {
				if off%w.BlockSize != 0 || off+w.BlockSize > region {
					t.Fatalf("write at %d is unaligned or out of the region", off)
				}
			}
			if w.Pattern == SeqWrite && len(tg.writes) != int(w.MaxOps) {
				t.Fatalf("sequential writes hit %d distinct offsets, want %d", len(tg.writes), w.MaxOps)
			}
		})
	}
}

func TestRunByDurationAndErrors(t *testing.T) {
	tg := newTarget(1 << 20)
	r, err := Run(context.Background(), tg, 1<<20, Workload{Name: "d", Pattern: RandWrite, BlockSize: 4096, QueueDepth: 2, Duration: 50 * time.Millisecond}, 2)
	if err != nil || r.Ops == 0 {
		t.Fatalf("duration run = %+v, %v", r, err)
	}
	tg.failAt = 0
	_, err = Run(context.Background(), tg, 8192, Workload{Name: "e", Pattern: SeqWrite, BlockSize: 4096, QueueDepth: 1, MaxOps: 4}, 3)
	if err == nil {
		t.Fatal("an I/O error was not reported")
	}
	if _, err := Run(context.Background(), tg, 4096, Workload{Name: "small", Pattern: RandRead, BlockSize: 4096, QueueDepth: 2, MaxOps: 1}, 1); err == nil {
		t.Fatal("a region smaller than the queue's blocks was accepted")
	}
}
