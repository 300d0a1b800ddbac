package metafs

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path"
	"slices"
	"strings"
	"syscall"
	"testing"

	"github.com/cobaltstore/cobalt/storage-engine/blockdev"
	"github.com/cockroachdb/pebble/v2/vfs"
)

// fsTestRegion is the region most tests format: 64 MiB one MiB into the device.
var fsTestRegion = Extent{Offset: 1 << 20, Length: 64 << 20}

const wcu = vfs.WriteCategoryUnspecified

// mustCheck fails the test when the mounted file system's state is inconsistent.
func mustCheck(t testing.TB, fs *FS) Report {
	t.Helper()
	r, err := fs.Check()
	if err != nil {
		t.Errorf("fs.Check: %v\n%s", err, r)
	}
	return r
}

// mustCheckDev fails the test when the file system on dev is inconsistent.
func mustCheckDev(t testing.TB, dev blockdev.Device, region Extent) Report {
	t.Helper()
	r, err := Check(dev, region, Options{})
	if err != nil {
		t.Errorf("Check: %v\n%s", err, r)
	}
	return r
}

// mountT mounts and checks the file system's state when the test ends.
func mountT(t testing.TB, dev blockdev.Device, region Extent, o Options) *FS {
	t.Helper()
	fs, err := Mount(dev, region, o)
	if err != nil {
		t.Fatalf("Mount: %v", err)
	}
	t.Cleanup(func() { mustCheck(t, fs) })
	return fs
}

// testEnv is a formatted MemDevice region and the file system mounted on it.
type testEnv struct {
	t      testing.TB
	dev    *blockdev.MemDevice
	region Extent
	opts   Options
	fs     *FS
}

func newEnv(t testing.TB, region Extent, o Options) *testEnv {
	t.Helper()
	return newEnvSize(t, region, o, region.End()+1<<20)
}

// newEnvSize is newEnv on a device of devSize bytes.
func newEnvSize(t testing.TB, region Extent, o Options, devSize int64) *testEnv {
	t.Helper()
	dev := blockdev.NewMem(devSize, 4096)
	if err := Format(dev, region, o); err != nil {
		t.Fatalf("Format: %v", err)
	}
	e := &testEnv{t: t, dev: dev, region: region, opts: o}
	// Registered first, so it runs last: the device as the test leaves it must check clean.
	t.Cleanup(func() { mustCheckDev(t, e.dev, region) })
	e.fs = mountT(t, dev, region, o)
	return e
}

// remount closes the file system (which makes every change durable) and mounts it again.
func (e *testEnv) remount() {
	e.t.Helper()
	if err := e.fs.Close(); err != nil {
		e.t.Fatalf("Close: %v", err)
	}
	mustCheckDev(e.t, e.dev, e.region)
	e.fs = mountT(e.t, e.dev, e.region, e.opts)
}

// crashRemount mounts the device as it is, without closing the file system: only what was made
// durable is expected to be there. The old file system must not be used afterwards.
func (e *testEnv) crashRemount() {
	e.t.Helper()
	mustCheckDev(e.t, e.dev, e.region)
	e.dev = e.dev.Clone()
	e.fs = mountT(e.t, e.dev, e.region, e.opts)
}

func pattern(n int, seed uint64) []byte {
	b := make([]byte, n)
	r := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

func create(t testing.TB, fs vfs.FS, name string) vfs.File {
	t.Helper()
	f, err := fs.Create(name, wcu)
	if err != nil {
		t.Fatalf("Create(%s): %v", name, err)
	}
	return f
}

func write(t testing.TB, f vfs.File, p []byte) {
	t.Helper()
	if n, err := f.Write(bytes.Clone(p)); err != nil || n != len(p) {
		t.Fatalf("Write(%d bytes) = %d, %v", len(p), n, err)
	}
}

func syncFile(t testing.TB, f vfs.File) {
	t.Helper()
	if err := f.Sync(); err != nil {
		t.Fatalf("Sync: %v", err)
	}
}

func closeFile(t testing.TB, f io.Closer) {
	t.Helper()
	if err := f.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
}

// writeFile creates name with data, syncs and closes it.
func writeFile(t testing.TB, fs vfs.FS, name string, data []byte) {
	t.Helper()
	f := create(t, fs, name)
	write(t, f, data)
	syncFile(t, f)
	closeFile(t, f)
}

// syncDir makes every change so far durable.
func syncDir(t testing.TB, fs vfs.FS, name string) {
	t.Helper()
	d, err := fs.OpenDir(name)
	if err != nil {
		t.Fatalf("OpenDir(%s): %v", name, err)
	}
	if err := d.Sync(); err != nil {
		t.Fatalf("dir Sync(%s): %v", name, err)
	}
	closeFile(t, d)
}

// readAll reads a whole file through ReadAt and checks that Stat agrees on its size.
func readAll(t testing.TB, f vfs.File) []byte {
	t.Helper()
	st, err := f.Stat()
	if err != nil {
		t.Fatalf("Stat: %v", err)
	}
	b := make([]byte, st.Size())
	n, err := f.ReadAt(b, 0)
	if n != len(b) || (err != nil && !errors.Is(err, io.EOF)) {
		t.Fatalf("ReadAt(%d bytes, 0) = %d, %v", len(b), n, err)
	}
	// Reading past the end gives io.EOF.
	if n, err := f.ReadAt(make([]byte, 1), st.Size()); n != 0 || !errors.Is(err, io.EOF) {
		t.Fatalf("ReadAt at size %d = %d, %v; want 0, io.EOF", st.Size(), n, err)
	}
	return b
}

func readFile(t testing.TB, fs vfs.FS, name string) []byte {
	t.Helper()
	f, err := fs.Open(name)
	if err != nil {
		t.Fatalf("Open(%s): %v", name, err)
	}
	defer closeFile(t, f)
	return readAll(t, f)
}

func expectContent(t testing.TB, fs vfs.FS, name string, want []byte) {
	t.Helper()
	got := readFile(t, fs, name)
	if !bytes.Equal(got, want) {
		t.Fatalf("%s: %d bytes, want %d; first difference at %d", name, len(got), len(want), firstDiff(got, want))
	}
	st, err := fs.Stat(name)
	if err != nil || st.Size() != int64(len(want)) || st.IsDir() {
		t.Fatalf("Stat(%s) = %v, %v; want a %d-byte file", name, st, err, len(want))
	}
}

func firstDiff(a, b []byte) int {
	for i := range min(len(a), len(b)) {
		if a[i] != b[i] {
			return i
		}
	}
	return min(len(a), len(b))
}

// expectTree checks that the file system holds exactly the files and directories given.
func expectTree(t testing.TB, fs *FS, files map[string][]byte, dirs []string) {
	t.Helper()
	var gotFiles, gotDirs []string
	var walk func(dir string)
	walk = func(dir string) {
		names, err := fs.List(dir)
		if err != nil {
			t.Fatalf("List(%s): %v", dir, err)
		}
		for _, n := range names {
			p := path.Join(dir, n)
			st, err := fs.Stat(p)
			if err != nil {
				t.Fatalf("Stat(%s) of a listed name: %v", p, err)
			}
			if st.IsDir() {
				gotDirs = append(gotDirs, p)
				walk(p)
			} else {
				gotFiles = append(gotFiles, p)
			}
		}
	}
	walk("/")
	var wantFiles []string
	for p := range files {
		wantFiles = append(wantFiles, p)
	}
	wantDirs := slices.Clone(dirs)
	for _, s := range [][]string{gotFiles, gotDirs, wantFiles, wantDirs} {
		slices.Sort(s)
	}
	if !slices.Equal(gotFiles, wantFiles) || !slices.Equal(gotDirs, wantDirs) {
		t.Fatalf("tree: files %q dirs %q; want files %q dirs %q", gotFiles, gotDirs, wantFiles, wantDirs)
	}
	for p, data := range files {
		expectContent(t, fs, p, data)
	}
}

// op is one write in a write-pattern test: at off (or appended when off < 0).
type op struct {
	off  int64
	n    int
	sync bool
}

// TestWriteRead writes patterns of writes through one handle and checks, after every write,
// that ReadAt and Stat see exactly what a byte-slice model holds (data still buffered
// included), then after Sync, Close and a remount.
func TestWriteRead(t *testing.T) {
	appends := func(n, size int) []op {
		var ops []op
		for range n {
			ops = append(ops, op{off: -1, n: size})
		}
		return ops
	}
	tests := []struct {
		name string
		ops  []op
	}{
		{"empty", nil},
		{"one-byte", []op{{-1, 1, false}}},
		{"unaligned-appends", appends(60, 1000)},
		{"block-appends", appends(40, 4096)},
		{"appends-crossing-tail-buffer", appends(7, 300<<10)},
		{"one-write-of-several-buffers", []op{{-1, 3<<20 + 123, false}}},
		{"synced-unaligned-appends", []op{{-1, 5000, true}, {-1, 3, true}, {-1, 70000, true}, {-1, 1, false}}},
		{"rewrite-inside-buffer", []op{{-1, 10000, false}, {50, 100, false}, {4090, 20, false}, {-1, 100, false}}},
		{"rewrite-synced-prefix", []op{{-1, 3*4096 + 17, true}, {4090, 10, false}, {0, 1, false}, {8000, 5000, false}}},
		{"rewrite-synced-then-append", []op{{-1, 2 << 20, true}, {100, 200, true}, {-1, 300, false}}},
		{"rewrite-across-buffer-end", []op{{-1, 3 << 20, true}, {1<<20 - 100, 200, false}, {(1 << 20) + 5000, 70000, false}}},
		{"rewrite-whole-file", []op{{-1, 20000, true}, {0, 20000, false}}},
		{"rewrite-past-end", []op{{-1, 9000, true}, {8000, 3000, false}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, fsTestRegion, Options{Unit: 4096, JournalSize: 256 << 10})
			f, err := e.fs.OpenReadWrite("data", wcu)
			if err != nil {
				t.Fatal(err)
			}
			var model []byte
			for i, o := range tc.ops {
				p := pattern(o.n, uint64(i+1))
				var n int
				if o.off < 0 {
					n, err = f.Write(bytes.Clone(p))
					model = append(model, p...)
				} else {
					n, err = f.WriteAt(bytes.Clone(p), o.off)
					if end := int(o.off) + o.n; end > len(model) {
						model = append(model, make([]byte, end-len(model))...)
					}
					copy(model[o.off:], p)
				}
				if err != nil || n != o.n {
					t.Fatalf("op %d %+v: %d, %v", i, o, n, err)
				}
				if o.sync {
					syncFile(t, f)
				}
				if got := readAll(t, f); !bytes.Equal(got, model) {
					t.Fatalf("after op %d %+v: read %d bytes, want %d, first difference at %d", i, o, len(got), len(model), firstDiff(got, model))
				}
			}
			syncFile(t, f)
			if got := readAll(t, f); !bytes.Equal(got, model) {
				t.Fatalf("after Sync: first difference at %d", firstDiff(got, model))
			}
			mustCheck(t, e.fs)
			// What Sync made durable survives a crash.
			e.crashRemount()
			expectContent(t, e.fs, "data", model)
			closeFile(t, f)
			e.remount()
			expectContent(t, e.fs, "data", model)
		})
	}
}

// TestReadWriteHandles checks Read and Write positions, several handles on one file, and the
// errors of closed and read-only handles.
func TestReadWriteHandles(t *testing.T) {
	e := newEnv(t, fsTestRegion, Options{})
	fs := e.fs
	data := pattern(10000, 7)
	f := create(t, fs, "f")
	write(t, f, data[:3000])
	r, err := fs.Open("f")
	if err != nil {
		t.Fatal(err)
	}
	// A second handle sees data the first one has only buffered.
	buf := make([]byte, 2000)
	if n, err := io.ReadFull(r, buf); n != 2000 || err != nil || !bytes.Equal(buf, data[:2000]) {
		t.Fatalf("Read: %d, %v", n, err)
	}
	write(t, f, data[3000:])
	rest, err := io.ReadAll(r)
	if err != nil || !bytes.Equal(rest, data[2000:]) {
		t.Fatalf("ReadAll: %d bytes, %v", len(rest), err)
	}
	if _, err := r.Write([]byte("x")); !errors.Is(err, os.ErrPermission) {
		t.Fatalf("Write on a read-only handle: %v, want ErrPermission", err)
	}
	if _, err := r.ReadAt(buf, -1); !errors.Is(err, ErrInvalid) {
		t.Fatalf("ReadAt(-1): %v, want ErrInvalid", err)
	}
	closeFile(t, r)
	// Close writes the data out but records no size: only Sync makes it durable.
	syncFile(t, f)
	closeFile(t, f)
	for name, fn := range map[string]func() error{
		"Close":   f.Close,
		"Sync":    f.Sync,
		"ReadAt":  func() error { _, err := f.ReadAt(buf, 0); return err },
		"WriteAt": func() error { _, err := f.WriteAt(buf, 0); return err },
		"SyncTo":  func() error { _, err := f.SyncTo(10); return err },
	} {
		if err := fn(); !errors.Is(err, ErrClosed) {
			t.Errorf("%s on a closed file: %v, want ErrClosed", name, err)
		}
	}
	if got := readFile(t, fs, "f"); !bytes.Equal(got, data) {
		t.Fatalf("content after Close: first difference at %d", firstDiff(got, data))
	}
	e.remount()
	expectContent(t, e.fs, "f", data)
}

// TestExtents makes files grow in turns, so each spans several extents, and checks their data.
func TestExtents(t *testing.T) {
	e := newEnv(t, fsTestRegion, Options{Unit: 4096, JournalSize: 64 << 10})
	const nFiles, rounds = 3, 12
	files := make([]vfs.File, nFiles)
	models := make([][]byte, nFiles)
	for i := range files {
		files[i] = create(t, e.fs, fmt.Sprintf("f%d", i))
	}
	for r := range rounds {
		for i, f := range files {
			p := pattern(3000+r*977, uint64(100*i+r))
			write(t, f, p)
			syncFile(t, f)
			models[i] = append(models[i], p...)
		}
	}
	e.fs.mu.Lock()
	for i := range files {
		ino := e.fs.mu.st.names[fmt.Sprintf("/f%d", i)]
		if k := len(e.fs.mu.st.inodes[ino].extents); k < 2 {
			t.Errorf("f%d has %d extents, want several", i, k)
		}
	}
	e.fs.mu.Unlock()
	for i, f := range files {
		if got := readAll(t, f); !bytes.Equal(got, models[i]) {
			t.Fatalf("f%d: first difference at %d", i, firstDiff(got, models[i]))
		}
		closeFile(t, f)
	}
	if r := mustCheck(t, e.fs); r.Extents < 2*nFiles {
		t.Errorf("Check counts %d extents, want at least %d", r.Extents, 2*nFiles)
	}
	e.remount()
	want := map[string][]byte{}
	for i := range files {
		want[fmt.Sprintf("/f%d", i)] = models[i]
	}
	expectTree(t, e.fs, want, nil)
}

// TestNamespace runs name operations, checks each result and error kind, and then that the
// names survive a remount.
func TestNamespace(t *testing.T) {
	e := newEnv(t, fsTestRegion, Options{})
	fs := e.fs
	a, b, c := pattern(5000, 1), pattern(7000, 2), pattern(100, 3)
	writeFile(t, fs, "a", a)
	writeFile(t, fs, "b", b)
	if err := fs.MkdirAll("db/wal/x", 0o755); err != nil {
		t.Fatal(err)
	}
	if err := fs.MkdirAll("/db/wal", 0o755); err != nil {
		t.Fatalf("MkdirAll of an existing directory: %v", err)
	}
	writeFile(t, fs, "db/wal/x/c", c)

	steps := []struct {
		name    string
		do      func() error
		wantErr error
	}{
		{"rename over existing", func() error { return fs.Rename("a", "b") }, nil},
		{"rename missing", func() error { return fs.Rename("a", "z") }, os.ErrNotExist},
		{"rename into missing dir", func() error { return fs.Rename("b", "nodir/b") }, os.ErrNotExist},
		{"rename a directory", func() error { return fs.Rename("db/wal", "db/wal2") }, ErrUnsupported},
		{"rename onto a directory", func() error { return fs.Rename("b", "db") }, os.ErrExist},
		{"link", func() error { return fs.Link("b", "db/b-link") }, nil},
		{"link onto existing", func() error { return fs.Link("b", "db/wal/x/c") }, os.ErrExist},
		{"link missing", func() error { return fs.Link("nothing", "n2") }, os.ErrNotExist},
		{"link into missing dir", func() error { return fs.Link("b", "nodir/x") }, os.ErrNotExist},
		{"remove missing", func() error { return fs.Remove("nothing") }, os.ErrNotExist},
		{"remove non-empty dir", func() error { return fs.Remove("db/wal") }, os.ErrExist},
		{"remove root", func() error { return fs.Remove("/") }, os.ErrNotExist},
		{"mkdir under a file", func() error { return fs.MkdirAll("b/sub", 0o755) }, os.ErrExist},
		{"mkdir empty dir", func() error { return fs.MkdirAll("empty/inner", 0o755) }, nil},
		{"remove empty dir", func() error { return fs.Remove("empty/inner") }, nil},
		{"remove all missing", func() error { return fs.RemoveAll("nothing/at/all") }, nil},
		{"make tree", func() error { return fs.MkdirAll("tmp/1/2", 0o755) }, nil},
		{"file in tree", func() error {
			f, err := fs.Create("tmp/1/2/f", wcu)
			if err != nil {
				return err
			}
			return f.Close()
		}, nil},
		{"remove all tree", func() error { return fs.RemoveAll("tmp") }, nil},
		{"create in missing dir", func() error { _, err := fs.Create("nodir/f", wcu); return err }, os.ErrNotExist},
		{"create over a directory", func() error { _, err := fs.Create("db", wcu); return err }, ErrInvalid},
		{"open missing", func() error { _, err := fs.Open("nothing"); return err }, os.ErrNotExist},
		{"open missing dir", func() error { _, err := fs.OpenDir("nodir"); return err }, os.ErrNotExist},
		{"stat missing", func() error { _, err := fs.Stat("nothing"); return err }, os.ErrNotExist},
		{"list missing", func() error { _, err := fs.List("nodir"); return err }, os.ErrNotExist},
		{"list a file", func() error { _, err := fs.List("b"); return err }, os.ErrNotExist},
	}
	for _, s := range steps {
		err := s.do()
		switch {
		case s.wantErr == nil && err != nil:
			t.Fatalf("%s: %v", s.name, err)
		case s.wantErr != nil && !errors.Is(err, s.wantErr):
			t.Fatalf("%s: error %v, want one wrapping %v", s.name, err, s.wantErr)
		}
	}
	if _, err := fs.Stat("a"); !os.IsNotExist(err) {
		t.Fatalf("renamed-away name: os.IsNotExist(%v) = false", err)
	}
	if st, err := fs.Stat("db/wal"); err != nil || !st.IsDir() || st.Name() != "wal" {
		t.Fatalf("Stat(db/wal) = %v, %v", st, err)
	}
	if names, err := fs.List("db"); err != nil || !slices.Equal(names, []string{"b-link", "wal"}) {
		t.Fatalf("List(db) = %q, %v", names, err)
	}
	if names, err := fs.List("/"); err != nil || !slices.Equal(names, []string{"b", "db", "empty"}) {
		t.Fatalf("List(/) = %q, %v", names, err)
	}
	wantFiles := map[string][]byte{"/b": a, "/db/b-link": a, "/db/wal/x/c": c}
	wantDirs := []string{"/db", "/db/wal", "/db/wal/x", "/empty"}
	expectTree(t, fs, wantFiles, wantDirs)
	// The renamed-over b and the removed tree's file are gone; a hard link keeps its data after
	// the other name goes.
	if err := fs.Remove("b"); err != nil {
		t.Fatal(err)
	}
	delete(wantFiles, "/b")
	expectTree(t, fs, wantFiles, wantDirs)
	r := mustCheck(t, fs)
	if r.Files != 2 || r.Inodes != 2 || r.Dirs != 5 {
		t.Fatalf("Check: %d files, %d inodes, %d dirs; want 2, 2, 5\n%s", r.Files, r.Inodes, r.Dirs, r)
	}

	// A directory sync makes the names durable without a Close.
	syncDir(t, fs, "/")
	e.crashRemount()
	expectTree(t, e.fs, wantFiles, wantDirs)
	e.remount()
	expectTree(t, e.fs, wantFiles, wantDirs)
}

// TestUnsyncedNamesAreLostAtCrash: names change in memory at once but are durable only after a
// journal flush.
func TestUnsyncedNamesAreLostAtCrash(t *testing.T) {
	e := newEnv(t, fsTestRegion, Options{})
	a := pattern(100, 1)
	writeFile(t, e.fs, "a", a)
	if err := e.fs.Rename("a", "b"); err != nil {
		t.Fatal(err)
	}
	if err := e.fs.MkdirAll("d", 0o755); err != nil {
		t.Fatal(err)
	}
	e.crashRemount()
	expectTree(t, e.fs, map[string][]byte{"/a": a}, nil)
}

// TestOpenReadWriteAndReuse covers OpenReadWrite (creating, and keeping an existing file) and
// ReuseForWrite, which keeps the recycled file's size and the old content past what is rewritten.
func TestOpenReadWriteAndReuse(t *testing.T) {
	e := newEnv(t, fsTestRegion, Options{})
	fs := e.fs
	f, err := fs.OpenReadWrite("new", wcu)
	if err != nil {
		t.Fatalf("OpenReadWrite of a missing file: %v", err)
	}
	write(t, f, []byte("hello"))
	syncFile(t, f)
	closeFile(t, f)
	f, err = fs.OpenReadWrite("new", wcu)
	if err != nil {
		t.Fatal(err)
	}
	if got := readAll(t, f); string(got) != "hello" {
		t.Fatalf("OpenReadWrite of an existing file reads %q", got)
	}
	if _, err := f.WriteAt([]byte("J"), 0); err != nil {
		t.Fatal(err)
	}
	syncFile(t, f)
	closeFile(t, f)

	old := pattern(3*4096+1000, 9)
	writeFile(t, fs, "000001.old", old)
	usedBefore := fs.Usage().Free
	w, err := fs.ReuseForWrite("000001.old", "000002.new", wcu)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := fs.Stat("000001.old"); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("old name after ReuseForWrite: %v", err)
	}
	prefix := pattern(5000, 10)
	write(t, w, prefix)
	want := append(bytes.Clone(prefix), old[len(prefix):]...)
	check := func(when string) {
		t.Helper()
		if got := readAll(t, w); !bytes.Equal(got, want) {
			t.Fatalf("%s: read %d bytes, want %d, first difference at %d", when, len(got), len(want), firstDiff(got, want))
		}
	}
	check("before Sync")
	syncFile(t, w)
	check("after Sync")
	if free := fs.Usage().Free; free != usedBefore {
		t.Errorf("rewriting inside the recycled file changed free space from %d to %d", usedBefore, free)
	}
	syncDir(t, fs, "/")
	e.crashRemount()
	expectTree(t, e.fs, map[string][]byte{"/new": []byte("Jello"), "/000002.new": want}, nil)
	closeFile(t, w)
	e.remount()
	expectTree(t, e.fs, map[string][]byte{"/new": []byte("Jello"), "/000002.new": want}, nil)
}

func TestLock(t *testing.T) {
	e := newEnv(t, fsTestRegion, Options{})
	l, err := e.fs.Lock("LOCK")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.fs.Lock("/LOCK"); !errors.Is(err, os.ErrExist) {
		t.Fatalf("second Lock: %v, want ErrExist", err)
	}
	l2, err := e.fs.Lock("OTHER")
	if err != nil {
		t.Fatalf("Lock of another name: %v", err)
	}
	closeFile(t, l)
	l, err = e.fs.Lock("LOCK")
	if err != nil {
		t.Fatalf("Lock after release: %v", err)
	}
	closeFile(t, l)
	closeFile(t, l2)
	if err := e.fs.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := e.fs.Lock("LOCK"); !errors.Is(err, ErrClosed) {
		t.Fatalf("Lock after Close: %v, want ErrClosed", err)
	}
	if err := e.fs.Close(); !errors.Is(err, ErrClosed) {
		t.Fatalf("second Close: %v, want ErrClosed", err)
	}
	if _, err := e.fs.Create("x", wcu); !errors.Is(err, ErrClosed) {
		t.Fatalf("Create after Close: %v, want ErrClosed", err)
	}
}

func TestDiskUsage(t *testing.T) {
	e := newEnv(t, fsTestRegion, Options{Unit: 4096})
	u0, err := e.fs.GetDiskUsage("/")
	if err != nil {
		t.Fatal(err)
	}
	if u0.TotalBytes != uint64(fsTestRegion.Length) || u0.UsedBytes+u0.AvailBytes != u0.TotalBytes {
		t.Fatalf("usage %+v for a %d-byte region", u0, fsTestRegion.Length)
	}
	r := mustCheck(t, e.fs)
	if r.UsedBytes != int64(u0.UsedBytes) || r.FreeBytes != int64(u0.AvailBytes) {
		t.Fatalf("Check says %d used, %d free; GetDiskUsage %+v", r.UsedBytes, r.FreeBytes, u0)
	}
	writeFile(t, e.fs, "f", pattern(1<<20, 1))
	u1, err := e.fs.GetDiskUsage("/")
	if err != nil {
		t.Fatal(err)
	}
	if u1.AvailBytes > u0.AvailBytes-1<<20 || u1.UsedBytes+u1.AvailBytes != u1.TotalBytes {
		t.Fatalf("after a 1 MiB file: usage %+v, before %+v", u1, u0)
	}
	if err := e.fs.Remove("f"); err != nil {
		t.Fatal(err)
	}
	syncDir(t, e.fs, "/")
	if u2, err := e.fs.GetDiskUsage("/"); err != nil || u2 != u0 {
		t.Fatalf("after removing it: usage %+v, %v; want %+v", u2, err, u0)
	}
}

// TestCompaction syncs small changes until the journal has been compacted several times, then
// checks that the generation advanced and that everything survives a crash and a remount.
func TestCompaction(t *testing.T) {
	e := newEnv(t, fsTestRegion, Options{Unit: 4096, JournalSize: 64 << 10})
	start := mustCheck(t, e.fs)
	files := map[string][]byte{}
	const live = 30
	for i := range 4000 {
		name := fmt.Sprintf("/a-file-name-long-enough-to-fill-the-journal-sooner-%03d", i%live)
		if i%7 == 0 {
			if err := e.fs.Remove(name); err != nil && !errors.Is(err, os.ErrNotExist) {
				t.Fatal(err)
			}
			delete(files, name)
			syncDir(t, e.fs, "/")
			continue
		}
		data := pattern(1+i%5000, uint64(i))
		writeFile(t, e.fs, name, data)
		files[name] = data
	}
	end := mustCheck(t, e.fs)
	if end.Generation < start.Generation+3 || end.Epoch <= start.Epoch {
		t.Fatalf("generation %d -> %d, epoch %#x -> %#x: want several compactions", start.Generation, end.Generation, start.Epoch, end.Epoch)
	}
	if end.Files != len(files) {
		t.Fatalf("Check counts %d files, want %d", end.Files, len(files))
	}
	e.crashRemount()
	expectTree(t, e.fs, files, nil)
	after := mustCheckDev(t, e.dev, e.region)
	if after.Generation != end.Generation+1 {
		t.Errorf("after a remount the generation is %d, want %d", after.Generation, end.Generation+1)
	}
	e.remount()
	expectTree(t, e.fs, files, nil)
}

// TestNoSpace fills the region and checks ENOSPC, that the file system stays usable, and that
// removing files makes space again once a directory sync made the removal durable.
func TestNoSpace(t *testing.T) {
	region := Extent{Offset: 1 << 20, Length: 4 << 20}
	e := newEnv(t, region, Options{Unit: 4096, JournalSize: 128 << 10})
	fs := e.fs
	chunk := pattern(64<<10, 1)
	var fillErr error
	var written int64
	for i := 0; fillErr == nil; i++ {
		name := fmt.Sprintf("fill%d", i)
		f := create(t, fs, name)
		for range 16 {
			if _, fillErr = f.Write(bytes.Clone(chunk)); fillErr != nil {
				break
			}
			if fillErr = f.Sync(); fillErr != nil {
				break
			}
			written += int64(len(chunk))
		}
		if err := f.Close(); err != nil && fillErr == nil {
			t.Fatalf("Close: %v", err)
		}
		if written > region.Length {
			t.Fatalf("wrote %d bytes into a %d-byte region without ENOSPC", written, region.Length)
		}
	}
	if !errors.Is(fillErr, syscall.ENOSPC) || !errors.Is(fillErr, ErrNoSpace) {
		t.Fatalf("filling the region: %v, want ENOSPC", fillErr)
	}
	if written < region.Length/2 {
		t.Fatalf("ENOSPC after only %d bytes of a %d-byte region", written, region.Length)
	}
	// Full, but still usable: names and directory syncs work, and a new file's data does not fit.
	f := create(t, fs, "more")
	_, err := f.Write(bytes.Clone(chunk))
	if err == nil {
		err = f.Sync()
	}
	if !errors.Is(err, syscall.ENOSPC) {
		t.Fatalf("writing to a full region: %v, want ENOSPC", err)
	}
	if err := f.Close(); !errors.Is(err, syscall.ENOSPC) {
		t.Fatalf("closing a file whose data does not fit: %v, want ENOSPC", err)
	}
	if err := fs.MkdirAll("still/works", 0o755); err != nil {
		t.Fatal(err)
	}
	syncDir(t, fs, "/")
	mustCheck(t, fs)
	freeFull := fs.Usage().Free
	for i := range 3 {
		if err := fs.Remove(fmt.Sprintf("fill%d", i)); err != nil {
			t.Fatal(err)
		}
	}
	if free := fs.Usage().Free; free != freeFull {
		t.Fatalf("space freed before the removal is durable: %d -> %d", freeFull, free)
	}
	syncDir(t, fs, "/")
	if free := fs.Usage().Free; free < freeFull+3<<20 {
		t.Fatalf("after removing 3 MiB of files and a directory sync, %d bytes free (was %d)", free, freeFull)
	}
	data := pattern(1<<20, 2)
	writeFile(t, fs, "after", data)
	e.remount()
	expectContent(t, e.fs, "after", data)
}

// TestUnlinkedOpenFile: a removed file stays readable (and writable) through its open handles
// until the last one closes; its space is freed only after that and a journal flush, and nothing
// about it survives a remount.
func TestUnlinkedOpenFile(t *testing.T) {
	tests := []struct {
		name   string
		unlink func(t *testing.T, fs *FS) error
	}{
		{"remove", func(_ *testing.T, fs *FS) error { return fs.Remove("f") }},
		{"rename-over", func(t *testing.T, fs *FS) error { writeFile(t, fs, "g", []byte("g")); return fs.Rename("g", "f") }},
		{"create-over", func(_ *testing.T, fs *FS) error {
			f, err := fs.Create("f", wcu)
			if err != nil {
				return err
			}
			return f.Close()
		}},
		{"remove-all", func(_ *testing.T, fs *FS) error { return fs.RemoveAll("f") }},
	}
	for _, tc := range tests {
		for _, writeAfter := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s/write-after-unlink=%v", tc.name, writeAfter), func(t *testing.T) {
				e := newEnv(t, fsTestRegion, Options{Unit: 4096})
				fs := e.fs
				data := pattern(200<<10, 1)
				w := create(t, fs, "f")
				write(t, w, data)
				syncFile(t, w)
				r, err := fs.Open("f")
				if err != nil {
					t.Fatal(err)
				}
				syncDir(t, fs, "/")
				free0, synced := fs.Usage().Free, int64(len(data))
				if err := tc.unlink(t, fs); err != nil {
					t.Fatal(err)
				}
				syncDir(t, fs, "/")
				if writeAfter {
					more := pattern(300<<10, 2)
					write(t, w, more)
					syncFile(t, w)
					data = append(data, more...)
				}
				if got := readAll(t, r); !bytes.Equal(got, data) {
					t.Fatalf("unlinked file reads differently: first difference at %d", firstDiff(got, data))
				}
				mustCheck(t, fs)
				closeFile(t, w)
				if got := readAll(t, r); !bytes.Equal(got, data) {
					t.Fatalf("unlinked file after closing the writer: first difference at %d", firstDiff(got, data))
				}
				syncDir(t, fs, "/")
				if free := fs.Usage().Free; free > free0 {
					t.Fatalf("space of an open unlinked file freed: %d -> %d", free0, free)
				}
				// The journal as it is now must replay: records about the unlinked file are
				// harmless.
				mustCheckDev(t, e.dev, e.region)
				closeFile(t, r)
				mustCheck(t, fs)
				syncDir(t, fs, "/")
				// free0 was measured with the synced part allocated; what was allocated since is
				// freed too. (A rename-over keeps g's block.)
				if free := fs.Usage().Free; free < free0+synced-4096 {
					t.Fatalf("after the last Close and a journal flush %d bytes free, want at least %d", free, free0+synced-4096)
				}
				e.crashRemount()
				if st, err := e.fs.Stat("f"); err == nil && st.Size() == int64(len(data)) {
					t.Fatalf("the unlinked file is back after a remount: %v", st)
				}
				e.remount()
			})
		}
	}
}

// TestFormatMountErrors covers the arguments Format and Mount refuse.
func TestFormatMountErrors(t *testing.T) {
	dev := blockdev.NewMem(16<<20, 4096)
	for _, tc := range []struct {
		name   string
		region Extent
		o      Options
	}{
		{"unit-not-power-of-two", Extent{Offset: 0, Length: 8 << 20}, Options{Unit: 12288}},
		{"unit-too-small", Extent{Offset: 0, Length: 8 << 20}, Options{Unit: 2048}},
		{"region-misaligned", Extent{Offset: 4096, Length: 8 << 20}, Options{}},
		{"region-outside-device", Extent{Offset: 8 << 20, Length: 16 << 20}, Options{}},
		{"region-too-small", Extent{Offset: 0, Length: 1 << 20}, Options{JournalSize: 1 << 20}},
		{"negative-journal", Extent{Offset: 0, Length: 8 << 20}, Options{JournalSize: -1}},
	} {
		if err := Format(dev, tc.region, tc.o); !errors.Is(err, ErrInvalid) {
			t.Errorf("%s: Format: %v, want ErrInvalid", tc.name, err)
		}
	}
	region := Extent{Offset: 0, Length: 8 << 20}
	if _, err := Mount(dev, region, Options{}); !errors.Is(err, ErrNotFormatted) {
		t.Fatalf("Mount of a blank region: %v, want ErrNotFormatted", err)
	}
	if _, err := Check(dev, region, Options{}); !errors.Is(err, ErrNotFormatted) || errors.Is(err, ErrCorrupt) {
		t.Fatalf("Check of a blank region: %v, want ErrNotFormatted", err)
	}
	owner := Options{UUID: [16]byte{1, 2, 3}, JournalSize: 1 << 20}
	if err := Format(dev, region, owner); err != nil {
		t.Fatal(err)
	}
	if _, err := Mount(dev, region, Options{UUID: [16]byte{4}}); !errors.Is(err, ErrInvalid) {
		t.Fatalf("Mount with another owner: %v, want ErrInvalid", err)
	}
	if _, err := Mount(dev, Extent{Offset: 0, Length: 16 << 20}, Options{}); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("Mount of another region: %v, want ErrCorrupt", err)
	}
	fs := mountT(t, dev, region, owner)
	if err := fs.Close(); err != nil {
		t.Fatal(err)
	}
	mustCheckDev(t, dev, region)
}

// TestConcurrent runs writers, a renamer and Check at once (for the race detector and the lock
// order), then checks every file's content after a remount.
func TestConcurrent(t *testing.T) {
	e := newEnv(t, fsTestRegion, Options{Unit: 4096, JournalSize: 64 << 10})
	fs := e.fs
	const writers, rounds = 4, 40
	results := make([]map[string][]byte, writers)
	errc := make(chan error, writers+2)
	done := make(chan struct{})
	for w := range writers {
		go func() {
			files := map[string][]byte{}
			for r := range rounds {
				name := fmt.Sprintf("/w%d-%03d", w, r%10)
				data := pattern(100+(r*7919+w*104729)%70000, uint64(w*1000+r))
				f, err := fs.Create(name, wcu)
				if err != nil {
					errc <- err
					return
				}
				for off := 0; off < len(data); off += 10000 {
					if _, err := f.Write(bytes.Clone(data[off:min(off+10000, len(data))])); err != nil {
						errc <- err
						return
					}
				}
				if err := f.Sync(); err != nil {
					errc <- err
					return
				}
				buf := make([]byte, len(data))
				if _, err := f.ReadAt(buf, 0); err != nil && !errors.Is(err, io.EOF) {
					errc <- err
					return
				}
				if !bytes.Equal(buf, data) {
					errc <- fmt.Errorf("%s reads differently at %d", name, firstDiff(buf, data))
					return
				}
				if err := f.Close(); err != nil {
					errc <- err
					return
				}
				files[name] = data
			}
			results[w] = files
			errc <- nil
		}()
	}
	go func() { // links, removes and directory syncs
		for i := 0; ; i++ {
			select {
			case <-done:
				errc <- nil
				return
			default:
			}
			name := fmt.Sprintf("/tmp-%d", i)
			f, err := fs.Create(name, wcu)
			if err == nil {
				err = f.Close()
			}
			if err == nil {
				err = fs.Link(name, name+".link")
			}
			if err == nil {
				err = fs.RemoveAll(name)
			}
			if err == nil {
				err = fs.Remove(name + ".link")
			}
			if err == nil {
				var d vfs.File
				if d, err = fs.OpenDir("/"); err == nil {
					err = d.Sync()
				}
			}
			if err != nil {
				errc <- err
				return
			}
		}
	}()
	go func() { // Check, all along
		for {
			select {
			case <-done:
				errc <- nil
				return
			default:
			}
			if r, err := fs.Check(); err != nil {
				errc <- fmt.Errorf("%w\n%s", err, r)
				return
			}
		}
	}()
	for range writers {
		if err := <-errc; err != nil {
			close(done)
			t.Fatal(err)
		}
	}
	close(done)
	for range 2 {
		if err := <-errc; err != nil {
			t.Fatal(err)
		}
	}
	want := map[string][]byte{}
	for _, files := range results {
		for name, data := range files {
			want[name] = data
		}
	}
	e.remount()
	expectTree(t, e.fs, want, nil)
}

// fillWithNames fills region's data space, then creates files with long names (no data) and
// syncs the directory after each until a sync fails; it returns that error.
func fillWithNames(t *testing.T, fs *FS) error {
	t.Helper()
	for i := 0; ; i++ {
		f := create(t, fs, fmt.Sprintf("fill%d", i))
		_, err := f.Write(pattern(64<<10, 1))
		if err == nil {
			err = f.Sync()
		}
		if cerr := f.Close(); err == nil && cerr != nil {
			t.Fatal(cerr)
		}
		if err != nil {
			if !errors.Is(err, syscall.ENOSPC) {
				t.Fatal(err)
			}
			break
		}
	}
	long := strings.Repeat("n", 200)
	for i := range 5000 {
		f, err := fs.Create(fmt.Sprintf("%s-%d", long, i), vfs.WriteCategoryUnspecified)
		if err != nil {
			return err
		}
		closeFile(t, f)
		d, err := fs.OpenDir("/")
		if err != nil {
			t.Fatal(err)
		}
		if err := d.Sync(); err != nil {
			return err
		}
	}
	t.Fatal("5000 names fit")
	return nil
}

// TestJournalNoSpace: when the data space is full, new names are refused with ENOSPC (which
// pebble recognizes), not ErrFailed, before they would leave no room to compact the journal.
func TestJournalNoSpace(t *testing.T) {
	region := Extent{Offset: 1 << 20, Length: 2 << 20}
	e := newEnv(t, region, Options{Unit: 4096, JournalSize: 64 << 10})
	err := fillWithNames(t, e.fs)
	if !errors.Is(err, syscall.ENOSPC) || !errors.Is(err, ErrNoSpace) || errors.Is(err, ErrFailed) {
		t.Fatalf("names in a full region: %v, want ENOSPC and not ErrFailed", err)
	}
	mustCheck(t, e.fs)
}

// TestFullRegionStaysMountable: a region filled with data and then with names until they are
// refused still compacts its journal: removals become durable and it mounts again.
func TestFullRegionStaysMountable(t *testing.T) {
	region := Extent{Offset: 1 << 20, Length: 2 << 20}
	e := newEnv(t, region, Options{Unit: 4096, JournalSize: 64 << 10})
	if err := fillWithNames(t, e.fs); err == nil {
		t.Fatal("no error")
	}
	for i := range 10 {
		if err := e.fs.Remove(fmt.Sprintf("fill%d", i)); err != nil {
			t.Fatal(err)
		}
	}
	syncDir(t, e.fs, "/")
	e.crashRemount()
}

// TestMountWithoutRoomToCompact: a region whose durable state leaves no room for a new journal
// (only possible from outside the API: here an inode is given every free unit directly) still
// mounts: Mount keeps the journal and erases it past its valid end, later changes append to it,
// and it mounts again with everything.
func TestMountWithoutRoomToCompact(t *testing.T) {
	region := Extent{Offset: 1 << 20, Length: 2 << 20}
	e := newEnv(t, region, Options{Unit: 4096, JournalSize: 64 << 10})
	f := create(t, e.fs, "hog")
	closeFile(t, f)
	fs := e.fs
	fs.mu.Lock()
	ino := fs.mu.st.names["/hog"]
	exts, err := fs.mu.alloc.Allocate(fs.mu.alloc.Free())
	if err != nil {
		fs.mu.Unlock()
		t.Fatal(err)
	}
	for _, x := range exts {
		if _, err := fs.logLocked(record{kind: opAddExtent, ino: ino, off: uint64(x.Offset + region.Offset), n: uint64(x.Length)}); err != nil {
			fs.mu.Unlock()
			t.Fatal(err)
		}
	}
	fs.mu.Unlock()
	syncDir(t, fs, "/")
	gen := func() uint64 { e.fs.mu.Lock(); defer e.fs.mu.Unlock(); return e.fs.mu.sb.gen }
	before := gen()
	e.remount()
	if gen() != before {
		t.Fatalf("generation %d after a mount with no free space, want %d (no compaction)", gen(), before)
	}
	// Removing the hog appends to the old journal; its space comes back after the sync.
	if err := e.fs.Remove("hog"); err != nil {
		t.Fatal(err)
	}
	syncDir(t, e.fs, "/")
	if u := e.fs.Usage(); u.Free == 0 {
		t.Fatalf("no space back after removing the hog: %+v", u)
	}
	e.crashRemount()
	if _, err := e.fs.Stat("hog"); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("hog after remount: %v", err)
	}
	if gen() == before {
		t.Fatal("no compaction once there was room again")
	}
}

// TestWALRecordedToItsSpace: a WAL (NNNNNN.log) is recorded as long as its space, so syncs that
// stay inside it write no journal record; after a crash it reads back with what was synced at
// its start and its space's old content after (which pebble's reader takes for the log's end).
func TestWALRecordedToItsSpace(t *testing.T) {
	e := newEnv(t, fsTestRegion, Options{})
	w := create(t, e.fs, "000007.log")
	first := pattern(5000, 3)
	write(t, w, first)
	syncFile(t, w)
	recs := func() uint64 { e.fs.mu.Lock(); defer e.fs.mu.Unlock(); return e.fs.mu.recs }
	before := recs()
	more := pattern(9000, 4)
	write(t, w, more)
	syncFile(t, w)
	if got := recs(); got != before {
		t.Fatalf("a sync inside the WAL's space wrote %d records", got-before)
	}
	if st, err := w.Stat(); err != nil || st.Size() != int64(len(first)+len(more)) {
		t.Fatalf("live size %v (%v), want %d", st, err, len(first)+len(more))
	}
	e.crashRemount()
	st, err := e.fs.Stat("000007.log")
	if err != nil {
		t.Fatal(err)
	}
	if st.Size() != DefaultUnit {
		t.Fatalf("WAL size after a crash %d, want its space %d", st.Size(), DefaultUnit)
	}
	r, err := e.fs.Open("000007.log")
	if err != nil {
		t.Fatal(err)
	}
	got := readAll(t, r)
	closeFile(t, r)
	if want := append(bytes.Clone(first), more...); !bytes.Equal(got[:len(want)], want) {
		t.Fatalf("synced WAL content differs at %d", firstDiff(got, want))
	}
}
