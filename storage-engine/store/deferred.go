package store

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cobaltstore/cobalt/storage-engine/blockdev"
	"github.com/cobaltstore/cobalt/storage-engine/kv"
	"github.com/cockroachdb/pebble/v2"
)

// Deferred writes.
//
// A small overwrite of allocated, unshared space is not written copy-on-write: the new contents of
// each affected checksum block are logged in the KV under D<seq> in the same batch as the onode
// (with the block's new checksum), and applied in place later by the flusher. Until then reads
// take the block from the overlay, so the device copy is never read while a newer logged one exists.
//
// Invariants:
//   - at most one D record exists per device block: a record that is superseded, or whose space is
//     freed, is deleted in the same batch that supersedes or frees it;
//   - every D record lies in space referenced by some onode;
//   - the overlay holds exactly the committed D records (the flusher deletes records before it
//     drops them from the overlay; the deletion becomes durable with the next WAL sync, see
//     flushDeferred).
//
// At mount every record is written in place, the device is flushed, and the records are deleted.

// deferredEntry is one pending in-place block write.
type deferredEntry struct {
	seq  uint64
	data []byte // one checksum block, aligned
}

// deferredOverlay indexes pending deferred writes by device offset.
type deferredOverlay struct {
	// mu guards the fields in this struct. Lookups take it shared: every read of a block looks in
	// the overlay while deferred writes are pending, and readers must not queue behind each other.
	mu struct {
		sync.RWMutex
		m     map[uint64]deferredEntry
		bytes int64
	}
	// n mirrors len(mu.m) for readers that only need to know whether the overlay is empty: it is
	// written under mu, read without it.
	n atomic.Int64
}

func newDeferredOverlay() *deferredOverlay {
	d := &deferredOverlay{}
	d.mu.m = map[uint64]deferredEntry{}
	return d
}

func (d *deferredOverlay) get(phys uint64) ([]byte, bool) {
	d.mu.RLock()
	defer d.mu.RUnlock()
	e, ok := d.mu.m[phys]
	return e.data, ok
}

func (d *deferredOverlay) getEntry(phys uint64) (deferredEntry, bool) {
	d.mu.RLock()
	defer d.mu.RUnlock()
	e, ok := d.mu.m[phys]
	return e, ok
}

func (d *deferredOverlay) put(phys uint64, e deferredEntry) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if old, ok := d.mu.m[phys]; ok {
		d.mu.bytes -= int64(len(old.data))
	}
	d.mu.m[phys] = e
	d.mu.bytes += int64(len(e.data))
	d.n.Store(int64(len(d.mu.m)))
}

// removeIfSeq drops the entry at phys if it is still the one with seq.
func (d *deferredOverlay) removeIfSeq(phys, seq uint64) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if e, ok := d.mu.m[phys]; ok && e.seq == seq {
		delete(d.mu.m, phys)
		d.mu.bytes -= int64(len(e.data))
		d.n.Store(int64(len(d.mu.m)))
	}
}

// empty reports whether no deferred write is pending, without taking the lock. A reader holding
// the gate shared may trust a true result: entries appear only at publication, under the gate
// held exclusively.
func (d *deferredOverlay) empty() bool { return d.n.Load() == 0 }

type physSeq struct{ phys, seq uint64 }

// entriesIn returns the entries in device range [lo, hi).
func (d *deferredOverlay) entriesIn(lo, hi uint64) []physSeq {
	d.mu.RLock()
	defer d.mu.RUnlock()
	if len(d.mu.m) == 0 {
		return nil
	}
	var out []physSeq
	for p, e := range d.mu.m {
		if p >= lo && p < hi {
			out = append(out, physSeq{p, e.seq})
		}
	}
	return out
}

type snapEntry struct {
	phys uint64
	deferredEntry
}

// snapshot returns the entries with seq <= durable (those whose records are durable).
func (d *deferredOverlay) snapshot(durable uint64) []snapEntry {
	d.mu.RLock()
	defer d.mu.RUnlock()
	out := make([]snapEntry, 0, len(d.mu.m))
	for p, e := range d.mu.m {
		if e.seq <= durable {
			out = append(out, snapEntry{p, e})
		}
	}
	return out
}

func (d *deferredOverlay) len() (int, int64) {
	d.mu.RLock()
	defer d.mu.RUnlock()
	return len(d.mu.m), d.mu.bytes
}

// deferredWriters is how many in-place writes the flusher keeps in flight.
const deferredWriters = 16

// deferredLoop applies deferred writes when enough are pending or periodically.
func (s *Store) deferredLoop() {
	defer s.wg.Done()
	tick := time.NewTicker(s.opts.DeferredInterval)
	defer tick.Stop()
	for {
		select {
		case <-s.stopBG:
			return
		case <-s.kickDef:
		case <-tick.C:
		}
		if s.failErr.Load() != nil {
			continue
		}
		if err := s.flushDeferred(pebble.NoSync); err != nil {
			s.m.deferredErrors.Add(1)
		}
	}
}

// flushDeferred writes every pending deferred block in place, flushes the device, deletes the
// records and drops them from the overlay.
//
// The deletion need not be synced (the background flusher passes NoSync and spares a WAL sync per
// cycle): until it is durable, a crash can only bring back records whose blocks already hold
// their data, and mount's replay writes that same data again. Anything that could make a
// resurrected record harmful, a later write or free of its block, is a commit whose WAL sync also
// makes the earlier deletion durable (pebble's WAL is written and synced in order), and freed
// space is reused only after that sync.
func (s *Store) flushDeferred(wo *pebble.WriteOptions) error {
	s.flushMu.Lock()
	defer s.flushMu.Unlock()
	snap := s.overlay.snapshot(s.durableSeq.Load())
	if len(snap) == 0 {
		return nil
	}
	slices.SortFunc(snap, func(a, b snapEntry) int { return cmp.Compare(a.phys, b.phys) })
	// Contiguous blocks go out as one write; the writes are issued in parallel, since the blocks
	// of random overwrites rarely touch and one at a time would leave the device mostly idle.
	type run struct {
		phys uint64
		buf  []byte
	}
	var runs []run
	var maxSeq uint64
	for i := 0; i < len(snap); {
		j := i + 1
		n := len(snap[i].data)
		for j < len(snap) && snap[j].phys == snap[j-1].phys+uint64(len(snap[j-1].data)) && n < 1<<20 {
			n += len(snap[j].data)
			j++
		}
		var buf []byte
		if j == i+1 {
			buf = snap[i].data
		} else {
			buf = blockdev.AlignedBuffer(n)
			pos := 0
			for _, e := range snap[i:j] {
				pos += copy(buf[pos:], e.data)
			}
		}
		runs = append(runs, run{snap[i].phys, buf})
		for _, e := range snap[i:j] {
			maxSeq = max(maxSeq, e.seq)
		}
		i = j
	}
	errs := make([]error, deferredWriters)
	var wg sync.WaitGroup
	for w := range min(deferredWriters, len(runs)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for r := w; r < len(runs); r += deferredWriters {
				if _, err := s.dev.WriteAt(runs[r].buf, int64(runs[r].phys)); err != nil {
					errs[w] = fmt.Errorf("apply deferred write at %d: %w", runs[r].phys, err)
					return
				}
			}
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return err
	}
	if err := s.dev.Flush(); err != nil {
		return fmt.Errorf("flush deferred writes: %w", err)
	}
	b := s.db.NewBatch()
	lo := kv.DeferredKey(0)
	if err := b.DeleteRange(lo, kv.DeferredKey(maxSeq+1), nil); err != nil {
		return errors.Join(fmt.Errorf("delete applied deferred records: %w", err), b.Close())
	}
	if err := b.Commit(wo); err != nil {
		return errors.Join(fmt.Errorf("delete applied deferred records: %w", err), b.Close())
	}
	if err := b.Close(); err != nil {
		return fmt.Errorf("delete applied deferred records: %w", err)
	}
	for _, e := range snap {
		s.overlay.removeIfSeq(e.phys, e.seq)
	}
	s.m.deferredApplied.Add(int64(len(snap)))
	return nil
}

// replayDeferred applies the deferred records left by a crash. Called by mount before the allocator
// is built and before any commit.
func (s *Store) replayDeferred(ctx context.Context) error {
	lo, hi := kv.DeferredSpan()
	it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: lo, UpperBound: hi})
	if err != nil {
		return fmt.Errorf("replay deferred writes: %w", err)
	}
	var n int
	var maxSeq uint64
	for ok := it.First(); ok; ok = it.Next() {
		if err := ctx.Err(); err != nil {
			return errors.Join(err, it.Close())
		}
		seq, err := kv.ParseDeferredKey(it.Key())
		if err != nil {
			return errors.Join(corruptMeta("%v", err), it.Close())
		}
		d, err := kv.DecodeDeferred(it.Value())
		if err != nil {
			return errors.Join(corruptMeta("deferred record %d: %v", seq, err), it.Close())
		}
		if d.Phys%s.csumBlock != 0 || uint64(len(d.Data)) != s.csumBlock || d.Phys < s.dataStart || d.Phys+s.csumBlock > s.devSize {
			return errors.Join(corruptMeta("deferred record %d: %d bytes at %d do not fit the store geometry", seq, len(d.Data), d.Phys), it.Close())
		}
		buf := blockdev.AlignedBuffer(len(d.Data))
		copy(buf, d.Data)
		if _, err := s.dev.WriteAt(buf, int64(d.Phys)); err != nil {
			return errors.Join(fmt.Errorf("replay deferred write %d at %d: %w", seq, d.Phys, err), it.Close())
		}
		n++
		maxSeq = max(maxSeq, seq)
	}
	if err := it.Close(); err != nil {
		return fmt.Errorf("replay deferred writes: %w", err)
	}
	s.nextSeq = maxSeq + 1
	if n == 0 {
		return nil
	}
	if err := s.dev.Flush(); err != nil {
		return fmt.Errorf("replay deferred writes: flush: %w", err)
	}
	if err := s.db.DeleteRange(lo, hi, pebble.Sync); err != nil {
		return fmt.Errorf("replay deferred writes: delete records: %w", err)
	}
	s.m.deferredReplayed.Add(int64(n))
	return nil
}
