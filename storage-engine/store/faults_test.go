package store

import (
	"bytes"
	"errors"
	"fmt"
	"github.com/cockroachdb/pebble/v2"
	"syscall"
	"testing"

	"github.com/cobaltstore/cobalt/storage-engine/blockdev"
	"github.com/cobaltstore/cobalt/storage-engine/blockdev/faultdev"
)

func newFaultEnv(t *testing.T, size int64, opts Options) (*testEnv, *faultdev.Device) {
	t.Helper()
	mem := blockdev.NewMem(size, 4096)
	e := newEnv(t, mem, opts)
	fd, err := faultdev.New(mem, faultdev.Options{})
	if err != nil {
		t.Fatal(err)
	}
	e.dev = fd
	return e, fd
}

// failDataWrites fails every write to the data space of s with err; the metadata region before
// it keeps working.
func failDataWrites(fd *faultdev.Device, s *Store, err error) {
	fd.Inject(faultdev.Rule{Ops: faultdev.OpWrite, Offset: int64(s.dataStart), Length: int64(s.devSize - s.dataStart), Err: err})
}

// reopen closes s and mounts the store again, checking it.
func reopen(t *testing.T, e *testEnv, s *Store) *Store {
	t.Helper()
	mustCheck(t, s)
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	return e.open(t)
}

func TestNoSpaceIsACleanError(t *testing.T) {
	e := newEnv(t, blockdev.NewMem(4<<20, 4096), Options{})
	s := e.open(t)
	commit(t, s, NewTransaction().CreateCollection("c"))
	var n int
	var err error
	for n = 0; n < 100; n++ {
		if err = s.Commit(ctx, NewTransaction().Write("c", fmt.Sprintf("o%d", n), 0, pattern(256<<10, byte(n)))); err != nil {
			break
		}
	}
	if !errors.Is(err, ErrNoSpace) {
		t.Fatalf("filling the device ended with %v after %d objects, want ErrNoSpace", err, n)
	}
	if ok, _ := s.Exists(ctx, "c", fmt.Sprintf("o%d", n)); ok {
		t.Fatal("the object of the failed transaction exists")
	}
	mustCheck(t, s)
	// Freeing space makes writes work again; everything written before is intact.
	commit(t, s, NewTransaction().Remove("c", "o0"))
	commit(t, s, NewTransaction().Write("c", "again", 0, pattern(128<<10, 1)))
	s = reopen(t, e, s)
	for i := 1; i < n; i++ {
		mustRead(t, s, "c", fmt.Sprintf("o%d", i), 0, 0, pattern(256<<10, byte(i)))
	}
	mustRead(t, s, "c", "again", 0, 0, pattern(128<<10, 1))
}

func TestDeviceErrorsFailOnlyTheirTransaction(t *testing.T) {
	for _, tc := range []struct {
		name string
		ops  faultdev.Op
		err  error
	}{
		{"EIO on write", faultdev.OpWrite, syscall.EIO},
		{"ENOSPC on write", faultdev.OpWrite, syscall.ENOSPC},
		{"EIO on flush", faultdev.OpFlush, syscall.EIO},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e, fd := newFaultEnv(t, testDevSize, Options{PreferDeferredSize: -1})
			s := e.open(t)
			commit(t, s, NewTransaction().CreateCollection("c").Write("c", "keep", 0, pattern(20000, 1)))
			before := s.Statfs()
			fd.FailNext(tc.ops, 1, tc.err)
			err := s.Commit(ctx, NewTransaction().Write("c", "keep", 0, pattern(8192, 2)).Write("c", "new", 0, pattern(9000, 3)))
			if !errors.Is(err, tc.err) {
				t.Fatalf("Commit = %v, want %v", err, tc.err)
			}
			if after := s.Statfs(); after != before {
				t.Fatalf("a failed commit changed space usage: %+v -> %+v", before, after)
			}
			mustRead(t, s, "c", "keep", 0, 0, pattern(20000, 1))
			if ok, _ := s.Exists(ctx, "c", "new"); ok {
				t.Fatal("object of the failed transaction exists")
			}
			mustCheck(t, s)
			commit(t, s, NewTransaction().Write("c", "new", 0, pattern(9000, 3)))
			s = reopen(t, e, s)
			mustRead(t, s, "c", "keep", 0, 0, pattern(20000, 1))
			mustRead(t, s, "c", "new", 0, 0, pattern(9000, 3))
		})
	}
}

func TestReadErrorIsReturnedNotData(t *testing.T) {
	e, fd := newFaultEnv(t, testDevSize, Options{})
	s := e.open(t)
	commit(t, s, NewTransaction().CreateCollection("c").Write("c", "o", 0, pattern(8192, 1)))
	fd.FailNext(faultdev.OpRead, 1, syscall.EIO)
	if got, err := s.Read(ctx, "c", "o", 0, 0); !errors.Is(err, syscall.EIO) || got != nil || IsCorruption(err) {
		t.Fatalf("Read = %d bytes, %v; want EIO", len(got), err)
	}
	mustRead(t, s, "c", "o", 0, 0, pattern(8192, 1))
}

// TestDeferredFlushErrorsAreRetried fails the in-place application of deferred writes: reads keep
// returning the new data from the log, and the writes land once the device works again.
func TestDeferredFlushErrorsAreRetried(t *testing.T) {
	e, fd := newFaultEnv(t, testDevSize, Options{PreferDeferredSize: 64 << 10, DeferredBatch: 1})
	s := e.open(t)
	data := pattern(64<<10, 1)
	commit(t, s, NewTransaction().CreateCollection("c").Write("c", "o", 0, data))
	failDataWrites(fd, s, syscall.EIO)
	for i := range 8 {
		off := uint64(i * 5000)
		commit(t, s, NewTransaction().Write("c", "o", off, []byte("overwrite")))
		copy(data[off:], "overwrite")
	}
	mustRead(t, s, "c", "o", 0, 0, data)
	if err := s.flushDeferred(pebble.NoSync); !errors.Is(err, syscall.EIO) {
		t.Fatalf("flushDeferred with failing writes = %v", err)
	}
	if m := s.Metrics(); m.DeferredQueue == 0 {
		t.Fatalf("deferred writes were dropped after a failed flush: %+v", m)
	}
	mustCheck(t, s)
	fd.ClearRules()
	s = reopen(t, e, s)
	mustRead(t, s, "c", "o", 0, 0, data)
	if m := s.Metrics(); m.DeferredQueue != 0 {
		t.Fatalf("deferred queue after clean close and remount: %d", m.DeferredQueue)
	}
}

// TestReplayAfterUncleanStop abandons a store with deferred writes pending (no Close), as a crash
// would, and remounts the same device and metadata: mount replays them.
func TestReplayAfterUncleanStop(t *testing.T) {
	mem := blockdev.NewMem(testDevSize, 4096)
	e := newEnv(t, mem, Options{PreferDeferredSize: 64 << 10, DeferredBatch: 1 << 20})
	s, err := Open(ctx, e.dev, e.dir, e.opts)
	if err != nil {
		t.Fatal(err)
	}
	data := pattern(32<<10, 5)
	commit(t, s, NewTransaction().CreateCollection("c").Write("c", "o", 0, data))
	// Stop the background flusher so the deferred writes stay pending.
	s.flushMu.Lock()
	commit(t, s, NewTransaction().Write("c", "o", 100, []byte("deferred!")))
	copy(data[100:], "deferred!")
	// Simulate the crash: copy the device and metadata as they are, without closing.
	img := mem.Clone()
	fs2 := cloneMemFS(t, e)
	s.flushMu.Unlock()
	mustCheck(t, s)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	e2 := &testEnv{dev: img, fs: fs2, dir: e.dir, opts: e.opts}
	e2.opts.FS = fs2
	s2 := e2.open(t)
	mustRead(t, s2, "c", "o", 0, 0, data)
	if m := s2.Metrics(); m.DeferredReplayed == 0 {
		t.Fatalf("nothing replayed: %+v", m)
	}
	if !bytes.Equal(data[100:109], []byte("deferred!")) {
		t.Fatal("test data")
	}
}
