package cache

import (
	"fmt"
	"testing"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/vfs"
)

// TestPebbleBlockCacheBudget fills pebble's block cache through a real (in-memory) DB and
// checks that a smaller budget shrinks it and a larger one lets it grow back.
func TestPebbleBlockCacheBudget(t *testing.T) {
	const max = 16 << 20
	pc := pebble.NewCache(max)
	defer pc.Unref()
	kv, err := NewPebbleBlockCache(pc)
	if err != nil {
		t.Fatal(err)
	}
	defer kv.Close()
	db, err := pebble.Open("", &pebble.Options{FS: vfs.NewMem(), Cache: pc, Logger: testLogger{t}})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	val := make([]byte, 1024)
	for i := range 8000 {
		if err := db.Set(fmt.Appendf(nil, "key%06d", i), val, pebble.NoSync); err != nil {
			t.Fatal(err)
		}
	}
	if err := db.Flush(); err != nil {
		t.Fatal(err)
	}
	readAll := func() {
		it, err := db.NewIter(nil)
		if err != nil {
			t.Fatal(err)
		}
		for it.First(); it.Valid(); it.Next() {
		}
		if err := it.Close(); err != nil {
			t.Fatal(err)
		}
	}
	readAll()
	full := kv.TuneCounters().Usage
	if full < 4<<20 {
		t.Fatalf("block cache holds only %d bytes after reading 8 MB", full)
	}
	kv.SetBudget(1 << 20)
	readAll()
	if got := kv.TuneCounters().Usage; got > 1<<20 || kv.Budget() != 1<<20 {
		t.Fatalf("budget 1 MiB: cache holds %d (budget %d)", got, kv.Budget())
	}
	kv.SetBudget(max * 2) // clamped to the cache's size
	readAll()
	readAll() // the second pass hits
	if got := kv.TuneCounters(); got.Usage < full/2 || kv.Budget() != max || got.Hits == 0 {
		t.Fatalf("budget back to max: %+v (budget %d)", got, kv.Budget())
	}
	if _, err := NewPebbleBlockCache(nil); err == nil {
		t.Fatal("nil cache accepted")
	}
}

// testLogger sends pebble's log to the test log.
type testLogger struct{ t *testing.T }

func (l testLogger) Infof(format string, args ...any)  { l.t.Logf(format, args...) }
func (l testLogger) Errorf(format string, args ...any) { l.t.Errorf(format, args...) }
func (l testLogger) Fatalf(format string, args ...any) { l.t.Errorf("fatal: "+format, args...) }
