package cache

import (
	"fmt"
	"sync"
)

// shard is one independently locked part of a cache: an index of resident entries, a policy
// that orders them, and the shard's totals and counters.
type shard[K comparable, V any] struct {
	pool *Mempool
	cat  Category
	// onEvict, when set, is called for every evicted entry with mu held (the BufferCache uses it
	// to take the buffer out of its BufferSpace, which the same mutex guards).
	onEvict func(e *entry[K, V])

	mu struct {
		sync.Mutex
		index    map[K]*entry[K, V]
		policy   policy[K, V]
		capacity int64
		// charge and bytes are the totals over resident entries (held ones included).
		charge int64
		bytes  int64
		pinned int64 // entries with pins > 0
		dirty  int64 // dirty entries
		// Counters.
		hits, misses, inserts, evictions int64
	}
}

func newShard[K comparable, V any](o Options, capacity int64) *shard[K, V] {
	s := &shard[K, V]{pool: o.Pool, cat: o.Category}
	s.mu.index = make(map[K]*entry[K, V])
	s.mu.policy = newPolicy[K, V](o, capacity)
	s.mu.capacity = capacity
	return s
}

// lookupLocked returns the resident entry for key and records a hit or a miss.
// REQUIRES: s.mu
func (s *shard[K, V]) lookupLocked(key K) *entry[K, V] {
	e, ok := s.mu.index[key]
	if !ok {
		s.mu.misses++
		return nil
	}
	s.mu.hits++
	s.mu.policy.hit(e)
	return e
}

// insertLocked makes a new entry resident. The key must not be resident. The caller trims.
// REQUIRES: s.mu
func (s *shard[K, V]) insertLocked(key K, value V, charge, bytes int64) *entry[K, V] {
	e := &entry[K, V]{key: key, value: value, charge: charge, bytes: bytes}
	s.mu.index[key] = e
	s.mu.policy.insert(e)
	s.mu.charge += charge
	s.mu.bytes += bytes
	s.mu.inserts++
	s.pool.add(s.cat, bytes)
	return e
}

// removeLocked drops a resident entry without a ghost.
// REQUIRES: s.mu
func (s *shard[K, V]) removeLocked(e *entry[K, V]) {
	s.setHeldLocked(e, 0, false)
	s.mu.policy.remove(e)
	s.forgetLocked(e)
}

// forgetLocked removes a detached entry from the index and the totals.
// REQUIRES: s.mu
func (s *shard[K, V]) forgetLocked(e *entry[K, V]) {
	delete(s.mu.index, e.key)
	s.mu.charge -= e.charge
	s.mu.bytes -= e.bytes
	s.pool.add(s.cat, -e.bytes)
}

// setHeldLocked sets an entry's pin count and dirty flag, keeping the held counts of the shard
// and of the entry's list right.
// REQUIRES: s.mu
func (s *shard[K, V]) setHeldLocked(e *entry[K, V], pins int32, dirty bool) {
	wasHeld := e.held()
	if (e.pins > 0) != (pins > 0) {
		if pins > 0 {
			s.mu.pinned++
		} else {
			s.mu.pinned--
		}
	}
	if e.dirty != dirty {
		if dirty {
			s.mu.dirty++
		} else {
			s.mu.dirty--
		}
	}
	e.pins, e.dirty = pins, dirty
	if isHeld := e.held(); isHeld != wasHeld && e.where != listNone {
		l := s.mu.policy.list(e.where)
		if isHeld {
			l.heldCount++
		} else {
			l.heldCount--
		}
	}
}

// resizeLocked changes a resident entry's charge and bytes. The caller trims.
// REQUIRES: s.mu
func (s *shard[K, V]) resizeLocked(e *entry[K, V], charge, bytes int64) {
	dc, db := charge-e.charge, bytes-e.bytes
	if l := s.mu.policy.list(e.where); l != nil {
		l.charge += dc
		l.bytes += db
	}
	e.charge, e.bytes = charge, bytes
	s.mu.charge += dc
	s.mu.bytes += db
	s.pool.add(s.cat, db)
}

// rekeyLocked gives a resident entry a new key that no resident entry has, keeping its place.
// REQUIRES: s.mu
func (s *shard[K, V]) rekeyLocked(e *entry[K, V], key K) {
	delete(s.mu.index, e.key)
	s.mu.policy.forgetGhost(key)
	e.key = key
	s.mu.index[key] = e
}

// trimLocked evicts unheld entries until the shard is within capacity or only held entries
// remain. It returns the number evicted.
// REQUIRES: s.mu
func (s *shard[K, V]) trimLocked() int {
	n := 0
	for s.mu.charge > s.mu.capacity {
		v := s.mu.policy.victim(s.mu.capacity)
		if v == nil {
			break
		}
		s.forgetLocked(v)
		s.mu.evictions++
		n++
		if s.onEvict != nil {
			s.onEvict(v)
		}
	}
	return n
}

// setCapacityLocked sets the capacity and trims to it.
// REQUIRES: s.mu
func (s *shard[K, V]) setCapacityLocked(capacity int64) {
	s.mu.capacity = capacity
	s.mu.policy.setCapacity(capacity)
	s.trimLocked()
}

// metricsLocked snapshots the shard's metrics.
// REQUIRES: s.mu
func (s *shard[K, V]) metricsLocked() ShardMetrics {
	m := ShardMetrics{
		Hits: s.mu.hits, Misses: s.mu.misses, Inserts: s.mu.inserts, Evictions: s.mu.evictions,
		Entries: int64(len(s.mu.index)), Charge: s.mu.charge, Bytes: s.mu.bytes,
		Capacity: s.mu.capacity, Pinned: s.mu.pinned, Dirty: s.mu.dirty,
	}
	for _, l := range s.mu.policy.lists() {
		lm := l.metrics()
		m.Lists = append(m.Lists, lm)
		if l.id == listA1out {
			m.GhostHits += lm.Hits
			m.GhostCharge += lm.Charge
		}
	}
	return m
}

// checkLocked verifies the shard's invariants.
// REQUIRES: s.mu
func (s *shard[K, V]) checkLocked() error {
	if err := s.mu.policy.check(); err != nil {
		return err
	}
	var n, charge, bytes, pinned, dirty int64
	for k, e := range s.mu.index {
		if e.key != k {
			return fmt.Errorf("cache: index key %v holds entry %v", k, e.key)
		}
		if e.where == listNone || e.where == listA1out {
			return fmt.Errorf("cache: resident entry %v is on list %s", k, e.where)
		}
		n++
		charge += e.charge
		bytes += e.bytes
		if e.pins > 0 {
			pinned++
		}
		if e.dirty {
			dirty++
		}
	}
	var listN, listCharge int64
	for _, l := range s.mu.policy.lists() {
		if l.id != listA1out {
			listN += l.len
			listCharge += l.charge
		}
	}
	if listN != n || listCharge != charge {
		return fmt.Errorf("cache: lists hold %d entries/%d charge, index %d/%d", listN, listCharge, n, charge)
	}
	if charge != s.mu.charge || bytes != s.mu.bytes || pinned != s.mu.pinned || dirty != s.mu.dirty {
		return fmt.Errorf("cache: shard counted charge=%d bytes=%d pinned=%d dirty=%d, recorded %d/%d/%d/%d",
			charge, bytes, pinned, dirty, s.mu.charge, s.mu.bytes, s.mu.pinned, s.mu.dirty)
	}
	if s.mu.charge > s.mu.capacity {
		for _, l := range s.mu.policy.lists() {
			if l.id != listA1out && l.len > l.heldCount {
				return fmt.Errorf("cache: shard over capacity (%d > %d) with evictable entries on %s",
					s.mu.charge, s.mu.capacity, l.id)
			}
		}
	}
	return nil
}
