package alloc

import (
	"fmt"
	"sync"

	"github.com/RaduBerinde/btreemap"
)

// ExtentAllocator keeps free space as extents in two B-trees: one by offset (to coalesce released
// space with its neighbors and to find the extent holding an offset) and one by (length, offset)
// (to find the best fit). Allocation is best-fit: the smallest free extent that holds the whole
// request, carved from its start; when none does, the largest extents are taken in turn, so a
// request is split into as few extents as possible. All operations are O(log n) in the number of
// free extents, apart from splitting across extents. It is safe for concurrent use.
//
// Invariants (checked by Check): free extents are unit-aligned, inside [0, Size), disjoint and never
// adjacent (released space is always merged); both trees hold the same extents; free equals the sum
// of their lengths.
type ExtentAllocator struct {
	size, unit int64

	// mu guards the fields in this struct.
	mu struct {
		sync.Mutex
		byOff  *btreemap.BTreeMap[int64, int64]      // offset -> length
		bySize *btreemap.BTreeMap[sizeKey, struct{}] // (length, offset)
		free   int64
	}
}

type sizeKey struct{ length, offset int64 }

func cmpSizeKey(a, b sizeKey) int {
	if c := cmpInt64(a.length, b.length); c != 0 {
		return c
	}
	return cmpInt64(a.offset, b.offset)
}

var _ Freelist = (*ExtentAllocator)(nil)

// NewExtent returns an allocator managing [0, size) in units of unit bytes (a power of two >= 512),
// all of it free. size is rounded down to the unit.
func NewExtent(size, unit int64) (*ExtentAllocator, error) {
	if !validUnit(unit) || size < 0 {
		return nil, fmt.Errorf("alloc: new extent allocator: size %d unit %d: %w", size, unit, ErrInvalidExtent)
	}
	a := &ExtentAllocator{size: size - size%unit, unit: unit}
	a.mu.byOff = btreemap.New[int64, int64](16, cmpInt64)
	a.mu.bySize = btreemap.New[sizeKey, struct{}](16, cmpSizeKey)
	if a.size > 0 {
		a.insertLocked(0, a.size)
	}
	return a, nil
}

// NewExtentFromFree returns an allocator managing [0, size) whose free space is exactly free (as
// persisted from Extents). Adjacent extents are merged; overlapping or invalid ones are an error.
func NewExtentFromFree(size, unit int64, free []Extent) (*ExtentAllocator, error) {
	a, err := NewExtent(size, unit)
	if err != nil {
		return nil, err
	}
	if a.size > 0 {
		a.removeLocked(0, a.size)
	}
	if err := a.Release(free); err != nil {
		return nil, fmt.Errorf("alloc: load free list: %w", err)
	}
	return a, nil
}

// NewExtentFromUsed rebuilds an allocator at mount from every extent in use (e.g. collected from
// the onodes), in one pass after sorting: faster than NewExtent followed by one MarkUsed per
// extent. Overlapping used extents (a double allocation) or invalid ones are an error wrapping
// ErrInvalidExtent.
func NewExtentFromUsed(size, unit int64, used []Extent) (*ExtentAllocator, error) {
	if !validUnit(unit) || size < 0 {
		return nil, fmt.Errorf("alloc: new extent allocator: size %d unit %d: %w", size, unit, ErrInvalidExtent)
	}
	free, err := freeFromUsed(size-size%unit, unit, used)
	if err != nil {
		return nil, fmt.Errorf("alloc: rebuild from used extents: %w", err)
	}
	a, err := NewExtent(0, unit)
	if err != nil {
		return nil, err
	}
	a.size = size - size%unit
	for _, e := range free {
		a.insertLocked(e.Offset, e.Length)
	}
	return a, nil
}

// Size implements Freelist.
func (a *ExtentAllocator) Size() int64 { return a.size }

// Unit implements Freelist.
func (a *ExtentAllocator) Unit() int64 { return a.unit }

// Free implements Allocator.
func (a *ExtentAllocator) Free() int64 {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.mu.free
}

// Fragmentation implements Allocator: (free extents - 1) / (free units - 1).
func (a *ExtentAllocator) Fragmentation() float64 {
	a.mu.Lock()
	defer a.mu.Unlock()
	return fragmentation(a.mu.byOff.Len(), a.mu.free, a.unit)
}

// Extents implements Freelist.
func (a *ExtentAllocator) Extents() []Extent {
	a.mu.Lock()
	defer a.mu.Unlock()
	out := make([]Extent, 0, a.mu.byOff.Len())
	for off, length := range a.mu.byOff.Ascend(btreemap.Min[int64](), btreemap.Max[int64]()) {
		out = append(out, Extent{Offset: off, Length: length})
	}
	return out
}

// Allocate implements Allocator.
func (a *ExtentAllocator) Allocate(want int64) ([]Extent, error) {
	if want <= 0 {
		return nil, fmt.Errorf("alloc: allocate %d bytes: %w", want, ErrInvalidExtent)
	}
	want = roundUp(want, a.unit)
	a.mu.Lock()
	defer a.mu.Unlock()
	if want > a.mu.free {
		return nil, fmt.Errorf("alloc: allocate %d bytes with %d free: %w", want, a.mu.free, ErrNoSpace)
	}
	// Best fit: the smallest extent that holds everything.
	for k := range a.mu.bySize.Ascend(btreemap.GE(sizeKey{length: want}), btreemap.Max[sizeKey]()) {
		a.carveLocked(k.offset, k.length, want)
		return []Extent{{Offset: k.offset, Length: want}}, nil
	}
	// Otherwise the largest extents, in turn.
	var out []Extent
	for want > 0 {
		k, _, ok := a.mu.bySize.Max()
		if !ok { // impossible while free >= want; report rather than loop
			return nil, fmt.Errorf("alloc: free count %d disagrees with the free tree: %w", a.mu.free, ErrInconsistent)
		}
		n := min(k.length, want)
		a.carveLocked(k.offset, k.length, n)
		out = append(out, Extent{Offset: k.offset, Length: n})
		want -= n
	}
	return out, nil
}

// Release implements Allocator. Either every extent is released or, on error, none is.
func (a *ExtentAllocator) Release(extents []Extent) error {
	exts, err := sortedDisjoint(extents, a.size, a.unit)
	if err != nil {
		return fmt.Errorf("alloc: release: %w", err)
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	for _, e := range exts {
		if o, l, ok := a.freeBeforeLocked(e.End()); ok && o+l > e.Offset {
			return fmt.Errorf("alloc: release [%d, +%d): overlaps free [%d, +%d): %w", e.Offset, e.Length, o, l, ErrDoubleFree)
		}
	}
	for _, e := range exts {
		off, length := e.Offset, e.Length
		if o, l, ok := a.freeBeforeLocked(off); ok && o+l == off { // merge with the left neighbor
			a.removeLocked(o, l)
			off, length = o, l+length
		}
		if _, l, ok := a.mu.byOff.Get(off + length); ok { // and with the right one
			a.removeLocked(off+length, l)
			length += l
		}
		a.insertLocked(off, length)
	}
	return nil
}

// MarkUsed implements Allocator: e must lie entirely inside one free extent.
func (a *ExtentAllocator) MarkUsed(e Extent) error {
	if err := checkExtent(e, a.size, a.unit); err != nil {
		return fmt.Errorf("alloc: mark used: %w", err)
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	o, l, ok := a.freeBeforeLocked(e.Offset + 1)
	if !ok || o+l < e.End() {
		return fmt.Errorf("alloc: mark used [%d, +%d): %w", e.Offset, e.Length, ErrNotFree)
	}
	a.removeLocked(o, l)
	if e.Offset > o {
		a.insertLocked(o, e.Offset-o)
	}
	if end := o + l; end > e.End() {
		a.insertLocked(e.End(), end-e.End())
	}
	return nil
}

// freeBeforeLocked returns the free extent with the greatest offset below limit.
// REQUIRES: a.mu held.
func (a *ExtentAllocator) freeBeforeLocked(limit int64) (off, length int64, ok bool) {
	for o, l := range a.mu.byOff.Descend(btreemap.LT(limit), btreemap.Min[int64]()) {
		return o, l, true
	}
	return 0, 0, false
}

// carveLocked takes n bytes from the start of free extent (off, length).
// REQUIRES: a.mu held.
func (a *ExtentAllocator) carveLocked(off, length, n int64) {
	a.removeLocked(off, length)
	if length > n {
		a.insertLocked(off+n, length-n)
	}
}

// REQUIRES: a.mu held.
func (a *ExtentAllocator) insertLocked(off, length int64) {
	a.mu.byOff.ReplaceOrInsert(off, length)
	a.mu.bySize.ReplaceOrInsert(sizeKey{length, off}, struct{}{})
	a.mu.free += length
}

// REQUIRES: a.mu held.
func (a *ExtentAllocator) removeLocked(off, length int64) {
	a.mu.byOff.Delete(off)
	a.mu.bySize.Delete(sizeKey{length, off})
	a.mu.free -= length
}
