package fuseloop

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"
)

// memBackend is a frontend.Backend in memory. It logs the order of completed writes and
// flushes, records trims, and can fail writes or hold them until enough are in flight.
type memBackend struct {
	mu struct {
		sync.Mutex
		data    []byte
		ops     []string // "write@off+len" when a write returns, "flush" when a flush starts
		trims   [][2]int64
		flushes int
	}
	failWrites atomic.Bool
	maxWrite   atomic.Int64 // largest WriteAt seen

	// gate, when set, holds each WriteAt until gate writes are in flight at once (then all go)
	// or gateWait passed.
	gate       int64
	gateWait   time.Duration
	gateOnce   sync.Once
	gateOpened chan struct{}
	inflight   atomic.Int64
	peak       atomic.Int64
}

func newMemBackend(size int64) *memBackend {
	b := &memBackend{gateOpened: make(chan struct{})}
	b.mu.data = make([]byte, size)
	return b
}

var errInjected = errors.New("injected backend failure")

func (b *memBackend) ReadAt(ctx context.Context, p []byte, off int64) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if off < 0 || off+int64(len(p)) > int64(len(b.mu.data)) {
		return fmt.Errorf("read [%d, %d) outside the volume", off, off+int64(len(p)))
	}
	copy(p, b.mu.data[off:])
	return nil
}

func (b *memBackend) WriteAt(ctx context.Context, p []byte, off int64) error {
	n := b.inflight.Add(1)
	defer b.inflight.Add(-1)
	for {
		peak := b.peak.Load()
		if n <= peak || b.peak.CompareAndSwap(peak, n) {
			break
		}
	}
	if b.gate > 0 {
		if n >= b.gate {
			b.gateOnce.Do(func() { close(b.gateOpened) })
		}
		select {
		case <-b.gateOpened:
		case <-time.After(b.gateWait):
		}
	}
	if b.failWrites.Load() {
		return errInjected
	}
	for {
		m := b.maxWrite.Load()
		if int64(len(p)) <= m || b.maxWrite.CompareAndSwap(m, int64(len(p))) {
			break
		}
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if off < 0 || off+int64(len(p)) > int64(len(b.mu.data)) {
		return fmt.Errorf("write [%d, %d) outside the volume", off, off+int64(len(p)))
	}
	copy(b.mu.data[off:], p)
	b.mu.ops = append(b.mu.ops, fmt.Sprintf("write@%d+%d", off, len(p)))
	return nil
}

func (b *memBackend) Flush(ctx context.Context) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.mu.flushes++
	b.mu.ops = append(b.mu.ops, "flush")
	return nil
}

func (b *memBackend) Trim(ctx context.Context, off, length int64) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if off < 0 || off+length > int64(len(b.mu.data)) {
		return fmt.Errorf("trim [%d, %d) outside the volume", off, off+length)
	}
	clear(b.mu.data[off : off+length])
	b.mu.trims = append(b.mu.trims, [2]int64{off, length})
	return nil
}

// grow extends the volume (what the engine does before the frontend's Resize).
func (b *memBackend) grow(size int64) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.mu.data = append(b.mu.data, make([]byte, size-int64(len(b.mu.data)))...)
}

func (b *memBackend) bytes(off, n int64) []byte {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]byte(nil), b.mu.data[off:off+n]...)
}

func (b *memBackend) flushCount() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.mu.flushes
}

func (b *memBackend) opLog() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]string(nil), b.mu.ops...)
}

func (b *memBackend) trimList() [][2]int64 {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([][2]int64(nil), b.mu.trims...)
}
