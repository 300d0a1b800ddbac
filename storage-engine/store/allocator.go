package store

import "github.com/cobaltstore/cobalt/storage-engine/alloc"

// defaultAllocator is the extent allocator of storage-engine/alloc.
func defaultAllocator(size, unit int64) (alloc.Allocator, error) {
	return alloc.NewExtent(size, unit)
}
