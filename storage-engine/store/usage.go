package store

import (
	"context"
	"errors"
	"fmt"

	"github.com/cobaltstore/cobalt/storage-engine/kv"
	"github.com/cobaltstore/cobalt/storage-engine/onode"
	"github.com/cockroachdb/pebble/v2"
)

// CollectionUsage is the device space the objects of one collection map.
type CollectionUsage struct {
	// Objects is the number of objects in the collection.
	Objects uint64
	// Referenced is the device space the collection's objects map, each allocation unit counted
	// once however many of them share it.
	Referenced uint64
	// Exclusive is the part of Referenced that nothing outside the collection references: the
	// space that removing every object of the collection would free.
	Exclusive uint64
}

// CollectionUsage reports the space collection c references and the part of it that only c
// references (clones in other collections share the rest). It reads every onode of c and holds
// back commits while it does (the counts must come from one state), so its cost grows with the
// collection's allocation units; it is meant for reporting, not for the I/O path.
func (s *Store) CollectionUsage(ctx context.Context, c string) (CollectionUsage, error) {
	leave, err := s.enter()
	if err != nil {
		return CollectionUsage{}, err
	}
	defer leave()
	if err := kv.ValidateCollection(c); err != nil {
		return CollectionUsage{}, fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	// Under commitMu the KV and the published state agree (a group is applied and published
	// under it); the gate keeps the shared counts stable for the reading.
	s.commitMu.Lock()
	defer s.commitMu.Unlock()
	s.gate.RLock()
	defer s.gate.RUnlock()
	if _, ok := s.pub.colls[c]; !ok {
		return CollectionUsage{}, fmt.Errorf("collection %q: %w", c, ErrNotFound)
	}
	var u CollectionUsage
	var refs refCounter
	lo, hi := kv.OnodeSpan(c, "")
	it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: lo, UpperBound: hi})
	if err != nil {
		return CollectionUsage{}, fmt.Errorf("usage of %q: %w", c, err)
	}
	for ok := it.First(); ok; ok = it.Next() {
		if err := ctx.Err(); err != nil {
			return CollectionUsage{}, errors.Join(err, it.Close())
		}
		_, name, err := kv.ParseOnodeKey(it.Key())
		if err != nil {
			return CollectionUsage{}, errors.Join(corruptMeta("%v", err), it.Close())
		}
		o, err := s.loadOnode(OnodeKey{c, name})
		if err != nil {
			return CollectionUsage{}, errors.Join(fmt.Errorf("usage of %q: %w", c, err), it.Close())
		}
		if o == nil {
			continue
		}
		u.Objects++
		for _, e := range o.Extents {
			refs.add(onode.PhysRange{Phys: e.Phys, Length: e.Length})
		}
	}
	if err := it.Close(); err != nil {
		return CollectionUsage{}, fmt.Errorf("usage of %q: %w", c, err)
	}
	// A unit is exclusive when every reference it has comes from this collection.
	for _, seg := range refs.sweep() {
		for unit := seg.start; unit < seg.end; unit += s.unit {
			u.Referenced += s.unit
			total := uint32(1)
			if n, ok := s.pub.shared[unit]; ok {
				total = n
			}
			if total <= seg.n {
				u.Exclusive += s.unit
			}
		}
	}
	return u, nil
}
