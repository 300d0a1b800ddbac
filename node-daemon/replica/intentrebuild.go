package replica

import (
	"context"
	"errors"
	"fmt"
)

// rebuiltIntent is the write-intent log a rebuilt replica starts with when it is promoted (see
// the package documentation, "Write intent"): the regions where the source may differ from
// another in-sync replica without that replica's log saying so.
type rebuiltIntent struct {
	target IntentKeeper
	source string
	// seed are the source's intent regions, or the whole volume when the source's log is not
	// known; size is the volume's size.
	seed []Extent
	size int64
}

// rebuiltIntentOf reads what the log of target, rebuilt from src, starts with: the source's
// intent regions when the source keeps a log and reports it, else the whole volume (a superset:
// the target's copy may differ from the other replicas wherever the source may). It returns nil
// when target keeps no log (not an IntentKeeper). It runs after the comparison: a region marked
// on the source later comes from a write that went to the target too, and one cleared later was
// cleared because every in-sync replica had every write of it, so an earlier read is a superset.
// size is the volume's size, as the rebuild's last listing of both copies reported it.
func (c *Coordinator) rebuiltIntentOf(ctx context.Context, src, target Syncer, size int64) (*rebuiltIntent, error) {
	k, ok := target.(IntentKeeper)
	if !ok {
		return nil, nil
	}
	ri := &rebuiltIntent{target: k, source: src.Name(), size: size}
	whole := []Extent{{Offset: 0, Length: size}}
	sk, ok := src.(IntentKeeper)
	if !ok {
		ri.seed = whole
		return ri, nil
	}
	rctx, cancel := context.WithTimeout(ctx, c.timeout)
	in, err := sk.Intent(rctx, c.gen)
	cancel()
	switch {
	case errors.Is(err, ErrStaleGeneration):
		return nil, err
	case err != nil || !in.Tracking:
		ri.seed = whole
	default:
		ri.seed = in.Regions
	}
	return ri, nil
}

// start starts the target's log with the seed and the regions where a write or trim of this
// coordinator failed (the replicas may differ there, and the target holds the source's version
// or a write that landed on it only). REQUIRES: c.gate held exclusively (no write or trim runs,
// so every failed one is known and none lands on the target unmarked meanwhile), and the copy
// done (its own writes would mark the target).
func (ri *rebuiltIntent) start(ctx context.Context, c *Coordinator) error {
	failed, _ := c.intent.split()
	ext := clipExtents(mergeExtents(append(regionExtents(failed, IntentRegionSize), ri.seed...)), ri.size)
	rctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	if err := ri.target.ClearIntent(rctx, c.gen, ext, true); err != nil {
		return fmt.Errorf("start the target's write-intent log: %w", err)
	}
	return nil
}

// clipExtents cuts sorted, merged extents at size.
func clipExtents(extents []Extent, size int64) []Extent {
	var out []Extent
	for _, e := range extents {
		if e.Offset >= size {
			break
		}
		e.Length = min(e.Length, size-e.Offset)
		out = append(out, e)
	}
	return out
}
