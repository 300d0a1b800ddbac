package metafs

import (
	"testing"
	"time"

	"github.com/cobaltstore/cobalt/storage-engine/blockdev"
	"github.com/cockroachdb/pebble/v2/vfs"
)

// slowDevice takes at least writeDelay for each write and flushDelay for each flush.
type slowDevice struct {
	blockdev.Device
	writeDelay, flushDelay time.Duration
}

func (d *slowDevice) WriteAt(p []byte, off int64) (int, error) {
	time.Sleep(d.writeDelay)
	return d.Device.WriteAt(p, off)
}

func (d *slowDevice) Flush() error {
	time.Sleep(d.flushDelay)
	return d.Device.Flush()
}

// TestSyncStats checks that file syncs are counted with the time they spent writing, flushing
// and journaling: a file's first sync records its size (a journal entry), a WAL's later syncs
// inside its recorded space do not, and a sync with nothing new written still flushes.
func TestSyncStats(t *testing.T) {
	const writeDelay, flushDelay = 2 * time.Millisecond, 3 * time.Millisecond
	e := newEnv(t, fsTestRegion, Options{Unit: 4096, JournalSize: 256 << 10})
	if err := e.fs.Close(); err != nil {
		t.Fatal(err)
	}
	fs := mountT(t, &slowDevice{Device: e.dev, writeDelay: writeDelay, flushDelay: flushDelay}, fsTestRegion, e.opts)
	if got := fs.SyncStats(); got != (SyncStats{}) {
		t.Fatalf("SyncStats after mount = %+v, want zero", got)
	}
	wal, err := fs.Create("000002.log", wcu)
	if err != nil {
		t.Fatal(err)
	}
	data, err := fs.Create("data", wcu)
	if err != nil {
		t.Fatal(err)
	}
	sync := func(f vfs.File, n int) {
		t.Helper()
		if n > 0 {
			if _, err := f.Write(pattern(n, uint64(n))); err != nil {
				t.Fatal(err)
			}
		}
		if err := f.Sync(); err != nil {
			t.Fatal(err)
		}
	}
	type want struct{ syncs, journaled int64 }
	steps := []struct {
		name string
		do   func()
		want want
	}{
		{"WAL's first sync records its space", func() { sync(wal, 5000) }, want{1, 1}},
		{"WAL's next sync, inside its space", func() { sync(wal, 3000) }, want{2, 1}},
		{"data file's first sync records its size", func() { sync(data, 70000) }, want{3, 2}},
		{"sync with nothing written", func() { sync(data, 0) }, want{4, 2}},
	}
	for _, st := range steps {
		st.do()
		got := fs.SyncStats()
		if got.Syncs != st.want.syncs || got.Journaled != st.want.journaled {
			t.Fatalf("%s: %d syncs, %d journaled; want %d, %d", st.name, got.Syncs, got.Journaled, st.want.syncs, st.want.journaled)
		}
		// Every counted sync wrote its tail (a sync with nothing new rewrites the partial last
		// block) and flushed; every journaled one wrote and flushed an entry.
		if minW := time.Duration(got.Syncs) * writeDelay; got.Write < minW {
			t.Errorf("%s: Write %v, want at least %v", st.name, got.Write, minW)
		}
		if minF := time.Duration(got.Syncs) * flushDelay; got.Flush < minF {
			t.Errorf("%s: Flush %v, want at least %v", st.name, got.Flush, minF)
		}
		if minJ := time.Duration(got.Journaled) * (writeDelay + flushDelay); got.Journal < minJ {
			t.Errorf("%s: Journal %v, want at least %v", st.name, got.Journal, minJ)
		}
	}
	for _, f := range []vfs.File{wal, data} {
		if err := f.Close(); err != nil {
			t.Fatal(err)
		}
	}
}
