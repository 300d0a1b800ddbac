package replica

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
)

// Mismatch is a block where the replicas' copies differ, with each replica's CRC-32C of it.
type Mismatch struct {
	Extent
	Checksums map[string]uint32 // by replica name
}

// ScrubResult is what a scrub compared and found.
type ScrubResult struct {
	// Replicas are the names of the replicas compared.
	Replicas []string
	// Compared is the bytes compared (on each replica).
	Compared int64
	// Mismatches are the differing blocks, by offset.
	Mismatches []Mismatch
}

// Scrub compares every in-sync replica of the volume by per-block checksums computed on each
// replica's node, over every extent any of them holds (an extent one lacks reads as zeros
// there), throttled by opts.Limiter, and reports the blocks that differ. Writes continue
// meanwhile: each region is compared under its region lock, so a write in flight never shows as
// a mismatch. It needs two in-sync replicas that are Syncers.
func (c *Coordinator) Scrub(ctx context.Context, opts SyncOptions) (ScrubResult, error) {
	var res ScrubResult
	opts, err := opts.withDefaults(c.dirty.RegionSize())
	if err != nil {
		return res, err
	}
	members, err := c.inSyncMembers()
	if err != nil {
		return res, fmt.Errorf("replica: scrub: %w", err)
	}
	var reps []Syncer
	for _, m := range members {
		if s, ok := m.r.(Syncer); ok {
			reps = append(reps, s)
			res.Replicas = append(res.Replicas, s.Name())
		}
	}
	if len(reps) < 2 {
		return res, fmt.Errorf("replica: scrub needs two in-sync replicas that can checksum, found %d", len(reps))
	}
	extents, err := c.unionExtents(ctx, reps...)
	if err != nil {
		return res, fmt.Errorf("replica: scrub: %w", err)
	}
	res.Mismatches, res.Compared, err = c.compare(ctx, reps, extents, opts)
	if err != nil {
		return res, fmt.Errorf("replica: scrub: %w", err)
	}
	return res, nil
}

// Repair copies extents (e.g. the mismatches of a Scrub) from the in-sync replica named source,
// the one known good, onto the in-sync replicas named in targets (nil: every other in-sync
// replica), region by region under the region locks, and returns the bytes it copied.
func (c *Coordinator) Repair(ctx context.Context, source string, targets []string, extents []Extent, opts SyncOptions) (int64, error) {
	opts, err := opts.withDefaults(c.dirty.RegionSize())
	if err != nil {
		return 0, err
	}
	src, err := c.syncSource(source)
	if err != nil {
		return 0, fmt.Errorf("replica: repair from %s: %w", source, err)
	}
	members, err := c.inSyncMembers()
	if err != nil {
		return 0, fmt.Errorf("replica: repair from %s: %w", source, err)
	}
	var copied int64
	matched := 0
	for _, m := range members {
		dst, ok := m.r.(Syncer)
		if !ok || dst.Name() == source || targets != nil && !slices.Contains(targets, dst.Name()) {
			continue
		}
		matched++
		n, _, err := c.copyExtents(ctx, src, dst, extents, opts)
		copied += n
		if err != nil {
			if errors.Is(err, ErrStaleGeneration) {
				err = c.fence(err)
			}
			return copied, fmt.Errorf("replica: repair %s from %s: %w", dst.Name(), source, err)
		}
	}
	if targets != nil && matched != len(targets) {
		return copied, fmt.Errorf("replica: repair from %s: only %d of the targets %v are other in-sync replicas that can be repaired", source, matched, targets)
	}
	return copied, nil
}

// unionExtents returns the union of the written extents of every replica, region-aligned where
// they differ does not matter: the comparison checksums whatever it is given.
func (c *Coordinator) unionExtents(ctx context.Context, reps ...Syncer) ([]Extent, error) {
	var all []Extent
	for _, r := range reps {
		rctx, cancel := context.WithTimeout(ctx, c.timeout)
		ext, _, err := r.Extents(rctx, c.gen)
		cancel()
		if err != nil {
			return nil, fmt.Errorf("extents of %s: %w", r.Name(), err)
		}
		all = append(all, ext...)
	}
	return mergeExtents(all), nil
}

// mergeExtents sorts extents and merges the ones that overlap or touch.
func mergeExtents(in []Extent) []Extent {
	in = slices.Clone(in)
	slices.SortFunc(in, func(a, b Extent) int { return cmp.Compare(a.Offset, b.Offset) })
	var out []Extent
	for _, e := range in {
		if e.Length <= 0 {
			continue
		}
		if n := len(out); n > 0 && e.Offset <= out[n-1].Offset+out[n-1].Length {
			out[n-1].Length = max(out[n-1].Offset+out[n-1].Length, e.Offset+e.Length) - out[n-1].Offset
			continue
		}
		out = append(out, e)
	}
	return out
}

// compare checksums extents on every replica (each on its own node), region by region under the
// region's lock so that no write is half applied, and returns the blocks that differ, by offset,
// and the bytes compared.
func (c *Coordinator) compare(ctx context.Context, reps []Syncer, extents []Extent, opts SyncOptions) ([]Mismatch, int64, error) {
	regionSize := c.dirty.RegionSize()
	tracker := newTracker(PhaseCompare, total(extents), opts.Progress)
	var (
		mu   sync.Mutex
		mism []Mismatch
	)
	err := c.forEach(ctx, chunks(extents, regionSize), opts.Parallelism, func(ctx context.Context, ch Extent) error {
		if err := waitBytes(ctx, opts.Limiter, ch.Length); err != nil {
			return err
		}
		sums, err := c.checksumChunk(ctx, reps, ch, opts.CompareBlock, regionSize)
		if err != nil {
			return err
		}
		for b := range sums[0] {
			differ := false
			for _, s := range sums[1:] {
				differ = differ || s[b] != sums[0][b]
			}
			if !differ {
				continue
			}
			off := ch.Offset + int64(b)*opts.CompareBlock
			m := Mismatch{Extent: Extent{Offset: off, Length: min(opts.CompareBlock, ch.Offset+ch.Length-off)}, Checksums: make(map[string]uint32, len(reps))}
			for i, r := range reps {
				m.Checksums[r.Name()] = sums[i][b]
			}
			mu.Lock()
			mism = append(mism, m)
			mu.Unlock()
		}
		tracker.add(ch.Length)
		return nil
	})
	slices.SortFunc(mism, func(a, b Mismatch) int { return cmp.Compare(a.Offset, b.Offset) })
	return mism, tracker.done(), err
}

// checksumChunk checksums one chunk (inside one region) on every replica in parallel, under the
// region's lock.
func (c *Coordinator) checksumChunk(ctx context.Context, reps []Syncer, ch Extent, block, regionSize int64) ([][]uint32, error) {
	unlock := c.regions.lock(ch.Offset / regionSize)
	defer unlock()
	sums := make([][]uint32, len(reps))
	errs := make([]error, len(reps))
	var wg sync.WaitGroup
	for i, r := range reps {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rctx, cancel := context.WithTimeout(ctx, c.timeout)
			defer cancel()
			sums[i], errs[i] = r.Checksum(rctx, c.gen, ch.Offset, ch.Length, block)
			if errs[i] != nil {
				errs[i] = fmt.Errorf("checksum %d bytes at %d on %s: %w", ch.Length, ch.Offset, r.Name(), errs[i])
			}
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	want := int((ch.Length + block - 1) / block)
	for i, s := range sums {
		if len(s) != want {
			return nil, fmt.Errorf("checksum %d bytes at %d on %s: %d blocks, want %d", ch.Length, ch.Offset, reps[i].Name(), len(s), want)
		}
	}
	return sums, nil
}

// Majority returns the replica whose checksum of the block a strict majority of the replicas
// share, and the ones that differ from it; ok is false when no checksum has a strict majority
// (two replicas that differ, or three that all differ), and a good copy must then be chosen
// another way (e.g. the one whose engine checksums verify on a deep read).
func (m Mismatch) Majority() (good string, bad []string, ok bool) {
	votes := make(map[uint32]int, len(m.Checksums))
	for _, s := range m.Checksums {
		votes[s]++
	}
	var win uint32
	for s, n := range votes {
		if 2*n > len(m.Checksums) {
			win, ok = s, true
		}
	}
	if !ok {
		return "", nil, false
	}
	names := make([]string, 0, len(m.Checksums))
	for name := range m.Checksums {
		names = append(names, name)
	}
	slices.Sort(names)
	for _, name := range names {
		switch {
		case m.Checksums[name] != win:
			bad = append(bad, name)
		case good == "":
			good = name
		}
	}
	return good, bad, true
}
