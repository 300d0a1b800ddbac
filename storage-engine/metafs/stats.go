package metafs

import (
	"sync/atomic"
	"time"
)

// SyncStats says where the time of the file syncs that reached the device went, cumulatively
// since the mount: a caller compares two snapshots (pebble's WAL syncs are most of them, one per
// commit group of the store above). Time a sync spent waiting for the file's lock or for another
// sync's journal write is in none of the three durations.
type SyncStats struct {
	// Syncs counts file Syncs (Sync, SyncData) that flushed the device.
	Syncs int64
	// Write is the time they spent writing the file's buffered data, Flush the time in the
	// device flush after it.
	Write, Flush time.Duration
	// Journaled counts those syncs that also wrote a journal entry (a size or space record),
	// Journal the time that took, with its own flush.
	Journaled int64
	Journal   time.Duration
}

// syncCounters are SyncStats as atomics.
type syncCounters struct {
	syncs, journaled      atomic.Int64
	write, flush, journal atomic.Int64 // nanoseconds
}

// observe records one sync that wrote for write, flushed for flush and, when journaled, wrote a
// journal entry for journal.
func (c *syncCounters) observe(write, flush, journal time.Duration, journaled bool) {
	c.syncs.Add(1)
	c.write.Add(int64(write))
	c.flush.Add(int64(flush))
	if journaled {
		c.journaled.Add(1)
		c.journal.Add(int64(journal))
	}
}

// SyncStats returns the file syncs' counters since the mount.
func (fs *FS) SyncStats() SyncStats {
	c := &fs.syncs
	return SyncStats{
		Syncs: c.syncs.Load(), Write: time.Duration(c.write.Load()), Flush: time.Duration(c.flush.Load()),
		Journaled: c.journaled.Load(), Journal: time.Duration(c.journal.Load()),
	}
}
