package replica

import (
	"context"

	nodepb "github.com/cobaltstore/cobalt/node-daemon/proto"
)

// IntentKeeper is a replica that keeps a write-intent log (see Node.Intent): Local and Remote. The
// coordinator reads the logs of its in-sync replicas (IntentExtents) and clears them
// (ClearIdleIntent, ClearAllIntent); a replica that is not an IntentKeeper, or that fails to
// answer, counts as one that keeps no log.
type IntentKeeper interface {
	// Intent returns the replica's write-intent log.
	Intent(ctx context.Context, gen uint64) (Intent, error)
	// ClearIntent unmarks regions of the log (see Node.ClearIntent).
	ClearIntent(ctx context.Context, gen uint64, extents []Extent, all bool) error
}

var (
	_ IntentKeeper = (*Local)(nil)
	_ IntentKeeper = (*Remote)(nil)
)

// Intent implements IntentKeeper.
func (l *Local) Intent(ctx context.Context, gen uint64) (Intent, error) {
	ref, err := l.ref(ctx)
	if err != nil {
		return Intent{}, err
	}
	return l.node.Intent(ctx, ref, gen)
}

// ClearIntent implements IntentKeeper.
func (l *Local) ClearIntent(ctx context.Context, gen uint64, extents []Extent, all bool) error {
	ref, err := l.ref(ctx)
	if err != nil {
		return err
	}
	return l.node.ClearIntent(ctx, ref, gen, extents, all)
}

// Intent implements IntentKeeper.
func (r *Remote) Intent(ctx context.Context, gen uint64) (Intent, error) {
	resp, err := r.do(ctx, &nodepb.ReplicaRequest{Generation: gen, Op: &nodepb.ReplicaRequest_Intent{Intent: &nodepb.ReplicaIntent{}}})
	if err != nil {
		return Intent{}, err
	}
	if !resp.GetIntentTracking() {
		return Intent{Why: resp.GetIntentWhy()}, nil
	}
	in := Intent{Tracking: true}
	for _, e := range resp.GetExtents() {
		in.Regions = append(in.Regions, Extent{Offset: e.GetOffset(), Length: e.GetLength()})
	}
	return in, nil
}

// ClearIntent implements IntentKeeper.
func (r *Remote) ClearIntent(ctx context.Context, gen uint64, extents []Extent, all bool) error {
	req := &nodepb.ReplicaClearIntent{All: all}
	for _, e := range extents {
		req.Extents = append(req.Extents, &nodepb.ReplicaExtent{Offset: e.Offset, Length: e.Length})
	}
	_, err := r.do(ctx, &nodepb.ReplicaRequest{Generation: gen, Op: &nodepb.ReplicaRequest_ClearIntent{ClearIntent: req}})
	return err
}
