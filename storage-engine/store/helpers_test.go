package store

import (
	"bytes"
	"context"
	"testing"

	"github.com/cobaltstore/cobalt/storage-engine/blockdev"
	"github.com/cockroachdb/pebble/v2/vfs"
)

const testDevSize = 64 << 20

// testEnv is a device and a metadata filesystem that survive store reopenings. By default the
// metadata is on the device (dir is empty); newDirEnv keeps it in a crashable in-memory
// directory instead, for the tests that clone that directory at a crash.
type testEnv struct {
	dev  blockdev.Device
	fs   vfs.FS
	dir  string
	opts Options
}

// newDirEnv is newEnvMkfs with the metadata in a host directory (an in-memory one).
func newDirEnv(t testing.TB, dev blockdev.Device, opts Options, mo MkfsOptions) *testEnv {
	t.Helper()
	return newEnvAt(t, dev, opts, mo, "db")
}

func newEnv(t testing.TB, dev blockdev.Device, opts Options) *testEnv {
	t.Helper()
	return newEnvMkfs(t, dev, opts, MkfsOptions{})
}

func newEnvMkfs(t testing.TB, dev blockdev.Device, opts Options, mo MkfsOptions) *testEnv {
	t.Helper()
	return newEnvAt(t, dev, opts, mo, "")
}

func newEnvAt(t testing.TB, dev blockdev.Device, opts Options, mo MkfsOptions, dir string) *testEnv {
	t.Helper()
	if dev == nil {
		dev = blockdev.NewMem(testDevSize, 4096)
	}
	e := &testEnv{dev: dev, fs: vfs.NewCrashableMem(), dir: dir, opts: opts}
	e.opts.FS = e.fs
	e.opts.verifyShards = true
	mo.FS = e.fs
	if _, err := Mkfs(context.Background(), dev, e.dir, mo); err != nil {
		t.Fatalf("Mkfs: %v", err)
	}
	return e
}

// open mounts the store; at cleanup it runs a deep fsck (failing the test on any finding) and
// closes the store.
func (e *testEnv) open(t testing.TB) *Store {
	t.Helper()
	s, err := Open(context.Background(), e.dev, e.dir, e.opts)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() {
		mustCheck(t, s)
		if err := s.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return s
}

// newStore makes a fresh store on an in-memory device.
func newStore(t testing.TB, opts Options) *Store {
	t.Helper()
	return newEnv(t, nil, opts).open(t)
}

// mustCheck fails the test if a deep fsck finds anything wrong. Closing twice is harmless, so a
// test may close the store itself before cleanup runs; then the check is skipped.
func mustCheck(t testing.TB, s *Store) {
	t.Helper()
	s.life.RLock()
	closed := s.closed
	s.life.RUnlock()
	if closed {
		return
	}
	r, err := s.Fsck(context.Background(), true)
	if err != nil {
		t.Errorf("fsck: %v", err)
		return
	}
	if !r.OK() {
		t.Errorf("fsck found problems: errors=%q leaked=%v orphans=%v", r.Errors, r.Leaked, r.OrphanOmapNids)
	}
}

func commit(t testing.TB, s *Store, txn *Transaction) {
	t.Helper()
	if err := s.Commit(context.Background(), txn); err != nil {
		t.Fatalf("Commit: %v", err)
	}
}

func mustRead(t testing.TB, s *Store, c, o string, off, n uint64, want []byte) {
	t.Helper()
	got, err := s.Read(context.Background(), c, o, off, n)
	if err != nil {
		t.Fatalf("Read %s/%s [%d,+%d): %v", c, o, off, n, err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("Read %s/%s [%d,+%d): got %d bytes %q..., want %d bytes %q...", c, o, off, n, len(got), head(got), len(want), head(want))
	}
}

func head(b []byte) []byte { return b[:min(len(b), 16)] }

func pattern(n int, seed byte) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = seed + byte(i*7) + byte(i>>12)
	}
	return b
}

// cloneMemFS returns what the metadata filesystem would hold after a crash now: synced data only.
func cloneMemFS(t testing.TB, e *testEnv) vfs.FS {
	t.Helper()
	mfs, ok := e.fs.(*vfs.MemFS)
	if !ok {
		t.Fatalf("metadata fs is %T, not a MemFS", e.fs)
	}
	return mfs.CrashClone(vfs.CrashCloneCfg{})
}
