// Package alloc manages free space on a store's device in units of the store's min_alloc_size.
//
// Invariants: every extent handed out or released is aligned to the allocation unit and lies inside
// the managed range; an extent is never handed out twice without being released in between; the sum
// of free and allocated space equals the managed size.
//
// Two implementations satisfy Allocator and Freelist and pass the same tests: ExtentAllocator
// (NewExtent; free extents in B-trees by offset and by size, best-fit, O(log n)) is the one the store
// uses; BitmapAllocator (NewBitmap; one bit per unit, first-fit) is the simple reference. Neither
// persists itself: the store saves Extents() (EncodeExtents) in its KV and reloads it with
// NewExtentFromFree, or rebuilds it at mount from the extents in use with NewExtentFromUsed (or
// NewExtent and one MarkUsed per extent).
// Check cross-checks an allocator against the extents the store believes are in use (fsck).
// Allocators are safe for concurrent use.
package alloc

// Extent is a run of bytes on the device: [Offset, Offset+Length).
type Extent struct {
	Offset int64
	Length int64
}

// End returns the first byte past the extent.
func (e Extent) End() int64 { return e.Offset + e.Length }

// Allocator hands out and takes back device space.
type Allocator interface {
	// Allocate returns extents totalling want bytes (rounded up to the unit), preferring few, long
	// extents. It returns ErrNoSpace, allocating nothing, when the free space is smaller than want.
	Allocate(want int64) ([]Extent, error)
	// Release returns extents to the free space.
	Release(extents []Extent) error
	// MarkUsed removes an extent from the free space (used when rebuilding state at mount).
	MarkUsed(e Extent) error
	// Free is the number of free bytes.
	Free() int64
	// Fragmentation is 0 for a single free extent and approaches 1 as free space splits into unit-sized pieces.
	Fragmentation() float64
}
