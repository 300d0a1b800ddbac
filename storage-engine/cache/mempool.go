package cache

import (
	"fmt"
	"sync/atomic"
)

// Category is a Mempool accounting category, in the spirit of Ceph's mempools.
type Category int

const (
	// CategoryOnodes counts the Onode cache.
	CategoryOnodes Category = iota
	// CategoryBuffers counts the data buffer cache (writing and clean buffers).
	CategoryBuffers
	// CategoryKV counts the KV store's block cache (pebble).
	CategoryKV
	// CategoryOther counts everything else the embedder reports (and the Tuner's estimate of
	// the rest of the heap).
	CategoryOther
	// NumCategories is the number of categories.
	NumCategories
)

func (c Category) String() string {
	switch c {
	case CategoryOnodes:
		return "onodes"
	case CategoryBuffers:
		return "buffers"
	case CategoryKV:
		return "kv"
	case CategoryOther:
		return "other"
	}
	return fmt.Sprintf("category(%d)", int(c))
}

// Mempool counts bytes per Category with atomic counters. It is safe for concurrent use and
// takes no lock. Caches add their entries' bytes as they insert, resize and evict them.
type Mempool struct {
	bytes [NumCategories]atomic.Int64
}

// NewMempool returns an empty Mempool.
func NewMempool() *Mempool { return &Mempool{} }

// add adds delta bytes to category c (c is validated by the caches' Options).
func (p *Mempool) add(c Category, delta int64) {
	if delta != 0 {
		p.bytes[c].Add(delta)
	}
}

// Add adds delta bytes to a category. Unknown categories are an error.
func (p *Mempool) Add(c Category, delta int64) error {
	if c < 0 || c >= NumCategories {
		return fmt.Errorf("mempool: unknown category %d", c)
	}
	p.add(c, delta)
	return nil
}

// Set sets a category to n bytes (for sources that report a total, such as pebble's cache).
func (p *Mempool) Set(c Category, n int64) error {
	if c < 0 || c >= NumCategories {
		return fmt.Errorf("mempool: unknown category %d", c)
	}
	p.bytes[c].Store(n)
	return nil
}

// Bytes returns a category's bytes (0 for unknown categories).
func (p *Mempool) Bytes(c Category) int64 {
	if c < 0 || c >= NumCategories {
		return 0
	}
	return p.bytes[c].Load()
}

// Snapshot returns every category's bytes.
func (p *Mempool) Snapshot() [NumCategories]int64 {
	var s [NumCategories]int64
	for i := range s {
		s[i] = p.bytes[i].Load()
	}
	return s
}

// Total returns the sum over categories.
func (p *Mempool) Total() int64 {
	var t int64
	for i := range p.bytes {
		t += p.bytes[i].Load()
	}
	return t
}
