package kv

import (
	"fmt"
	"testing"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/vfs"
)

// TestOpenUsesCallersCache: a database opened with Options.Cache reads its blocks through that
// cache (the caller sees its usage and hits), and the cache outlives the caller's reference for
// as long as the database is open.
func TestOpenUsesCallersCache(t *testing.T) {
	c := pebble.NewCache(8 << 20)
	db, err := Open("db", Options{FS: vfs.NewMem(), Cache: c})
	if err != nil {
		c.Unref()
		t.Fatal(err)
	}
	c.Unref() // the database holds its own reference
	for i := range 1000 {
		if err := db.Set([]byte(fmt.Sprintf("k%04d", i)), make([]byte, 100), pebble.NoSync); err != nil {
			t.Fatal(err)
		}
	}
	if err := db.Flush(); err != nil {
		t.Fatal(err)
	}
	for range 2 {
		for i := range 1000 {
			v, closer, err := db.Get([]byte(fmt.Sprintf("k%04d", i)))
			if err != nil || len(v) != 100 {
				t.Fatalf("get k%04d: %v (%d bytes)", i, err, len(v))
			}
			_ = closer.Close()
		}
	}
	m := c.Metrics()
	if m.Size == 0 || m.Hits == 0 {
		t.Fatalf("the caller's cache was not used: %+v", m)
	}
	if db.Metrics().BlockCache.Size != m.Size {
		t.Fatalf("database cache size %d, caller's cache %d", db.Metrics().BlockCache.Size, m.Size)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
}

// TestNoWALRecyclingDeletesObsoleteWALs: with Options.NoWALRecycling, the WAL files of flushed
// memtables are deleted, not kept for reuse; without it pebble keeps some (the test's control).
func TestNoWALRecyclingDeletesObsoleteWALs(t *testing.T) {
	for _, noRecycling := range []bool{false, true} {
		fs := vfs.NewMem()
		db, err := Open("db", Options{FS: fs, MemTableSize: 1 << 20, NoWALRecycling: noRecycling})
		if err != nil {
			t.Fatal(err)
		}
		for round := range 5 {
			for i := range 100 {
				if err := db.Set([]byte(fmt.Sprintf("k%04d", i)), make([]byte, 1000), pebble.Sync); err != nil {
					t.Fatal(err)
				}
			}
			if err := db.Flush(); err != nil {
				t.Fatalf("flush %d: %v", round, err)
			}
		}
		// Deleting obsolete files is pebble's background work; the recycler's count is not.
		recycled := db.Metrics().WAL.ObsoleteFiles
		t.Logf("NoWALRecycling=%v: %d WAL files kept for reuse", noRecycling, recycled)
		if noRecycling && recycled != 0 {
			t.Errorf("with NoWALRecycling pebble kept %d WAL files for reuse", recycled)
		}
		if !noRecycling && recycled == 0 {
			t.Errorf("without NoWALRecycling pebble kept no WAL for reuse: the control shows nothing")
		}
		if err := db.Close(); err != nil {
			t.Fatal(err)
		}
	}
}
