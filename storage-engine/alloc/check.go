package alloc

import (
	"errors"
	"fmt"
	"slices"
)

// maxCheckErrors bounds how many problems Check reports.
const maxCheckErrors = 16

// Check verifies a Freelist against its invariants and, when used is not nil, against the
// caller's independent list of allocated extents (for fsck: the extents referenced by onodes):
//
//   - free extents are unit-aligned, inside [0, Size), sorted, disjoint and coalesced;
//   - Free() equals their total;
//   - no used extent is invalid or overlaps another used extent (double allocation);
//   - no used extent overlaps free space (space in use that the allocator would hand out again);
//   - used plus free covers [0, Size) exactly (otherwise space has leaked).
//
// It returns nil, or an error wrapping ErrInconsistent that lists up to 16 problems.
func Check(a Freelist, used []Extent) error {
	var errs []error
	report := func(format string, args ...any) {
		if len(errs) < maxCheckErrors {
			errs = append(errs, fmt.Errorf(format, args...))
		}
	}
	size, unit := a.Size(), a.Unit()
	free := a.Extents()
	var total int64
	for i, e := range free {
		if err := checkExtent(e, size, unit); err != nil {
			report("free extent %d: %v", i, err)
		}
		if i > 0 && e.Offset <= free[i-1].End() {
			report("free extents [%d, +%d) and [%d, +%d) overlap, touch or are out of order", free[i-1].Offset, free[i-1].Length, e.Offset, e.Length)
		}
		total += e.Length
	}
	if got := a.Free(); got != total {
		report("Free() = %d but free extents total %d", got, total)
	}
	if used != nil {
		u := slices.Clone(used)
		slices.SortFunc(u, func(x, y Extent) int { return cmpInt64(x.Offset, y.Offset) })
		var usedTotal int64
		for i, e := range u {
			if err := checkExtent(e, size, unit); err != nil {
				report("used extent: %v", err)
				continue
			}
			usedTotal += e.Length
			if i > 0 && e.Offset < u[i-1].End() {
				report("double allocation: used extents [%d, +%d) and [%d, +%d) overlap", u[i-1].Offset, u[i-1].Length, e.Offset, e.Length)
			}
		}
		// Merge-walk used against free: both sorted.
		j := 0
		for _, e := range u {
			for j < len(free) && free[j].End() <= e.Offset {
				j++
			}
			if j < len(free) && free[j].Offset < e.End() {
				report("used extent [%d, +%d) overlaps free extent [%d, +%d)", e.Offset, e.Length, free[j].Offset, free[j].Length)
			}
		}
		if usedTotal+total != size {
			report("used %d + free %d bytes != size %d (%d bytes leaked)", usedTotal, total, size, size-usedTotal-total)
		}
	}
	if len(errs) == 0 {
		return nil
	}
	return fmt.Errorf("%w: %w", ErrInconsistent, errors.Join(errs...))
}
