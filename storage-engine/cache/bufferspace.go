package cache

import "sort"

// bufferSpace is the set of cached buffers of one object (one per Onode, as BlueStore's
// BufferSpace). Buffers are sorted by offset and never overlap. Every field is guarded by the
// mutex of the buffer shard the object hashes to; all methods REQUIRE it.
type bufferSpace struct {
	obj  ObjectKey
	bufs []*buffer
	// gen changes on every write or discard in the space (not on eviction): a read that saw
	// another gen must not insert what it read from the device (it may be stale).
	gen uint64
}

// first returns the index of the first buffer that ends after off.
func (sp *bufferSpace) first(off uint64) int {
	return sort.Search(len(sp.bufs), func(i int) bool { return sp.bufs[i].end() > off })
}

// overlapping returns the index range [i, j) of buffers that overlap [off, end).
func (sp *bufferSpace) overlapping(off, end uint64) (int, int) {
	i := sp.first(off)
	j := i
	for j < len(sp.bufs) && sp.bufs[j].off < end {
		j++
	}
	return i, j
}

// indexOf returns the index of b in the space, or -1.
func (sp *bufferSpace) indexOf(b *buffer) int {
	i := sp.first(b.off)
	if i < len(sp.bufs) && sp.bufs[i] == b {
		return i
	}
	return -1
}

// read copies the covered parts of [off, off+len(dst)) into dst, calls touch for each buffer
// used, and appends the uncovered gaps, in offset order, to gaps.
func (sp *bufferSpace) read(off uint64, dst []byte, gaps []Range, touch func(*buffer)) []Range {
	pos, end := off, off+uint64(len(dst))
	i, j := sp.overlapping(off, end)
	for _, b := range sp.bufs[i:j] {
		if b.off > pos {
			gaps = append(gaps, Range{Off: pos, Len: b.off - pos})
			pos = b.off
		}
		to := min(end, b.end())
		copy(dst[pos-off:to-off], b.data[pos-b.off:to-b.off])
		touch(b)
		pos = to
	}
	if pos < end {
		gaps = append(gaps, Range{Off: pos, Len: end - pos})
	}
	return gaps
}

// uncovered returns the parts of [off, end) that no buffer covers.
func (sp *bufferSpace) uncovered(off, end uint64) []Range {
	var gaps []Range
	pos := off
	i, j := sp.overlapping(off, end)
	for _, b := range sp.bufs[i:j] {
		if b.off > pos {
			gaps = append(gaps, Range{Off: pos, Len: b.off - pos})
		}
		pos = max(pos, b.end())
	}
	if pos < end {
		gaps = append(gaps, Range{Off: pos, Len: end - pos})
	}
	return gaps
}

// insert adds b, which must not overlap any buffer of the space, in offset order.
func (sp *bufferSpace) insert(b *buffer) {
	i := sp.first(b.off)
	sp.bufs = append(sp.bufs, nil)
	copy(sp.bufs[i+1:], sp.bufs[i:])
	sp.bufs[i] = b
	b.space = sp
}

// removeAt removes the buffer at index i.
func (sp *bufferSpace) removeAt(i int) {
	copy(sp.bufs[i:], sp.bufs[i+1:])
	sp.bufs[len(sp.bufs)-1] = nil
	sp.bufs = sp.bufs[:len(sp.bufs)-1]
}
