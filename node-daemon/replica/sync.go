package replica

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"hash/crc32"
	"slices"
	"sync"

	"golang.org/x/time/rate"
)

// Syncer is a replica that can also list its written extents and checksum its ranges on its own
// node; rebuild, resync and comparison need it. Local and Remote are Syncers.
type Syncer interface {
	Replica
	// Extents returns the written extents of the volume, sorted and merged, and its size.
	Extents(ctx context.Context, gen uint64) ([]Extent, int64, error)
	// Checksum returns the CRC-32C of each blockSize-byte block of [off, off+length).
	Checksum(ctx context.Context, gen uint64, off, length, blockSize int64) ([]uint32, error)
}

// NoCacheReader is a Syncer that can read without filling or evicting its node's data cache, as
// a copy should (it reads every byte once, and would otherwise push out the data the volume's
// users read); the engine still verifies what it reads. Local and Remote are; a copy reads a
// source that is not one with Read.
type NoCacheReader interface {
	ReadNoCache(ctx context.Context, gen uint64, off, length int64) ([]byte, error)
}

// NoCacheReaderInto is a NoCacheReader that can also read into a buffer its caller owns, so a
// copy reads every chunk into buffers it reuses. Local is (a Remote's reads arrive in buffers of
// their own).
type NoCacheReaderInto interface {
	ReadNoCacheInto(ctx context.Context, gen uint64, off int64, p []byte) error
}

// ReadForCopy reads [off, off+length) of r for a copy: without its node's cache when r is a
// NoCacheReader, else with Read.
func ReadForCopy(ctx context.Context, r Syncer, gen uint64, off, length int64) ([]byte, error) {
	if nc, ok := r.(NoCacheReader); ok {
		return nc.ReadNoCache(ctx, gen, off, length)
	}
	return r.Read(ctx, gen, off, length)
}

// Limiter throttles rebuild, resync and comparison: WaitN returns once n more bytes may be
// copied or compared. *rate.Limiter (golang.org/x/time/rate) is one; NewByteLimiter makes one.
type Limiter interface {
	WaitN(ctx context.Context, n int) error
}

// NewByteLimiter returns a limiter of bytesPerSecond bytes per second with a burst of one
// region of the default size, so foreground I/O keeps its share while a copy runs.
func NewByteLimiter(bytesPerSecond int64) *rate.Limiter {
	return rate.NewLimiter(rate.Limit(bytesPerSecond), DefaultRegionSize)
}

// waitBytes waits for n bytes from lim (nil: no limit), in pieces no larger than its burst when
// it has one (rate.Limiter refuses a WaitN above its burst).
func waitBytes(ctx context.Context, lim Limiter, n int64) error {
	if lim == nil {
		return nil
	}
	piece := n
	if b, ok := lim.(interface{ Burst() int }); ok && b.Burst() > 0 {
		piece = int64(b.Burst())
	}
	for n > 0 {
		k := min(n, piece)
		if err := lim.WaitN(ctx, int(k)); err != nil {
			return fmt.Errorf("replica: rate limit: %w", err)
		}
		n -= k
	}
	return nil
}

// Phase is the step a rebuild or resync is in.
type Phase string

// Phases of a rebuild or resync, in order.
const (
	PhaseCopy    Phase = "Copy"
	PhaseCompare Phase = "Compare"
	PhaseInSync  Phase = "InSync"
)

// Progress is where a rebuild, resync or comparison stands, for a Volume's status: Done of Total
// bytes of the current phase.
type Progress struct {
	Phase       Phase
	Done, Total int64
}

// SyncOptions tunes Rebuild, Resync, Compare and Scrub. The zero value copies at full speed
// with DefaultSyncParallelism chunks in flight and checksums DefaultCompareBlock-byte blocks.
type SyncOptions struct {
	// Limiter throttles the bytes copied and compared (nil: no limit).
	Limiter Limiter
	// Parallelism is how many chunks are copied or compared at once (0: DefaultSyncParallelism).
	Parallelism int
	// CopyRegions is how many consecutive dirty-log regions one chunk of a copy may span (0:
	// DefaultCopyRegions): larger chunks make fewer, larger writes on the target. A chunk is
	// copied under the locks of all its regions.
	CopyRegions int
	// CompareBlock is the block size of the comparison's checksums, the granularity of the
	// mismatches it reports (0: DefaultCompareBlock); a power of two from MinBlockSize to the
	// dirty log's region size.
	CompareBlock int64
	// Progress, if set, is called after each chunk (never concurrently).
	Progress func(Progress)
}

// Defaults of SyncOptions.
const (
	DefaultSyncParallelism = 4
	DefaultCopyRegions     = 4
	DefaultCompareBlock    = 64 << 10
)

// SyncResult is what a rebuild or resync did.
type SyncResult struct {
	// Copied is the bytes read from the source and written (or trimmed, for all-zero chunks) on
	// the target; Skipped those of them that were all zeros and trimmed instead of written.
	Copied, Skipped int64
	// Compared is the bytes whose checksums were compared: each copied chunk right after its
	// copy, and what the writes made meanwhile afterwards (see the package documentation).
	Compared int64
}

// ErrSyncInProgress: a rebuild or resync of the replica is already running.
var ErrSyncInProgress = errors.New("replica: a rebuild or resync of the replica is already running")

// ErrCopiesDiffer: the comparison after a rebuild or resync found the copies different, so the
// target was not marked in sync.
var ErrCopiesDiffer = errors.New("replica: copies differ after the copy")

// catchUp is the state of a replica being rebuilt or resynced.
type catchUp struct {
	err error // the first write, trim or flush it failed
}

func (o SyncOptions) withDefaults(regionSize int64) (SyncOptions, error) {
	if o.Parallelism <= 0 {
		o.Parallelism = DefaultSyncParallelism
	}
	if o.CopyRegions <= 0 {
		o.CopyRegions = DefaultCopyRegions
	}
	if o.CompareBlock == 0 {
		o.CompareBlock = min(DefaultCompareBlock, regionSize)
	}
	b := o.CompareBlock
	if b < MinBlockSize || b > regionSize || b&(b-1) != 0 {
		return o, fmt.Errorf("replica: compare block %d must be a power of two from %d to the region size %d", b, MinBlockSize, regionSize)
	}
	return o, nil
}

// Rebuild copies the volume from the in-sync replica named source onto target, a new replica
// (an empty one, or an old copy: whatever it holds where the source has nothing is trimmed),
// while writes continue, compares the two copies and only then adds target to the in-sync set,
// with its write-intent log started (see the package documentation, "Write intent"). It returns
// what it copied and compared. See the package documentation (Rebuild) for how concurrent writes
// are handled. On failure target is left out of sync and can be rebuilt again.
func (c *Coordinator) Rebuild(ctx context.Context, source string, target Syncer, opts SyncOptions) (SyncResult, error) {
	return c.sync(ctx, "rebuild", source, target, opts, func(ctx context.Context, src Syncer) ([]Extent, error) {
		// The target's own extents too: on a replica that is not empty (an old copy reused) they
		// read as zeros from the source where it has nothing, and are trimmed.
		ext, _, err := c.unionExtents(ctx, src, target)
		return ext, err
	})
}

// Resync brings back target, a replica that left the in-sync set (a new Replica for the same
// name, e.g. a new stream to the node that returned): it copies only the regions the dirty log
// holds for it from the in-sync replica named source, compares those regions and then adds
// target to the in-sync set and clears its dirty regions. Writes continue meanwhile, as in
// Rebuild.
//
// The target must be the copy the member reached: when the member is bound to an incarnation
// (Incarnated) and target, once reached, is another (its volume was deleted and created again:
// it holds none of the data outside the dirty regions), Resync fails with ErrReplaced and
// changes nothing; the caller rebuilds it instead (Remove, then Rebuild).
func (c *Coordinator) Resync(ctx context.Context, source string, target Syncer, opts SyncOptions) (SyncResult, error) {
	was, ok := c.memberIncarnation(target.Name())
	if !ok {
		return SyncResult{}, fmt.Errorf("replica: resync of %s: not a member of the volume (a new replica needs a rebuild)", target.Name())
	}
	if err := c.sameCopy(ctx, was, target); err != nil {
		return SyncResult{}, fmt.Errorf("replica: resync of %s: %w", target.Name(), err)
	}
	return c.sync(ctx, "resync", source, target, opts, func(context.Context, Syncer) ([]Extent, error) {
		return c.dirty.Extents(target.Name()), nil
	})
}

// sync runs a rebuild or resync: join target as catching up, list the extents to copy (after the
// join, so every write that started before it is in them), copy, compare, promote.
func (c *Coordinator) sync(ctx context.Context, what, source string, target Syncer, opts SyncOptions, extents func(context.Context, Syncer) ([]Extent, error)) (res SyncResult, err error) {
	name := target.Name()
	opts, err = opts.withDefaults(c.dirty.RegionSize())
	if err != nil {
		return res, err
	}
	src, err := c.syncSource(source)
	if err != nil {
		return res, fmt.Errorf("replica: %s of %s: %w", what, name, err)
	}
	if err := c.join(target); err != nil {
		return res, fmt.Errorf("replica: %s of %s: %w", what, name, err)
	}
	defer func() {
		if err != nil {
			c.leave(name)
			if errors.Is(err, ErrStaleGeneration) {
				err = c.fence(err)
			}
			err = fmt.Errorf("replica: %s of %s from %s: %w", what, name, source, err)
		}
	}()
	todo, err := extents(ctx, src)
	if err != nil {
		return res, err
	}
	// The copy compares each chunk as it copies it.
	cp, err := c.copyExtents(ctx, src, target, todo, opts, true)
	res.Copied, res.Skipped, res.Compared = cp.copied, cp.skipped, cp.verified
	if err != nil {
		return res, err
	}
	// Then compare what the copy did not: what either copy holds now beyond the copied extents
	// (writes made it meanwhile, on both), and the regions where a write since the listing may
	// have landed on the target only (the source did not confirm it: dirty for the source).
	whole := todo
	var size int64 // the volume's size, for a rebuild
	if what == "rebuild" {
		if whole, size, err = c.unionExtents(ctx, src, target); err != nil {
			return res, err
		}
	}
	done := mergeExtents(todo)
	rest := mergeExtents(append(subtractExtents(whole, done), intersectExtents(whole, mergeExtents(c.dirty.Extents(src.Name())))...))
	mism, compared, err := c.compare(ctx, []Syncer{src, target}, rest, opts)
	res.Compared += compared
	if err != nil {
		return res, err
	}
	mism = append(cp.mismatches, mism...)
	if len(mism) > 0 {
		slices.SortFunc(mism, func(a, b Mismatch) int { return cmp.Compare(a.Offset, b.Offset) })
		return res, fmt.Errorf("%w: %d blocks, the first at %d", ErrCopiesDiffer, len(mism), mism[0].Offset)
	}
	// The target counts only once it answered: a resync with nothing to copy (a copy dropped at a
	// flush, with no dirty region) would otherwise put in sync a copy no request ever reached (its
	// store gone, say), and what was copied is made durable.
	fctx, cancel := context.WithTimeout(ctx, c.timeout)
	err = target.Flush(fctx, c.gen)
	cancel()
	if err != nil {
		return res, fmt.Errorf("flush the target: %w", err)
	}
	// A rebuilt target starts a write-intent log when it is promoted; a resynced one keeps the
	// log it has, or none (its sync compared only its dirty regions: it may differ elsewhere).
	var ri *rebuiltIntent
	if what == "rebuild" {
		if ri, err = c.rebuiltIntentOf(ctx, src, target, size); err != nil {
			return res, err
		}
	}
	if err := c.promote(ctx, target.Name(), ri); err != nil {
		return res, err
	}
	if opts.Progress != nil {
		opts.Progress(Progress{Phase: PhaseInSync, Done: res.Compared, Total: res.Compared})
	}
	return res, nil
}

// memberIncarnation returns the incarnation the member named name reached ("" when it does not
// know one) and whether there is such a member.
func (c *Coordinator) memberIncarnation(name string) (string, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, m := range c.mu.members {
		if m.r.Name() == name {
			return incarnationOf(m.r), true
		}
	}
	return "", false
}

// sameCopy checks that target, a replica for a member that reached incarnation was, reaches the
// same copy: it flushes target (which binds it to the incarnation it reaches) and compares. A
// member that never reached its copy (unreachable since Open), or a node too old to say, cannot
// be checked, and passes.
func (c *Coordinator) sameCopy(ctx context.Context, was string, target Syncer) error {
	if was == "" {
		return nil
	}
	fctx, cancel := context.WithTimeout(ctx, c.timeout)
	err := target.Flush(fctx, c.gen)
	cancel()
	if errors.Is(err, ErrStaleGeneration) {
		return c.fence(err)
	}
	if err != nil {
		return fmt.Errorf("reach the copy: %w", err)
	}
	if now := incarnationOf(target); now != "" && now != was {
		return &ReplacedError{Expected: was, Found: now}
	}
	return nil
}

// syncSource returns the in-sync replica named source as a Syncer.
func (c *Coordinator) syncSource(source string) (Syncer, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, m := range c.mu.members {
		if m.r.Name() != source {
			continue
		}
		if !c.mu.inSync[source] {
			return nil, fmt.Errorf("source replica %s is not in sync", source)
		}
		s, ok := m.r.(Syncer)
		if !ok {
			return nil, fmt.Errorf("source replica %s cannot list extents or checksum (not a Syncer)", source)
		}
		return s, nil
	}
	return nil, fmt.Errorf("source replica %s is not a member", source)
}

// join adds target as a catching-up replica once every write and trim in flight has finished,
// so each one that starts later goes to target too. A member of the same name that is out of
// sync is replaced; one that is in sync or already catching up is refused.
func (c *Coordinator) join(target Syncer) error {
	name := target.Name()
	if name == "" {
		return errors.New("replica name is empty")
	}
	c.gate.Lock()
	defer c.gate.Unlock()
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.mu.fenced != nil {
		return c.mu.fenced
	}
	if c.mu.inSync[name] {
		return fmt.Errorf("replica %s is already in sync", name)
	}
	if _, ok := c.mu.catchingUp[name]; ok {
		return ErrSyncInProgress
	}
	members := make([]member, 0, len(c.mu.members)+1)
	for _, m := range c.mu.members {
		if m.r.Name() != name {
			members = append(members, m)
		}
	}
	members = append(members, member{r: target})
	c.mu.members = members
	c.mu.catchingUp[name] = &catchUp{}
	return nil
}

// leave ends a failed rebuild or resync: the replica stays a member, out of sync.
func (c *Coordinator) leave(name string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.mu.catchingUp, name)
}

// failCatchUp records the first failure of a catching-up replica.
func (c *Coordinator) failCatchUp(name string, err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if cu := c.mu.catchingUp[name]; cu != nil && cu.err == nil {
		cu.err = err
	}
}

// catchUpErr returns the failure of catching-up replica name, if it failed.
func (c *Coordinator) catchUpErr(name string) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if cu := c.mu.catchingUp[name]; cu != nil && cu.err != nil {
		return fmt.Errorf("the target failed a write meanwhile: %w", cu.err)
	}
	return nil
}

// promote adds a caught-up replica to the in-sync set and forgets its dirty regions, once no
// write or trim is in flight (one that started before could otherwise still fail on it). With ri
// (a rebuild) it first starts the replica's write-intent log, and the replica is vouched for when
// its source is (see the package documentation, "Write intent").
func (c *Coordinator) promote(ctx context.Context, name string, ri *rebuiltIntent) error {
	c.gate.Lock()
	defer c.gate.Unlock()
	if err := c.promotable(name); err != nil {
		return err
	}
	if ri != nil {
		if err := ri.start(ctx, c); err != nil {
			return err
		}
	}
	c.mu.Lock()
	if err := c.promotableLocked(name); err != nil {
		c.mu.Unlock()
		return err
	}
	delete(c.mu.catchingUp, name)
	c.mu.inSync[name] = true
	c.dirty.Clear(name)
	vouched := ri != nil && c.mu.inSync[ri.source]
	c.mu.Unlock()
	if ri == nil {
		return nil
	}
	// The target equals the source outside the regions where a write of this coordinator
	// failed, so it agrees with the others wherever the source does.
	if vouched && c.intent.isVouched(ri.source) {
		c.intent.vouch([]string{name})
	} else {
		c.intent.unvouch(name)
	}
	return nil
}

// promotable reports why the replica named name cannot be promoted, if it cannot.
func (c *Coordinator) promotable(name string) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.promotableLocked(name)
}

// promotableLocked is promotable. REQUIRES: c.mu.
func (c *Coordinator) promotableLocked(name string) error {
	cu := c.mu.catchingUp[name]
	if cu == nil {
		return fmt.Errorf("replica %s is not catching up", name)
	}
	if cu.err != nil {
		return fmt.Errorf("the target failed a write meanwhile: %w", cu.err)
	}
	return c.mu.fenced
}

// chunks cuts extents at region boundaries, so each piece lies in one region.
func chunks(extents []Extent, regionSize int64) []Extent {
	var out []Extent
	for _, e := range extents {
		for off, end := e.Offset, e.Offset+e.Length; off < end; {
			n := min(end, (off/regionSize+1)*regionSize) - off
			out = append(out, Extent{Offset: off, Length: n})
			off += n
		}
	}
	return out
}

func total(extents []Extent) int64 {
	var n int64
	for _, e := range extents {
		n += e.Length
	}
	return n
}

// copyResult is what copyExtents did.
type copyResult struct {
	copied, skipped int64
	// verified is the bytes compared after their copy, mismatches the blocks that differed.
	verified   int64
	mismatches []Mismatch
}

// copyExtents copies extents from src to dst in chunks of up to opts.CopyRegions regions, each
// under the locks of its regions so that no write or trim of them runs between the read from src
// and the write to dst. With verify, each chunk is also compared before its locks are released
// (verifyChunk).
func (c *Coordinator) copyExtents(ctx context.Context, src, dst Syncer, extents []Extent, opts SyncOptions, verify bool) (copyResult, error) {
	regionSize := c.dirty.RegionSize()
	todo := chunks(extents, regionSize*int64(opts.CopyRegions))
	tracker := newTracker(PhaseCopy, total(extents), opts.Progress)
	block := int64(0)
	if verify {
		block = opts.CompareBlock
	}
	var (
		mu  sync.Mutex // guards res
		res copyResult
	)
	err := c.forEach(ctx, todo, opts.Parallelism, func(ctx context.Context, ch Extent) error {
		n := ch.Length
		if verify {
			n *= 2 // the copy and the comparison
		}
		if err := waitBytes(ctx, opts.Limiter, n); err != nil {
			return err
		}
		if err := c.catchUpErr(dst.Name()); err != nil {
			return err
		}
		zeros, mism, err := c.copyChunk(ctx, src, dst, ch, regionSize, block)
		if err != nil {
			return err
		}
		mu.Lock()
		res.skipped += zeros
		if verify {
			res.verified += ch.Length
			res.mismatches = append(res.mismatches, mism...)
		}
		mu.Unlock()
		tracker.add(ch.Length)
		return nil
	})
	mu.Lock()
	defer mu.Unlock()
	res.copied = tracker.done()
	return res, err
}

// copyChunk copies one chunk under the locks of its regions: the parts of it that are whole
// all-zero regions (or the all-zero rest of one) are trimmed on dst instead of written, the others
// written, each run of them with one request. It returns the bytes trimmed. With block > 0 it then
// compares the chunk in blocks of that size before releasing the locks and returns the blocks
// that differ: the runs written to a WriteVerifier are compared by their write itself
// (WriteVerify, which reads them back on dst's node), the rest by checksums (verifyChunk).
func (c *Coordinator) copyChunk(ctx context.Context, src, dst Syncer, ch Extent, regionSize, block int64) (int64, []Mismatch, error) {
	unlock := c.regions.lockRange(ch.Offset, ch.Length, regionSize)
	defer unlock()
	rctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	data, release, err := c.readForCopy(rctx, src, ch)
	if err != nil {
		return 0, nil, fmt.Errorf("read %d bytes at %d from the source: %w", ch.Length, ch.Offset, err)
	}
	defer release()
	if int64(len(data)) != ch.Length {
		return 0, nil, fmt.Errorf("read %d bytes at %d from the source: got %d", ch.Length, ch.Offset, len(data))
	}
	wv, _ := dst.(WriteVerifier)
	if block == 0 {
		wv = nil
	}
	var (
		zeros int64
		mism  []Mismatch
		check []Extent // the parts (relative to the chunk) that their write did not compare
	)
	for _, run := range zeroRuns(ch.Offset, data, regionSize) {
		off, part := ch.Offset+run.Offset, data[run.Offset:run.Offset+run.Length]
		switch {
		case run.zero:
			if err := dst.Trim(rctx, c.gen, off, run.Length); err != nil {
				return zeros, nil, fmt.Errorf("trim %d zero bytes at %d on the target: %w", run.Length, off, err)
			}
			zeros += run.Length
		case wv != nil:
			v, err := wv.WriteVerify(rctx, c.gen, off, part, block)
			if err != nil {
				return zeros, nil, fmt.Errorf("write %d bytes at %d on the target: %w", run.Length, off, err)
			}
			if v.Verified {
				mism = append(mism, differing(src, dst, off, part, block, v.Differ)...)
				continue
			}
		default:
			if err := dst.Write(rctx, c.gen, off, part); err != nil {
				return zeros, nil, fmt.Errorf("write %d bytes at %d on the target: %w", run.Length, off, err)
			}
		}
		check = appendExtent(check, run.Extent)
	}
	if block == 0 {
		return zeros, nil, nil
	}
	for _, e := range check {
		m, err := c.verifyChunk(ctx, src, dst, Extent{Offset: ch.Offset + e.Offset, Length: e.Length}, data[e.Offset:e.Offset+e.Length], block)
		if err != nil {
			return zeros, nil, err
		}
		mism = append(mism, m...)
	}
	return zeros, mism, nil
}

// readForCopy reads chunk ch of src for a copy (ReadForCopy), into a buffer of c.bufs when src
// is a NoCacheReaderInto; release gives it back once nothing refers to the data.
func (c *Coordinator) readForCopy(ctx context.Context, src Syncer, ch Extent) (data []byte, release func(), err error) {
	into, ok := src.(NoCacheReaderInto)
	if !ok {
		data, err = ReadForCopy(ctx, src, c.gen, ch.Offset, ch.Length)
		return data, func() {}, err
	}
	buf := c.bufs.get(int(ch.Length))
	if err := into.ReadNoCacheInto(ctx, c.gen, ch.Offset, buf); err != nil {
		c.bufs.put(buf)
		return nil, nil, err
	}
	return buf, func() { c.bufs.put(buf) }, nil
}

// appendExtent appends e to extents, merged with the last one when they touch.
func appendExtent(extents []Extent, e Extent) []Extent {
	if k := len(extents); k > 0 && extents[k-1].Offset+extents[k-1].Length == e.Offset {
		extents[k-1].Length += e.Length
		return extents
	}
	return append(extents, e)
}

// differing turns the blocks that a verified write of data at off to dst found different into
// mismatches, with the CRC-32C of the source's bytes (data, read from src) and of dst's.
func differing(src, dst Syncer, off int64, data []byte, block int64, differ []DifferingBlock) []Mismatch {
	out := make([]Mismatch, 0, len(differ))
	for _, d := range differ {
		lo := d.Index * block
		hi := min(lo+block, int64(len(data)))
		out = append(out, Mismatch{
			Extent:    Extent{Offset: off + lo, Length: hi - lo},
			Checksums: map[string]uint32{src.Name(): crc32.Checksum(data[lo:hi], crc32c), dst.Name(): d.Checksum},
		})
	}
	return out
}

// run is a part of a chunk (Offset relative to the chunk) that is all zeros or not.
type run struct {
	Extent
	zero bool
}

// zeroRuns cuts data, the bytes of a chunk at volume offset off, at region boundaries and merges
// the neighboring pieces that are both all zeros or both not.
func zeroRuns(off int64, data []byte, regionSize int64) []run {
	var out []run
	for pos, n := int64(0), int64(len(data)); pos < n; {
		end := min(n, (off+pos)/regionSize*regionSize+regionSize-off)
		zero := allZero(data[pos:end])
		if k := len(out); k > 0 && out[k-1].zero == zero {
			out[k-1].Length += end - pos
		} else {
			out = append(out, run{Extent: Extent{Offset: pos, Length: end - pos}, zero: zero})
		}
		pos = end
	}
	return out
}

// verifyChunk compares chunk ch as dst stored it, by the CRC-32C of each block that dst computes
// on its node from its device (Syncer.Checksum), with the CRC-32C of data, the bytes of ch just
// read from src. REQUIRES: the locks of ch's regions held since data was read, so src still holds data
// (no write of the region ran since) and dst holds what the copy wrote. It returns the blocks
// that differ or that dst cannot read because it finds them corrupt.
func (c *Coordinator) verifyChunk(ctx context.Context, src, dst Syncer, ch Extent, data []byte, block int64) ([]Mismatch, error) {
	want := int((ch.Length + block - 1) / block)
	got, err := c.checksum(ctx, dst, ch.Offset, ch.Length, block)
	var bad map[int]error
	if err != nil && isCorrupt(err) {
		got, bad, err = c.checksumBlocks(ctx, dst, ch, block, want)
	}
	if err != nil {
		return nil, err
	}
	if len(got) != want {
		return nil, fmt.Errorf("checksum %d bytes at %d on %s: %d blocks, want %d", ch.Length, ch.Offset, dst.Name(), len(got), want)
	}
	var mism []Mismatch
	for b := range want {
		lo := int64(b) * block
		hi := min(lo+block, ch.Length)
		m := Mismatch{Extent: Extent{Offset: ch.Offset + lo, Length: hi - lo}, Checksums: map[string]uint32{src.Name(): crc32.Checksum(data[lo:hi], crc32c)}}
		switch {
		case bad[b] != nil:
			m.Unreadable = map[string]string{dst.Name(): bad[b].Error()}
		case got[b] != m.Checksums[src.Name()]:
			m.Checksums[dst.Name()] = got[b]
		default:
			continue
		}
		mism = append(mism, m)
	}
	return mism, nil
}

// allZero reports whether b is all zeros: its first byte is and every byte equals the one before
// it, one vectorized comparison of b with itself a byte further (a byte loop checks a chunk of
// zeros about ten times slower).
func allZero(b []byte) bool {
	return len(b) == 0 || b[0] == 0 && bytes.Equal(b[1:], b[:len(b)-1])
}

// forEach runs fn on every item with at most parallelism running at once, stopping at the
// first error (which it returns).
func (c *Coordinator) forEach(ctx context.Context, items []Extent, parallelism int, fn func(context.Context, Extent) error) error {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	work := make(chan Extent)
	var wg sync.WaitGroup
	for range min(parallelism, max(len(items), 1)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for it := range work {
				if err := fn(ctx, it); err != nil {
					cancel(err)
					return
				}
			}
		}()
	}
feed:
	for _, it := range items {
		select {
		case work <- it:
		case <-ctx.Done():
			break feed
		}
	}
	close(work)
	wg.Wait()
	if err := context.Cause(ctx); err != nil {
		return err
	}
	return nil
}

// tracker counts the bytes of a phase and reports them, one call at a time.
type tracker struct {
	phase    Phase
	total    int64
	progress func(Progress)
	mu       sync.Mutex // guards doneN and the calls of progress
	doneN    int64
}

func newTracker(phase Phase, total int64, progress func(Progress)) *tracker {
	return &tracker{phase: phase, total: total, progress: progress}
}

func (t *tracker) add(n int64) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.doneN += n
	if t.progress != nil {
		t.progress(Progress{Phase: t.phase, Done: t.doneN, Total: t.total})
	}
}

func (t *tracker) done() int64 {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.doneN
}
