package store

import (
	"cmp"
	"slices"

	"github.com/cobaltstore/cobalt/storage-engine/onode"
)

// refCounter collects the physical ranges referenced by onodes and computes, by a sweep over range
// boundaries, how many times each byte is referenced. Clones share extents, so a count above one
// is legitimate; the store keeps counts >= 2 per allocation unit in Store.pub.shared.
type refCounter struct {
	list []onode.PhysRange
	done bool
	segs []refSeg
}

// refSeg is a maximal run [start, end) referenced exactly n >= 1 times.
type refSeg struct {
	start, end uint64
	n          uint32
}

func (r *refCounter) add(p onode.PhysRange) {
	r.list = append(r.list, p)
	r.done = false
}

func (r *refCounter) sweep() []refSeg {
	if r.done {
		return r.segs
	}
	type ev struct {
		pos   uint64
		delta int
	}
	evs := make([]ev, 0, 2*len(r.list))
	for _, p := range r.list {
		evs = append(evs, ev{p.Phys, 1}, ev{p.Phys + p.Length, -1})
	}
	slices.SortFunc(evs, func(a, b ev) int { return cmp.Compare(a.pos, b.pos) })
	r.segs = r.segs[:0]
	n := 0
	for i := 0; i < len(evs); {
		pos := evs[i].pos
		for i < len(evs) && evs[i].pos == pos {
			n += evs[i].delta
			i++
		}
		if n > 0 && i < len(evs) {
			next := evs[i].pos
			if l := len(r.segs); l > 0 && r.segs[l-1].end == pos && r.segs[l-1].n == uint32(n) {
				r.segs[l-1].end = next
			} else {
				r.segs = append(r.segs, refSeg{pos, next, uint32(n)})
			}
		}
	}
	r.done = true
	return r.segs
}

// ranges returns the union of referenced ranges, sorted and merged.
func (r *refCounter) ranges() []refSeg {
	var out []refSeg
	for _, s := range r.sweep() {
		if l := len(out); l > 0 && out[l-1].end == s.start {
			out[l-1].end = s.end
			continue
		}
		out = append(out, refSeg{s.start, s.end, 1})
	}
	return out
}

// shared returns the per-unit reference counts of units referenced at least twice.
func (r *refCounter) shared(unit uint64) map[uint64]uint32 {
	m := map[uint64]uint32{}
	for _, s := range r.sweep() {
		if s.n < 2 {
			continue
		}
		for u := s.start; u < s.end; u += unit {
			m[u] = s.n
		}
	}
	return m
}
