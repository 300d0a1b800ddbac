package metafs

import (
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"

	"github.com/cobaltstore/cobalt/storage-engine/alloc"
	"github.com/cobaltstore/cobalt/storage-engine/blockdev"
)

// Format creates an empty file system in region of dev: the journal right after the superblock
// slots, an empty root directory, superblock generation 1 in slot 1 and slot 0 zeroed. Whatever
// the region held is lost. The caller keeps ownership of dev.
func Format(dev blockdev.Device, region Extent, o Options) error {
	o, err := o.withDefaults(dev.BlockSize())
	if err != nil {
		return fmt.Errorf("metafs format: %w", err)
	}
	if err := checkRegion(dev, region, o.Unit); err != nil {
		return fmt.Errorf("metafs format: %w", err)
	}
	jstart := reservedEnd(region, o.Unit)
	if jstart+o.JournalSize*2 > region.End() {
		return fmt.Errorf("metafs format: region of %d bytes is too small for a %d-byte journal and its compaction: %w",
			region.Length, o.JournalSize, ErrInvalid)
	}
	sb := superblock{unit: uint32(o.Unit), uuid: o.UUID, gen: 1, region: region,
		journal: Extent{Offset: jstart, Length: o.JournalSize}, epoch: randomEpoch(), blockSize: uint32(dev.BlockSize())}
	// Zero both slots and the journal's first block, then write the superblock.
	zero := blockdev.AlignedBuffer(int(alignUp(superReserve, int64(dev.BlockSize()))))
	if _, err := dev.WriteAt(zero, region.Offset); err != nil {
		return fmt.Errorf("metafs format: clear superblocks: %w", err)
	}
	if _, err := dev.WriteAt(blockdev.AlignedBuffer(dev.BlockSize()), jstart); err != nil {
		return fmt.Errorf("metafs format: clear journal: %w", err)
	}
	fs := &FS{dev: dev, bs: int64(dev.BlockSize())}
	if err := fs.writeSuper(sb); err != nil {
		return fmt.Errorf("metafs format: %w", err)
	}
	return nil
}

// randomEpoch picks a journal epoch no earlier journal in the same place is likely to have used.
func randomEpoch() uint64 {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return binary.LittleEndian.Uint64(b[:])>>1 | 1
}

func checkRegion(dev blockdev.Device, r Extent, unit int64) error {
	if r.Offset < 0 || r.Length <= 0 || r.Offset%unit != 0 || r.Length%unit != 0 || r.End() > dev.Size() || r.End() < r.Offset {
		return fmt.Errorf("region [%d, +%d) is not whole %d-byte units inside the %d-byte device: %w", r.Offset, r.Length, unit, dev.Size(), ErrInvalid)
	}
	return nil
}

// Mount replays the journal of the file system in region and returns it ready for use. It then
// starts a new journal holding the state as one snapshot (a compaction), so records a crash left
// behind the valid end are never read again. The caller keeps ownership of dev and closes it
// after Close.
func Mount(dev blockdev.Device, region Extent, o Options) (*FS, error) {
	fs, err := load(dev, region, o)
	if err != nil {
		return nil, fmt.Errorf("metafs mount: %w", err)
	}
	fs.flushMu.Lock()
	defer fs.flushMu.Unlock()
	err = fs.compact()
	if errors.Is(err, ErrNoSpace) {
		// No room for a new journal (a region filled up before the reserve for compactions
		// existed, or a crash left more in use than memory had): keep the journal and erase
		// everything past its valid end instead, so no record left behind is read again.
		fs.log.Warn("metafs mount: no room to compact the journal; continuing it in place", "err", err)
		err = fs.eraseJournalTail()
	}
	if err != nil {
		return nil, fmt.Errorf("metafs mount: %w", err)
	}
	return fs, nil
}

// eraseJournalTail zeroes the journal from its valid end (keeping the bytes before it in that
// block) to its last byte and flushes. REQUIRES: flushMu.
func (fs *FS) eraseJournalTail() error {
	fs.mu.Lock()
	j, jpos := fs.mu.sb.journal, fs.mu.jpos
	start := alignDown(jpos, fs.bs)
	buf := blockdev.AlignedBuffer(int(j.Length - start))
	copy(buf, fs.mu.jtail[:jpos-start])
	fs.mu.Unlock()
	if err := fs.writeFlush(buf, j.Offset+start); err != nil {
		return fmt.Errorf("erase the journal past its end: %w", err)
	}
	return nil
}

// load reads the superblock and replays the journal without writing anything.
func load(dev blockdev.Device, region Extent, o Options) (*FS, error) {
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	sb, err := readSuper(dev, region)
	if err != nil {
		return nil, err
	}
	if sb.region != region {
		return nil, fmt.Errorf("superblock describes region %v, not %v: %w", sb.region, region, ErrCorrupt)
	}
	if o.UUID != ([16]byte{}) && sb.uuid != o.UUID {
		return nil, fmt.Errorf("region belongs to %s, not %s: %w", blockdev.FormatUUID(sb.uuid), blockdev.FormatUUID(o.UUID), ErrInvalid)
	}
	if int(sb.blockSize)%dev.BlockSize() != 0 {
		return nil, fmt.Errorf("formatted with %d-byte blocks, device has %d: %w", sb.blockSize, dev.BlockSize(), ErrInvalid)
	}
	if err := checkRegion(dev, region, int64(sb.unit)); err != nil {
		return nil, err
	}
	fs := &FS{dev: dev, bs: int64(dev.BlockSize()), unit: int64(sb.unit), region: region, log: o.Logger}
	st, seq, jpos, jtail, err := replay(dev, sb)
	if err != nil {
		return nil, err
	}
	a, err := buildAllocator(st, sb, dev.Size())
	if err != nil {
		return nil, err
	}
	fs.mu.st, fs.mu.sb, fs.mu.alloc = st, sb, a
	fs.mu.seq, fs.mu.jpos, fs.mu.jtail = seq, jpos, jtail
	fs.mu.locks = map[string]struct{}{}
	return fs, nil
}

// readSuper returns the valid superblock of the highest generation.
func readSuper(dev blockdev.Device, region Extent) (superblock, error) {
	buf := blockdev.AlignedBuffer(superReserve)
	if region.Offset < 0 || region.Offset+superReserve > dev.Size() {
		return superblock{}, fmt.Errorf("region %v outside the %d-byte device: %w", region, dev.Size(), ErrInvalid)
	}
	if _, err := dev.ReadAt(buf, region.Offset); err != nil {
		return superblock{}, fmt.Errorf("read superblocks: %w", err)
	}
	var best superblock
	var errs []error
	found := false
	for slot := range 2 {
		sb, err := decodeSuperblock(buf[slot*SuperblockSize : (slot+1)*SuperblockSize])
		if errors.Is(err, ErrVersion) {
			// A newer build wrote it: the other slot is older, and the journal it names may be
			// gone (its space reused). Never fall back to it.
			return superblock{}, fmt.Errorf("slot %d: %w", slot, err)
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("slot %d: %w", slot, err))
			continue
		}
		if sb.gen%2 != uint64(slot) {
			errs = append(errs, fmt.Errorf("slot %d holds generation %d: %w", slot, sb.gen, ErrCorrupt))
			continue
		}
		if !found || sb.gen > best.gen {
			best, found = sb, true
		}
	}
	if found {
		return best, nil
	}
	if errors.Is(errs[0], errNoSuper) && errors.Is(errs[1], errNoSuper) {
		return superblock{}, ErrNotFormatted
	}
	return superblock{}, errors.Join(errs...)
}

// replay rebuilds the state from the journal's entries; it stops at the first position that
// holds no valid entry of the journal's epoch and next sequence number.
func replay(dev blockdev.Device, sb superblock) (st *state, nextSeq uint64, jpos int64, jtail []byte, err error) {
	if sb.journal.End() > dev.Size() {
		// The superblock bounds the journal only by the region's start: it may lie in added space.
		return nil, 0, 0, nil, fmt.Errorf("journal %v ends past the %d-byte device: %w", sb.journal, dev.Size(), ErrCorrupt)
	}
	buf := blockdev.AlignedBuffer(int(sb.journal.Length))
	if _, err := dev.ReadAt(buf, sb.journal.Offset); err != nil {
		return nil, 0, 0, nil, fmt.Errorf("read journal: %w", err)
	}
	st = newState(sb.region, int64(sb.unit), dev.Size())
	seq := uint64(1)
	for {
		payload, size, status := decodeEntry(buf[jpos:], sb.epoch, seq)
		if status != entryOK {
			break
		}
		recs, err := decodeRecords(payload)
		if err != nil {
			return nil, 0, 0, nil, fmt.Errorf("journal entry %d at %d: %w: %w", seq, jpos, err, ErrCorrupt)
		}
		for i, r := range recs {
			freed, err := st.apply(r)
			if err != nil {
				return nil, 0, 0, nil, fmt.Errorf("journal entry %d at %d, record %d: %w: %w", seq, jpos, i, err, ErrCorrupt)
			}
			if freed != nil {
				delete(st.inodes, freed.ino)
			}
		}
		jpos += int64(size)
		seq++
	}
	if seq == 1 {
		// Format writes no entry, and every compaction writes one: an empty journal is a fresh file
		// system, and any later generation must have its snapshot.
		if sb.gen != 1 {
			return nil, 0, 0, nil, fmt.Errorf("journal of generation %d has no snapshot entry: %w", sb.gen, ErrCorrupt)
		}
	}
	bs := int64(sb.blockSize)
	jtail = make([]byte, bs)
	copy(jtail, buf[alignDown(jpos, bs):])
	return st, seq, jpos, jtail, nil
}

// buildAllocator returns the allocator of the file system's space: it manages the device from
// the region's start to its end (region-relative offsets), with only the region and the added
// space free at first; then the superblocks, the journal and every file's extents are marked
// used, refusing extents outside that space, misaligned or used twice.
func buildAllocator(st *state, sb superblock, devSize int64) (*alloc.ExtentAllocator, error) {
	unit := int64(sb.unit)
	free := make([]Extent, 0, 1+len(st.space))
	free = append(free, Extent{Offset: 0, Length: sb.region.Length})
	for _, e := range st.space {
		free = append(free, Extent{Offset: e.Offset - sb.region.Offset, Length: e.Length})
	}
	a, err := alloc.NewExtentFromFree(devSize-sb.region.Offset, unit, free)
	if err != nil {
		return nil, fmt.Errorf("allocator: %w: %w", err, ErrCorrupt)
	}
	mark := func(what string, e Extent) error {
		rel := Extent{Offset: e.Offset - sb.region.Offset, Length: e.Length}
		if err := a.MarkUsed(rel); err != nil {
			return fmt.Errorf("%s extent [%d, +%d): %w: %w", what, e.Offset, e.Length, err, ErrCorrupt)
		}
		return nil
	}
	if err := mark("superblock", Extent{Offset: sb.region.Offset, Length: reservedEnd(sb.region, unit) - sb.region.Offset}); err != nil {
		return nil, err
	}
	if err := mark("journal", sb.journal); err != nil {
		return nil, err
	}
	for _, n := range st.inodes {
		for _, e := range n.extents {
			if err := mark(fmt.Sprintf("inode %d", n.ino), e); err != nil {
				return nil, err
			}
		}
	}
	return a, nil
}

// Close makes every queued change durable and unmounts. Files still open can no longer be used.
// It does not close the device.
func (fs *FS) Close() error {
	err := fs.syncJournal(^uint64(0))
	if errors.Is(err, ErrClosed) {
		return err
	}
	fs.mu.Lock()
	defer fs.mu.Unlock()
	fs.mu.closed = true
	if err != nil {
		return fmt.Errorf("metafs close: %w", err)
	}
	return nil
}
