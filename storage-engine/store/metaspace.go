package store

import (
	"fmt"

	"github.com/cobaltstore/cobalt/storage-engine/metafs"
)

// Space in the metadata region. pebble cannot fail cleanly when its file system fills up: a
// memtable flush that finds no room fails and is retried, and writes then stall for good behind
// the full memtable (a commit never returns), and a WAL that cannot be written makes pebble panic
// at its next rotation. So with the metadata on the device Commit refuses a transaction, with
// ErrNoSpace (wrapping metafs.ErrNoSpace, so syscall.ENOSPC), while the region's free space is
// below a reserve that lets pebble rotate its WAL, flush its memtables and compact: metafs' own
// reserve (a journal's length, for its journal compactions) plus metaReserveMemTables memtables.
// A transaction that only removes (remove, rmattr, omap rmkeys and clear, remove collection)
// keeps only one memtable of that reserve (its WAL records are small), so that space can be freed
// when the region is full.
//
// pebble's WAL files take most of the region: each is preallocated at 1.1 memtables and recorded
// by metafs at its whole allocation, and up to three are live (the mutable memtable's and two
// waiting for their flush). pebble would also keep up to three obsolete ones for reuse (its WAL
// recycling): on a 64 MiB region (8 MiB memtables, a 4 MiB journal, a reserve of 28 MiB) those
// and the live WAL held about 32 MiB, and after about 8,500 random 4 KiB overwrites (deferred
// writes, logged in the WAL) Commit refused everything although the tables held under 200 KiB.
// So the database on a metadata region does not recycle WAL files (kv.Options.NoWALRecycling):
// recycling spares a host file system a metadata update per sync of a growing file, which metafs
// never needs for a preallocated WAL, and an obsolete WAL's space is freed once its deletion is
// in metafs' journal.

// metaReserveMemTables is the metadata region's reserve for pebble, in memtables: the next WAL
// (pebble preallocates 1.1 memtables), the flush of a full memtable and room to compact.
const metaReserveMemTables = 3

// checkMetaSpace returns an error wrapping ErrNoSpace if the metadata region is too full for txn
// and cannot grow into the data space (metagrow.go).
func (s *Store) checkMetaSpace(txn *Transaction) error {
	if s.meta.fs == nil {
		return nil
	}
	u := s.meta.fs.Usage()
	memTables := int64(metaReserveMemTables)
	if onlyRemoves(txn) {
		memTables = 1
	}
	u, growErr := s.maybeGrowMeta(u)
	reserve := s.metaReserve(u, memTables)
	if u.Free >= reserve {
		return nil
	}
	if growErr != nil {
		return fmt.Errorf("%s has %d bytes free, below the %d kept for its database's flushes and compactions, and cannot grow: %w: %w",
			s.meta, u.Free, reserve, growErr, metafs.ErrNoSpace)
	}
	return fmt.Errorf("%s has %d bytes free, below the %d kept for its database's flushes and compactions: %w: %w",
		s.meta, u.Free, reserve, ErrNoSpace, metafs.ErrNoSpace)
}

// metaReserve is the free space the metadata region keeps, given its usage u, for metafs' journal
// and memTables of pebble's memtables.
func (s *Store) metaReserve(u metafs.Usage, memTables int64) int64 {
	// A region under 8 MiB has a memtable larger than an eighth of it (1 MiB at least), which
	// cannot be protected: such small regions (tests) reserve sixteenths instead.
	unit := int64(memTableSize(s.meta.region.Length))
	if unit > s.meta.region.Length/8 {
		unit = s.meta.region.Length / 16
	}
	return u.Journal + memTables*unit
}

// onlyRemoves reports whether every operation of txn removes something.
func onlyRemoves(txn *Transaction) bool {
	for _, o := range txn.ops {
		switch o.kind {
		case opRemove, opRmAttr, opOmapRmKeys, opOmapClear, opRemoveCollection:
		default:
			return false
		}
	}
	return true
}
