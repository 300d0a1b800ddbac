package cache

import "fmt"

// twoQ is the full 2Q policy (Johnson & Shasha, VLDB 1994, section 2.2): A1in is a FIFO of
// first references, A1out a FIFO of ghost keys evicted from A1in, Am an LRU of entries
// referenced again after leaving A1in.
type twoQ[K comparable, V any] struct {
	kin, kout float64
	capacity  int64
	a1in      entryList[K, V]
	am        entryList[K, V]
	a1out     entryList[K, V]
	// ghosts indexes A1out by key.
	ghosts map[K]*entry[K, V]
}

func newTwoQ[K comparable, V any](kin, kout float64, capacity int64) *twoQ[K, V] {
	return &twoQ[K, V]{
		kin: kin, kout: kout, capacity: capacity,
		a1in:   entryList[K, V]{id: listA1in},
		am:     entryList[K, V]{id: listAm},
		a1out:  entryList[K, V]{id: listA1out},
		ghosts: make(map[K]*entry[K, V]),
	}
}

// insert puts a new entry in A1in, or in Am when its key is a ghost in A1out (a ghost hit).
func (p *twoQ[K, V]) insert(e *entry[K, V]) {
	if g, ok := p.ghosts[e.key]; ok {
		p.a1out.remove(g)
		delete(p.ghosts, e.key)
		p.a1out.hits++
		p.am.pushFront(e)
		return
	}
	p.a1in.pushFront(e)
}

// hit moves an Am entry to the front; a hit in A1in leaves the FIFO order unchanged.
func (p *twoQ[K, V]) hit(e *entry[K, V]) {
	switch e.where {
	case listAm:
		p.am.hits++
		p.am.moveToFront(e)
	case listA1in:
		p.a1in.hits++
	}
}

func (p *twoQ[K, V]) remove(e *entry[K, V]) { p.list(e.where).remove(e) }

// victim follows the paper's reclaimfor: A1in's tail while A1in is over kin × capacity (its
// key becomes a ghost), else Am's tail; when Am has nothing evictable, A1in's tail anyway.
func (p *twoQ[K, V]) victim(capacity int64) *entry[K, V] {
	if float64(p.a1in.charge) > p.kin*float64(capacity) {
		if v := p.evictA1in(); v != nil {
			return v
		}
	}
	if v := p.am.lastEvictable(); v != nil {
		p.am.remove(v)
		p.am.evictions++
		return v
	}
	return p.evictA1in()
}

func (p *twoQ[K, V]) evictA1in() *entry[K, V] {
	v := p.a1in.lastEvictable()
	if v == nil {
		return nil
	}
	p.a1in.remove(v)
	p.a1in.evictions++
	g := &entry[K, V]{key: v.key, charge: v.charge}
	p.a1out.pushFront(g)
	p.ghosts[g.key] = g
	p.trimGhosts()
	return v
}

// trimGhosts drops the oldest ghosts while A1out is over kout × capacity.
func (p *twoQ[K, V]) trimGhosts() {
	limit := p.kout * float64(p.capacity)
	for p.a1out.tail != nil && float64(p.a1out.charge) > limit {
		g := p.a1out.tail
		p.a1out.remove(g)
		p.a1out.evictions++
		delete(p.ghosts, g.key)
	}
}

func (p *twoQ[K, V]) forgetGhost(key K) {
	if g, ok := p.ghosts[key]; ok {
		p.a1out.remove(g)
		delete(p.ghosts, key)
	}
}

func (p *twoQ[K, V]) setCapacity(capacity int64) {
	p.capacity = capacity
	p.trimGhosts()
}

func (p *twoQ[K, V]) list(id listID) *entryList[K, V] {
	switch id {
	case listA1in:
		return &p.a1in
	case listAm:
		return &p.am
	case listA1out:
		return &p.a1out
	}
	return nil
}

func (p *twoQ[K, V]) lists() []*entryList[K, V] {
	return []*entryList[K, V]{&p.a1in, &p.am, &p.a1out}
}

func (p *twoQ[K, V]) check() error {
	if err := checkLists(&p.a1in, &p.am, &p.a1out); err != nil {
		return err
	}
	if int64(len(p.ghosts)) != p.a1out.len {
		return fmt.Errorf("cache: 2Q ghost index has %d keys, A1out %d", len(p.ghosts), p.a1out.len)
	}
	for g := p.a1out.head; g != nil; g = g.next {
		if p.ghosts[g.key] != g {
			return fmt.Errorf("cache: 2Q ghost %v not indexed", g.key)
		}
	}
	if float64(p.a1out.charge) > p.kout*float64(p.capacity) {
		return fmt.Errorf("cache: A1out charge %d over kout limit %v", p.a1out.charge, p.kout*float64(p.capacity))
	}
	return nil
}
