package metafs

import (
	"errors"
	"fmt"
	"path"
	"slices"
	"strings"

	"github.com/cobaltstore/cobalt/storage-engine/alloc"
	"github.com/cobaltstore/cobalt/storage-engine/blockdev"
)

// maxProblems bounds how many problems a Report lists; the rest are counted.
const maxProblems = 64

// Report is what Check found. A clean file system has no Problems; Notes describe states that are
// expected after a crash (a torn superblock update) and need no repair.
type Report struct {
	// Slots describes the two superblock slots (the offline Check only).
	Slots [2]SlotReport
	// Generation and Epoch are the superblock's generation and the journal's epoch.
	Generation, Epoch uint64
	// Journal is the journal's extent; JournalEntries and JournalBytes how much of it replay used.
	Journal        Extent
	JournalEntries int
	JournalBytes   int64
	// Files counts names, Inodes files (an inode has one name or more; an unlinked file still
	// open has none), Dirs directories (the root included), Extents the files' extents.
	Files, Inodes, Dirs, Extents int
	// UsedBytes is the space of the superblock slots, the journal, the files' extents and (on a
	// mounted file system) the space freed by records not yet durable; FreeBytes what is left.
	UsedBytes, FreeBytes int64
	// RegionBytes is the region's length.
	RegionBytes int64
	// Space lists the extents added with AddSpace, SpaceBytes their total length: the file
	// system's space is the region and these.
	Space      []Extent
	SpaceBytes int64
	// Notes and Problems are human-readable findings; only Problems make Check fail.
	Notes    []string
	Problems []string
	// omitted counts problems beyond maxProblems.
	omitted int
}

// SlotReport describes one superblock slot.
type SlotReport struct {
	// Valid: the slot holds a superblock that decodes and fits its slot.
	Valid bool
	// Generation is the superblock's generation when Valid.
	Generation uint64
	// Err says why the slot is not valid.
	Err string
}

func (r *Report) problemf(format string, args ...any) {
	if len(r.Problems) >= maxProblems {
		r.omitted++
		return
	}
	r.Problems = append(r.Problems, fmt.Sprintf(format, args...))
}

func (r *Report) notef(format string, args ...any) {
	r.Notes = append(r.Notes, fmt.Sprintf(format, args...))
}

// err returns nil for a clean report and an error wrapping ErrCorrupt otherwise.
func (r *Report) err() error {
	n := len(r.Problems) + r.omitted
	if n == 0 {
		return nil
	}
	return fmt.Errorf("metafs check: %d problem(s), first: %s: %w", n, r.Problems[0], ErrCorrupt)
}

// String describes the report in a few lines.
func (r Report) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "metafs generation %d, journal epoch %#x at [%d, +%d): %d entries, %d bytes\n",
		r.Generation, r.Epoch, r.Journal.Offset, r.Journal.Length, r.JournalEntries, r.JournalBytes)
	if r.Slots != ([2]SlotReport{}) {
		for i, s := range r.Slots {
			if s.Valid {
				fmt.Fprintf(&b, "  superblock slot %d: generation %d\n", i, s.Generation)
			} else {
				fmt.Fprintf(&b, "  superblock slot %d: not valid (%s)\n", i, s.Err)
			}
		}
	}
	fmt.Fprintf(&b, "  %d files (%d inodes), %d dirs, %d extents; %d bytes used, %d free of %d (region %d, %d added extents of %d)\n",
		r.Files, r.Inodes, r.Dirs, r.Extents, r.UsedBytes, r.FreeBytes, r.RegionBytes+r.SpaceBytes, r.RegionBytes, len(r.Space), r.SpaceBytes)
	for _, n := range r.Notes {
		fmt.Fprintf(&b, "  note: %s\n", n)
	}
	for _, p := range r.Problems {
		fmt.Fprintf(&b, "  problem: %s\n", p)
	}
	if r.omitted > 0 {
		fmt.Fprintf(&b, "  ... and %d more problems\n", r.omitted)
	}
	if n := len(r.Problems) + r.omitted; n > 0 {
		fmt.Fprintf(&b, "  %d problem(s)", n)
	} else {
		b.WriteString("  clean")
	}
	return b.String()
}

// Check verifies the file system in region of dev offline, without writing anything: both
// superblock slots, the journal's replay, and the state it rebuilds (the added space aligned,
// after the region and disjoint; every extent unit-aligned, inside the region or the added space
// and used once; sizes within the allocated space; every name in an existing directory and every
// inode named; used plus free space covering the region and the added space). Not-valid slots
// other than the one in use are notes (a torn superblock update leaves one). It returns the
// report and, when there are problems, an error wrapping ErrCorrupt; a region that cannot be
// checked at all (not formatted, a newer version, another owner, an I/O error) gives that error.
func Check(dev blockdev.Device, region Extent, o Options) (Report, error) {
	var r Report
	r.RegionBytes = region.Length
	if err := r.checkSlots(dev, region); err != nil {
		return r, fmt.Errorf("metafs check: %w", err)
	}
	fs, err := load(dev, region, o)
	if err != nil {
		if !errors.Is(err, ErrCorrupt) {
			return r, fmt.Errorf("metafs check: %w", err)
		}
		r.checkUnloadable(dev, region, err)
		return r, r.err()
	}
	r.Generation, r.Epoch, r.Journal = fs.mu.sb.gen, fs.mu.sb.epoch, fs.mu.sb.journal
	r.JournalEntries, r.JournalBytes = int(fs.mu.seq-1), fs.mu.jpos
	r.checkState(fs.mu.st, fs.mu.sb, fs.mu.alloc, nil, false)
	return r, r.err()
}

// checkSlots decodes both superblock slots into r.Slots. The slots that cannot be used are
// problems when no slot can, notes otherwise.
func (r *Report) checkSlots(dev blockdev.Device, region Extent) error {
	if region.Offset < 0 || region.Length < superReserve || region.Offset+superReserve > dev.Size() {
		return fmt.Errorf("region %v outside the %d-byte device: %w", region, dev.Size(), ErrInvalid)
	}
	buf := blockdev.AlignedBuffer(superReserve)
	if _, err := dev.ReadAt(buf, region.Offset); err != nil {
		return fmt.Errorf("read superblocks: %w", err)
	}
	var errs [2]error
	best := -1
	for slot := range 2 {
		sb, err := decodeSuperblock(buf[slot*SuperblockSize : (slot+1)*SuperblockSize])
		if err == nil && sb.gen%2 != uint64(slot) {
			err = fmt.Errorf("holds generation %d, which belongs in slot %d: %w", sb.gen, sb.gen%2, ErrCorrupt)
		}
		if err != nil {
			errs[slot] = err
			r.Slots[slot] = SlotReport{Err: err.Error()}
			continue
		}
		r.Slots[slot] = SlotReport{Valid: true, Generation: sb.gen}
		if best < 0 || sb.gen > r.Slots[best].Generation {
			best = slot
		}
	}
	if best < 0 {
		return nil // load reports it: not formatted, a newer version, or corrupt
	}
	other := 1 - best
	switch {
	case errors.Is(errs[other], errNoSuper):
		r.notef("superblock slot %d was never written", other)
	case errs[other] != nil:
		r.notef("superblock slot %d is not valid (a torn update?): %v", other, errs[other])
	case r.Slots[other].Generation+1 != r.Slots[best].Generation:
		r.notef("superblock slots hold generations %d and %d, not consecutive", r.Slots[other].Generation, r.Slots[best].Generation)
	}
	return nil
}

// checkUnloadable reports why load refused the region with loadErr (which wraps ErrCorrupt): it
// replays the journal again and, when that works, lists the state's problems (buildAllocator
// stops at the first overlap; this lists them all).
func (r *Report) checkUnloadable(dev blockdev.Device, region Extent, loadErr error) {
	sb, err := readSuper(dev, region)
	if err != nil || sb.region != region {
		r.problemf("%v", loadErr)
		return
	}
	r.Generation, r.Epoch, r.Journal = sb.gen, sb.epoch, sb.journal
	st, seq, jpos, _, err := replay(dev, sb)
	if err != nil {
		r.problemf("%v", err)
		return
	}
	r.JournalEntries, r.JournalBytes = int(seq-1), jpos
	r.checkState(st, sb, nil, nil, false)
	if len(r.Problems) == 0 {
		r.problemf("%v", loadErr)
	}
}

// usedExtent is space in use, named for reports.
type usedExtent struct {
	what string
	e    Extent
}

// checkState checks st as described by sb. a is the allocator (nil when none could be built);
// pendingFree is space freed by records not yet durable, still in use; mounted allows inodes with
// no name that are still open. REQUIRES: on a mounted file system, flushMu and mu.
func (r *Report) checkState(st *state, sb superblock, a *alloc.ExtentAllocator, pendingFree []Extent, mounted bool) {
	unit := int64(sb.unit)
	region := sb.region
	r.RegionBytes = region.Length
	r.Space = slices.Clone(st.space)
	var spaceOK []Extent // the added extents that are valid
	for i, e := range st.space {
		switch {
		case e.Length <= 0 || e.End() < e.Offset || (e.Offset-region.Offset)%unit != 0 || e.Length%unit != 0:
			r.problemf("added space extent [%d, +%d) is not whole %d-byte units from the region's start", e.Offset, e.Length, unit)
			continue
		case e.Offset < region.End():
			r.problemf("added space extent [%d, +%d) overlaps or precedes the region %v", e.Offset, e.Length, region)
			continue
		case st.devSize > 0 && e.End() > st.devSize:
			r.problemf("added space extent [%d, +%d) ends past the %d-byte device", e.Offset, e.Length, st.devSize)
			continue
		}
		overlap := false
		for _, x := range st.space[:i] {
			if e.Offset < x.End() && x.Offset < e.End() {
				r.problemf("added space extent [%d, +%d) overlaps added space extent [%d, +%d)", e.Offset, e.Length, x.Offset, x.Length)
				overlap = true
			}
		}
		if !overlap {
			spaceOK = append(spaceOK, e)
			r.SpaceBytes += e.Length
		}
	}
	space := fsSpace(region, spaceOK)
	total := region.Length + r.SpaceBytes
	r.Files, r.Inodes, r.Dirs = len(st.names), len(st.inodes), len(st.dirs)
	if r.JournalBytes > sb.journal.Length {
		r.problemf("journal holds %d bytes of entries, more than its %d", r.JournalBytes, sb.journal.Length)
	}

	// Directories and names.
	if _, ok := st.dirs["/"]; !ok {
		r.problemf("no root directory")
	}
	for d := range st.dirs {
		if d != clean(d) {
			r.problemf("directory %q is not a clean absolute path", d)
		}
		if d == "/" {
			continue
		}
		if _, ok := st.dirs[path.Dir(d)]; !ok {
			r.problemf("directory %s: parent %s does not exist", d, path.Dir(d))
		}
	}
	links := map[uint64]int{}
	for p, ino := range st.names {
		if p != clean(p) || p == "/" {
			r.problemf("file name %q is not a clean absolute path", p)
		}
		if _, ok := st.dirs[path.Dir(p)]; !ok {
			r.problemf("file %s: directory %s does not exist", p, path.Dir(p))
		}
		if _, ok := st.dirs[p]; ok {
			r.problemf("%s is both a file and a directory", p)
		}
		if _, ok := st.inodes[ino]; !ok {
			r.problemf("file %s: inode %d does not exist", p, ino)
		}
		links[ino]++
	}

	// Inodes and the space they use.
	used := []usedExtent{
		{"superblocks", Extent{Offset: region.Offset, Length: reservedEnd(region, unit) - region.Offset}},
		{"journal", sb.journal},
	}
	inos := make([]uint64, 0, len(st.inodes))
	for ino := range st.inodes {
		inos = append(inos, ino)
	}
	slices.Sort(inos)
	for _, ino := range inos {
		n := st.inodes[ino]
		if n == nil || n.ino != ino {
			r.problemf("inode %d: entry describes another inode", ino)
			continue
		}
		if ino == 0 || ino >= st.nextIno {
			r.problemf("inode %d: not below the next inode number %d", ino, st.nextIno)
		}
		if n.nlink != links[ino] {
			r.problemf("inode %d: link count %d, but %d names", ino, n.nlink, links[ino])
		}
		if links[ino] == 0 && (!mounted || n.opens == 0) {
			r.problemf("inode %d has no name and is not open", ino)
		}
		var total int64
		for _, e := range n.extents {
			used = append(used, usedExtent{fmt.Sprintf("inode %d", ino), e})
			total += e.Length
		}
		r.Extents += len(n.extents)
		if total != n.allocated {
			r.problemf("inode %d: extents total %d bytes, allocated says %d", ino, total, n.allocated)
		}
		if n.journaled < 0 || n.journaled > total {
			r.problemf("inode %d: size %d beyond its %d allocated bytes", ino, n.journaled, total)
		}
	}
	for _, e := range pendingFree {
		used = append(used, usedExtent{"space freed by records not yet durable", e})
	}

	// Every extent aligned, inside the region and disjoint from the others.
	valid := make([]usedExtent, 0, len(used))
	for _, u := range used {
		e := u.e
		switch {
		case e.Length <= 0 || e.Offset%unit != 0 || e.Length%unit != 0:
			r.problemf("%s extent [%d, +%d) is not whole %d-byte units", u.what, e.Offset, e.Length, unit)
		case !within(space, e):
			r.problemf("%s extent [%d, +%d) is outside the region %v and the added space", u.what, e.Offset, e.Length, region)
		default:
			valid = append(valid, u)
		}
	}
	slices.SortStableFunc(valid, func(x, y usedExtent) int {
		if x.e.Offset != y.e.Offset {
			if x.e.Offset < y.e.Offset {
				return -1
			}
			return 1
		}
		return 0
	})
	var usedBytes int64
	var last usedExtent // the extent reaching furthest so far
	for i, u := range valid {
		if i > 0 && u.e.Offset < last.e.End() {
			r.problemf("%s extent [%d, +%d) overlaps %s extent [%d, +%d)", u.what, u.e.Offset, u.e.Length, last.what, last.e.Offset, last.e.Length)
			usedBytes += max(0, u.e.End()-last.e.End())
		} else {
			usedBytes += u.e.Length
		}
		if i == 0 || u.e.End() > last.e.End() {
			last = u
		}
	}
	r.UsedBytes = usedBytes
	if a == nil {
		r.FreeBytes = total - usedBytes
		return
	}
	r.FreeBytes = a.Free()
	if usedBytes+r.FreeBytes != total {
		r.problemf("used %d + free %d bytes != region length %d + added space %d", usedBytes, r.FreeBytes, region.Length, r.SpaceBytes)
	}
	if len(valid) == len(used) && len(spaceOK) == len(st.space) {
		rel := make([]Extent, 0, len(valid)+len(space)+1)
		for _, u := range valid {
			rel = append(rel, Extent{Offset: u.e.Offset - region.Offset, Length: u.e.Length})
		}
		// The allocator manages the device from the region's start: what lies outside the file
		// system's space is used (never handed out).
		pos := int64(0)
		for _, e := range space {
			if off := e.Offset - region.Offset; off > pos {
				rel = append(rel, Extent{Offset: pos, Length: off - pos})
			}
			pos = e.End() - region.Offset
		}
		if size := a.Size(); size > pos {
			rel = append(rel, Extent{Offset: pos, Length: size - pos})
		}
		if err := alloc.Check(a, rel); err != nil {
			r.problemf("allocator: %v", err)
		}
	}
}

// Check runs Check's checks on the mounted file system's state in memory (the journal's
// replayed state plus every change since), and checks the allocator against the space in use:
// the superblock slots, the journal, every inode's extents (unlinked files still open included)
// and the space freed by records not yet durable. Data buffered in files is not looked at. On a
// file system that failed (ErrFailed) the allocator is left out, with a note.
func (fs *FS) Check() (Report, error) {
	fs.flushMu.Lock()
	defer fs.flushMu.Unlock()
	fs.mu.Lock()
	defer fs.mu.Unlock()
	sb := fs.mu.sb
	r := Report{Generation: sb.gen, Epoch: sb.epoch, Journal: sb.journal,
		JournalEntries: int(fs.mu.seq - 1), JournalBytes: fs.mu.jpos}
	a := fs.mu.alloc
	if fs.mu.failed != nil {
		// A failed journal write took its records and frees off the queue, and a failed
		// compaction holds its new journal's space: the allocator no longer matches the state
		// until a mount rebuilds both from the device.
		r.notef("failed (mount again to recover): %v; the allocator is not checked", fs.mu.failed)
		a = nil
	}
	r.checkState(fs.mu.st, sb, a, fs.mu.pendingFree, true)
	return r, r.err()
}
