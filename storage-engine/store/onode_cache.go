package store

import (
	"sync"

	"github.com/cobaltstore/cobalt/storage-engine/onode"
)

// OnodeKey names an object.
type OnodeKey struct {
	Collection, Object string
}

// OnodeCache caches decoded onodes. The store inserts only committed onodes and never mutates an
// onode after inserting it (a change inserts a new one), so a cached *onode.Onode may be shared by
// concurrent readers. Implementations must be safe for concurrent use.
//
// Pinned or dirty entries must not be evicted. The store pins the onodes of a commit group while it
// writes them, marks them dirty until the group's KV commit is durable, then marks them clean and
// unpins them.
type OnodeCache interface {
	Get(k OnodeKey) (*onode.Onode, bool)
	// Insert adds or replaces the entry for k.
	Insert(k OnodeKey, o *onode.Onode)
	Remove(k OnodeKey)
	Pin(k OnodeKey)
	Unpin(k OnodeKey)
	MarkDirty(k OnodeKey)
	MarkClean(k OnodeKey)
	// Trim evicts clean, unpinned entries until the cache is within its budget.
	Trim()
	// Len is the number of cached onodes.
	Len() int
}

// mapOnodeCache is the placeholder OnodeCache: a map bounded by an entry count that evicts
// arbitrary clean, unpinned entries (Go map order) when over budget. The sharded 2Q cache of
// storage-engine/cache replaces it.
type mapOnodeCache struct {
	max int
	// mu guards the fields in this struct.
	mu struct {
		sync.Mutex
		m map[OnodeKey]*cachedOnode
	}
}

type cachedOnode struct {
	o     *onode.Onode
	pins  int
	dirty bool
}

func newMapOnodeCache(maxEntries int) *mapOnodeCache {
	c := &mapOnodeCache{max: max(maxEntries, 16)}
	c.mu.m = make(map[OnodeKey]*cachedOnode)
	return c
}

func (c *mapOnodeCache) Get(k OnodeKey) (*onode.Onode, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.mu.m[k]
	if !ok || e.o == nil {
		return nil, false
	}
	return e.o, true
}

func (c *mapOnodeCache) Insert(k OnodeKey, o *onode.Onode) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if e, ok := c.mu.m[k]; ok {
		e.o = o
		return
	}
	c.mu.m[k] = &cachedOnode{o: o}
	if len(c.mu.m) > c.max+c.max/4 {
		c.trimLocked()
	}
}

func (c *mapOnodeCache) Remove(k OnodeKey) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if e, ok := c.mu.m[k]; ok && (e.pins > 0 || e.dirty) {
		e.o = nil // keep the pin/dirty state; the entry reads as absent
		return
	}
	delete(c.mu.m, k)
}

func (c *mapOnodeCache) Pin(k OnodeKey) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.mu.m[k]
	if !ok {
		e = &cachedOnode{}
		c.mu.m[k] = e
	}
	e.pins++
}

func (c *mapOnodeCache) Unpin(k OnodeKey) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if e, ok := c.mu.m[k]; ok && e.pins > 0 {
		e.pins--
		if e.pins == 0 && !e.dirty && e.o == nil {
			delete(c.mu.m, k)
		}
	}
}

func (c *mapOnodeCache) MarkDirty(k OnodeKey) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if e, ok := c.mu.m[k]; ok {
		e.dirty = true
	}
}

func (c *mapOnodeCache) MarkClean(k OnodeKey) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if e, ok := c.mu.m[k]; ok {
		e.dirty = false
		if e.pins == 0 && e.o == nil {
			delete(c.mu.m, k)
		}
	}
}

func (c *mapOnodeCache) Trim() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.trimLocked()
}

// REQUIRES: c.mu held.
func (c *mapOnodeCache) trimLocked() {
	for k, e := range c.mu.m {
		if len(c.mu.m) <= c.max {
			return
		}
		if e.pins == 0 && !e.dirty {
			delete(c.mu.m, k)
		}
	}
}

func (c *mapOnodeCache) Len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.mu.m)
}
