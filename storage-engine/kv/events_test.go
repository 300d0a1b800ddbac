package kv

import (
	"bytes"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/cockroachdb/pebble/v2/vfs/errorfs"
)

// faultFS is an in-memory filesystem whose table creation fails while failTables is set and
// whose WAL syncs take slowSync while it is non-zero.
type faultFS struct {
	failTables atomic.Bool
	slowSync   atomic.Int64 // nanoseconds
}

func (f *faultFS) fs() vfs.FS {
	return errorfs.Wrap(vfs.NewMem(), errorfs.InjectorFunc(func(op errorfs.Op) error {
		switch {
		case f.failTables.Load() && op.Kind == errorfs.OpCreate && strings.HasSuffix(op.Path, ".sst"):
			return errorfs.ErrInjected
		case op.Kind == errorfs.OpFileSync || op.Kind == errorfs.OpFileSyncData || op.Kind == errorfs.OpFileSyncTo:
			if d := time.Duration(f.slowSync.Load()); d > 0 && strings.HasSuffix(op.Path, ".log") {
				time.Sleep(d) // the slow disk itself, not a wait in the test
			}
		}
		return nil
	}))
}

// logBuffer collects log lines from pebble's goroutines.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *logBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// openWatched opens a database on fs with a logger into the returned buffer and an event sink
// into the returned channel (events beyond its capacity are dropped, never blocking pebble).
func openWatched(t *testing.T, fs vfs.FS, o Options) (*DB, <-chan Event, *logBuffer) {
	t.Helper()
	logs := &logBuffer{}
	events := make(chan Event, 1024)
	o.FS = fs
	o.Logger = slog.New(slog.NewTextHandler(logs, nil))
	o.Events = func(ev Event) {
		select {
		case events <- ev:
		default:
		}
	}
	db, err := Open("db", o)
	if err != nil {
		t.Fatal(err)
	}
	return db, events, logs
}

// waitEvent returns the first event of kind from events, failing the test after 20 seconds.
func waitEvent(t *testing.T, events <-chan Event, kind EventKind) Event {
	t.Helper()
	timeout := time.After(20 * time.Second)
	for {
		select {
		case ev := <-events:
			if ev.Kind == kind {
				return ev
			}
		case <-timeout:
			t.Fatalf("no %s event", kind)
		}
	}
}

// TestBackgroundFlushErrorReachesEvents: a flush that fails (its table cannot be created) is
// reported as a BackgroundError event carrying the error, counted in Health with the error kept,
// and logged; once the disk recovers the flush succeeds.
func TestBackgroundFlushErrorReachesEvents(t *testing.T) {
	f := &faultFS{}
	db, events, logs := openWatched(t, f.fs(), Options{})
	if h := db.Health(); h.BackgroundErrors != 0 || h.LastError != nil {
		t.Fatalf("fresh database reports %+v", h)
	}
	if err := db.Set([]byte("k"), []byte("v"), pebble.NoSync); err != nil {
		t.Fatal(err)
	}
	f.failTables.Store(true)
	flushed, err := db.AsyncFlush()
	if err != nil {
		t.Fatal(err)
	}
	ev := waitEvent(t, events, EventBackgroundError)
	if !errors.Is(ev.Err, errorfs.ErrInjected) || ev.Time.IsZero() {
		t.Fatalf("event %+v does not carry the injected error", ev)
	}
	h := db.Health()
	if h.BackgroundErrors == 0 || !errors.Is(h.LastError, errorfs.ErrInjected) || h.LastErrorTime.IsZero() {
		t.Fatalf("health after a failed flush: %+v", h)
	}
	if !strings.Contains(logs.String(), "pebble background error") {
		t.Fatalf("the failed flush was not logged:\n%s", logs)
	}
	f.failTables.Store(false)
	select {
	case <-flushed:
	case <-time.After(20 * time.Second):
		t.Fatal("the flush did not succeed once the disk recovered")
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
}

// TestWriteStallWhileFlushesFail: while flushes fail, memtables pile up until writes stall; the
// stall is reported (event, Health.Stalled, count) and its end too once flushes succeed again.
func TestWriteStallWhileFlushesFail(t *testing.T) {
	f := &faultFS{}
	db, events, _ := openWatched(t, f.fs(), Options{MemTableSize: 256 << 10})
	f.failTables.Store(true)
	done := make(chan error, 1)
	go func() {
		val := make([]byte, 16<<10)
		for i := range 128 { // 2 MiB: eight memtables
			if err := db.Set([]byte(fmt.Sprintf("k%04d", i)), val, pebble.NoSync); err != nil {
				done <- err
				return
			}
		}
		done <- nil
	}()
	waitEvent(t, events, EventWriteStallBegin)
	waitEvent(t, events, EventBackgroundError) // the stall lasts: the flushes keep failing
	h := db.Health()
	if !h.Stalled || h.WriteStalls == 0 || h.BackgroundErrors == 0 {
		t.Fatalf("health during the stall: %+v", h)
	}
	f.failTables.Store(false)
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("writes did not resume once flushes succeeded")
	}
	waitEvent(t, events, EventWriteStallEnd)
	if h := db.Health(); h.Stalled || h.WriteStalls == 0 {
		t.Fatalf("health after the stall: %+v", h)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
}

// TestSlowWALSyncReachesDiskSlow: a WAL sync that takes longer than DiskSlowThreshold is reported
// as a DiskSlow event naming the WAL, counted in Health and logged.
func TestSlowWALSyncReachesDiskSlow(t *testing.T) {
	f := &faultFS{}
	db, events, logs := openWatched(t, f.fs(), Options{DiskSlowThreshold: 100 * time.Millisecond})
	// pebble looks every two seconds: a sync of 2.5s is seen running for more than 100ms.
	f.slowSync.Store(int64(2500 * time.Millisecond))
	if err := db.Set([]byte("k"), []byte("v"), pebble.Sync); err != nil {
		t.Fatal(err)
	}
	f.slowSync.Store(0)
	ev := waitEvent(t, events, EventDiskSlow)
	if !strings.Contains(ev.Message, ".log") || ev.Duration < 100*time.Millisecond {
		t.Fatalf("disk-slow event %+v does not name the WAL and its duration", ev)
	}
	if h := db.Health(); h.DiskSlow == 0 || h.LastDiskSlowTime.IsZero() {
		t.Fatalf("health after a slow sync: %+v", h)
	}
	if !strings.Contains(logs.String(), "pebble disk slow") {
		t.Fatalf("the slow sync was not logged:\n%s", logs)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
}
