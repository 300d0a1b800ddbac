package alloc

import "errors"

// Errors returned (wrapped with context) by the allocators; test them with errors.Is.
var (
	// ErrNoSpace: the free space is smaller than the request. Nothing was allocated.
	ErrNoSpace = errors.New("alloc: no space")
	// ErrInvalidExtent: an extent or size that is empty, negative, misaligned to the unit or outside
	// the managed range.
	ErrInvalidExtent = errors.New("alloc: invalid extent")
	// ErrDoubleFree: Release of space that is already free.
	ErrDoubleFree = errors.New("alloc: release of free space")
	// ErrNotFree: MarkUsed of space that is not entirely free.
	ErrNotFree = errors.New("alloc: space already in use")
	// ErrInconsistent: Check found the allocator's state or the caller's view of it inconsistent.
	ErrInconsistent = errors.New("alloc: inconsistent free space")
)
