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
