package alloc

import (
	"fmt"
	"math/bits"
	"sync"
)

// BitmapAllocator keeps one bit per allocation unit (1 = free). Allocation is first-fit: the
// lowest-addressed run of free units long enough for the whole request; when there is none, free
// runs are taken in address order until the request is covered. Scans skip whole words, so it is
// simple and compact (Size/Unit/8 bytes) but O(Size/Unit/64) per allocation: the reference
// implementation that ExtentAllocator is tested against. It is safe for concurrent use.
//
// Invariants (checked by Check): bits past the last unit are never set; free equals the number of
// set bits times the unit.
type BitmapAllocator struct {
	size, unit int64
	units      int64

	// mu guards the fields in this struct.
	mu struct {
		sync.Mutex
		words []uint64
		free  int64 // bytes
	}
}

var _ Freelist = (*BitmapAllocator)(nil)

// NewBitmap returns a bitmap allocator managing [0, size) in units of unit bytes, all of it free.
func NewBitmap(size, unit int64) (*BitmapAllocator, error) {
	if !validUnit(unit) || size < 0 {
		return nil, fmt.Errorf("alloc: new bitmap allocator: size %d unit %d: %w", size, unit, ErrInvalidExtent)
	}
	a := &BitmapAllocator{size: size - size%unit, unit: unit}
	a.units = a.size / unit
	a.mu.words = make([]uint64, (a.units+63)/64)
	a.setRangeLocked(0, a.units, true)
	a.mu.free = a.size
	return a, nil
}

// NewBitmapFromFree returns a bitmap allocator whose free space is exactly free.
func NewBitmapFromFree(size, unit int64, free []Extent) (*BitmapAllocator, error) {
	a, err := NewBitmap(size, unit)
	if err != nil {
		return nil, err
	}
	a.setRangeLocked(0, a.units, false)
	a.mu.free = 0
	if err := a.Release(free); err != nil {
		return nil, fmt.Errorf("alloc: load free list: %w", err)
	}
	return a, nil
}

// NewBitmapFromUsed rebuilds a bitmap allocator from every extent in use; see NewExtentFromUsed.
func NewBitmapFromUsed(size, unit int64, used []Extent) (*BitmapAllocator, error) {
	a, err := NewBitmap(size, unit)
	if err != nil {
		return nil, err
	}
	free, err := freeFromUsed(a.size, unit, used)
	if err != nil {
		return nil, fmt.Errorf("alloc: rebuild from used extents: %w", err)
	}
	a.setRangeLocked(0, a.units, false)
	a.mu.free = 0
	for _, e := range free {
		a.setRangeLocked(e.Offset/unit, e.Length/unit, true)
		a.mu.free += e.Length
	}
	return a, nil
}

// Size implements Freelist.
func (a *BitmapAllocator) Size() int64 { return a.size }

// Unit implements Freelist.
func (a *BitmapAllocator) Unit() int64 { return a.unit }

// Free implements Allocator.
func (a *BitmapAllocator) Free() int64 {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.mu.free
}

// Fragmentation implements Allocator.
func (a *BitmapAllocator) Fragmentation() float64 {
	a.mu.Lock()
	defer a.mu.Unlock()
	n := 0
	for u := int64(0); ; {
		start, length := a.nextRunLocked(u)
		if length == 0 {
			break
		}
		n++
		u = start + length
	}
	return fragmentation(n, a.mu.free, a.unit)
}

// Extents implements Freelist.
func (a *BitmapAllocator) Extents() []Extent {
	a.mu.Lock()
	defer a.mu.Unlock()
	var out []Extent
	for u := int64(0); ; {
		start, length := a.nextRunLocked(u)
		if length == 0 {
			return out
		}
		out = append(out, Extent{Offset: start * a.unit, Length: length * a.unit})
		u = start + length
	}
}

// Allocate implements Allocator.
func (a *BitmapAllocator) Allocate(want int64) ([]Extent, error) {
	if want <= 0 {
		return nil, fmt.Errorf("alloc: allocate %d bytes: %w", want, ErrInvalidExtent)
	}
	want = roundUp(want, a.unit)
	a.mu.Lock()
	defer a.mu.Unlock()
	if want > a.mu.free {
		return nil, fmt.Errorf("alloc: allocate %d bytes with %d free: %w", want, a.mu.free, ErrNoSpace)
	}
	need := want / a.unit
	for u := int64(0); ; { // first fit; a run is scanned no further than need units
		start, ok := a.firstSetLocked(u, a.units)
		if !ok {
			break
		}
		end := a.firstClearLocked(start, min(a.units, start+need))
		if end-start >= need {
			a.setRangeLocked(start, need, false)
			a.mu.free -= want
			return []Extent{{Offset: start * a.unit, Length: want}}, nil
		}
		u = end
	}
	var out []Extent
	for u := int64(0); need > 0; {
		start, length := a.nextRunLocked(u)
		if length == 0 {
			return nil, fmt.Errorf("alloc: free count %d disagrees with the bitmap: %w", a.mu.free, ErrInconsistent)
		}
		n := min(length, need)
		a.setRangeLocked(start, n, false)
		a.mu.free -= n * a.unit
		out = append(out, Extent{Offset: start * a.unit, Length: n * a.unit})
		need -= n
		u = start + length
	}
	return out, nil
}

// Release implements Allocator. Either every extent is released or, on error, none is.
func (a *BitmapAllocator) Release(extents []Extent) error {
	exts, err := sortedDisjoint(extents, a.size, a.unit)
	if err != nil {
		return fmt.Errorf("alloc: release: %w", err)
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	for _, e := range exts {
		if u, ok := a.firstSetLocked(e.Offset/a.unit, e.End()/a.unit); ok {
			return fmt.Errorf("alloc: release [%d, +%d): unit at %d is already free: %w", e.Offset, e.Length, u*a.unit, ErrDoubleFree)
		}
	}
	for _, e := range exts {
		a.setRangeLocked(e.Offset/a.unit, e.Length/a.unit, true)
		a.mu.free += e.Length
	}
	return nil
}

// MarkUsed implements Allocator.
func (a *BitmapAllocator) MarkUsed(e Extent) error {
	if err := checkExtent(e, a.size, a.unit); err != nil {
		return fmt.Errorf("alloc: mark used: %w", err)
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	start, n := e.Offset/a.unit, e.Length/a.unit
	if a.firstClearLocked(start, start+n) != start+n {
		return fmt.Errorf("alloc: mark used [%d, +%d): %w", e.Offset, e.Length, ErrNotFree)
	}
	a.setRangeLocked(start, n, false)
	a.mu.free -= e.Length
	return nil
}

// nextRunLocked returns the first run of free units at or after unit from (length 0: none).
// REQUIRES: a.mu held.
func (a *BitmapAllocator) nextRunLocked(from int64) (start, length int64) {
	start, ok := a.firstSetLocked(from, a.units)
	if !ok {
		return 0, 0
	}
	end := a.firstClearLocked(start, a.units)
	return start, end - start
}

// firstSetLocked returns the first free unit in [from, to).
// REQUIRES: a.mu held.
func (a *BitmapAllocator) firstSetLocked(from, to int64) (int64, bool) {
	for u := from; u < to; {
		w := a.mu.words[u/64] >> (u % 64)
		if w != 0 {
			u += int64(bits.TrailingZeros64(w))
			return u, u < to
		}
		u = (u/64 + 1) * 64
	}
	return 0, false
}

// firstClearLocked returns the first used unit in [from, to), or to.
// REQUIRES: a.mu held.
func (a *BitmapAllocator) firstClearLocked(from, to int64) int64 {
	for u := from; u < to; {
		w := ^a.mu.words[u/64] >> (u % 64)
		if w != 0 {
			return min(u+int64(bits.TrailingZeros64(w)), to)
		}
		u = (u/64 + 1) * 64
	}
	return to
}

// setRangeLocked sets units [start, start+n) free (true) or used (false).
// REQUIRES: a.mu held (or a not yet shared).
func (a *BitmapAllocator) setRangeLocked(start, n int64, free bool) {
	for u, end := start, start+n; u < end; {
		i, bit := u/64, u%64
		span := min(64-bit, end-u)
		mask := ^uint64(0)
		if span < 64 {
			mask = (uint64(1)<<span - 1) << bit
		}
		if free {
			a.mu.words[i] |= mask
		} else {
			a.mu.words[i] &^= mask
		}
		u += span
	}
}
