package kv

import (
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/cockroachdb/pebble/v2/vfs/errorfs"
)

// errDeviceGone is the failure the tests' file system injects: a device that stopped taking writes.
var errDeviceGone = errors.New("injected: the device stopped taking writes")

// failingFS is an in-memory file system whose operations matching match fail with errDeviceGone
// once armed.
type failingFS struct {
	mem   *vfs.MemFS
	armed atomic.Bool
	fs    vfs.FS
}

func newFailingFS(match func(errorfs.Op) bool) *failingFS {
	f := &failingFS{mem: vfs.NewCrashableMem()}
	f.fs = errorfs.Wrap(f.mem, errorfs.InjectorFunc(func(op errorfs.Op) error {
		if f.armed.Load() && match(op) {
			return errDeviceGone
		}
		return nil
	}))
	return f
}

func isWrite(op errorfs.Op) bool { return op.Kind.ReadOrWrite() == errorfs.OpIsWrite }

func isSync(op errorfs.Op) bool {
	return op.Kind == errorfs.OpFileSync || op.Kind == errorfs.OpFileSyncData || op.Kind == errorfs.OpFileSyncTo
}

// openFailStop opens a database on fs whose injected failures are device failures.
func openFailStop(fs vfs.FS) (*DB, error) {
	return Open("db", Options{
		FS:           fs,
		MemTableSize: 1 << 20,
		DeviceFailed: func(err error) bool { return errors.Is(err, errDeviceGone) },
	})
}

func keyN(i int) []byte { return fmt.Appendf(nil, "k%04d", i) }

// TestFailStopKeepsTheProcessAlive: each of the writes pebble cannot survive failing (closing the
// WAL at a rotation, syncing the MANIFEST after a flush, a WAL write under a synced commit) ends
// the process with an unrecoverable panic when the error reaches pebble. With
// Options.DeviceFailed the operation that met the failure never returns instead: the database
// reports itself stuck (Stuck, StuckErr) with the device's error, acknowledges nothing after the failure,
// still serves reads from memory, and Close returns at once with ErrStuck. What was synced before
// the failure is there when a copy of the files taken at that instant (a crash) is opened again.
func TestFailStopKeepsTheProcessAlive(t *testing.T) {
	cases := []struct {
		name  string
		match func(errorfs.Op) bool
		// trigger runs the operation that meets the failure; it must not return nil.
		trigger func(db *DB) error
	}{
		{
			name:    "WAL close at a rotation",
			match:   isWrite,
			trigger: func(db *DB) error { return db.Flush() },
		},
		{
			name:    "MANIFEST sync after a flush",
			match:   func(op errorfs.Op) bool { return isSync(op) && strings.Contains(op.Path, "MANIFEST") },
			trigger: func(db *DB) error { return db.Flush() },
		},
		{
			name: "WAL write under a synced commit",
			match: func(op errorfs.Op) bool {
				return (op.Kind == errorfs.OpFileWrite || op.Kind == errorfs.OpFileWriteAt) && strings.HasSuffix(op.Path, ".log")
			},
			trigger: func(db *DB) error { return db.Set([]byte("after"), []byte("v"), pebble.Sync) },
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ffs := newFailingFS(tc.match)
			db, err := openFailStop(ffs.fs)
			if err != nil {
				t.Fatal(err)
			}
			for i := range 100 {
				if err := db.Set(keyN(i), []byte("before"), pebble.Sync); err != nil {
					t.Fatal(err)
				}
			}
			if db.StuckErr() != nil {
				t.Fatalf("stuck before any failure: %v", db.StuckErr())
			}
			ffs.armed.Store(true)
			returned := make(chan error, 1)
			go func() { returned <- tc.trigger(db) }()

			select {
			case <-db.Stuck():
			case err := <-returned:
				t.Fatalf("the operation returned (%v) and the database is not stuck", err)
			case <-time.After(30 * time.Second):
				t.Fatal("the database did not get stuck within 30s of the failure")
			}
			if err := db.StuckErr(); !errors.Is(err, ErrStuck) || !errors.Is(err, errDeviceGone) {
				t.Fatalf("StuckErr() = %v, want an error wrapping ErrStuck and the device's error", err)
			}
			select {
			case err := <-returned:
				if err == nil {
					t.Fatal("the operation that met the failure reported success")
				}
			case <-time.After(100 * time.Millisecond):
			}
			v, closer, err := db.Get(keyN(7))
			if err != nil || string(v) != "before" {
				t.Fatalf("read while stuck: %q, %v", v, err)
			}
			_ = closer.Close()

			crash := ffs.mem.CrashClone(vfs.CrashCloneCfg{})
			returnsStuck(t, "Close of a stuck database", db.Close)

			again, err := Open("db", Options{FS: crash})
			if err != nil {
				t.Fatalf("open the files as the failure left them: %v", err)
			}
			defer func() {
				if err := again.Close(); err != nil {
					t.Error(err)
				}
			}()
			for i := range 100 {
				v, closer, err := again.Get(keyN(i))
				if err != nil || string(v) != "before" {
					t.Fatalf("synced key %d after the failure: %q, %v", i, v, err)
				}
				_ = closer.Close()
			}
		})
	}
}

// TestFailStopOpen: an Open whose writes fail on the device returns the failure (ErrStuck) instead
// of hanging or ending the process, and the files as the failure left them (a crash image) open
// with the data.
func TestFailStopOpen(t *testing.T) {
	ffs := newFailingFS(isWrite)
	db, err := openFailStop(ffs.fs)
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Set([]byte("k"), []byte("v"), pebble.Sync); err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	ffs.armed.Store(true)
	returnsStuck(t, "Open on a failed device", func() error {
		_, err := openFailStop(ffs.fs)
		return err
	})
	again, err := Open("db", Options{FS: ffs.mem.CrashClone(vfs.CrashCloneCfg{})})
	if err != nil {
		t.Fatalf("open the files as the failure left them: %v", err)
	}
	v, closer, err := again.Get([]byte("k"))
	if err != nil || string(v) != "v" {
		t.Fatalf("synced key after the failed open: %q, %v", v, err)
	}
	_ = closer.Close()
	if err := again.Close(); err != nil {
		t.Fatal(err)
	}
}

// returnsStuck runs fn, which meets the failed device, and checks that it returns ErrStuck with
// the device's error within 30s.
func returnsStuck(t *testing.T, what string, fn func() error) {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- fn() }()
	select {
	case err := <-done:
		if !errors.Is(err, ErrStuck) || !errors.Is(err, errDeviceGone) {
			t.Fatalf("%s = %v, want ErrStuck with the device's error", what, err)
		}
	case <-time.After(30 * time.Second):
		t.Fatalf("%s did not return", what)
	}
}

// TestFailStopPassesOtherErrors: an error the caller does not call a device failure reaches
// pebble as before (here a failed remove of an obsolete file, which pebble only logs), and the
// database does not get stuck.
func TestFailStopPassesOtherErrors(t *testing.T) {
	ffs := newFailingFS(func(op errorfs.Op) bool { return op.Kind == errorfs.OpRemove })
	db, err := Open("db", Options{
		FS:             ffs.fs,
		MemTableSize:   1 << 20,
		NoWALRecycling: true,
		DeviceFailed:   func(err error) bool { return false },
	})
	if err != nil {
		t.Fatal(err)
	}
	ffs.armed.Store(true)
	for round := range 3 {
		for i := range 100 {
			if err := db.Set(keyN(i), fmt.Appendf(nil, "v%d", round), pebble.Sync); err != nil {
				t.Fatal(err)
			}
		}
		if err := db.Flush(); err != nil {
			t.Fatal(err)
		}
	}
	if err := db.StuckErr(); err != nil {
		t.Fatalf("stuck on an error that is not a device failure: %v", err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
}

// TestFailStopClose: a Close that meets the failed device (writing the WAL's tail) returns
// ErrStuck instead of hanging or ending the process.
func TestFailStopClose(t *testing.T) {
	ffs := newFailingFS(isWrite)
	db, err := openFailStop(ffs.fs)
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Set([]byte("k"), []byte("v"), pebble.NoSync); err != nil {
		t.Fatal(err)
	}
	ffs.armed.Store(true)
	returnsStuck(t, "Close on a failed device", db.Close)
}
