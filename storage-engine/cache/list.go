package cache

import "fmt"

// listID names the list an entry is on.
type listID uint8

const (
	listNone listID = iota
	listA1in
	listAm
	listA1out
	listLRU
)

func (l listID) String() string {
	switch l {
	case listA1in:
		return "A1in"
	case listAm:
		return "Am"
	case listA1out:
		return "A1out"
	case listLRU:
		return "LRU"
	}
	return "none"
}

// entry is a cached value, or (on A1out) a ghost that only keeps its key and charge.
// Entries are linked intrusively into exactly one list while resident or ghost.
type entry[K comparable, V any] struct {
	key   K
	value V
	// charge is the entry's size in the cache's unit (1 for entry-counted caches).
	charge int64
	// bytes is the memory the entry accounts to the Mempool (0 for ghosts).
	bytes      int64
	prev, next *entry[K, V]
	where      listID
	// pins counts users that hold the entry; a pinned entry is never evicted.
	pins int32
	// dirty entries have changes that are not committed yet; they are never evicted.
	dirty bool
}

// held reports whether the entry may not be evicted.
func (e *entry[K, V]) held() bool { return e.pins > 0 || e.dirty }

// entryList is an intrusive doubly linked list; the front is the most recent end.
// It keeps its length, charge and bytes, the number of held entries on it, and its metrics.
type entryList[K comparable, V any] struct {
	id         listID
	head, tail *entry[K, V]
	len        int64
	charge     int64
	bytes      int64
	// heldCount is the number of entries on the list that are pinned or dirty.
	heldCount int64
	hits      int64
	evictions int64
}

func (l *entryList[K, V]) pushFront(e *entry[K, V]) {
	e.where = l.id
	e.prev = nil
	e.next = l.head
	if l.head != nil {
		l.head.prev = e
	} else {
		l.tail = e
	}
	l.head = e
	l.len++
	l.charge += e.charge
	l.bytes += e.bytes
	if e.held() {
		l.heldCount++
	}
}

func (l *entryList[K, V]) remove(e *entry[K, V]) {
	if e.prev != nil {
		e.prev.next = e.next
	} else {
		l.head = e.next
	}
	if e.next != nil {
		e.next.prev = e.prev
	} else {
		l.tail = e.prev
	}
	e.prev, e.next = nil, nil
	e.where = listNone
	l.len--
	l.charge -= e.charge
	l.bytes -= e.bytes
	if e.held() {
		l.heldCount--
	}
}

func (l *entryList[K, V]) moveToFront(e *entry[K, V]) {
	if l.head == e {
		return
	}
	l.remove(e)
	l.pushFront(e)
}

// lastEvictable returns the entry closest to the tail that is not held, or nil.
// It costs O(held entries behind it), and O(1) when every entry on the list is held.
func (l *entryList[K, V]) lastEvictable() *entry[K, V] {
	if l.len == l.heldCount {
		return nil
	}
	for e := l.tail; e != nil; e = e.prev {
		if !e.held() {
			return e
		}
	}
	return nil
}

// keys lists the keys from front to back (for tests and scripts).
func (l *entryList[K, V]) keys() []K {
	ks := make([]K, 0, l.len)
	for e := l.head; e != nil; e = e.next {
		ks = append(ks, e.key)
	}
	return ks
}

func (l *entryList[K, V]) metrics() ListMetrics {
	return ListMetrics{
		Name: l.id.String(), Hits: l.hits, Evictions: l.evictions,
		Entries: l.len, Charge: l.charge, Bytes: l.bytes,
	}
}

// check walks the list and verifies its links and totals.
func (l *entryList[K, V]) check() error {
	var n, charge, bytes, held int64
	var prev *entry[K, V]
	for e := l.head; e != nil; e = e.next {
		if e.prev != prev {
			return fmt.Errorf("%s: broken back link at entry %d", l.id, n)
		}
		if e.where != l.id {
			return fmt.Errorf("%s: entry %d says it is on %s", l.id, n, e.where)
		}
		n++
		charge += e.charge
		bytes += e.bytes
		if e.held() {
			held++
		}
		prev = e
		if n > l.len {
			return fmt.Errorf("%s: more than %d entries (cycle?)", l.id, l.len)
		}
	}
	if prev != l.tail {
		return fmt.Errorf("%s: tail does not match the last entry", l.id)
	}
	if n != l.len || charge != l.charge || bytes != l.bytes || held != l.heldCount {
		return fmt.Errorf("%s: counted len=%d charge=%d bytes=%d held=%d, recorded %d/%d/%d/%d",
			l.id, n, charge, bytes, held, l.len, l.charge, l.bytes, l.heldCount)
	}
	return nil
}
