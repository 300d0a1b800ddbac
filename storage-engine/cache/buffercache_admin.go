package cache

import (
	"bytes"
	"fmt"
)

// SetCapacity sets the total capacity in bytes for clean buffers, split evenly among the
// shards, and trims to it. Writing buffers are not evictable and not counted against it.
func (c *BufferCache) SetCapacity(total int64) {
	if total < 0 {
		total = 0
	}
	for i, capacity := range splitCapacity(total, len(c.shards)) {
		s := c.shards[i]
		s.core.mu.Lock()
		s.core.setCapacityLocked(capacity)
		s.core.mu.Unlock()
	}
}

// SetBudget sets the capacity from a memory budget in bytes (the same thing for buffers).
func (c *BufferCache) SetBudget(bytes int64) { c.SetCapacity(bytes) }

// Capacity returns the total capacity over the shards.
func (c *BufferCache) Capacity() int64 {
	var t int64
	for _, s := range c.shards {
		s.core.mu.Lock()
		t += s.core.mu.capacity
		s.core.mu.Unlock()
	}
	return t
}

// Bytes returns the memory the cache accounts: clean and writing buffers and BufferSpaces,
// summed over the shards.
func (c *BufferCache) Bytes() int64 {
	var t int64
	for _, s := range c.shards {
		s.core.mu.Lock()
		t += s.bytesLocked()
		s.core.mu.Unlock()
	}
	return t
}

// bytesLocked is the shard's accounted memory.
func (s *bufShard) bytesLocked() int64 {
	return s.core.mu.bytes + s.writingBytes + int64(len(s.spaces))*spaceOverhead
}

// Pool returns the Mempool the cache accounts into.
func (c *BufferCache) Pool() *Mempool { return c.opts.Pool }

// Metrics returns per-shard and total metrics. Bytes include writing buffers and BufferSpaces;
// Dirty counts writing buffers.
func (c *BufferCache) Metrics() Metrics {
	ms := make([]ShardMetrics, len(c.shards))
	for i, s := range c.shards {
		s.core.mu.Lock()
		m := s.core.metricsLocked()
		m.Bytes = s.bytesLocked()
		m.Dirty = s.writingCount
		ms[i] = m
		s.core.mu.Unlock()
	}
	return sumMetrics(c.opts.Policy, ms)
}

// Check verifies every shard's invariants: the lists (as Cache.Check), and that each
// BufferSpace is sorted without overlaps, that its clean buffers are exactly the shard's
// resident entries, and that writing buffers are on no list.
func (c *BufferCache) Check() error {
	for i, s := range c.shards {
		s.core.mu.Lock()
		err := s.checkLocked(c)
		s.core.mu.Unlock()
		if err != nil {
			return fmt.Errorf("buffer shard %d: %w", i, err)
		}
	}
	return nil
}

func (s *bufShard) checkLocked(c *BufferCache) error {
	if err := s.core.checkLocked(); err != nil {
		return err
	}
	var clean, writing, writingBytes int64
	for obj, sp := range s.spaces {
		if sp.obj != obj {
			return fmt.Errorf("space %v filed under %v", sp.obj, obj)
		}
		if c.shardFor(obj) != s {
			return fmt.Errorf("space %v is in the wrong shard", obj)
		}
		if len(sp.bufs) == 0 {
			return fmt.Errorf("space %v is empty but kept", obj)
		}
		if sp.gen > s.clock {
			return fmt.Errorf("space %v has generation %d after the clock %d", obj, sp.gen, s.clock)
		}
		for k, b := range sp.bufs {
			if b.space != sp || len(b.data) == 0 {
				return fmt.Errorf("space %v: buffer at %d is detached or empty", obj, b.off)
			}
			if k > 0 && sp.bufs[k-1].end() > b.off {
				return fmt.Errorf("space %v: buffers at %d and %d overlap or are out of order", obj, sp.bufs[k-1].off, b.off)
			}
			switch b.state {
			case BufferClean:
				clean++
				e := s.core.mu.index[bufferKey{obj: obj, off: b.off}]
				if e == nil || e != b.e || e.value != b {
					return fmt.Errorf("space %v: clean buffer at %d has no matching entry", obj, b.off)
				}
				if e.bytes != bufferBytes(len(b.data)) {
					return fmt.Errorf("space %v: buffer at %d accounts %d bytes for %d", obj, b.off, e.bytes, len(b.data))
				}
			case BufferWriting:
				writing++
				writingBytes += bufferBytes(len(b.data))
				if b.e != nil {
					return fmt.Errorf("space %v: writing buffer at %d has a cache entry", obj, b.off)
				}
			default:
				return fmt.Errorf("space %v: buffer at %d in %v", obj, b.off, b.state)
			}
		}
	}
	if clean != int64(len(s.core.mu.index)) {
		return fmt.Errorf("%d clean buffers in spaces, %d cache entries", clean, len(s.core.mu.index))
	}
	if writing != s.writingCount || writingBytes != s.writingBytes {
		return fmt.Errorf("counted %d writing buffers (%d bytes), recorded %d (%d)", writing, writingBytes, s.writingCount, s.writingBytes)
	}
	return nil
}

// contents returns obj's cached bytes and buffer states as text (for tests).
func (c *BufferCache) contents(obj ObjectKey) string {
	s := c.shardFor(obj)
	s.core.mu.Lock()
	defer s.core.mu.Unlock()
	sp := s.spaces[obj]
	if sp == nil {
		return ""
	}
	var out bytes.Buffer
	for k, b := range sp.bufs {
		if k > 0 {
			out.WriteByte(' ')
		}
		fmt.Fprintf(&out, "%d:%s:%s", b.off, b.data, b.state)
	}
	return out.String()
}
