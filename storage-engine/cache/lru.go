package cache

// lru is the plain least-recently-used policy: one list, hits move to the front, victims come
// from the back.
type lru[K comparable, V any] struct {
	l entryList[K, V]
}

func newLRU[K comparable, V any]() *lru[K, V] {
	return &lru[K, V]{l: entryList[K, V]{id: listLRU}}
}

func (p *lru[K, V]) insert(e *entry[K, V]) { p.l.pushFront(e) }

func (p *lru[K, V]) hit(e *entry[K, V]) {
	p.l.hits++
	p.l.moveToFront(e)
}

func (p *lru[K, V]) remove(e *entry[K, V]) { p.l.remove(e) }

func (p *lru[K, V]) victim(int64) *entry[K, V] {
	v := p.l.lastEvictable()
	if v != nil {
		p.l.remove(v)
		p.l.evictions++
	}
	return v
}

func (p *lru[K, V]) setCapacity(int64) {}

func (p *lru[K, V]) forgetGhost(K) {}

func (p *lru[K, V]) list(id listID) *entryList[K, V] {
	if id == listLRU {
		return &p.l
	}
	return nil
}

func (p *lru[K, V]) lists() []*entryList[K, V] { return []*entryList[K, V]{&p.l} }

func (p *lru[K, V]) check() error { return checkLists(&p.l) }
