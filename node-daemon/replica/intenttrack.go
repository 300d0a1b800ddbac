package replica

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"sync"
	"time"
)

// DefaultIntentClearInterval is Config.IntentClearInterval when it is 0.
const DefaultIntentClearInterval = 5 * time.Second

// intentTracker is the coordinator's view of the write intent its writes left on the replicas:
// the regions it wrote or trimmed since their intent was last cleared, and whether every write of
// them was flushed on every in-sync replica.
type intentTracker struct {
	// every is how often at most a write starts a background sweep (<= 0: never).
	every time.Duration
	// sweeps counts the background sweeps running.
	sweeps sync.WaitGroup
	// mu guards the fields in this struct.
	mu struct {
		sync.Mutex
		// seq is bumped by every write or trim that ends; flushed is the seq every write that
		// ended before a flush acknowledged by every in-sync replica is below.
		seq, flushed uint64
		regions      map[int64]*intentRegion
		// vouched are the in-sync replicas known to agree with the others everywhere outside
		// this coordinator's regions (ClearAllIntent, or rebuilt from one), until they leave
		// the in-sync set or are removed.
		vouched   map[string]bool
		lastSweep time.Time
		sweeping  bool
		closed    bool
	}
}

// intentRegion is a region the coordinator wrote since its intent was last cleared.
type intentRegion struct {
	seq uint64    // the seq of its last write or trim
	at  time.Time // when that ended
	// failed is set when a write or trim of the region failed: the in-sync replicas may differ
	// in it until a reconcile, so its intent is never cleared by this coordinator.
	failed bool
}

func (t *intentTracker) init(every time.Duration) {
	if every == 0 {
		every = DefaultIntentClearInterval
	}
	t.every = every
	t.mu.regions = make(map[int64]*intentRegion)
	t.mu.vouched = make(map[string]bool)
	t.mu.lastSweep = time.Now()
}

// written records that a write or trim of [off, off+length) ended (failed or not). The caller
// holds the regions' locks shared. It reports whether a background sweep is due, and marks it
// started.
func (t *intentTracker) written(off, length int64, failed bool) (sweep bool) {
	if length <= 0 || off < 0 {
		return false
	}
	now := time.Now()
	t.mu.Lock()
	defer t.mu.Unlock()
	t.mu.seq++
	for i := off / IntentRegionSize; i <= (off+length-1)/IntentRegionSize; i++ {
		r := t.mu.regions[i]
		if r == nil {
			r = &intentRegion{}
			t.mu.regions[i] = r
		}
		r.seq, r.at, r.failed = t.mu.seq, now, r.failed || failed
	}
	if t.every <= 0 || t.mu.closed || t.mu.sweeping || now.Sub(t.mu.lastSweep) < t.every {
		return false
	}
	t.mu.sweeping = true
	t.sweeps.Add(1)
	return true
}

// barrier returns the seq below which every write has ended; the caller holds the gate
// exclusively.
func (t *intentTracker) barrier() uint64 {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.mu.seq + 1
}

// flushedTo records a flush every in-sync replica acknowledged, that started at barrier.
func (t *intentTracker) flushedTo(barrier uint64) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.mu.flushed = max(t.mu.flushed, barrier)
}

// idle returns the regions, sorted, whose writes all ended before the last flush every in-sync
// replica acknowledged (with flushedOnly) and at least idle ago, none of which failed.
func (t *intentTracker) idle(idle time.Duration, flushedOnly bool) []int64 {
	cut := time.Now().Add(-idle)
	t.mu.Lock()
	defer t.mu.Unlock()
	var out []int64
	for i, r := range t.mu.regions {
		if !r.failed && !r.at.After(cut) && (!flushedOnly || r.seq < t.mu.flushed) {
			out = append(out, i)
		}
	}
	slices.Sort(out)
	return out
}

// forget drops regions from the tracker once their intent was cleared on every in-sync replica.
func (t *intentTracker) forget(regions []int64) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, i := range regions {
		delete(t.mu.regions, i)
	}
}

// split returns the regions a write or trim failed in and the others, each sorted.
func (t *intentTracker) split() (failed, clean []int64) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for i, r := range t.mu.regions {
		if r.failed {
			failed = append(failed, i)
		} else {
			clean = append(clean, i)
		}
	}
	slices.Sort(failed)
	slices.Sort(clean)
	return failed, clean
}

// vouch records that the replicas agree with each other outside this coordinator's regions.
func (t *intentTracker) vouch(names []string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, n := range names {
		t.mu.vouched[n] = true
	}
}

// unvouch forgets a replica that left the in-sync set (a later resync compares only part of it).
func (t *intentTracker) unvouch(name string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	delete(t.mu.vouched, name)
}

func (t *intentTracker) isVouched(name string) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.mu.vouched[name]
}

// keepOnly keeps only regions in the tracker.
func (t *intentTracker) keepOnly(regions []int64) {
	t.mu.Lock()
	defer t.mu.Unlock()
	keep := make(map[int64]*intentRegion, len(regions))
	for _, i := range regions {
		if r := t.mu.regions[i]; r != nil {
			keep[i] = r
		}
	}
	t.mu.regions = keep
}

// sweepDone ends a background sweep.
func (t *intentTracker) sweepDone() {
	t.mu.Lock()
	t.mu.sweeping, t.mu.lastSweep = false, time.Now()
	t.mu.Unlock()
	t.sweeps.Done()
}

// close stops background sweeps and waits for the running one.
func (t *intentTracker) close() {
	t.mu.Lock()
	t.mu.closed = true
	t.mu.Unlock()
	t.sweeps.Wait()
}

// noteWritten records a write or trim that ended and starts a background sweep when one is due.
// The caller holds the regions' locks shared.
func (c *Coordinator) noteWritten(off, length int64, err error) {
	if !c.intent.written(off, length, err != nil) {
		return
	}
	go func() {
		defer c.intent.sweepDone()
		ctx, cancel := context.WithTimeout(context.Background(), 2*c.timeout)
		defer cancel()
		// A failed sweep only leaves marks; the next one (or Close) tries again.
		_, _ = c.ClearIdleIntent(ctx, c.intent.every)
	}()
}

// IntentExtents returns the union of the write-intent regions of every in-sync replica, sorted
// and merged: the only ranges where they can differ because of writes or trims that were never
// acknowledged (an old coordinator's in flight when it was replaced or died). It fails with an
// error wrapping ErrNoIntent when an in-sync replica keeps no log (not an IntentKeeper, written by
// older code, a corrupt log) or could not report it: then only a comparison of every written
// extent is safe. A replica that refuses the generation fences the coordinator.
func (c *Coordinator) IntentExtents(ctx context.Context) ([]Extent, error) {
	members, err := c.inSyncMembers()
	if err != nil {
		return nil, fmt.Errorf("replica: write intent: %w", err)
	}
	var all []Extent
	for _, m := range members {
		k, ok := m.r.(IntentKeeper)
		if !ok {
			return nil, fmt.Errorf("replica: write intent: replica %s keeps no write-intent log: %w", m.r.Name(), ErrNoIntent)
		}
		rctx, cancel := context.WithTimeout(ctx, c.timeout)
		in, err := k.Intent(rctx, c.gen)
		cancel()
		switch {
		case errors.Is(err, ErrStaleGeneration):
			return nil, fmt.Errorf("replica: write intent: %w", c.fence(err))
		case err != nil:
			return nil, fmt.Errorf("replica: write intent of replica %s: %w: %w", m.r.Name(), ErrNoIntent, err)
		case !in.Tracking:
			return nil, fmt.Errorf("replica: write intent of replica %s: %w: %s", m.r.Name(), ErrNoIntent, in.Why)
		}
		all = append(all, in.Regions...)
	}
	return mergeExtents(all), nil
}

// ClearIdleIntent clears, on every in-sync replica, the write intent of the regions this
// coordinator wrote or trimmed whose last write ended at least idle ago and none of whose writes
// failed: it flushes every in-sync replica first, and clears only the regions whose writes all
// ended before that flush, under the regions' locks (no write of them runs meanwhile). It returns
// how many regions it cleared. Writes start it in the background every
// Config.IntentClearInterval; hot regions stay marked and cost nothing.
func (c *Coordinator) ClearIdleIntent(ctx context.Context, idle time.Duration) (int, error) {
	if len(c.intent.idle(idle, false)) == 0 {
		return 0, nil
	}
	if err := c.Flush(ctx); err != nil {
		return 0, fmt.Errorf("replica: clear idle write intent: %w", err)
	}
	cand := c.intent.idle(idle, true)
	if len(cand) == 0 {
		return 0, nil
	}
	defer c.lockIntentRegions(cand)()
	// Writes of the candidates that ended before the locks were taken are seen now: keep only
	// the regions that still qualify (no write of them can run until unlock).
	still := make(map[int64]bool)
	for _, i := range c.intent.idle(idle, true) {
		still[i] = true
	}
	cand = slices.DeleteFunc(cand, func(i int64) bool { return !still[i] })
	if len(cand) == 0 {
		return 0, nil
	}
	ext := regionExtents(cand, IntentRegionSize)
	if err := c.clearIntent(ctx, func(string) ([]Extent, bool) { return ext, false }); err != nil {
		return 0, fmt.Errorf("replica: clear idle write intent: %w", err)
	}
	c.intent.forget(cand)
	return len(cand), nil
}

// lockIntentRegions takes exclusively the region locks (of the dirty log's regions, which writes
// take) of every intent region in regions, and returns the function that releases them.
func (c *Coordinator) lockIntentRegions(regions []int64) func() {
	rs := c.dirty.RegionSize()
	if IntentRegionSize/rs >= regionLockSlots {
		return c.regions.lockAll()
	}
	var locks []int64
	for _, i := range regions {
		for r := i * IntentRegionSize / rs; r <= ((i+1)*IntentRegionSize-1)/rs; r++ {
			locks = append(locks, r)
		}
	}
	return c.regions.lockExclusive(locks)
}

// ClearAllIntent waits for the writes and trims in flight and holds off new ones, flushes every
// in-sync replica and then clears their whole write-intent log, except the regions where a write
// or trim of this coordinator failed (the replicas may differ there until a reconcile); a replica
// that kept no log starts one, with those regions marked. The caller asserts that the in-sync replicas agree everywhere else
// (a reconcile compared them): the coordinator remembers them as vouched for until they leave the
// in-sync set, and Close clears their whole log again.
func (c *Coordinator) ClearAllIntent(ctx context.Context) error {
	return c.clearAll(ctx, true)
}

// Close stops the background intent sweeps (waiting for the one running), then, with every write
// held off, flushes every in-sync replica and clears their write intent: the whole log, except
// the regions where a write of this coordinator failed, on the replicas vouched for
// (ClearAllIntent, or rebuilt from one); only this coordinator's regions that no write failed in
// on the others (a replica resynced since, or rebuilt from one not vouched for, keeps the marks it
// had, which the next reconcile compares). It
// returns the flush's error; when only the clearing failed the error wraps ErrIntentNotCleared
// (the marks stay: the next reconcile compares more, nothing is lost). The coordinator still
// serves I/O after Close, but no write starts a sweep any more.
func (c *Coordinator) Close(ctx context.Context) error {
	c.intent.close()
	return c.clearAll(ctx, false)
}

// clearAll is ClearAllIntent (vouch: the in-sync replicas are vouched for first) and Close.
func (c *Coordinator) clearAll(ctx context.Context, vouch bool) error {
	c.gate.Lock()
	defer c.gate.Unlock()
	defer c.regions.lockAll()()
	if err := c.fanOut(ctx, "flush", 0, 0, func(ctx context.Context, r Replica) error {
		return r.Flush(ctx, c.gen)
	}); err != nil {
		return fmt.Errorf("replica: clear write intent: %w", err)
	}
	if vouch {
		c.intent.vouch(c.InSync())
	}
	failed, clean := c.intent.split()
	failedExt, cleanExt := regionExtents(failed, IntentRegionSize), regionExtents(clean, IntentRegionSize)
	err := c.clearIntent(ctx, func(name string) ([]Extent, bool) {
		if c.intent.isVouched(name) {
			return failedExt, true
		}
		return cleanExt, false
	})
	if err != nil {
		return fmt.Errorf("replica: clear write intent: %w", err)
	}
	c.intent.keepOnly(failed) // the others are cleared on every in-sync replica
	return nil
}

// clearIntent sends a ClearIntent to every in-sync replica that keeps a log, in parallel, with
// the ranges and mode what returns for it. Replicas that are not IntentKeepers are skipped (they
// keep no log). A replica that refuses the generation fences the coordinator. Errors wrap
// ErrIntentNotCleared.
func (c *Coordinator) clearIntent(ctx context.Context, what func(name string) (extents []Extent, all bool)) error {
	members, err := c.inSyncMembers()
	if err != nil {
		return err
	}
	errs := make([]error, len(members))
	var wg sync.WaitGroup
	for i, m := range members {
		k, ok := m.r.(IntentKeeper)
		if !ok {
			continue
		}
		extents, all := what(m.r.Name())
		if !all && len(extents) == 0 {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), c.timeout)
			defer cancel()
			if err := k.ClearIntent(rctx, c.gen, extents, all); err != nil {
				if errors.Is(err, ErrStaleGeneration) {
					err = c.fence(err)
				}
				errs[i] = fmt.Errorf("replica %s: %w", m.r.Name(), err)
			}
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("%w: %w", ErrIntentNotCleared, err)
	}
	return nil
}

// IntentRegions returns how many regions this coordinator wrote whose intent it has not cleared
// yet, and how many of them had a failed write.
func (c *Coordinator) IntentRegions() (marked, failed int) {
	c.intent.mu.Lock()
	defer c.intent.mu.Unlock()
	for r := range maps.Values(c.intent.mu.regions) {
		if r.failed {
			failed++
		}
	}
	return len(c.intent.mu.regions), failed
}
