package kv

import (
	"fmt"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/vfs"
)

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
	// Logger receives pebble's messages; nil discards informational ones.
	Logger pebble.Logger
	// MemTableSize is the size of pebble's memtable (0: 64 MiB). A large memtable lets short-lived
	// records (deferred writes, rewritten onodes) die in memory instead of reaching L0.
	MemTableSize uint64
}

// Open opens (creating if needed) the pebble database in dir.
func Open(dir string, o Options) (*pebble.DB, error) {
	po := &pebble.Options{FS: o.FS, Logger: o.Logger, MemTableSize: o.MemTableSize}
	if po.MemTableSize == 0 {
		po.MemTableSize = 64 << 20
	}
	if po.FS == nil {
		po.FS = vfs.Default
	}
	if po.Logger == nil {
		po.Logger = quietLogger{}
	}
	switch {
	case o.Cache != nil:
		po.Cache = o.Cache
	case o.CacheSize > 0:
		c := pebble.NewCache(o.CacheSize)
		defer c.Unref()
		po.Cache = c
	}
	if err := po.FS.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("create metadata dir %s: %w", dir, err)
	}
	db, err := pebble.Open(dir, po)
	if err != nil {
		return nil, fmt.Errorf("open metadata db %s: %w", dir, err)
	}
	return db, nil
}

// quietLogger drops pebble's log lines (failures reach callers as returned errors). Fatalf must
// not return, so it panics.
type quietLogger struct{}

func (quietLogger) Infof(string, ...any)  {}
func (quietLogger) Errorf(string, ...any) {}
func (quietLogger) Fatalf(format string, args ...any) {
	panic(fmt.Sprintf("pebble fatal: "+format, args...))
}
