package store

// Statfs reports space usage.
type Statfs struct {
	// Total is the space the allocator manages (the device minus the label area).
	Total uint64
	// Used is allocated space; Available is free space.
	Used, Available uint64
	// Objects is the number of objects; StoredBytes the sum of their logical sizes.
	Objects, StoredBytes uint64
	// DeferredBytes is data logged for in-place writes not yet applied.
	DeferredBytes uint64
}

// Statfs returns the store's space usage.
func (s *Store) Statfs() Statfs {
	s.gate.RLock()
	st := s.pub.stats
	free := uint64(s.alloc.Free())
	s.gate.RUnlock()
	total := s.devSize - s.dataStart
	_, deferred := s.overlay.len()
	return Statfs{
		Total: total, Used: total - min(free, total), Available: free,
		Objects: st.Objects, StoredBytes: st.LogicalBytes, DeferredBytes: uint64(deferred),
	}
}
