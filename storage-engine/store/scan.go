package store

import (
	"context"
	"errors"
	"fmt"

	"github.com/cobaltstore/cobalt/storage-engine/kv"
	"github.com/cobaltstore/cobalt/storage-engine/onode"
	"github.com/cockroachdb/pebble/v2"
)

// scanResult summarizes every onode in the KV.
type scanResult struct {
	objects, logicalBytes uint64
	maxNid                uint64
	refs                  refCounter
}

// scanOnodes decodes every onode, checks its geometry and collects its references. visit, if not
// nil, sees each onode; a visit error stops the scan. Undecodable onodes are corruption errors.
func (s *Store) scanOnodes(ctx context.Context, visit func(k OnodeKey, o *onode.Onode) error) (*scanResult, error) {
	lo, hi := kv.AllOnodesSpan()
	it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: lo, UpperBound: hi})
	if err != nil {
		return nil, fmt.Errorf("scan onodes: %w", err)
	}
	// The extent shards, read through a second iterator. Callers keep commits out (mount has not
	// started them, Fsck holds commitMu), so both iterators see the same state.
	elo, ehi := kv.AllExtentShardsSpan()
	eit, err := s.db.NewIter(&pebble.IterOptions{LowerBound: elo, UpperBound: ehi})
	if err != nil {
		return nil, errors.Join(fmt.Errorf("scan onodes: %w", err), it.Close())
	}
	defer eit.Close()
	res := &scanResult{}
	for ok := it.First(); ok; ok = it.Next() {
		if err := ctx.Err(); err != nil {
			return nil, errors.Join(err, it.Close())
		}
		c, name, err := kv.ParseOnodeKey(it.Key())
		if err != nil {
			return nil, errors.Join(corruptMeta("%v", err), it.Close())
		}
		o, err := onode.Decode(it.Value())
		if err == nil {
			err = s.loadExtents(eit, o)
		}
		if err == nil {
			err = s.checkGeometry(o)
		}
		if err != nil {
			return nil, errors.Join(&CorruptionError{Collection: c, Object: name, Offset: -1, Phys: -1, Detail: err.Error()}, it.Close())
		}
		res.objects++
		res.logicalBytes += o.Size
		res.maxNid = max(res.maxNid, o.Nid)
		for _, e := range o.Extents {
			res.refs.add(onode.PhysRange{Phys: e.Phys, Length: e.Length})
		}
		if visit != nil {
			if err := visit(OnodeKey{c, name}, o); err != nil {
				return nil, errors.Join(err, it.Close())
			}
		}
	}
	if err := it.Close(); err != nil {
		return nil, fmt.Errorf("scan onodes: %w", err)
	}
	return res, nil
}
