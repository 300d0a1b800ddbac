package kv

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"time"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/vfs"
)

// DefaultDiskSlowThreshold is how long a disk operation may run before pebble reports the disk
// slow, when Options.DiskSlowThreshold is 0 (pebble's own default).
const DefaultDiskSlowThreshold = 5 * time.Second

// Options configure the metadata database.
type Options struct {
	// FS is the filesystem holding the database; nil means the OS filesystem. Crash tests pass a
	// crashable vfs.MemFS.
	FS vfs.FS
	// Cache, if set, is pebble's block cache, shared with (and sized by) the caller: pebble takes
	// its own reference, so the caller releases its reference when it no longer needs the cache.
	// It takes precedence over CacheSize.
	Cache *pebble.Cache
	// CacheSize is the size in bytes of a block cache private to the database, used when Cache
	// is nil (0: pebble's default).
	CacheSize int64
	// Logger receives pebble's log lines (Infof at Info, Errorf at Error) and a line per
	// background error, corruption, disk-slow report and write stall (repeated background errors
	// and disk-slow reports only at their 1st, 2nd, 4th, 8th... occurrence); nil discards them. pebble calls Fatalf on a broken invariant and requires that it
	// not return: the line is logged at Error and then Fatalf panics.
	Logger *slog.Logger
	// Events, if set, is called for every event of pebble's background work (see EventKind). It
	// is called synchronously from pebble's goroutines, sometimes with pebble's mutex held: it
	// must return quickly and must not call the database.
	Events func(Event)
	// DiskSlowThreshold is how long a disk operation may take before pebble reports the disk slow
	// (EventDiskSlow): 0 picks DefaultDiskSlowThreshold, negative turns the check off. pebble
	// looks about every two seconds, so a slow operation is reported after between
	// DiskSlowThreshold and DiskSlowThreshold plus two seconds.
	DiskSlowThreshold time.Duration
	// MemTableSize is the size of pebble's memtable (0: 64 MiB). A large memtable lets short-lived
	// records (deferred writes, rewritten onodes) die in memory instead of reaching L0.
	MemTableSize uint64
	// NoWALRecycling makes pebble delete obsolete WAL files instead of keeping up to
	// MemTableStopWritesThreshold+1 (3) of them, each a memtable's size, for reuse. Recycling
	// spares a host file system a metadata update per sync of a growing WAL; a file system that
	// preallocates and records the whole WAL at once (storage-engine/metafs) gains nothing from
	// it, and a small one cannot afford the space.
	NoWALRecycling bool
	// DeviceFailed, if set, tells which errors of FS mean that it lost writes for good (its device
	// failed). pebble panics on some such errors, which would end the process; instead the
	// operation that met one never returns (see failstop.go): the database is stuck, DB.Stuck is
	// closed and DB.StuckErr says why. An Open that gets stuck returns that error. nil: errors
	// reach pebble as they are.
	DeviceFailed func(error) bool
}

// deleteNoRecycleCleaner deletes obsolete files: its Clean and String are pebble's
// DeleteCleaner's. It also carries, one level deeper, pebble's ArchiveCleaner, only for the marker
// method (pebble's unexported NeedsFileContents) that makes pebble delete a cleaner's obsolete WAL
// files instead of recycling them; the ArchiveCleaner's own Clean and String are shadowed.
type deleteNoRecycleCleaner struct {
	pebble.DeleteCleaner
	noRecycleMarker
}

type noRecycleMarker struct{ pebble.ArchiveCleaner }

// DB is an open metadata database: pebble's DB plus what its event listener has seen.
type DB struct {
	*pebble.DB
	events   *listener
	fsCloser io.Closer // stops the disk-health checks after the database is closed
	failStop *failStop // nil without Options.DeviceFailed
}

// Health returns the counts of background errors, corruptions, disk-slow reports and write
// stalls since Open, and the last error.
func (d *DB) Health() Health { return d.events.health() }

// Stuck is closed once the database is stuck on a failed device (Options.DeviceFailed); it is
// nil, and never ready, without DeviceFailed.
func (d *DB) Stuck() <-chan struct{} {
	if d.failStop == nil {
		return nil
	}
	return d.failStop.stuck
}

// StuckErr returns the failure that made the database stuck (wrapping ErrStuck), or nil.
func (d *DB) StuckErr() error {
	if d.failStop == nil {
		return nil
	}
	return d.failStop.Err()
}

// UnlessStuck runs fn and returns its error, or StuckErr as soon as the database is stuck on a
// failed device, leaving fn to a goroutine that may never end. Without Options.DeviceFailed it
// just runs fn.
func (d *DB) UnlessStuck(fn func() error) error { return d.failStop.unlessStuck(fn) }

// Close closes the database, then stops watching its disk. A stuck database is not closed (that
// would wait for the operation that never returns): Close returns the failure, wrapping
// ErrStuck, and the database keeps its goroutines and memory until the process exits.
func (d *DB) Close() error {
	err := d.StuckErr()
	if err == nil {
		// Closing writes too (the WAL's tail, a flush): it may be what finds the device failed.
		err = d.UnlessStuck(d.DB.Close)
	}
	if errors.Is(err, ErrStuck) {
		err = fmt.Errorf("close metadata db: not closed, its goroutines and memory are held until the process exits: %w", err)
	}
	return errors.Join(err, d.fsCloser.Close())
}

// Open opens (creating if needed) the pebble database in dir. Failures of the operations it runs
// for its caller are returned to the caller; failures of pebble's background work (flushes,
// compactions, slow or failing disk syncs) are counted in DB.Health and reported to
// Options.Logger and Options.Events.
func Open(dir string, o Options) (*DB, error) {
	events := newListener(o.Logger, o.Events)
	el := events.eventListener()
	po := &pebble.Options{
		FS:            o.FS,
		Logger:        slogLogger{log: events.log},
		EventListener: &el,
		MemTableSize:  o.MemTableSize,
	}
	if o.NoWALRecycling {
		po.Cleaner = deleteNoRecycleCleaner{}
	}
	if po.MemTableSize == 0 {
		po.MemTableSize = 64 << 20
	}
	if po.FS == nil {
		po.FS = vfs.Default
	}
	var fstop *failStop
	if o.DeviceFailed != nil {
		fstop = newFailStop(po.FS, o.DeviceFailed)
		po.FS = fstop
	}
	threshold := o.DiskSlowThreshold
	switch {
	case threshold == 0:
		threshold = DefaultDiskSlowThreshold
	case threshold < 0:
		threshold = 0 // WithDiskHealthChecks then returns the FS unwrapped
	}
	// pebble's disk-health wrapper times every write, sync and file operation and calls back
	// when one runs longer than the threshold; the callback is the listener's.
	var fsCloser io.Closer
	po.FS, fsCloser = vfs.WithDiskHealthChecks(po.FS, threshold, nil, el.DiskSlow)
	switch {
	case o.Cache != nil:
		po.Cache = o.Cache
	case o.CacheSize > 0:
		c := pebble.NewCache(o.CacheSize)
		defer c.Unref()
		po.Cache = c
	}
	db, err := openPebble(dir, po, fstop)
	if err != nil {
		return nil, errors.Join(err, fsCloser.Close())
	}
	return &DB{DB: db, events: events, fsCloser: fsCloser, failStop: fstop}, nil
}

// openPebble makes dir and opens the database in it; with a fail-stop file system, in a goroutine
// that openPebble leaves behind if the file system fails under it (the goroutine never returns).
func openPebble(dir string, po *pebble.Options, fstop *failStop) (*pebble.DB, error) {
	var db *pebble.DB
	err := fstop.unlessStuck(func() (err error) {
		if err := po.FS.MkdirAll(dir, 0o755); err != nil {
			return fmt.Errorf("create metadata dir %s: %w", dir, err)
		}
		db, err = pebble.Open(dir, po)
		if err != nil {
			return fmt.Errorf("open metadata db %s: %w", dir, err)
		}
		return nil
	})
	if errors.Is(err, ErrStuck) {
		return nil, fmt.Errorf("open metadata db %s: %w", dir, err)
	}
	return db, err
}

// slogLogger is pebble's Logger over a slog.Logger.
type slogLogger struct{ log *slog.Logger }

func (l slogLogger) Infof(format string, args ...any) {
	l.log.Info(fmt.Sprintf(format, args...), "source", "pebble")
}

func (l slogLogger) Errorf(format string, args ...any) {
	l.log.Error(fmt.Sprintf(format, args...), "source", "pebble")
}

// Fatalf logs and panics: pebble calls it on a broken invariant and requires that it not return.
func (l slogLogger) Fatalf(format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	l.log.Error(msg, "source", "pebble", "fatal", true)
	panic("pebble fatal: " + msg)
}
