package cache

import (
	"fmt"
	"sync"

	"github.com/cockroachdb/pebble/v2"
)

// PebbleBlockCache lets the Tuner size pebble's block cache. Pebble's cache cannot be resized,
// so it is created at its largest size and shrunk by a reservation (pebble's Cache.Reserve):
// a budget b reserves MaxSize − b, which evicts down to b.
type PebbleBlockCache struct {
	c *pebble.Cache

	mu struct {
		sync.Mutex
		release func()
		budget  int64
	}
}

// NewPebbleBlockCache wraps c; the caller keeps its own reference to c and must Close the
// wrapper (which drops the reservation) before releasing c.
func NewPebbleBlockCache(c *pebble.Cache) (*PebbleBlockCache, error) {
	if c == nil {
		return nil, fmt.Errorf("cache: nil pebble cache")
	}
	p := &PebbleBlockCache{c: c}
	p.mu.budget = c.MaxSize()
	return p, nil
}

// SetBudget limits the block cache to bytes (at most its MaxSize).
func (p *PebbleBlockCache) SetBudget(bytes int64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	bytes = min(max(bytes, 0), p.c.MaxSize())
	if p.mu.release != nil {
		p.mu.release()
		p.mu.release = nil
	}
	if r := p.c.MaxSize() - bytes; r > 0 {
		p.mu.release = p.c.Reserve(int(r))
	}
	p.mu.budget = bytes
}

// Budget returns the current budget.
func (p *PebbleBlockCache) Budget() int64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.mu.budget
}

// TuneCounters reports pebble's cache counters (it keeps no ghosts).
func (p *PebbleBlockCache) TuneCounters() TuneCounters {
	m := p.c.Metrics()
	return TuneCounters{Hits: m.Hits, Misses: m.Misses, Usage: m.Size}
}

// Close drops the reservation.
func (p *PebbleBlockCache) Close() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.mu.release != nil {
		p.mu.release()
		p.mu.release = nil
	}
	return nil
}
