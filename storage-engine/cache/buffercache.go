package cache

import (
	"fmt"
	"math"
	"unsafe"
)

// BufferOptions configure a BufferCache.
type BufferOptions struct {
	// Options are the cache options; Unit is ignored (a BufferCache counts bytes) and Category
	// defaults to CategoryBuffers when zero (CategoryOnodes).
	Options
	// BufferedWrites keeps written data cached (clean) once its write finishes. When false
	// (the default, as BlueStore's bluestore_default_buffered_write), written buffers are
	// dropped when the write finishes unless the write asks otherwise.
	BufferedWrites bool
	// DisableBufferedReads stops InsertRead from caching data read from the device.
	DisableBufferedReads bool
}

// ReadToken is what ReadInto saw of an object's buffers. InsertRead caches data read from the
// device only if no write or discard touched the object since the token was taken.
type ReadToken struct {
	gen   uint64
	valid bool
}

// BufferCache caches objects' data buffers, one BufferSpace per object, in byte-charged 2Q or
// LRU shards. An object's BufferSpace lives in the shard its ObjectKey hashes to, and that
// shard's mutex guards both the BufferSpace and the shard's lists, so eviction can take a
// buffer out of its BufferSpace directly. It is safe for concurrent use.
//
// The write path: Write adds a buffer in state writing (readable at once, never evicted);
// FinishWrite(seq), called when the transaction has committed, makes it clean (evictable) or
// drops it under a no-cache hint. The read path: ReadInto copies what is cached and returns
// the gaps; after reading the gaps from the device, InsertRead caches them (buffered reads).
type BufferCache struct {
	opts   BufferOptions
	hasher objectKeyHasher
	shards []*bufShard
}

// bufShard is a buffer shard: the replacement lists (in core) and the BufferSpaces that
// hash here. Every field below core is guarded by core.mu; methods ending in Locked REQUIRE it.
type bufShard struct {
	core   *shard[bufferKey, *buffer]
	pool   *Mempool
	cat    Category
	spaces map[ObjectKey]*bufferSpace
	// clock hands out generations for spaces (on write and discard) and removedGen.
	clock uint64
	// removedGen is the generation for objects that have no BufferSpace; it changes whenever
	// a BufferSpace is removed or an object without one is discarded.
	removedGen   uint64
	writingCount int64
	writingBytes int64
}

// spaceOverhead is the memory of a BufferSpace and its map slot.
const spaceOverhead = int64(unsafe.Sizeof(bufferSpace{})) + int64(unsafe.Sizeof(ObjectKey{})) + 16

// NewBufferCache returns an empty buffer cache.
func NewBufferCache(opts BufferOptions) (*BufferCache, error) {
	o := opts
	o.Unit = UnitBytes
	if o.Category == CategoryOnodes {
		o.Category = CategoryBuffers
	}
	o.Options = o.withDefaults()
	if err := o.validate(); err != nil {
		return nil, err
	}
	c := &BufferCache{opts: o, hasher: newObjectKeyHasher(), shards: make([]*bufShard, o.Shards)}
	for i, capacity := range splitCapacity(o.Capacity, o.Shards) {
		bs := &bufShard{
			core: newShard[bufferKey, *buffer](o.Options, capacity),
			pool: o.Pool, cat: o.Category,
			spaces: make(map[ObjectKey]*bufferSpace),
			clock:  1, removedGen: 1,
		}
		bs.core.onEvict = bs.evictedLocked
		c.shards[i] = bs
	}
	return c, nil
}

func (c *BufferCache) shardFor(obj ObjectKey) *bufShard {
	return c.shards[c.hasher.hash(obj)%uint64(len(c.shards))]
}

func checkRange(op string, obj ObjectKey, off, n uint64) error {
	if off+n < off {
		return fmt.Errorf("cache: %s %v: range %d+%d overflows", op, obj, off, n)
	}
	return nil
}

// ReadInto copies the cached parts of obj's bytes [off, off+len(dst)) into dst and appends to
// gaps the ranges (absolute, in order) that the caller must read from the device, returning the
// extended slice; gaps may be nil, and a slice with room (a small array of the caller's) spares
// the hot read path an allocation. Every buffer used counts as a reference; the read counts as a
// hit when there are no gaps, else a miss.
func (c *BufferCache) ReadInto(obj ObjectKey, off uint64, dst []byte, gaps []Range) ([]Range, ReadToken, error) {
	if err := checkRange("read", obj, off, uint64(len(dst))); err != nil {
		return gaps, ReadToken{}, err
	}
	s := c.shardFor(obj)
	s.core.mu.Lock()
	defer s.core.mu.Unlock()
	sp := s.spaces[obj]
	if sp == nil {
		s.core.mu.misses++
		if len(dst) > 0 {
			gaps = append(gaps, Range{Off: off, Len: uint64(len(dst))})
		}
		return gaps, ReadToken{gen: s.removedGen, valid: true}, nil
	}
	n := len(gaps)
	gaps = sp.read(off, dst, gaps, func(b *buffer) {
		if b.e != nil {
			s.core.mu.policy.hit(b.e)
		}
	})
	if len(gaps) == n {
		s.core.mu.hits++
	} else {
		s.core.mu.misses++
	}
	return gaps, ReadToken{gen: sp.gen, valid: true}, nil
}

// InsertRead caches data read from the device at obj's offset off, as clean buffers, for the
// parts that no buffer covers. It does nothing (and returns false) when buffered reads are
// disabled, or when a write or discard touched obj since tok was taken by ReadInto (the data
// may be stale).
func (c *BufferCache) InsertRead(obj ObjectKey, off uint64, data []byte, tok ReadToken) (bool, error) {
	if err := checkRange("insert read", obj, off, uint64(len(data))); err != nil {
		return false, err
	}
	if c.opts.DisableBufferedReads || !tok.valid || len(data) == 0 {
		return false, nil
	}
	s := c.shardFor(obj)
	s.core.mu.Lock()
	defer s.core.mu.Unlock()
	sp := s.spaces[obj]
	switch {
	case sp == nil && tok.gen == s.removedGen:
		sp = s.newSpaceLocked(obj, tok.gen)
	case sp == nil || sp.gen != tok.gen:
		return false, nil
	}
	for _, g := range sp.uncovered(off, off+uint64(len(data))) {
		b := &buffer{off: g.Off, data: clone(data[g.Off-off : g.End()-off]), state: BufferClean}
		sp.insert(b)
		s.accountLocked(b)
	}
	s.core.trimLocked()
	return true, nil
}

// Write caches data written at obj's offset off by the write with sequence seq, replacing what
// was cached there. The buffer stays writing (never evicted) until FinishWrite(obj, seq').
// nocache (or BufferedWrites off) drops the buffer when the write finishes.
func (c *BufferCache) Write(obj ObjectKey, off uint64, data []byte, seq uint64, nocache bool) error {
	if err := checkRange("write", obj, off, uint64(len(data))); err != nil {
		return err
	}
	s := c.shardFor(obj)
	s.core.mu.Lock()
	defer s.core.mu.Unlock()
	sp := s.spaces[obj]
	if sp == nil {
		sp = s.newSpaceLocked(obj, 0)
	}
	end := off + uint64(len(data))
	s.discardLocked(sp, off, end)
	sp.gen = s.tickLocked()
	if len(data) > 0 {
		b := &buffer{off: off, data: clone(data), state: BufferWriting, seq: seq,
			nocache: nocache || !c.opts.BufferedWrites}
		sp.insert(b)
		s.accountLocked(b)
	}
	s.removeIfEmptyLocked(sp)
	s.core.trimLocked()
	return nil
}

// FinishWrite completes obj's writing buffers with sequence <= seq: they become clean, or are
// dropped if their write had a no-cache hint.
func (c *BufferCache) FinishWrite(obj ObjectKey, seq uint64) {
	s := c.shardFor(obj)
	s.core.mu.Lock()
	defer s.core.mu.Unlock()
	sp := s.spaces[obj]
	if sp == nil {
		return
	}
	kept := sp.bufs[:0]
	dropped := false
	for _, b := range sp.bufs {
		if b.state != BufferWriting || b.seq > seq {
			kept = append(kept, b)
			continue
		}
		s.unaccountLocked(b)
		if b.nocache {
			dropped = true
			continue
		}
		b.state = BufferClean
		s.accountLocked(b)
		kept = append(kept, b)
	}
	clear(sp.bufs[len(kept):])
	sp.bufs = kept
	if dropped {
		sp.gen = s.tickLocked()
	}
	s.removeIfEmptyLocked(sp)
	s.core.trimLocked()
}

// Discard drops whatever is cached of obj's bytes [off, off+length) (truncate, zero, punch).
func (c *BufferCache) Discard(obj ObjectKey, off, length uint64) error {
	if err := checkRange("discard", obj, off, length); err != nil {
		return err
	}
	c.discard(obj, off, off+length)
	return nil
}

// DiscardObject drops every buffer of obj (remove, or the target of a rename or clone).
func (c *BufferCache) DiscardObject(obj ObjectKey) {
	c.discard(obj, 0, math.MaxUint64)
}

func (c *BufferCache) discard(obj ObjectKey, off, end uint64) {
	s := c.shardFor(obj)
	s.core.mu.Lock()
	defer s.core.mu.Unlock()
	sp := s.spaces[obj]
	if sp == nil {
		// A read of obj may be in flight: make its token stale.
		s.removedGen = s.tickLocked()
		return
	}
	s.discardLocked(sp, off, end)
	sp.gen = s.tickLocked()
	s.removeIfEmptyLocked(sp)
}

// tickLocked returns a fresh generation.
func (s *bufShard) tickLocked() uint64 {
	s.clock++
	return s.clock
}

func (s *bufShard) newSpaceLocked(obj ObjectKey, gen uint64) *bufferSpace {
	if gen == 0 {
		gen = s.tickLocked()
	}
	sp := &bufferSpace{obj: obj, gen: gen}
	s.spaces[obj] = sp
	s.pool.add(s.cat, spaceOverhead)
	return sp
}

func (s *bufShard) removeIfEmptyLocked(sp *bufferSpace) {
	if len(sp.bufs) == 0 && s.spaces[sp.obj] == sp {
		delete(s.spaces, sp.obj)
		s.pool.add(s.cat, -spaceOverhead)
		s.removedGen = s.tickLocked()
	}
}

// accountLocked starts accounting a buffer that was just put in its space: clean buffers get
// a cache entry, writing ones are counted apart.
func (s *bufShard) accountLocked(b *buffer) {
	n := bufferBytes(len(b.data))
	if b.state == BufferClean {
		b.e = s.core.insertLocked(bufferKey{obj: b.space.obj, off: b.off}, b, n, n)
		return
	}
	s.writingCount++
	s.writingBytes += n
	s.pool.add(s.cat, n)
}

// unaccountLocked stops accounting a buffer (the caller takes it out of its space).
func (s *bufShard) unaccountLocked(b *buffer) {
	if b.state == BufferClean {
		s.core.removeLocked(b.e)
		b.e = nil
		return
	}
	n := bufferBytes(len(b.data))
	s.writingCount--
	s.writingBytes -= n
	s.pool.add(s.cat, -n)
}

// retrimLocked narrows a buffer to [off, off+len(data)) (data is a copy of the kept part),
// keeping its place on its list.
func (s *bufShard) retrimLocked(b *buffer, off uint64, data []byte) {
	n := bufferBytes(len(data))
	if b.state == BufferClean {
		if off != b.off {
			s.core.rekeyLocked(b.e, bufferKey{obj: b.space.obj, off: off})
		}
		s.core.resizeLocked(b.e, n, n)
	} else {
		d := n - bufferBytes(len(b.data))
		s.writingBytes += d
		s.pool.add(s.cat, d)
	}
	b.off, b.data = off, data
}

// discardLocked removes [off, end) from the space: buffers inside go, buffers across an edge
// are cut (a buffer across both edges is split in two).
func (s *bufShard) discardLocked(sp *bufferSpace, off, end uint64) {
	i, j := sp.overlapping(off, end)
	if i == j {
		return
	}
	var kept, tails []*buffer
	for _, b := range sp.bufs[i:j] {
		head, tail := b.off < off, b.end() > end
		switch {
		case head && tail:
			t := &buffer{off: end, data: clone(b.data[end-b.off:]), state: b.state, seq: b.seq, nocache: b.nocache}
			tails = append(tails, t)
			s.retrimLocked(b, b.off, clone(b.data[:off-b.off]))
			kept = append(kept, b)
		case head:
			s.retrimLocked(b, b.off, clone(b.data[:off-b.off]))
			kept = append(kept, b)
		case tail:
			s.retrimLocked(b, end, clone(b.data[end-b.off:]))
			kept = append(kept, b)
		default:
			s.unaccountLocked(b)
		}
	}
	rest := append(kept, sp.bufs[j:]...)
	n := copy(sp.bufs[i:], rest)
	clear(sp.bufs[i+n:])
	sp.bufs = sp.bufs[:i+n]
	for _, t := range tails {
		sp.insert(t)
		s.accountLocked(t)
	}
}

// evictedLocked is the core shard's eviction hook: the buffer leaves its space.
func (s *bufShard) evictedLocked(e *entry[bufferKey, *buffer]) {
	b := e.value
	b.e = nil
	sp := b.space
	if i := sp.indexOf(b); i >= 0 {
		sp.removeAt(i)
	}
	s.removeIfEmptyLocked(sp)
}

func clone(p []byte) []byte {
	return append(make([]byte, 0, len(p)), p...)
}
