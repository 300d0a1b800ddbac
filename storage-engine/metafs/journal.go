package metafs

import (
	"fmt"

	"github.com/cobaltstore/cobalt/storage-engine/blockdev"
)

// syncJournal makes every record counted up to target durable (^uint64(0): every record queued
// so far). Concurrent callers share the work: whoever holds flushMu writes all queued records as
// one entry and flushes, and the others find their records durable.
func (fs *FS) syncJournal(target uint64) error {
	fs.flushMu.Lock()
	defer fs.flushMu.Unlock()
	fs.mu.Lock()
	if err := fs.checkLocked(); err != nil {
		fs.mu.Unlock()
		return err
	}
	if target == ^uint64(0) {
		target = fs.mu.recs
	}
	if fs.mu.durable >= target {
		var err error
		if len(fs.mu.pending) == 0 {
			// Every record is durable, so is every free (a closed unlinked file queues one).
			frees := fs.mu.pendingFree
			fs.mu.pendingFree = nil
			err = fs.releaseLocked(frees)
		}
		fs.mu.Unlock()
		return err
	}
	if fs.mu.jpos+entryHeaderSize+int64(len(fs.mu.pending)) > fs.mu.sb.journal.Length {
		// The journal is full: a compaction writes the whole state into a new one instead.
		fs.mu.Unlock()
		return fs.compact()
	}
	payload, upto, frees := fs.mu.pending, fs.mu.recs, fs.mu.pendingFree
	fs.mu.pending, fs.mu.pendingFree = nil, nil
	start := alignDown(fs.mu.jpos, fs.bs)
	head := fs.mu.jpos - start
	entry := appendEntry(nil, fs.mu.sb.epoch, fs.mu.seq, payload)
	buf := blockdev.AlignedBuffer(int(alignUp(head+int64(len(entry)), fs.bs)))
	copy(buf, fs.mu.jtail[:head])
	copy(buf[head:], entry)
	devOff := fs.mu.sb.journal.Offset + start
	fs.mu.Unlock()

	if err := fs.writeFlush(buf, devOff); err != nil {
		return fs.fail(fmt.Errorf("journal write at %d: %w", devOff, err))
	}
	fs.mu.Lock()
	defer fs.mu.Unlock()
	fs.mu.seq++
	fs.mu.jpos += int64(len(entry))
	fs.mu.jtail = lastBlock(buf, fs.mu.jpos-start, fs.bs)
	fs.mu.durable = upto
	return fs.releaseLocked(frees)
}

// lastBlock copies the block of buf that holds byte used-1... the block where the next entry
// starts (used bytes of buf are filled).
func lastBlock(buf []byte, used, bs int64) []byte {
	b := make([]byte, bs)
	copy(b, buf[alignDown(used, bs):])
	return b
}

func (fs *FS) writeFlush(buf []byte, off int64) error {
	if _, err := fs.dev.WriteAt(buf, off); err != nil {
		return err
	}
	return fs.dev.Flush()
}

// fail records a failed journal write, data write or flush: from now on every change is refused
// (ErrFailed).
func (fs *FS) fail(err error) error {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	if fs.mu.failed == nil {
		fs.mu.failed = err
		fs.log.Error("metafs failed: the device did not take a write or flush; mount again to recover", "err", err)
	}
	return fmt.Errorf("%w: %w", ErrFailed, err)
}

// releaseLocked returns durably freed space to the allocator. REQUIRES: fs.mu.
func (fs *FS) releaseLocked(frees []Extent) error {
	if len(frees) == 0 {
		return nil
	}
	rel := make([]Extent, len(frees))
	for i, e := range frees {
		rel[i] = Extent{Offset: e.Offset - fs.region.Offset, Length: e.Length}
	}
	if err := fs.mu.alloc.Release(rel); err != nil {
		return fs.failLocked(fmt.Errorf("release freed space: %w: %w", err, ErrCorrupt))
	}
	return nil
}

func (fs *FS) failLocked(err error) error {
	if fs.mu.failed == nil {
		fs.mu.failed = err
		fs.log.Error("metafs failed", "err", err)
	}
	return fmt.Errorf("%w: %w", ErrFailed, err)
}

// compact writes the whole state as the first entry of a new journal in freshly allocated space,
// then points the superblock at it, then frees the old journal. Until the superblock write is
// durable the old journal is the valid one, so a crash at any point mounts one or the other.
// The snapshot covers every queued record, which compact takes off the queue. When no space is
// found for the new journal the queue is left as it was and the error wraps ErrNoSpace (file
// allocations leave a journal's length free for this, see allocate). REQUIRES: flushMu.
func (fs *FS) compact() error {
	fs.mu.Lock()
	snap := fs.mu.st.snapshot()
	old := fs.mu.sb
	size := compactionSize(old.journal.Length, int64(len(snap)), fs.unit)
	exts, err := fs.mu.alloc.Allocate(size)
	if err == nil && len(exts) != 1 {
		err = fs.mu.alloc.Release(exts)
		if err == nil {
			err = fmt.Errorf("no contiguous %d bytes for a new journal: %w", size, ErrNoSpace)
		}
	}
	if err != nil {
		fs.mu.Unlock()
		if errIsNoSpace(err) {
			err = fmt.Errorf("%w: %w", ErrNoSpace, err)
		}
		return fmt.Errorf("compact journal: %w", err)
	}
	upto, frees := fs.mu.recs, fs.mu.pendingFree
	fs.mu.pending, fs.mu.pendingFree = nil, nil
	sb := old
	sb.gen++
	sb.epoch++
	sb.journal = Extent{Offset: exts[0].Offset + fs.region.Offset, Length: exts[0].Length}
	fs.mu.Unlock()

	entry := appendEntry(nil, sb.epoch, 1, snap)
	buf := blockdev.AlignedBuffer(int(alignUp(int64(len(entry)), fs.bs)))
	copy(buf, entry)
	if err := fs.writeFlush(buf, sb.journal.Offset); err != nil {
		return fs.fail(fmt.Errorf("write new journal at %d: %w", sb.journal.Offset, err))
	}
	if err := fs.writeSuper(sb); err != nil {
		return fs.fail(err)
	}
	fs.mu.Lock()
	defer fs.mu.Unlock()
	fs.mu.sb = sb
	fs.mu.seq = 2
	fs.mu.jpos = int64(len(entry))
	fs.mu.jtail = lastBlock(buf, fs.mu.jpos, fs.bs)
	fs.mu.durable = upto
	fs.log.Info("metafs journal compacted", "generation", sb.gen, "journal_offset", sb.journal.Offset,
		"journal_bytes", sb.journal.Length, "snapshot_bytes", len(snap), "files", len(fs.mu.st.names))
	return fs.releaseLocked(append(frees, old.journal))
}

// compactionSize is the length of the journal a compaction writes: room for the snapshot twice
// over and a unit more, and never shorter than the journal it replaces.
func compactionSize(journal, snapshot, unit int64) int64 {
	return max(journal, alignUp(2*(entryHeaderSize+snapshot)+unit, unit))
}

// reserveLocked is the free space that must remain so that a compaction of the state plus extra
// bytes of records finds room: file allocations and new names are refused (ENOSPC) rather than
// eat into it, so the journal can always be compacted and the region always mounted.
// REQUIRES: fs.mu.
func (fs *FS) reserveLocked(extra int64) int64 {
	return compactionSize(fs.mu.sb.journal.Length, fs.mu.st.snapshotBound()+extra, fs.unit)
}

// roomLocked refuses a change that adds extra bytes to the state when the free space would no
// longer hold a compaction. REQUIRES: fs.mu.
func (fs *FS) roomLocked(extra int64) error {
	if free, reserve := fs.mu.alloc.Free(), fs.reserveLocked(extra); free < reserve {
		return fmt.Errorf("%d bytes free, %d kept for compacting the journal: %w", free, reserve, ErrNoSpace)
	}
	return nil
}

// writeSuper writes sb into the slot its generation selects and flushes.
func (fs *FS) writeSuper(sb superblock) error {
	buf := blockdev.AlignedBuffer(SuperblockSize)
	copy(buf, sb.encode())
	off := sb.region.Offset + int64(sb.gen%2)*SuperblockSize
	if err := fs.writeFlush(buf, off); err != nil {
		return fmt.Errorf("write superblock generation %d at %d: %w", sb.gen, off, err)
	}
	return nil
}
