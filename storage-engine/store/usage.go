package store

import (
	"context"
	"fmt"
	"sync"

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

// Usage scans and commits.
//
// A scan reads the collection's onodes from a pebble snapshot taken under commitMu, where the KV
// and the published state agree, and then holds nothing that commits wait for: groups keep
// committing while it reads. Exclusivity needs each unit's reference count in the same state as
// the snapshot, and the store keeps only the current counts (Store.pub.shared), so every scan in
// progress is registered, and publish records in it the count each unit had before the first
// group after the snapshot changed it. At the end the scan takes a unit's count from that record
// when there is one, else from the current counts, which no group has changed since.

// usageScans are the CollectionUsage scans in progress.
type usageScans struct {
	// mu guards scans and their prior maps. Lock order: gate, then mu.
	mu    sync.Mutex
	scans map[*usageScan]struct{}
}

// usageScan is one scan in progress.
type usageScan struct {
	// prior maps each unit whose reference count a group changed since the scan's snapshot to
	// its count at the snapshot (1: unshared or unreferenced). REQUIRES: usageScans.mu.
	prior map[uint64]uint32
}

// testHooks are called at fixed points so that a test can hold a long operation at a known step;
// nil hooks do nothing. Tests set them before the store is used concurrently.
type testHooks struct {
	// usageObject is called by CollectionUsage after it counted each object, holding no lock
	// that commits wait for.
	usageObject func()
}

// register starts a scan. REQUIRES: s.commitMu, so that no group is published between the
// caller's snapshot and the registration.
func (u *usageScans) register() *usageScan {
	sc := &usageScan{prior: map[uint64]uint32{}}
	u.mu.Lock()
	if u.scans == nil {
		u.scans = map[*usageScan]struct{}{}
	}
	u.scans[sc] = struct{}{}
	u.mu.Unlock()
	return sc
}

func (u *usageScans) unregister(sc *usageScan) {
	u.mu.Lock()
	delete(u.scans, sc)
	u.mu.Unlock()
}

// recordPriorLocked records, in every scan in progress, the current counts of the units a group
// is about to change. REQUIRES: s.gate (exclusive), called before pub.shared changes.
func (s *Store) recordPriorLocked(changed map[uint64]uint32) {
	s.usage.mu.Lock()
	defer s.usage.mu.Unlock()
	for sc := range s.usage.scans {
		for u := range changed {
			if _, ok := sc.prior[u]; ok {
				continue
			}
			n, ok := s.pub.shared[u]
			if !ok {
				n = 1
			}
			sc.prior[u] = n
		}
	}
}

// CollectionUsage reports the space collection c references and the part of it that only c
// references (clones in other collections share the rest), as of one state: the committed state
// when the call starts. It reads every onode of c from a snapshot of the KV and does not hold
// back commits while it does; its cost grows with the collection's allocation units, and it is
// meant for reporting, not for the I/O path.
func (s *Store) CollectionUsage(ctx context.Context, c string) (CollectionUsage, error) {
	leave, err := s.enter()
	if err != nil {
		return CollectionUsage{}, err
	}
	defer leave()
	if err := kv.ValidateCollection(c); err != nil {
		return CollectionUsage{}, fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	var snap *pebble.Snapshot
	var sc *usageScan
	err = s.unlessStuck(func() (err error) {
		snap, sc, err = s.startUsageScan(c) // commitMu: a stuck committer holds it for good
		return err
	})
	if err != nil {
		return CollectionUsage{}, err
	}
	defer s.usage.unregister(sc)
	defer snap.Close()
	var u CollectionUsage
	var refs refCounter
	if err := s.scanCollection(ctx, snap, c, func(o *onode.Onode) {
		u.Objects++
		for _, e := range o.Extents {
			refs.add(onode.PhysRange{Phys: e.Phys, Length: e.Length})
		}
		if h := s.hooks.usageObject; h != nil {
			h()
		}
	}); err != nil {
		return CollectionUsage{}, fmt.Errorf("usage of %q: %w", c, err)
	}
	s.gate.RLock()
	defer s.gate.RUnlock()
	s.usage.mu.Lock()
	defer s.usage.mu.Unlock()
	// A unit is exclusive when every reference it had at the snapshot came from this collection.
	for _, seg := range refs.sweep() {
		for unit := seg.start; unit < seg.end; unit += s.unit {
			u.Referenced += s.unit
			total, ok := sc.prior[unit]
			if !ok {
				total = 1
				if n, shared := s.pub.shared[unit]; shared {
					total = n
				}
			}
			if total <= seg.n {
				u.Exclusive += s.unit
			}
		}
	}
	return u, nil
}

// startUsageScan takes a snapshot of the KV in which collection c exists and registers a scan
// from it, both under commitMu: the snapshot then holds exactly the published groups.
func (s *Store) startUsageScan(c string) (*pebble.Snapshot, *usageScan, error) {
	s.commitMu.Lock()
	defer s.commitMu.Unlock()
	s.gate.RLock()
	_, ok := s.pub.colls[c]
	s.gate.RUnlock()
	if !ok {
		return nil, nil, fmt.Errorf("collection %q: %w", c, ErrNotFound)
	}
	return s.db.NewSnapshot(), s.usage.register(), nil
}

// scanCollection decodes every onode of collection c in snap, with its extent map, and passes it
// to visit. Undecodable onodes are corruption errors.
func (s *Store) scanCollection(ctx context.Context, snap *pebble.Snapshot, c string, visit func(*onode.Onode)) error {
	lo, hi := kv.OnodeSpan(c, "")
	return s.eachOnode(ctx, snap, lo, hi, func(_ OnodeKey, o *onode.Onode) error {
		visit(o)
		return nil
	})
}
