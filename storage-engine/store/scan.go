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
// Callers keep commits out (mount has not started them, Fsck holds commitMu).
func (s *Store) scanOnodes(ctx context.Context, visit func(k OnodeKey, o *onode.Onode) error) (*scanResult, error) {
	lo, hi := kv.AllOnodesSpan()
	res := &scanResult{}
	err := s.eachOnode(ctx, s.db, lo, hi, func(k OnodeKey, o *onode.Onode) error {
		res.objects++
		res.logicalBytes += o.Size
		res.maxNid = max(res.maxNid, o.Nid)
		for _, e := range o.Extents {
			res.refs.add(onode.PhysRange{Phys: e.Phys, Length: e.Length})
		}
		if visit != nil {
			return visit(k, o)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("scan onodes: %w", err)
	}
	return res, nil
}

// iterSource is what onodes are read from: the KV itself or a snapshot of it.
type iterSource interface {
	NewIter(*pebble.IterOptions) (*pebble.Iterator, error)
}

// eachOnode decodes every onode whose key is in [lo, hi) of src, with its extent map (read
// through a second iterator of src, so both see the same state), checks its geometry and passes
// it to visit; a visit error stops it. Undecodable onodes are corruption errors.
func (s *Store) eachOnode(ctx context.Context, src iterSource, lo, hi []byte, visit func(OnodeKey, *onode.Onode) error) (err error) {
	it, err := src.NewIter(&pebble.IterOptions{LowerBound: lo, UpperBound: hi})
	if err != nil {
		return err
	}
	defer func() { err = errors.Join(err, it.Close()) }()
	elo, ehi := kv.AllExtentShardsSpan()
	eit, err := src.NewIter(&pebble.IterOptions{LowerBound: elo, UpperBound: ehi})
	if err != nil {
		return err
	}
	defer func() { err = errors.Join(err, eit.Close()) }()
	for ok := it.First(); ok; ok = it.Next() {
		if err := ctx.Err(); err != nil {
			return err
		}
		c, name, err := kv.ParseOnodeKey(it.Key())
		if err != nil {
			return corruptMeta("%v", err)
		}
		o, err := onode.Decode(it.Value())
		if err == nil {
			err = s.loadExtents(eit, o)
		}
		if err == nil {
			err = s.checkGeometry(o)
		}
		if err != nil {
			return &CorruptionError{Collection: c, Object: name, Offset: -1, Phys: -1, Detail: err.Error()}
		}
		if err := visit(OnodeKey{c, name}, o); err != nil {
			return err
		}
	}
	return nil
}
