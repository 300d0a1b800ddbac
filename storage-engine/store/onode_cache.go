package store

import "github.com/cobaltstore/cobalt/storage-engine/onode"

// OnodeKey names an object.
type OnodeKey struct {
	Collection, Object string
}

// OnodeCache caches decoded onodes. The store inserts only committed onodes and never mutates an
// onode after inserting it (a change inserts a new one), so a cached *onode.Onode may be shared by
// concurrent readers. Implementations must be safe for concurrent use.
//
// Pinned or dirty entries must not be evicted. The store pins the onodes of a commit group while it
// writes them, marks them dirty until the group is applied to the KV and published, then marks
// them clean and unpins them.
type OnodeCache interface {
	Get(k OnodeKey) (*onode.Onode, bool)
	// Insert adds or replaces the entry for k.
	Insert(k OnodeKey, o *onode.Onode)
	Remove(k OnodeKey)
	Pin(k OnodeKey)
	Unpin(k OnodeKey)
	MarkDirty(k OnodeKey)
	MarkClean(k OnodeKey)
	// Trim evicts clean, unpinned entries until the cache is within its budget.
	Trim()
	// Len is the number of cached onodes.
	Len() int
}
