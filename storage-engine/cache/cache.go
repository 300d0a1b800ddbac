package cache

import (
	"errors"
	"fmt"
	"math"
)

// ErrNotCached is returned by operations on a key that is not resident.
var ErrNotCached = errors.New("cache: key not cached")

// Cache is a sharded 2Q or LRU cache with pinning and dirty tracking, used for Onodes.
// It is safe for concurrent use; each operation locks exactly one shard (Metrics, Check and
// capacity changes visit the shards one at a time).
//
// An entry in use is pinned (GetPinned, InsertPinned; released by Unpin) and is never evicted
// while pinned. An entry with uncommitted changes is marked dirty (MarkDirty) and is never
// evicted until MarkClean. Remove drops an entry whatever its state: it is the owner's decision.
type Cache[K comparable, V any] struct {
	opts   Options
	hash   func(K) uint64
	shards []*shard[K, V]
}

// New returns a cache for keys hashed by hash (nil: a seeded hash of the whole key).
func New[K comparable, V any](opts Options, hash func(K) uint64) (*Cache[K, V], error) {
	o := opts.withDefaults()
	if err := o.validate(); err != nil {
		return nil, err
	}
	if hash == nil {
		hash = comparableHasher[K]()
	}
	c := &Cache[K, V]{opts: o, hash: hash, shards: make([]*shard[K, V], o.Shards)}
	for i, capacity := range splitCapacity(o.Capacity, o.Shards) {
		c.shards[i] = newShard[K, V](o, capacity)
	}
	return c, nil
}

// NewOnodeCache returns an entry-counted cache keyed by ObjectKey, accounted under
// CategoryOnodes unless opts says otherwise.
func NewOnodeCache[V any](opts Options) (*Cache[ObjectKey, V], error) {
	h := newObjectKeyHasher()
	return New[ObjectKey, V](opts, h.hash)
}

// splitCapacity divides total among n shards, the remainder going to the first ones.
func splitCapacity(total int64, n int) []int64 {
	out := make([]int64, n)
	per, rem := total/int64(n), total%int64(n)
	for i := range out {
		out[i] = per
		if int64(i) < rem {
			out[i]++
		}
	}
	return out
}

func (c *Cache[K, V]) shardFor(key K) *shard[K, V] {
	return c.shards[c.hash(key)%uint64(len(c.shards))]
}

func (c *Cache[K, V]) charge(bytes int64) int64 {
	if c.opts.Unit == UnitEntries {
		return 1
	}
	return bytes
}

// Get returns the value cached for key, counting a hit or a miss.
func (c *Cache[K, V]) Get(key K) (V, bool) {
	return c.get(key, false)
}

// GetPinned is Get that also pins the entry on a hit; the caller must Unpin it.
func (c *Cache[K, V]) GetPinned(key K) (V, bool) {
	return c.get(key, true)
}

func (c *Cache[K, V]) get(key K, pin bool) (V, bool) {
	s := c.shardFor(key)
	s.mu.Lock()
	defer s.mu.Unlock()
	e := s.lookupLocked(key)
	if e == nil {
		var zero V
		return zero, false
	}
	if pin {
		s.setHeldLocked(e, e.pins+1, e.dirty)
	}
	return e.value, true
}

// Insert caches value for key with the given memory estimate in bytes. If key is already
// resident, the resident value is kept and returned with inserted == false (so concurrent
// loaders of one object converge on one value). Negative bytes are an error.
func (c *Cache[K, V]) Insert(key K, value V, bytes int64) (resident V, inserted bool, err error) {
	return c.insert(key, value, bytes, false)
}

// InsertPinned is Insert that also pins the resident entry; the caller must Unpin it.
func (c *Cache[K, V]) InsertPinned(key K, value V, bytes int64) (resident V, inserted bool, err error) {
	return c.insert(key, value, bytes, true)
}

func (c *Cache[K, V]) insert(key K, value V, bytes int64, pin bool) (V, bool, error) {
	if bytes < 0 {
		var zero V
		return zero, false, fmt.Errorf("cache: insert %v: negative size %d", key, bytes)
	}
	s := c.shardFor(key)
	s.mu.Lock()
	defer s.mu.Unlock()
	e, ok := s.mu.index[key]
	inserted := !ok
	if !ok {
		e = s.insertLocked(key, value, c.charge(bytes), bytes)
	}
	if pin {
		s.setHeldLocked(e, e.pins+1, e.dirty)
	}
	s.trimLocked()
	return e.value, inserted, nil
}

// Set caches value for key, replacing the value of a resident entry (which keeps its place in
// its list, its pins and its dirty state).
func (c *Cache[K, V]) Set(key K, value V, bytes int64) error {
	if bytes < 0 {
		return fmt.Errorf("cache: set %v: negative size %d", key, bytes)
	}
	s := c.shardFor(key)
	s.mu.Lock()
	defer s.mu.Unlock()
	if e, ok := s.mu.index[key]; ok {
		e.value = value
		s.resizeLocked(e, c.charge(bytes), bytes)
	} else {
		s.insertLocked(key, value, c.charge(bytes), bytes)
	}
	s.trimLocked()
	return nil
}

// withEntry runs f on key's resident entry under its shard's lock, then trims the shard.
func (c *Cache[K, V]) withEntry(op string, key K, f func(s *shard[K, V], e *entry[K, V]) error) error {
	s := c.shardFor(key)
	s.mu.Lock()
	defer s.mu.Unlock()
	e, ok := s.mu.index[key]
	if !ok {
		return fmt.Errorf("cache: %s %v: %w", op, key, ErrNotCached)
	}
	if err := f(s, e); err != nil {
		return err
	}
	s.trimLocked()
	return nil
}

// Pin pins a resident entry without counting a reference.
func (c *Cache[K, V]) Pin(key K) error {
	return c.withEntry("pin", key, func(s *shard[K, V], e *entry[K, V]) error {
		s.setHeldLocked(e, e.pins+1, e.dirty)
		return nil
	})
}

// Unpin releases one pin. Unpinning an entry that is not pinned is an error.
func (c *Cache[K, V]) Unpin(key K) error {
	return c.withEntry("unpin", key, func(s *shard[K, V], e *entry[K, V]) error {
		if e.pins == 0 {
			return fmt.Errorf("cache: unpin %v: not pinned", key)
		}
		s.setHeldLocked(e, e.pins-1, e.dirty)
		return nil
	})
}

// MarkDirty marks a resident entry as holding uncommitted changes: it will not be evicted
// until MarkClean.
func (c *Cache[K, V]) MarkDirty(key K) error {
	return c.withEntry("mark dirty", key, func(s *shard[K, V], e *entry[K, V]) error {
		s.setHeldLocked(e, e.pins, true)
		return nil
	})
}

// MarkClean marks a resident entry's changes as committed; it becomes evictable when unpinned.
func (c *Cache[K, V]) MarkClean(key K) error {
	return c.withEntry("mark clean", key, func(s *shard[K, V], e *entry[K, V]) error {
		s.setHeldLocked(e, e.pins, false)
		return nil
	})
}

// Resize changes the memory estimate of a resident entry (an Onode that grew or shrank).
func (c *Cache[K, V]) Resize(key K, bytes int64) error {
	if bytes < 0 {
		return fmt.Errorf("cache: resize %v: negative size %d", key, bytes)
	}
	return c.withEntry("resize", key, func(s *shard[K, V], e *entry[K, V]) error {
		s.resizeLocked(e, c.charge(bytes), bytes)
		return nil
	})
}

// Replace swaps the value of a resident entry, keeping its place, pins and dirty state.
func (c *Cache[K, V]) Replace(key K, value V, bytes int64) error {
	if bytes < 0 {
		return fmt.Errorf("cache: replace %v: negative size %d", key, bytes)
	}
	return c.withEntry("replace", key, func(s *shard[K, V], e *entry[K, V]) error {
		e.value = value
		s.resizeLocked(e, c.charge(bytes), bytes)
		return nil
	})
}

// Remove drops key whatever its pins and dirty state, and reports whether it was resident.
func (c *Cache[K, V]) Remove(key K) bool {
	s := c.shardFor(key)
	s.mu.Lock()
	defer s.mu.Unlock()
	e, ok := s.mu.index[key]
	if ok {
		s.removeLocked(e)
	}
	return ok
}

// SetCapacity sets the total capacity (in the cache's unit), split evenly among the shards,
// and trims each shard to it. Pinned and dirty entries are never trimmed.
func (c *Cache[K, V]) SetCapacity(total int64) {
	if total < 0 {
		total = 0
	}
	for i, capacity := range splitCapacity(total, len(c.shards)) {
		s := c.shards[i]
		s.mu.Lock()
		s.setCapacityLocked(capacity)
		s.mu.Unlock()
	}
}

// Trim evicts unheld entries of every shard that is over its capacity. (Every operation
// already trims the shard it touched; Trim is for callers that changed what is held.)
func (c *Cache[K, V]) Trim() {
	for _, s := range c.shards {
		s.mu.Lock()
		s.trimLocked()
		s.mu.Unlock()
	}
}

// Len returns the number of resident entries.
func (c *Cache[K, V]) Len() int {
	n := 0
	for _, s := range c.shards {
		s.mu.Lock()
		n += len(s.mu.index)
		s.mu.Unlock()
	}
	return n
}

// Capacity returns the total capacity over the shards.
func (c *Cache[K, V]) Capacity() int64 {
	var t int64
	for _, s := range c.shards {
		s.mu.Lock()
		t += s.mu.capacity
		s.mu.Unlock()
	}
	return t
}

// SetBudget sets the capacity from a memory budget in bytes. For an entry-counted cache the
// capacity is the budget divided by the mean bytes per resident entry (EntryBytesHint while
// the cache is empty).
func (c *Cache[K, V]) SetBudget(bytes int64) {
	if c.opts.Unit == UnitBytes {
		c.SetCapacity(bytes)
		return
	}
	var n, b int64
	for _, s := range c.shards {
		s.mu.Lock()
		n += int64(len(s.mu.index))
		b += s.mu.bytes
		s.mu.Unlock()
	}
	per := c.opts.EntryBytesHint
	if n > 0 && b > 0 {
		per = (b + n - 1) / n
	}
	if per <= 0 {
		per = 1
	}
	c.SetCapacity(min(bytes/per, math.MaxInt64/2))
}

// Bytes returns the memory accounted by the cache: the sum over its shards.
func (c *Cache[K, V]) Bytes() int64 {
	var t int64
	for _, s := range c.shards {
		s.mu.Lock()
		t += s.mu.bytes
		s.mu.Unlock()
	}
	return t
}

// Pool returns the Mempool the cache accounts into.
func (c *Cache[K, V]) Pool() *Mempool { return c.opts.Pool }

// Metrics returns per-shard and total metrics.
func (c *Cache[K, V]) Metrics() Metrics {
	ms := make([]ShardMetrics, len(c.shards))
	for i, s := range c.shards {
		s.mu.Lock()
		ms[i] = s.metricsLocked()
		s.mu.Unlock()
	}
	return sumMetrics(c.opts.Policy, ms)
}

// Check verifies every shard's invariants (see the package documentation). It returns the
// first violation found.
func (c *Cache[K, V]) Check() error {
	for i, s := range c.shards {
		s.mu.Lock()
		err := s.checkLocked()
		if err == nil {
			for k := range s.mu.index {
				if c.shardFor(k) != s {
					err = fmt.Errorf("cache: key %v is in shard %d but hashes elsewhere", k, i)
					break
				}
			}
		}
		s.mu.Unlock()
		if err != nil {
			return fmt.Errorf("shard %d: %w", i, err)
		}
	}
	return nil
}
