package metafs

import (
	"cmp"
	"errors"
	"fmt"
	"slices"
)

// AddSpace gives the file system the device extent e (absolute device offsets) in addition to
// its region, as BlueFS takes extents from BlueStore's allocator. It returns once a journal
// record naming e is durable (a journal flush); only then is e's space allocatable to files
// (and to the journal). e must be whole units of the file system's unit (e.Offset-Region().Offset
// and e.Length multiples of Unit()), inside the device, after the region's end, and must not
// overlap the region or any extent added before: anything else is refused with an error wrapping
// ErrInvalid and changes nothing. A closed or failed file system refuses it (ErrClosed,
// ErrFailed).
//
// After an error wrapping ErrFailed, e may or may not have become part of the file system: the
// extents Space returns after the next Mount say. After any other error it has not.
func (fs *FS) AddSpace(e Extent) error {
	fs.mu.Lock()
	if err := fs.checkLocked(); err != nil {
		fs.mu.Unlock()
		return fmt.Errorf("metafs add space [%d, +%d): %w", e.Offset, e.Length, err)
	}
	if err := fs.mu.st.checkSpace(e); err != nil {
		fs.mu.Unlock()
		return fmt.Errorf("metafs add space: %w: %w", err, ErrInvalid)
	}
	if _, err := fs.logLocked(record{kind: opAddSpace, off: uint64(e.Offset), n: uint64(e.Length)}); err != nil {
		fs.mu.Unlock()
		return fmt.Errorf("metafs add space [%d, +%d): %w: %w", e.Offset, e.Length, err, ErrCorrupt)
	}
	// Released to the allocator, like freed space, once the record is durable.
	fs.mu.pendingFree = append(fs.mu.pendingFree, e)
	target := fs.mu.recs
	fs.mu.Unlock()

	err := fs.syncJournal(target)
	if err == nil {
		return nil
	}
	fs.mu.Lock()
	durable := fs.mu.durable >= target // a concurrent Close may have written it before closing
	fs.mu.Unlock()
	if durable {
		return nil
	}
	if !errors.Is(err, ErrFailed) && !errors.Is(err, ErrClosed) {
		// The record stays queued (a compaction found no room for a new journal): fail rather
		// than let a later flush add e after the caller was told it was not added.
		err = fs.fail(fmt.Errorf("add space [%d, +%d): %w", e.Offset, e.Length, err))
	}
	return fmt.Errorf("metafs add space [%d, +%d): %w", e.Offset, e.Length, err)
}

// Space returns the extents added with AddSpace (absolute device offsets, in the order added), a
// copy. An owner that takes them from its own allocator marks them used there at mount.
func (fs *FS) Space() []Extent {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	return slices.Clone(fs.mu.st.space)
}

// Unit returns the allocation unit of files and the journal; AddSpace extents are aligned to it.
func (fs *FS) Unit() int64 { return fs.unit }

// fsSpace returns the file system's space, the region and the added extents, merged where they
// touch and sorted by offset. Invalid added extents (see state.checkSpace) are left out.
func fsSpace(region Extent, space []Extent) []Extent {
	out := []Extent{region}
	for _, e := range space {
		if e.Length > 0 && e.Offset >= region.End() && e.End() >= e.Offset {
			out = append(out, e)
		}
	}
	slices.SortFunc(out, func(x, y Extent) int { return cmp.Compare(x.Offset, y.Offset) })
	merged := out[:1]
	for _, e := range out[1:] {
		last := &merged[len(merged)-1]
		if e.Offset <= last.End() {
			last.Length = max(last.End(), e.End()) - last.Offset
			continue
		}
		merged = append(merged, e)
	}
	return merged
}

// within reports whether e lies inside one of the sorted, merged extents of space.
func within(space []Extent, e Extent) bool {
	for _, s := range space {
		if e.Offset >= s.Offset && e.End() <= s.End() && e.End() >= e.Offset {
			return true
		}
	}
	return false
}
