package replica

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"

	"github.com/cobaltstore/cobalt/node-daemon/objstore"
	"github.com/cobaltstore/cobalt/node-daemon/volume"
)

// IntentAttr is the volume user attribute (volume.Manager.SetUserAttr) of every replica that holds
// the replica's write-intent log (see Node.Intent).
const IntentAttr = "replica.intent"

// IntentRegionSize is the granularity of the write-intent log, on the replicas and in the
// coordinator.
const IntentRegionSize = DefaultRegionSize

// Intent is what a replica's write-intent log says.
type Intent struct {
	// Tracking is true when the replica keeps the log (attribute IntentAttr exists and decodes):
	// every write and trim applied on the replica since a coordinator started the log (a
	// ClearAllIntent, or the promotion of a rebuilt replica) and not cleared since lies in Regions. It is false for a replica written by older code (no
	// attribute) or whose log is corrupt: then Regions says nothing and only a comparison of every
	// written extent is safe.
	Tracking bool
	// Regions are the marked regions (IntentRegionSize-aligned), sorted and merged.
	Regions []Extent
	// Why says why the replica does not track, when Tracking is false.
	Why string
}

// intentLog is the write-intent log of one volume on this node: the regions where a write or trim
// may have been applied that the copies of the volume may not all have. It is safe for concurrent
// use.
type intentLog struct {
	// saveMu serializes loads and saves, so a save never replaces a newer one.
	saveMu sync.Mutex
	// mu guards the fields in this struct.
	mu struct {
		sync.Mutex
		loaded   bool
		tracking bool
		why      string // why not tracking
		// regions maps a marked region index to the version that added it.
		regions map[int64]uint64
		version uint64 // bumped by every change
		durable uint64 // the version the attribute holds
	}
}

// load reads the log from the volume once.
func (l *intentLog) load(ctx context.Context, m *volume.Manager, id string) error {
	l.mu.Lock()
	loaded := l.mu.loaded
	l.mu.Unlock()
	if loaded {
		return nil
	}
	l.saveMu.Lock()
	defer l.saveMu.Unlock()
	l.mu.Lock()
	loaded = l.mu.loaded
	l.mu.Unlock()
	if loaded {
		return nil
	}
	regions := make(map[int64]uint64)
	tracking, why := true, ""
	b, err := m.UserAttr(ctx, id, IntentAttr)
	switch {
	case errors.Is(err, objstore.ErrNotFound):
		if _, gerr := m.Get(ctx, id); gerr != nil {
			return fmt.Errorf("replica: %w", gerr) // the volume itself is missing
		}
		tracking, why = false, "the copy has no write-intent log (written by older code, or neither reconciled nor rebuilt since it was made)"
	case err != nil:
		return fmt.Errorf("replica: load the write-intent log of volume %q: %w", id, err)
	default:
		size, runs, derr := decodeIntent(b)
		if derr != nil {
			tracking, why = false, derr.Error()
			break
		}
		for _, r := range runs {
			off, end := r.first*size, (r.first+r.count)*size
			for i := off / IntentRegionSize; i <= (end-1)/IntentRegionSize; i++ {
				regions[i] = 0
			}
		}
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	l.mu.loaded, l.mu.tracking, l.mu.why, l.mu.regions = true, tracking, why, regions
	return nil
}

// mark records [off, off+length) and returns once that is durable in the volume; a region
// already saved costs nothing. A log that does not track marks nothing (the volume gets a full
// comparison anyway). When saving fails the regions stay marked in memory (their next mark saves
// again) and the error is returned.
func (l *intentLog) mark(ctx context.Context, m *volume.Manager, id string, off, length int64) error {
	if length <= 0 || off < 0 {
		return nil
	}
	if err := l.load(ctx, m, id); err != nil {
		return err
	}
	first, last := off/IntentRegionSize, (off+length-1)/IntentRegionSize
	l.mu.Lock()
	if !l.mu.tracking {
		l.mu.Unlock()
		return nil
	}
	next := l.mu.version + 1
	var need uint64
	for i := first; i <= last; i++ {
		v, ok := l.mu.regions[i]
		if !ok {
			v = next
			l.mu.regions[i] = v
		}
		need = max(need, v)
	}
	if need == next {
		l.mu.version = next
	}
	done := need <= l.mu.durable
	l.mu.Unlock()
	if done {
		return nil
	}
	if err := l.save(ctx, m, id, need); err != nil {
		return fmt.Errorf("replica: mark [%d, %d) in the write-intent log: %w", off, off+length, err)
	}
	return nil
}

// clear unmarks regions and saves the log. Without all, it unmarks the regions extents cover
// whole, and only in a log that tracks. With all, it unmarks every region except those extents
// touch, and starts the log when it did not track (the attribute is written): the caller knows
// the copies agree everywhere else and no write runs.
func (l *intentLog) clear(ctx context.Context, m *volume.Manager, id string, extents []Extent, all bool) error {
	if err := l.load(ctx, m, id); err != nil {
		return err
	}
	extents = mergeExtents(extents) // sorted and apart: a region lies in at most one
	l.mu.Lock()
	if !all && !l.mu.tracking {
		l.mu.Unlock()
		return nil
	}
	if all {
		keep := make(map[int64]uint64)
		for _, e := range extents {
			for i := e.Offset / IntentRegionSize; i <= (e.Offset+e.Length-1)/IntentRegionSize; i++ {
				keep[i] = l.mu.regions[i] // a region not marked yet is added, version 0: saved below
			}
		}
		l.mu.regions, l.mu.tracking, l.mu.why = keep, true, ""
	} else {
		for i := range l.mu.regions {
			off := i * IntentRegionSize
			j, _ := slices.BinarySearchFunc(extents, off, func(e Extent, off int64) int { return cmp.Compare(e.Offset+e.Length, off+1) })
			if j < len(extents) && extents[j].Offset <= off && off+IntentRegionSize <= extents[j].Offset+extents[j].Length {
				delete(l.mu.regions, i)
			}
		}
	}
	l.mu.version++
	need := l.mu.version
	l.mu.Unlock()
	if err := l.save(ctx, m, id, need); err != nil {
		return fmt.Errorf("replica: clear the write-intent log: %w", err)
	}
	return nil
}

// save makes the volume hold at least version need of the log, saving the whole log if it does
// not yet.
func (l *intentLog) save(ctx context.Context, m *volume.Manager, id string, need uint64) error {
	l.saveMu.Lock()
	defer l.saveMu.Unlock()
	l.mu.Lock()
	if need <= l.mu.durable {
		l.mu.Unlock()
		return nil // a save since the change included it
	}
	version := l.mu.version
	idx := make([]int64, 0, len(l.mu.regions))
	for i := range l.mu.regions {
		idx = append(idx, i)
	}
	l.mu.Unlock()
	if err := m.SetUserAttr(ctx, id, IntentAttr, encodeIntent(IntentRegionSize, idx)); err != nil {
		return fmt.Errorf("save the write-intent log of volume %q: %w", id, err)
	}
	l.mu.Lock()
	l.mu.durable = max(l.mu.durable, version)
	l.mu.Unlock()
	return nil
}

// report returns what the loaded log says.
func (l *intentLog) report() Intent {
	l.mu.Lock()
	defer l.mu.Unlock()
	if !l.mu.tracking {
		return Intent{Why: l.mu.why}
	}
	idx := make([]int64, 0, len(l.mu.regions))
	for i := range l.mu.regions {
		idx = append(idx, i)
	}
	slices.Sort(idx)
	return Intent{Tracking: true, Regions: regionExtents(idx, IntentRegionSize)}
}

// regionExtents turns sorted region indexes into merged extents of regionSize-byte regions.
func regionExtents(idx []int64, regionSize int64) []Extent {
	var out []Extent
	for _, i := range idx {
		off := i * regionSize
		if n := len(out); n > 0 && out[n-1].Offset+out[n-1].Length == off {
			out[n-1].Length += regionSize
			continue
		}
		out = append(out, Extent{Offset: off, Length: regionSize})
	}
	return out
}

// Intent returns the write-intent log of the volume, its regions cut at the volume's size, for a
// coordinator of generation gen.
func (n *Node) Intent(ctx context.Context, ref Ref, gen uint64) (Intent, error) {
	id := ref.Volume
	m, f, release, err := n.admitFence(ctx, ref, gen)
	if err != nil {
		return Intent{}, err
	}
	defer release()
	if err := f.intent.load(ctx, m, id); err != nil {
		return Intent{}, err
	}
	info, err := m.Get(ctx, id)
	if err != nil {
		return Intent{}, fmt.Errorf("replica: write-intent log of volume %q: %w", id, err)
	}
	in := f.intent.report()
	var regions []Extent
	for _, e := range in.Regions {
		if e.Offset >= info.Size {
			break // a write out of range was marked before the volume refused it
		}
		e.Length = min(e.Length, info.Size-e.Offset)
		regions = append(regions, e)
	}
	in.Regions = regions
	return in, nil
}

// ClearIntent unmarks regions of the volume's write-intent log, for a coordinator of generation
// gen, and returns once that is durable. Without all it unmarks the regions extents cover whole
// (a log that does not track stays so); with all it unmarks every region except those extents
// touch and starts the log if it did not track. The coordinator clears a region only when every
// in-sync copy durably has every write of it and none runs (see the package documentation).
func (n *Node) ClearIntent(ctx context.Context, ref Ref, gen uint64, extents []Extent, all bool) error {
	id := ref.Volume
	m, f, release, err := n.admitFence(ctx, ref, gen)
	if err != nil {
		return err
	}
	defer release()
	info, err := m.Get(ctx, id)
	if err != nil {
		return fmt.Errorf("replica: clear the write-intent log of volume %q: %w", id, err)
	}
	// Ranges are cut at the volume's end, and one that reaches it covers the last region whole.
	end := (info.Size + IntentRegionSize - 1) / IntentRegionSize * IntentRegionSize
	cut := make([]Extent, 0, len(extents))
	for _, e := range extents {
		if e.Offset < 0 || e.Length <= 0 || e.Offset >= info.Size {
			return fmt.Errorf("replica: clear the write-intent log of volume %q: range [%d, +%d) is empty or outside the volume (%d bytes): %w", id, e.Offset, e.Length, info.Size, objstore.ErrInvalid)
		}
		if e.Length >= info.Size-e.Offset {
			e.Length = end - e.Offset
		}
		cut = append(cut, e)
	}
	return f.intent.clear(ctx, m, id, cut, all)
}
