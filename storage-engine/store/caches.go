package store

import (
	"context"
	"fmt"
	"unsafe"

	"github.com/cobaltstore/cobalt/storage-engine/cache"
	"github.com/cobaltstore/cobalt/storage-engine/onode"
	"github.com/cockroachdb/pebble/v2"
)

// storeCaches are the store's caches from storage-engine/cache: the sharded 2Q/LRU Onode cache,
// the data BufferCache (one BufferSpace per object; buffered reads), the Mempool that accounts
// their bytes, and the Tuner that splits the memory target between them and trims them to it.
//
// Pebble's block cache is created here too (kvCache, handed to kv.Open) at the size of the whole
// memory target and sized by the Tuner through cache.PebbleBlockCache, so the Tuner splits the
// memory target among the Onode cache, the buffer cache and pebble's block cache: by kvRatios at
// first, then toward the cache whose hits gain most. The Tuner copies pebble's cache usage into
// the Mempool's kv category.
//
// Buffered data is the committed content of an object: reads fill the BufferCache (ReadNoCache
// reads the device and the deferred overlay around it, leaving it unchanged), and every
// object a commit group changes has its buffers discarded when the group is published (under the
// gate, so no reader can insert data read before the change).
type storeCaches struct {
	pool    *cache.Mempool
	onodes  *cache.Cache[cache.ObjectKey, *onode.Onode] // nil when Options.OnodeCache is set
	buffers *cache.BufferCache
	kvCache *pebble.Cache // pebble's block cache; pass to kv.Open
	kvTuned *cache.PebbleBlockCache
	tuner   *cache.Tuner
	stop    context.CancelFunc
	done    chan struct{}
}

// newStoreCaches builds the caches for opts (after withDefaults) and starts the Tuner.
func newStoreCaches(opts Options) (*storeCaches, error) {
	policy, err := cache.ParsePolicy(opts.CacheType)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	c := &storeCaches{pool: cache.NewMempool()}
	if opts.MemoryTarget <= 0 {
		return nil, fmt.Errorf("memory target %d: %w", opts.MemoryTarget, ErrInvalid)
	}
	base := cache.Options{Policy: policy, Shards: opts.CacheShards, Pool: c.pool}
	if opts.OnodeCache == nil {
		oo := base
		oo.Unit, oo.Category = cache.UnitEntries, cache.CategoryOnodes
		if c.onodes, err = cache.NewOnodeCache[*onode.Onode](oo); err != nil {
			return nil, err
		}
	}
	bo := cache.BufferOptions{Options: base}
	bo.Category = cache.CategoryBuffers
	bo.DisableBufferedReads = opts.DisableBufferedReads
	bo.BufferedWrites = opts.BufferedWrites
	if c.buffers, err = cache.NewBufferCache(bo); err != nil {
		return nil, err
	}
	// Pebble's cache cannot grow: it is made as large as the whole target and the Tuner's budget
	// shrinks it by a reservation.
	c.kvCache = pebble.NewCache(opts.MemoryTarget)
	if c.kvTuned, err = cache.NewPebbleBlockCache(c.kvCache); err != nil {
		c.kvCache.Unref()
		return nil, err
	}
	cfg := cache.DefaultTuneConfig(opts.MemoryTarget)
	cfg.Ratios = startRatios
	var onodes cache.Tunable
	if c.onodes != nil {
		onodes = c.onodes
	}
	tuned := [cache.NumTuned]cache.Tunable{onodes, c.buffers, c.kvTuned}
	if c.tuner, err = cache.NewTuner(c.pool, tuned, cache.TunerOptions{Config: cfg}); err == nil {
		_, err = c.tuner.Step()
	}
	if err != nil {
		_ = c.kvTuned.Close()
		c.kvCache.Unref()
		return nil, err
	}
	ctx, stop := context.WithCancel(context.Background())
	c.stop, c.done = stop, make(chan struct{})
	go func() {
		defer close(c.done)
		// Start fails only on an invalid configuration, which NewTuner and Step have checked.
		_ = c.tuner.Start(ctx)
	}()
	return c, nil
}

// startRatios split the memory target before the Tuner has measured anything: 3/8 each to the
// Onode and buffer caches, 1/4 to pebble's block cache.
var startRatios = [cache.NumTuned]float64{cache.TunedOnodes: 0.375, cache.TunedBuffers: 0.375, cache.TunedKV: 0.25}

// close stops the Tuner and drops the store's reference to pebble's cache (the database keeps
// its own until it is closed).
func (c *storeCaches) close() {
	c.stop()
	<-c.done
	_ = c.kvTuned.Close() // only drops the reservation
	c.kvCache.Unref()
}

// read fills out with the object's bytes at [off, off+len(out)): what the BufferCache holds is
// copied, the gaps are read from the device (s.readRange verifies their checksums) and cached.
// REQUIRES: s.gate held shared.
func (c *storeCaches) read(s *Store, k OnodeKey, on *onode.Onode, off uint64, out []byte) error {
	ck := cache.ObjectKey(k)
	var room [4]cache.Range // most reads have at most a few gaps: no allocation for them
	gaps, tok, err := c.buffers.ReadInto(ck, off, out, room[:0])
	if err != nil {
		return fmt.Errorf("read %s/%s: %w", k.Collection, k.Object, err)
	}
	for _, g := range gaps {
		part := out[g.Off-off : g.End()-off]
		if err := s.readRange(k, on, g.Off, part); err != nil {
			return err
		}
		if _, err := c.buffers.InsertRead(ck, g.Off, part, tok); err != nil {
			return fmt.Errorf("cache read of %s/%s: %w", k.Collection, k.Object, err)
		}
	}
	return nil
}

// discard drops the cached data of an object whose content a commit group changed.
// REQUIRES: s.gate held exclusively (publication), so no reader is between ReadInto and InsertRead.
func (c *storeCaches) discard(k OnodeKey) {
	c.buffers.DiscardObject(cache.ObjectKey(k))
}

// onodeCache returns the OnodeCache the store should use: opts.OnodeCache if set, else the
// sharded cache.
func (c *storeCaches) onodeCache(opts Options) OnodeCache {
	if opts.OnodeCache != nil {
		return opts.OnodeCache
	}
	return onodeCache{c: c.onodes}
}

// CacheMetrics describes the store's caches.
type CacheMetrics struct {
	// Onodes and Buffers are the caches' metrics: totals, per shard and per list (A1in, Am,
	// A1out for 2Q). Onodes is empty when Options.OnodeCache replaces the built-in cache.
	Onodes, Buffers cache.Metrics
	// Memory is the Mempool's bytes per category (onodes, buffers, kv, other).
	Memory [cache.NumCategories]int64
	// Budgets are the Tuner's latest budgets in bytes (onodes, buffers, kv).
	Budgets [cache.NumTuned]int64
}

func (c *storeCaches) metrics() CacheMetrics {
	m := CacheMetrics{Buffers: c.buffers.Metrics(), Memory: c.pool.Snapshot(), Budgets: c.tuner.Last().Budgets}
	if c.onodes != nil {
		m.Onodes = c.onodes.Metrics()
	}
	return m
}

// onodeCache adapts the sharded cache to the store's OnodeCache interface. A Pin of an absent
// key caches a nil placeholder (read as absent) so that the pin and dirty state exist before the
// onode does. The interface has no error results: operations on keys that are no longer cached
// (after Remove) are no-ops, as in the placeholder map cache.
type onodeCache struct {
	c *cache.Cache[cache.ObjectKey, *onode.Onode]
}

func (a onodeCache) Get(k OnodeKey) (*onode.Onode, bool) {
	o, ok := a.c.Get(cache.ObjectKey(k))
	return o, ok && o != nil
}

func (a onodeCache) Insert(k OnodeKey, o *onode.Onode) {
	// Set only fails on a negative size, which onodeBytes never returns.
	_ = a.c.Set(cache.ObjectKey(k), o, onodeBytes(o))
}

func (a onodeCache) Remove(k OnodeKey)    { a.c.Remove(cache.ObjectKey(k)) }
func (a onodeCache) Unpin(k OnodeKey)     { _ = a.c.Unpin(cache.ObjectKey(k)) }
func (a onodeCache) MarkDirty(k OnodeKey) { _ = a.c.MarkDirty(cache.ObjectKey(k)) }
func (a onodeCache) MarkClean(k OnodeKey) { _ = a.c.MarkClean(cache.ObjectKey(k)) }
func (a onodeCache) Trim()                { a.c.Trim() }
func (a onodeCache) Len() int             { return a.c.Len() }

func (a onodeCache) Pin(k OnodeKey) {
	// InsertPinned pins the resident entry, or caches a pinned placeholder.
	_, _, _ = a.c.InsertPinned(cache.ObjectKey(k), nil, onodeBytes(nil))
}

// onodeBytes estimates the memory of a cached onode: the struct, its cache entry and key, its
// extents and checksums, xattrs and omap header.
func onodeBytes(o *onode.Onode) int64 {
	n := int64(unsafe.Sizeof(onode.Onode{})) + 160
	if o == nil {
		return n
	}
	n += int64(len(o.Extents)) * int64(unsafe.Sizeof(onode.Extent{}))
	for _, e := range o.Extents {
		n += 4 * int64(len(e.Csums))
	}
	for name, v := range o.Xattrs {
		n += int64(len(name)+len(v)) + 48
	}
	return n + int64(len(o.OmapHeader))
}
