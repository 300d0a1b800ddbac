package metafs

import (
	"bytes"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"strings"
	"syscall"
	"testing"

	"github.com/cobaltstore/cobalt/storage-engine/blockdev"
	"github.com/cobaltstore/cobalt/storage-engine/blockdev/faultdev"
)

// faultEnv is a file system mounted on a faultdev over a MemDevice holding smallRegion, with
// a few synced files.
type faultEnv struct {
	dev   *faultdev.Device
	fs    *FS
	files map[string][]byte
	dirs  []string
}

func newFaultEnv(t *testing.T) *faultEnv {
	t.Helper()
	base, _ := formatted(t)
	dev, err := faultdev.New(base, faultdev.Options{})
	if err != nil {
		t.Fatal(err)
	}
	e := &faultEnv{dev: dev, fs: mountT(t, dev, smallRegion, Options{}), files: map[string][]byte{}}
	if err := e.fs.MkdirAll("db", 0o755); err != nil {
		t.Fatal(err)
	}
	e.dirs = []string{"/db"}
	for i := range 5 {
		name := fmt.Sprintf("/db/%06d.sst", i)
		e.files[name] = pattern(1000+i*30000, uint64(i))
		writeFile(t, e.fs, name, e.files[name])
	}
	syncDir(t, e.fs, "db")
	return e
}

// expectImage mounts img and checks that it holds every file and directory given (others may
// be there too) and checks clean.
func expectImage(t *testing.T, img *blockdev.MemDevice, files map[string][]byte, dirs []string) *FS {
	t.Helper()
	mustCheckDev(t, img, smallRegion)
	fs := mountT(t, img, smallRegion, Options{})
	for name, data := range files {
		expectContent(t, fs, name, data)
	}
	for _, d := range dirs {
		if st, err := fs.Stat(d); err != nil || !st.IsDir() {
			t.Fatalf("directory %s: %v, %v", d, st, err)
		}
	}
	return fs
}

// expectFailed checks that err wraps ErrFailed and want, and that the file system now refuses
// changes.
func expectFailed(t *testing.T, fs *FS, err, want error) {
	t.Helper()
	if !errors.Is(err, ErrFailed) || !errors.Is(err, want) {
		t.Fatalf("error %v, want one wrapping ErrFailed and %v", err, want)
	}
	if _, err := fs.Create("later", wcu); !errors.Is(err, ErrFailed) {
		t.Fatalf("Create after a journal failure: %v, want ErrFailed", err)
	}
	if err := fs.MkdirAll("later-dir", 0o755); !errors.Is(err, ErrFailed) {
		t.Fatalf("MkdirAll after a journal failure: %v, want ErrFailed", err)
	}
	if err := fs.Rename("db/000000.sst", "x"); !errors.Is(err, ErrFailed) {
		t.Fatalf("Rename after a journal failure: %v, want ErrFailed", err)
	}
	d, err := fs.OpenDir("/")
	if err != nil {
		t.Fatal(err)
	}
	if err := d.Sync(); !errors.Is(err, ErrFailed) {
		t.Fatalf("dir Sync after a journal failure: %v, want ErrFailed", err)
	}
	if err := fs.Close(); !errors.Is(err, ErrFailed) {
		t.Fatalf("Close after a journal failure: %v, want ErrFailed", err)
	}
}

// fillJournal makes durable changes until the journal has less than room bytes left.
func fillJournal(t *testing.T, fs *FS, room int64) {
	t.Helper()
	for i := 0; ; i++ {
		fs.mu.Lock()
		left := fs.mu.sb.journal.Length - fs.mu.jpos
		fs.mu.Unlock()
		if left < room {
			return
		}
		if err := fs.MkdirAll(fmt.Sprintf("/pad/%05d", i), 0o755); err != nil {
			t.Fatal(err)
		}
		syncDir(t, fs, "/pad")
	}
}

// TestJournalFaults fails a journal write or flush: the call returns ErrFailed, the file system
// refuses later changes, and the device mounts again with every change synced before.
func TestJournalFaults(t *testing.T) {
	tests := []struct {
		name   string
		inject func(e *faultEnv)
		sync   func(t *testing.T, e *faultEnv) error
		want   error
	}{
		{"dir-sync-journal-write", func(e *faultEnv) {
			j := e.fs.mu.sb.journal
			e.dev.Inject(faultdev.Rule{Ops: faultdev.OpWrite, Offset: j.Offset, Length: j.Length, Err: syscall.EIO})
		}, syncNewName, syscall.EIO},
		{"dir-sync-journal-flush", func(e *faultEnv) {
			e.dev.FailNext(faultdev.OpFlush, 1, syscall.EIO)
		}, syncNewName, syscall.EIO},
		{"file-sync-journal-write", func(e *faultEnv) {
			j := e.fs.mu.sb.journal
			e.dev.Inject(faultdev.Rule{Ops: faultdev.OpWrite, Offset: j.Offset, Length: j.Length, Err: syscall.EIO})
		}, syncNewFile, syscall.EIO},
		{"file-sync-journal-flush", func(e *faultEnv) {
			// The file's Sync flushes its data first, then the journal.
			e.dev.Inject(faultdev.Rule{Ops: faultdev.OpFlush, After: 1, Count: 1, Err: syscall.EIO})
		}, syncNewFile, syscall.EIO},
		{"compaction-journal-write", func(e *faultEnv) {
			e.dev.Inject(faultdev.Rule{Ops: faultdev.OpWrite, Offset: smallRegion.Offset + superReserve, Length: smallRegion.Length, Err: syscall.EIO})
		}, syncCompaction, syscall.EIO},
		{"compaction-superblock-write", func(e *faultEnv) {
			e.dev.Inject(faultdev.Rule{Ops: faultdev.OpWrite, Offset: smallRegion.Offset, Length: superReserve, Err: syscall.EIO})
		}, syncCompaction, syscall.EIO},
		{"compaction-superblock-flush", func(e *faultEnv) {
			e.dev.Inject(faultdev.Rule{Ops: faultdev.OpFlush, After: 1, Count: 1, Err: syscall.EIO})
		}, syncCompaction, syscall.EIO},
		{"journal-write-enospc", func(e *faultEnv) {
			j := e.fs.mu.sb.journal
			e.dev.Inject(faultdev.Rule{Ops: faultdev.OpWrite, Offset: j.Offset, Length: j.Length, Err: syscall.ENOSPC})
		}, syncNewName, syscall.ENOSPC},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := newFaultEnv(t)
			compaction := strings.HasPrefix(tc.name, "compaction")
			if compaction {
				fillJournal(t, e.fs, 200)
			}
			e.fs.mu.Lock()
			gen := e.fs.mu.sb.gen
			e.fs.mu.Unlock()
			tc.inject(e)
			err := tc.sync(t, e)
			expectFailed(t, e.fs, err, tc.want)
			if compaction {
				e.fs.mu.Lock()
				if e.fs.mu.sb.gen != gen {
					t.Errorf("generation %d -> %d after a failed compaction", gen, e.fs.mu.sb.gen)
				}
				e.fs.mu.Unlock()
			}
			e.dev.ClearRules()
			for _, img := range []*blockdev.MemDevice{e.dev.DurableImage(), e.dev.CurrentImage()} {
				fs := expectImage(t, img, e.files, e.dirs)
				if err := fs.Close(); err != nil {
					t.Fatal(err)
				}
			}
			rng := rand.New(rand.NewPCG(1, 2))
			for range 5 {
				img, err := e.dev.Crash(rng)
				if err != nil {
					t.Fatal(err)
				}
				fs := expectImage(t, img, e.files, e.dirs)
				if err := fs.Close(); err != nil {
					t.Fatal(err)
				}
			}
		})
	}
}

func syncNewName(t *testing.T, e *faultEnv) error {
	// A new name, not a rename: whether it survives is open, the synced names must.
	if err := e.fs.Link("db/000004.sst", "db/000004.link"); err != nil {
		t.Fatal(err)
	}
	d, err := e.fs.OpenDir("db")
	if err != nil {
		t.Fatal(err)
	}
	return d.Sync()
}

func syncNewFile(t *testing.T, e *faultEnv) error {
	f := create(t, e.fs, "db/new")
	write(t, f, pattern(5000, 99))
	return f.Sync()
}

func syncCompaction(t *testing.T, e *faultEnv) error {
	queueCompaction(t, e.fs)
	d, err := e.fs.OpenDir("/")
	if err != nil {
		t.Fatal(err)
	}
	return d.Sync()
}

// queueCompaction makes changes until the journal has no room for them: the next journal
// flush compacts. It returns the directories it made.
func queueCompaction(t *testing.T, fs *FS) []string {
	t.Helper()
	var dirs []string
	for i := 0; ; i++ {
		fs.mu.Lock()
		full := fs.mu.jpos+entryHeaderSize+int64(len(fs.mu.pending)) > fs.mu.sb.journal.Length
		fs.mu.Unlock()
		if full {
			return dirs
		}
		d := fmt.Sprintf("/pending/%05d", i)
		if err := fs.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
		dirs = append(dirs, d)
	}
}

// TestDataFaults fails data writes and flushes: the file's Write or Sync returns the error, the
// file system stays usable, and a retried Sync makes the data durable.
func TestDataFaults(t *testing.T) {
	tests := []struct {
		name string
		err  error
		ops  faultdev.Op
	}{
		{"write-eio", syscall.EIO, faultdev.OpWrite},
		{"write-enospc", syscall.ENOSPC, faultdev.OpWrite},
		{"flush-eio", syscall.EIO, faultdev.OpFlush},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := newFaultEnv(t)
			fs := e.fs
			f := create(t, fs, "db/data")
			data := pattern(70000, 5)
			write(t, f, data)
			// The file's data goes out (and is flushed) before anything of the journal.
			e.dev.FailNext(tc.ops, 1, tc.err)
			if err := f.Sync(); !errors.Is(err, tc.err) || errors.Is(err, ErrFailed) {
				t.Fatalf("Sync with a failing data %s: %v, want %v and not ErrFailed", tc.ops, err, tc.err)
			}
			if got := readAll(t, f); !bytes.Equal(got, data) {
				t.Fatalf("after the failed Sync: first difference at %d", firstDiff(got, data))
			}
			syncFile(t, f)

			// A Write that has to write a full buffer out reports a failing device write, and
			// keeps the data buffered.
			fill := pattern(maxTail-len(data)%4096, 6)
			write(t, f, fill)
			data = append(data, fill...)
			more := []byte("0123456789")
			e.dev.FailNext(tc.ops, 1, tc.err)
			n, err := f.Write(bytes.Clone(more))
			if tc.ops == faultdev.OpWrite {
				if n != 0 || !errors.Is(err, tc.err) || errors.Is(err, ErrFailed) {
					t.Fatalf("Write past a full buffer with a failing device write: %d, %v", n, err)
				}
			} else {
				// Writing the buffer out needs no flush; the next Sync's does.
				if n != len(more) || err != nil {
					t.Fatalf("Write past a full buffer: %d, %v", n, err)
				}
				data = append(data, more...)
				if err := f.Sync(); !errors.Is(err, tc.err) || errors.Is(err, ErrFailed) {
					t.Fatalf("Sync with a failing data flush: %v, want %v and not ErrFailed", err, tc.err)
				}
			}
			syncFile(t, f)
			if got := readAll(t, f); !bytes.Equal(got, data) {
				t.Fatalf("after a failed write-out and a Sync: %d bytes, want %d, first difference at %d", len(got), len(data), firstDiff(got, data))
			}
			closeFile(t, f)
			e.files["/db/data"] = data

			// Still usable.
			writeFile(t, fs, "db/after", []byte("after"))
			e.files["/db/after"] = []byte("after")
			syncDir(t, fs, "db")
			mustCheck(t, fs)
			if err := fs.Close(); err != nil {
				t.Fatal(err)
			}
			fs2 := expectImage(t, e.dev.DurableImage(), e.files, e.dirs)
			if err := fs2.Close(); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// TestReadFault: a failing device read is the ReadAt's error and nothing else.
func TestReadFault(t *testing.T) {
	e := newFaultEnv(t)
	f, err := e.fs.Open("db/000003.sst")
	if err != nil {
		t.Fatal(err)
	}
	e.dev.FailNext(faultdev.OpRead, 1, syscall.EIO)
	if _, err := f.ReadAt(make([]byte, 100), 0); !errors.Is(err, syscall.EIO) {
		t.Fatalf("ReadAt with a failing read: %v", err)
	}
	if got := readAll(t, f); !bytes.Equal(got, e.files["/db/000003.sst"]) {
		t.Fatal("a read after the failed one differs")
	}
	closeFile(t, f)
	writeFile(t, e.fs, "db/x", []byte("x"))
}

// TestPowerCutDuringCompaction cuts the power at each device write or flush of a compaction
// (the one Mount runs, and one a full journal forces) and checks that every post-cut image
// mounts, checks clean and holds everything synced before the compaction began; the changes
// the compaction was writing are there all or not at all.
func TestPowerCutDuringCompaction(t *testing.T) {
	// The base image: files and directories synced, the file system closed.
	base, _ := formatted(t)
	files := map[string][]byte{}
	dirs := []string{"/db", "/db/archive"}
	{
		fs := mountT(t, base, smallRegion, Options{})
		if err := fs.MkdirAll("db/archive", 0o755); err != nil {
			t.Fatal(err)
		}
		for i := range 8 {
			name := fmt.Sprintf("/db/%06d.sst", i)
			files[name] = pattern(500+i*20000, uint64(i))
			writeFile(t, fs, name, files[name])
		}
		if err := fs.Link("db/000001.sst", "db/archive/000001.sst"); err != nil {
			t.Fatal(err)
		}
		files["/db/archive/000001.sst"] = files["/db/000001.sst"]
		if err := fs.Close(); err != nil {
			t.Fatal(err)
		}
	}
	type run struct {
		dev   *faultdev.Device
		fs    *FS
		err   error // of the compaction
		dirs  []string
		extra []string // directories the compaction was making durable
	}
	scenarios := []struct {
		name string
		// do runs the scenario on dev, calling cut right before the compaction starts.
		do func(t *testing.T, dev *faultdev.Device, cut func()) run
	}{
		{"mount", func(t *testing.T, dev *faultdev.Device, cut func()) run {
			cut()
			fs, err := Mount(dev, smallRegion, Options{})
			return run{dev: dev, fs: fs, err: err, dirs: dirs}
		}},
		{"full-journal", func(t *testing.T, dev *faultdev.Device, cut func()) run {
			fs := mountT(t, dev, smallRegion, Options{})
			fillJournal(t, fs, 200)
			var synced []string
			for i := 0; ; i++ {
				d := fmt.Sprintf("/pad/%05d", i)
				if _, err := fs.Stat(d); err != nil {
					break
				}
				synced = append(synced, d)
			}
			extra := queueCompaction(t, fs)
			fs.mu.Lock()
			gen := fs.mu.sb.gen
			fs.mu.Unlock()
			cut()
			d, err := fs.OpenDir("/")
			if err != nil {
				t.Fatal(err)
			}
			err = d.Sync()
			fs.mu.Lock()
			if err == nil && fs.mu.sb.gen != gen+1 {
				t.Fatalf("the sync did not compact: generation %d -> %d", gen, fs.mu.sb.gen)
			}
			fs.mu.Unlock()
			return run{dev: dev, fs: fs, err: err, dirs: append(slicesClone(dirs), synced...), extra: extra}
		}},
	}
	for _, sc := range scenarios {
		t.Run(sc.name, func(t *testing.T) {
			newDev := func() *faultdev.Device {
				dev, err := faultdev.New(base.Clone(), faultdev.Options{})
				if err != nil {
					t.Fatal(err)
				}
				return dev
			}
			// A first run counts the compaction's writes and flushes.
			var ops int
			{
				dev := newDev()
				var at faultdev.Stats
				if r := sc.do(t, dev, func() { at = dev.Stats() }); r.err != nil {
					t.Fatalf("without a power cut: %v", r.err)
				}
				end := dev.Stats()
				ops = int(end.Writes-at.Writes) + int(end.Flushes-at.Flushes)
			}
			if ops < 4 {
				t.Fatalf("the compaction made %d writes and flushes, want at least 4", ops)
			}
			for k := 0; k <= ops; k++ {
				dev := newDev()
				r := sc.do(t, dev, func() { dev.PowerCutAfter(faultdev.OpWrite|faultdev.OpFlush, k) })
				if k < ops && r.err == nil {
					t.Fatalf("cut after %d of %d operations: the compaction succeeded", k, ops)
				}
				if k == ops && r.err != nil {
					t.Fatalf("cut after all %d operations: %v", ops, r.err)
				}
				rng := rand.New(rand.NewPCG(uint64(k), 3))
				for i := range 12 {
					img, err := dev.Crash(rng)
					if err != nil {
						t.Fatal(err)
					}
					fs := expectImage(t, img, files, r.dirs)
					have := 0
					for _, d := range r.extra {
						if _, err := fs.Stat(d); err == nil {
							have++
						} else if !errors.Is(err, os.ErrNotExist) {
							t.Fatal(err)
						}
					}
					if have != 0 && have != len(r.extra) {
						t.Fatalf("cut after %d, image %d: %d of the %d changes being compacted survived", k, i, have, len(r.extra))
					}
					if k == ops && have != len(r.extra) && r.err == nil {
						// Everything was flushed before the cut.
						t.Fatalf("cut after the compaction completed, image %d: its changes are lost", i)
					}
					if err := fs.Close(); err != nil {
						t.Fatal(err)
					}
				}
			}
		})
	}
}

func slicesClone(s []string) []string { return append([]string(nil), s...) }
