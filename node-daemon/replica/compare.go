package replica

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/cobaltstore/cobalt/node-daemon/objstore"
)

// Mismatch is a block where the replicas' copies differ, or that a replica could not read
// because its engine found it corrupt (its own checksums failed on the deep read).
type Mismatch struct {
	Extent
	// Checksums are the CRC-32C of the block on each replica that read it, by replica name.
	Checksums map[string]uint32
	// Unreadable are the replicas that could not read the block because it is corrupt there
	// (objstore.ErrCorrupt, gRPC DataLoss), with the error, by replica name.
	Unreadable map[string]string
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
// there), throttled by opts.Limiter, and reports the blocks that differ or that a replica could
// not read because they are corrupt there (Mismatch.Unreadable); any other failure of a replica
// fails the scrub. Writes continue
// meanwhile: each region is compared under its region lock, so a write in flight never shows as
// a mismatch. It needs two in-sync replicas that are Syncers.
func (c *Coordinator) Scrub(ctx context.Context, opts SyncOptions) (ScrubResult, error) {
	return c.compareReplicas(ctx, "scrub", opts, func(reps []Syncer) ([]Extent, error) {
		ext, _, err := c.unionExtents(ctx, reps...)
		return ext, err
	})
}

// Verify is Scrub over the given extents only (e.g. the ones a Repair just copied), without
// listing the replicas' extents.
func (c *Coordinator) Verify(ctx context.Context, extents []Extent, opts SyncOptions) (ScrubResult, error) {
	return c.compareReplicas(ctx, "verify", opts, func([]Syncer) ([]Extent, error) {
		return mergeExtents(extents), nil
	})
}

// compareReplicas compares every in-sync replica over the extents extentsOf lists for them.
func (c *Coordinator) compareReplicas(ctx context.Context, what string, opts SyncOptions, extentsOf func([]Syncer) ([]Extent, error)) (ScrubResult, error) {
	var res ScrubResult
	opts, err := opts.withDefaults(c.dirty.RegionSize())
	if err != nil {
		return res, err
	}
	reps, names, err := c.scrubReplicas()
	res.Replicas = names
	if err != nil {
		return res, fmt.Errorf("replica: %s: %w", what, err)
	}
	extents, err := extentsOf(reps)
	if err != nil {
		return res, fmt.Errorf("replica: %s: %w", what, err)
	}
	res.Mismatches, res.Compared, err = c.compare(ctx, reps, extents, opts)
	if err != nil {
		return res, fmt.Errorf("replica: %s: %w", what, err)
	}
	return res, nil
}

// scrubReplicas returns the in-sync replicas that are Syncers, and their names; it needs two.
func (c *Coordinator) scrubReplicas() ([]Syncer, []string, error) {
	members, err := c.inSyncMembers()
	if err != nil {
		return nil, nil, err
	}
	var (
		reps  []Syncer
		names []string
	)
	for _, m := range members {
		if s, ok := m.r.(Syncer); ok {
			reps = append(reps, s)
			names = append(names, s.Name())
		}
	}
	if len(reps) < 2 {
		return nil, names, fmt.Errorf("scrub needs two in-sync replicas that can checksum, found %d", len(reps))
	}
	return reps, names, nil
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
		cp, err := c.copyExtents(ctx, src, dst, extents, opts, false)
		copied += cp.copied
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
// they differ does not matter: the comparison checksums whatever it is given. It also returns the
// smallest volume size they report.
func (c *Coordinator) unionExtents(ctx context.Context, reps ...Syncer) ([]Extent, int64, error) {
	var (
		all  []Extent
		size int64 = -1
	)
	for _, r := range reps {
		rctx, cancel := context.WithTimeout(ctx, c.timeout)
		ext, n, err := r.Extents(rctx, c.gen)
		cancel()
		if err != nil {
			return nil, 0, fmt.Errorf("extents of %s: %w", r.Name(), err)
		}
		all = append(all, ext...)
		if size < 0 || n < size {
			size = n
		}
	}
	return mergeExtents(all), max(size, 0), nil
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
// region's lock so that no write is half applied, and returns the blocks that differ or that a
// replica found corrupt, by offset, and the bytes compared.
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
		sums, unreadable, err := c.checksumChunk(ctx, reps, ch, opts.CompareBlock, regionSize)
		if err != nil {
			return err
		}
		for b := range sums[0] {
			m, differ := blockMismatch(reps, sums, unreadable, b)
			if !differ {
				continue
			}
			off := ch.Offset + int64(b)*opts.CompareBlock
			m.Extent = Extent{Offset: off, Length: min(opts.CompareBlock, ch.Offset+ch.Length-off)}
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

// blockMismatch returns block b's checksums and read errors on every replica, and whether the
// replicas differ on it or one could not read it.
func blockMismatch(reps []Syncer, sums [][]uint32, unreadable []map[int]error, b int) (Mismatch, bool) {
	m := Mismatch{Checksums: make(map[string]uint32, len(reps))}
	differ, first, seen := false, uint32(0), false
	for i, r := range reps {
		if err := unreadable[i][b]; err != nil {
			if m.Unreadable == nil {
				m.Unreadable = map[string]string{}
			}
			m.Unreadable[r.Name()] = err.Error()
			differ = true
			continue
		}
		m.Checksums[r.Name()] = sums[i][b]
		if seen && sums[i][b] != first {
			differ = true
		}
		first, seen = sums[i][b], true
	}
	return m, differ
}

// checksumChunk checksums one chunk (inside one region) on every replica in parallel, under the
// region's lock. A replica whose engine finds the chunk corrupt checksums it again block by block
// (still under the lock), and the blocks it cannot read are returned in unreadable[replica];
// any other failure fails the chunk.
func (c *Coordinator) checksumChunk(ctx context.Context, reps []Syncer, ch Extent, block, regionSize int64) (sums [][]uint32, unreadable []map[int]error, err error) {
	unlock := c.regions.lock(ch.Offset / regionSize)
	defer unlock()
	want := int((ch.Length + block - 1) / block)
	sums = make([][]uint32, len(reps))
	unreadable = make([]map[int]error, len(reps))
	errs := make([]error, len(reps))
	var wg sync.WaitGroup
	for i, r := range reps {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sums[i], errs[i] = c.checksum(ctx, r, ch.Offset, ch.Length, block)
			if errs[i] != nil && isCorrupt(errs[i]) {
				sums[i], unreadable[i], errs[i] = c.checksumBlocks(ctx, r, ch, block, want)
			}
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return nil, nil, err
	}
	for i, s := range sums {
		if len(s) != want {
			return nil, nil, fmt.Errorf("checksum %d bytes at %d on %s: %d blocks, want %d", ch.Length, ch.Offset, reps[i].Name(), len(s), want)
		}
	}
	return sums, unreadable, nil
}

// checksumBlocks checksums ch on r one block at a time, and returns the blocks r found corrupt
// apart (their checksum is left 0).
func (c *Coordinator) checksumBlocks(ctx context.Context, r Syncer, ch Extent, block int64, want int) ([]uint32, map[int]error, error) {
	sums := make([]uint32, want)
	bad := map[int]error{}
	for b := range want {
		off := ch.Offset + int64(b)*block
		s, err := c.checksum(ctx, r, off, min(block, ch.Offset+ch.Length-off), block)
		switch {
		case err != nil && isCorrupt(err):
			bad[b] = err
		case err != nil:
			return nil, nil, err
		case len(s) != 1:
			return nil, nil, fmt.Errorf("checksum %d bytes at %d on %s: %d blocks, want 1", block, off, r.Name(), len(s))
		default:
			sums[b] = s[0]
		}
	}
	return sums, bad, nil
}

// checksum checksums [off, off+length) on r within the replica timeout.
func (c *Coordinator) checksum(ctx context.Context, r Syncer, off, length, block int64) ([]uint32, error) {
	rctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	s, err := r.Checksum(rctx, c.gen, off, length, block)
	if err != nil {
		return nil, fmt.Errorf("checksum %d bytes at %d on %s: %w", length, off, r.Name(), err)
	}
	return s, nil
}

// isCorrupt reports whether err says the data failed its engine's verification: ErrCorrupt from
// a local replica, DataLoss from a remote one.
func isCorrupt(err error) bool {
	return errors.Is(err, objstore.ErrCorrupt) || status.Code(err) == codes.DataLoss
}

// Majority returns the good copy of the block and the bad ones. A replica that could not read
// the block (Unreadable) is bad; among the ones that read it, the good copy is one whose checksum
// a strict majority of them share, and the ones that differ from it are bad. ok is false when no
// checksum has that majority (two readable replicas that differ, three that all differ, or none
// readable): the good copy cannot be told, and nothing should be repaired.
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
	names := make([]string, 0, len(m.Checksums)+len(m.Unreadable))
	for name := range m.Checksums {
		names = append(names, name)
	}
	for name := range m.Unreadable {
		names = append(names, name)
	}
	slices.Sort(names)
	for _, name := range names {
		s, read := m.Checksums[name]
		switch {
		case !read || s != win:
			bad = append(bad, name)
		case good == "":
			good = name
		}
	}
	return good, bad, true
}
