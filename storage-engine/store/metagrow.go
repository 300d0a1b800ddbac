package store

import (
	"errors"
	"fmt"

	"github.com/cobaltstore/cobalt/storage-engine/alloc"
	"github.com/cobaltstore/cobalt/storage-engine/metafs"
)

// Growing the metadata space.
//
// The metadata region is sized at mkfs (a sixteenth of the device by default). A store whose
// metadata outgrows it (many small objects, omap-heavy use) takes more from its data space, the
// way BlueFS takes extents from BlueStore's allocator. Two paths grow it:
//   - a commit that finds the metadata file system's free space below the reserve Commit keeps
//     (metaspace.go), one memtable and a quarter of the space in use (metaGrowAt);
//   - a file that cannot get space (pebble's WAL, a flush or a compaction writing between two
//     commits' checks): metafs calls the store's grower before it fails (growForAllocation).
// (Neither runs for a store whose metadata is on a separate device: see metadata.go.) Either way
// the store allocates an extent from its data allocator and gives it to metafs
// (metafs.FS.AddSpace), which makes it part of the file system only once a journal record naming
// it is durable.
//
// Crash safety: the data allocator is not persisted, it is rebuilt at mount from the onodes and
// from the extents metafs holds (Space), so space taken for the metadata is never handed to data
// after a crash (metafs' journal has it) and space taken but not yet recorded is free again (its
// record was not durable: metafs does not have it either). Growth runs under growMu, which fsck
// also holds, so fsck never sees space allocated and not yet given to metafs. It never takes
// commitMu: the grower runs in pebble's goroutines, which a committer holding commitMu may be
// waiting for.
//
// Each growth adds up to the region's own length (at least what the file needs), aligned to
// metafs' unit, and never more than half of the free data space; once the data space cannot give
// a memtable's worth, Commit refuses transactions with ErrNoSpace as before, and no commit tries
// again until the data space has gained room (growBlocked).

// maybeGrowMeta grows the metadata space if its free space u.Free is below the growth threshold,
// and returns the usage after. A failure to grow is returned only when the region is below the
// reserve Commit keeps (the caller then refuses the transaction with that error); otherwise the
// transaction proceeds and the next commit tries again.
func (s *Store) maybeGrowMeta(u metafs.Usage) (metafs.Usage, error) {
	if u.Free >= s.metaGrowAt(u) {
		return u, nil
	}
	if s.growIsBlocked() && u.Freeing == 0 {
		return u, noRoomToGrow(s.alloc.Free())
	}
	s.growMu.Lock()
	defer s.growMu.Unlock()
	// Another commit may have grown it meanwhile; or space that deleted and trimmed files freed
	// waits for a journal flush to be allocatable again: flush rather than grow.
	u = s.meta.fs.Usage()
	if u.Free < s.metaGrowAt(u) && u.Freeing > 0 {
		if err := s.meta.fs.SyncJournal(); err != nil {
			return u, fmt.Errorf("make the metadata's freed space allocatable: %w", err)
		}
		u = s.meta.fs.Usage()
	}
	if u.Free >= s.metaGrowAt(u) {
		return u, nil
	}
	if s.meta.separate != nil {
		return u, fmt.Errorf("the metadata device holds the whole metadata and does not grow into the data device: %w", ErrNoSpace)
	}
	err := s.growLocked(0)
	return s.meta.fs.Usage(), err
}

// growForAllocation is the metadata file system's grower (metafs.FS.SetGrower): a file that
// needs need bytes more than the file system has (a WAL, a flush or a compaction writing between
// two commits' checks) gets the room from the data space instead of failing pebble.
func (s *Store) growForAllocation(need int64) error {
	s.growMu.Lock()
	defer s.growMu.Unlock()
	return s.growLocked(need)
}

// growIsBlocked reports whether growing failed for want of data space and the data space has
// not gained room since: the commits that would try again do not serialize on growMu for it.
func (s *Store) growIsBlocked() bool {
	b := s.growBlocked.Load()
	return b > 0 && s.alloc.Free() < b
}

// growLocked grows the metadata by at least need bytes (growMeta) unless the data space had no
// room last time and has gained none. REQUIRES: growMu.
func (s *Store) growLocked(need int64) error {
	if s.growIsBlocked() {
		return noRoomToGrow(s.alloc.Free())
	}
	s.growAttempts.Add(1)
	free := s.alloc.Free()
	if err := s.growMeta(need); err != nil {
		if errors.Is(err, errNoRoomToGrow) {
			s.growBlocked.Store(free + 1)
		}
		return err
	}
	s.growBlocked.Store(0)
	return nil
}

// errNoRoomToGrow is wrapped by the error of a growth the data space cannot give room for.
var errNoRoomToGrow = errors.New("too few to give the metadata database more room")

func noRoomToGrow(free int64) error {
	return fmt.Errorf("the data space has %d bytes free, %w: %w", free, errNoRoomToGrow, ErrNoSpace)
}

// metaGrowAt is the free metadata space below which the metadata space grows: the reserve
// Commit keeps, one memtable more, and a quarter of the space in use. The reserve is sized for
// the region's own tables; a database that outgrew its region compacts tables the region could not
// hold, and a compaction writes its output before it deletes its inputs (a WAL that then cannot
// grow fails the store), so the headroom grows with the database.
func (s *Store) metaGrowAt(u metafs.Usage) int64 {
	return s.metaReserve(u, metaReserveMemTables+1) + (u.Size-u.Free)/4 + s.opts.metaGrowSlack
}

// growMeta moves an extent of at least need bytes of the data space to the metadata file
// system. REQUIRES: growMu.
func (s *Store) growMeta(need int64) error {
	unit := s.meta.fs.Unit()
	memTable := int64(memTableSize(s.meta.region.Length))
	step := s.meta.region.Length
	if s.opts.metaGrowStep > 0 {
		step, memTable = s.opts.metaGrowStep, unit
	}
	step = alignDownInt(min(max(step, need), s.alloc.Free()/2), unit)
	if step < max(memTable, unit, need) {
		return noRoomToGrow(s.alloc.Free())
	}
	// The allocator works in allocation units; metafs needs whole metafs units at its own
	// alignment: take a little more and give back what is not aligned.
	exts, err := s.alloc.Allocate(step + unit)
	if err != nil {
		return fmt.Errorf("take %d bytes of data space for the metadata database: %w", step+unit, err)
	}
	var give, back []alloc.Extent
	for _, e := range exts {
		a := s.meta.region.Offset + alignUpInt(e.Offset-s.meta.region.Offset, unit)
		b := s.meta.region.Offset + alignDownInt(e.End()-s.meta.region.Offset, unit)
		if b-a < unit {
			back = append(back, e)
			continue
		}
		if a > e.Offset {
			back = append(back, alloc.Extent{Offset: e.Offset, Length: a - e.Offset})
		}
		if b < e.End() {
			back = append(back, alloc.Extent{Offset: b, Length: e.End() - b})
		}
		give = append(give, alloc.Extent{Offset: a, Length: b - a})
	}
	var added int64
	var addErr error
	for _, e := range give {
		if addErr != nil {
			back = append(back, e)
			continue
		}
		if err := s.meta.fs.AddSpace(metafs.Extent(e)); err != nil {
			// Not part of the file system (AddSpace changes nothing when it fails, and a failed
			// journal flush fails the file system, which then refuses everything).
			addErr = fmt.Errorf("give [%d, +%d) to the metadata database: %w", e.Offset, e.Length, err)
			back = append(back, e)
			continue
		}
		added += e.Length
	}
	if len(back) > 0 {
		if err := s.alloc.Release(back); err != nil {
			s.m.allocErrors.Add(1)
		}
	}
	if added > 0 && s.opts.Logger != nil {
		s.opts.Logger.Info("metadata database grew into the data space", "store", s.uuid, "bytes", added, "metadata", s.meta.String())
	}
	if added == 0 && addErr == nil {
		addErr = fmt.Errorf("no %d-byte-aligned run in %d bytes of data space: %w", unit, step+unit, ErrNoSpace)
	}
	return addErr
}

// metaSpace is the data space given to the metadata database (metafs.FS.Space), nil when the
// database is in a host directory.
func (s *Store) metaSpace() []alloc.Extent {
	if s.meta.fs == nil {
		return nil
	}
	var out []alloc.Extent
	for _, e := range s.meta.fs.Space() {
		out = append(out, alloc.Extent(e))
	}
	return out
}

func alignUpInt(v, a int64) int64 { return (v + a - 1) / a * a }
