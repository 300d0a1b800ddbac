package store

// Statfs reports space usage.
type Statfs struct {
	// Total is the data space: the device minus the label area and the metadata region, and
	// minus the space the metadata database grew into.
	Total uint64
	// Used is allocated space; Available is free space.
	Used, Available uint64
	// Objects is the number of objects; StoredBytes the sum of their logical sizes.
	Objects, StoredBytes uint64
	// DeferredBytes is data logged for in-place writes not yet applied.
	DeferredBytes uint64
	// MetadataGrown is data space given to the metadata database when it outgrew its region
	// (metagrow.go); Total and Used leave it out.
	MetadataGrown uint64
}

// Statfs returns the store's space usage.
func (s *Store) Statfs() Statfs {
	s.gate.RLock()
	st := s.pub.stats
	free := uint64(s.alloc.Free())
	s.gate.RUnlock()
	g, _ := s.meta.grown()
	grown := uint64(g)
	total := s.devSize - s.dataStart - min(grown, s.devSize-s.dataStart)
	_, deferred := s.overlay.len()
	return Statfs{
		Total: total, Used: total - min(free, total), Available: free,
		Objects: st.Objects, StoredBytes: st.LogicalBytes, DeferredBytes: uint64(deferred),
		MetadataGrown: grown,
	}
}
