package store

import (
	"errors"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/cobaltstore/cobalt/storage-engine/blockdev"
	"github.com/cobaltstore/cobalt/storage-engine/blockdev/faultdev"
	"github.com/cobaltstore/cobalt/storage-engine/kv"
	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/cockroachdb/pebble/v2/vfs/errorfs"
)

// within runs fn and fails the test if it does not return within d.
func within(t *testing.T, d time.Duration, what string, fn func()) {
	t.Helper()
	done := make(chan struct{})
	go func() {
		defer close(done)
		fn()
	}()
	select {
	case <-done:
	case <-time.After(d):
		t.Fatalf("%s did not return within %s", what, d)
	}
}

// commitObjects commits collection "c" with 20 objects of 8 KiB and returns their data.
func commitObjects(t *testing.T, s *Store) map[string][]byte {
	t.Helper()
	commit(t, s, NewTransaction().CreateCollection("c"))
	want := map[string][]byte{}
	for i := range 20 {
		name := fmt.Sprintf("o%d", i)
		want[name] = pattern(8192, byte(i))
		commit(t, s, NewTransaction().Write("c", name, 0, want[name]))
	}
	return want
}

// checkStopped checks a store stopped by its failed metadata device: a commit returns at once
// with ErrFailed, kv.ErrStuck and EIO, the store reports Failed, and Close returns at once
// with ErrFailed and kv.ErrStuck. beforeClose, if set, runs just before Close.
func checkStopped(t *testing.T, s *Store, beforeClose func()) {
	t.Helper()
	var err error
	within(t, 10*time.Second, "a commit on the failed store", func() {
		err = s.Commit(ctx, NewTransaction().Touch("c", "after"))
	})
	if !errors.Is(err, ErrFailed) || !errors.Is(err, kv.ErrStuck) || !errors.Is(err, syscall.EIO) {
		t.Fatalf("commit on the failed store = %v, want ErrFailed, kv.ErrStuck and EIO", err)
	}
	if h := s.Health(); h.State != HealthFailed || h.Reason != ReasonMetadataDeviceFailed {
		t.Fatalf("health of the failed store: %+v, want Failed (%s)", h, ReasonMetadataDeviceFailed)
	}
	if beforeClose != nil {
		beforeClose()
	}
	within(t, 10*time.Second, "Close of the failed store", func() { err = s.Close() })
	if !errors.Is(err, ErrFailed) || !errors.Is(err, kv.ErrStuck) {
		t.Fatalf("Close of the failed store = %v, want ErrFailed and kv.ErrStuck", err)
	}
	t.Logf("Close: %v", err)
}

// TestFailedMetadataDeviceStopsOnlyTheStore: when the device under a store's metadata stops
// taking writes and flushes, pebble meets errors it does not survive (closing its WAL at a
// memtable flush): without the fail-stop (stuck.go) the process ends. With it, the store alone
// stops, at a memtable flush and under concurrent commits alike: every commit returns within
// seconds, an error (the device's, or ErrFailed), the store reports Failed, Close returns at once saying the store is abandoned, and the device's durable
// image mounts with every acknowledged object and a clean deep fsck.
func TestFailedMetadataDeviceStopsOnlyTheStore(t *testing.T) {
	cases := []struct {
		name string
		// load runs while the device fails; it returns the objects it got acknowledged.
		load func(t *testing.T, s *Store, fail func()) map[string][]byte
	}{
		{
			name: "a memtable flush rotates the WAL",
			load: func(t *testing.T, s *Store, fail func()) map[string][]byte {
				fail()
				go func() { _ = s.db.Flush() }() // never returns: it is stuck on the device
				within(t, 10*time.Second, "the database getting stuck", func() { <-s.db.Stuck() })
				return nil
			},
		},
		{
			name: "commits under load",
			load: func(t *testing.T, s *Store, fail func()) map[string][]byte {
				var mu sync.Mutex
				acked := map[string][]byte{}
				var wg sync.WaitGroup
				for w := range 8 {
					wg.Add(1)
					go func() {
						defer wg.Done()
						for i := 0; ; i++ {
							name := fmt.Sprintf("w%d-%d", w, i%64) // overwrites: the device does not fill

							data := pattern(4096*(1+i%4), byte(w*31+i))
							if err := s.Commit(ctx, NewTransaction().Write("c", name, 0, data)); err != nil {
								// A failed data write fails its own transaction with the device's
								// error; a failed metadata write fails the store.
								if !errors.Is(err, ErrFailed) && !errors.Is(err, syscall.EIO) {
									t.Errorf("writer %d: commit after the failure = %v, want ErrFailed or EIO", w, err)
								}
								mu.Lock()
								delete(acked, name) // not acknowledged: it may hold either version
								mu.Unlock()
								return
							}
							mu.Lock()
							acked[name] = data
							mu.Unlock()
						}
					}()
				}
				time.Sleep(200 * time.Millisecond)
				fail()
				within(t, 20*time.Second, "the writers' commits", wg.Wait)
				t.Logf("%d objects acknowledged under load", len(acked))
				return acked
			},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e, fd := newFaultEnv(t, testDevSize, Options{})
			s, err := Open(ctx, e.dev, "", e.opts)
			if err != nil {
				t.Fatal(err)
			}
			want := commitObjects(t, s)
			fail := func() {
				fd.Inject(faultdev.Rule{Ops: faultdev.OpWrite | faultdev.OpFlush, Err: syscall.EIO})
			}
			for name, data := range tc.load(t, s, fail) {
				want[name] = data
			}

			checkStopped(t, s, nil)
			mountAndCheck(t, "durable image", fd.DurableImage(), e.opts, want)
		})
	}
}

// TestFailedHostDirectoryStopsOnlyTheStore: a store whose metadata is in a host directory (made
// before label version 2) stops the same way when the host file system returns EIO for its
// writes: a memtable flush that would end the process leaves the store Failed, its commits fail
// with ErrFailed and EIO, Close returns at once, and the files as the failure left them (a crash
// image) mount with every acknowledged object.
func TestFailedHostDirectoryStopsOnlyTheStore(t *testing.T) {
	mem := blockdev.NewMem(64<<20, 4096)
	crashable := vfs.NewCrashableMem()
	var armed atomic.Bool
	fs := errorfs.Wrap(crashable, errorfs.InjectorFunc(func(op errorfs.Op) error {
		if armed.Load() && op.Kind.ReadOrWrite() == errorfs.OpIsWrite {
			return &os.PathError{Op: "write", Path: op.Path, Err: syscall.EIO}
		}
		return nil
	}))
	if _, err := Mkfs(ctx, mem, "db", MkfsOptions{FS: fs}); err != nil {
		t.Fatal(err)
	}
	opts := Options{FS: fs}
	s, err := Open(ctx, mem, "db", opts)
	if err != nil {
		t.Fatal(err)
	}
	want := commitObjects(t, s)
	armed.Store(true)
	go func() { _ = s.db.Flush() }() // never returns: it is stuck on the failed file system
	within(t, 10*time.Second, "the database getting stuck", func() { <-s.db.Stuck() })
	var crash *vfs.MemFS
	checkStopped(t, s, func() { crash = crashable.CrashClone(vfs.CrashCloneCfg{}) })
	opts.FS = crash
	again, err := Open(ctx, mem, "db", opts)
	if err != nil {
		t.Fatalf("mount the files as the failure left them: %v", err)
	}
	for name, data := range want {
		mustRead(t, again, "c", name, 0, 0, data)
	}
	mustCheck(t, again)
	if err := again.Close(); err != nil {
		t.Fatal(err)
	}
}
