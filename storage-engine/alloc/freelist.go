package alloc

import (
	"fmt"
	"slices"
)

// Freelist is an Allocator whose free space can be inspected and persisted. Both implementations in
// this package satisfy it: ExtentAllocator (the default) and BitmapAllocator.
type Freelist interface {
	Allocator
	// Extents returns the free space as extents sorted by offset, non-overlapping and coalesced
	// (no two adjacent). It is a snapshot: later changes do not affect it.
	Extents() []Extent
	// Size is the managed range [0, Size) in bytes, a multiple of Unit.
	Size() int64
	// Unit is the allocation unit (min_alloc_size) in bytes.
	Unit() int64
}

// validUnit reports whether unit is a power of two of at least 512 bytes.
func validUnit(unit int64) bool { return unit >= 512 && unit&(unit-1) == 0 }

// checkExtent validates e against a managed range of size bytes and the unit.
func checkExtent(e Extent, size, unit int64) error {
	if e.Length <= 0 || e.Offset < 0 || e.Offset%unit != 0 || e.Length%unit != 0 || e.Offset > size || e.Length > size-e.Offset {
		return fmt.Errorf("extent [%d, +%d) in a %d-byte range with %d-byte unit: %w", e.Offset, e.Length, size, unit, ErrInvalidExtent)
	}
	return nil
}

// sortedDisjoint validates exts and returns them sorted by offset, failing if two overlap.
func sortedDisjoint(exts []Extent, size, unit int64) ([]Extent, error) {
	s := slices.Clone(exts)
	for _, e := range s {
		if err := checkExtent(e, size, unit); err != nil {
			return nil, err
		}
	}
	slices.SortFunc(s, func(a, b Extent) int { return cmpInt64(a.Offset, b.Offset) })
	for i := 1; i < len(s); i++ {
		if s[i].Offset < s[i-1].End() {
			return nil, fmt.Errorf("extents [%d, +%d) and [%d, +%d) overlap: %w", s[i-1].Offset, s[i-1].Length, s[i].Offset, s[i].Length, ErrInvalidExtent)
		}
	}
	return s, nil
}

func cmpInt64(a, b int64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// fragmentation computes the figure both allocators report: with n free extents totalling free
// bytes, (n-1)/(units-1), which is 0 for one extent (or none) and 1 when every free extent is a
// single unit.
func fragmentation(n int, free, unit int64) float64 {
	units := free / unit
	if n <= 1 || units <= 1 {
		return 0
	}
	return float64(n-1) / float64(units-1)
}

// roundUp rounds want up to a multiple of unit.
func roundUp(want, unit int64) int64 { return (want + unit - 1) / unit * unit }

// freeFromUsed returns the complement of used in [0, size): the free extents, sorted and
// coalesced. used must be valid and pairwise disjoint (adjacent is fine); an overlap is reported
// as a double allocation.
func freeFromUsed(size, unit int64, used []Extent) ([]Extent, error) {
	u, err := sortedDisjoint(used, size, unit)
	if err != nil {
		return nil, fmt.Errorf("double allocation or invalid used extent: %w", err)
	}
	var free []Extent
	var pos int64
	for _, e := range u {
		if e.Offset > pos {
			free = append(free, Extent{Offset: pos, Length: e.Offset - pos})
		}
		pos = e.End()
	}
	if pos < size {
		free = append(free, Extent{Offset: pos, Length: size - pos})
	}
	return free, nil
}
