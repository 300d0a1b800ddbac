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

// TestDataFaults fails the device write or flush of a file's data, in a Sync and in a Write that
// writes a full buffer out: the call returns the error wrapped in ErrFailed, the file system
// refuses every change and data write from then on (a Close does not write the buffer out), and
// the durable image (and, when the write failed, the current one) holds none of the data that
// failed, while every file synced before is whole. (Data whose flush failed was written: it sits
// in the device's cache, where no later flush of this file system makes it durable.) The file is a WAL, recorded as long as its space after its first Sync,
// so a record written out late would be replayed: the failed bytes must not be on the device.
func TestDataFaults(t *testing.T) {
	tests := []struct {
		name     string
		err      error
		ops      faultdev.Op
		writeOut bool // fail the write-out of a full buffer in Write, not the Sync
	}{
		{"sync-write-eio", syscall.EIO, faultdev.OpWrite, false},
		{"sync-write-enospc", syscall.ENOSPC, faultdev.OpWrite, false},
		{"sync-flush-eio", syscall.EIO, faultdev.OpFlush, false},
		{"write-out-eio", syscall.EIO, faultdev.OpWrite, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := newFaultEnv(t)
			fs := e.fs
			const name = "/db/000009.log"
			f := create(t, fs, name)
			synced := pattern(70000, 5)
			write(t, f, synced)
			syncFile(t, f)

			failed := pattern(3000, 6)
			if tc.writeOut {
				failed = pattern(maxTail, 6) // more than the buffer holds: Write writes it out
			}
			e.dev.FailNext(tc.ops, 1, tc.err)
			var err error
			if tc.writeOut {
				var n int
				n, err = f.Write(failed)
				if err == nil || n == len(failed) {
					t.Fatalf("Write of %d bytes past a full buffer with a failing device write: %d, %v", len(failed), n, err)
				}
			} else {
				write(t, f, failed)
				err = f.Sync()
			}
			if !errors.Is(err, ErrFailed) || !errors.Is(err, tc.err) {
				t.Fatalf("%s: %v, want ErrFailed wrapping %v", tc.name, err, tc.err)
			}
			if got := readFile(t, fs, "/db/000000.sst"); !bytes.Equal(got, e.files["/db/000000.sst"]) {
				t.Fatal("a synced file reads differently after the failure")
			}
			if err := f.Sync(); !errors.Is(err, ErrFailed) {
				t.Fatalf("a second Sync after the failure: %v, want ErrFailed", err)
			}
			if err := f.Close(); !errors.Is(err, ErrFailed) {
				t.Fatalf("Close of the file after the failure: %v, want ErrFailed (nothing written out)", err)
			}
			expectFailed(t, fs, err, ErrFailed)

			e.dev.ClearRules()
			images := []*blockdev.MemDevice{e.dev.DurableImage()}
			if tc.ops == faultdev.OpWrite {
				images = append(images, e.dev.CurrentImage())
			}
			for _, img := range images {
				fs := expectImage(t, img, e.files, e.dirs)
				got := readFile(t, fs, name)
				if len(got) < len(synced) || !bytes.Equal(got[:len(synced)], synced) {
					t.Fatalf("the WAL's synced %d bytes: got %d bytes, first difference at %d", len(synced), len(got), firstDiff(got, synced))
				}
				rest := got[len(synced):]
				if k := min(len(rest), len(failed)); k > 0 && bytes.Equal(rest[:k], failed[:k]) {
					t.Fatalf("the data of the failed %s reached the device", tc.name)
				}
				if err := fs.Close(); err != nil {
					t.Fatal(err)
				}
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
			newDev := func() *faultdev.Device { return faultDevOf(t, base) }
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

// faultDevOf returns a fault-injecting device over a copy of base.
func faultDevOf(t testing.TB, base *blockdev.MemDevice) *faultdev.Device {
	t.Helper()
	dev, err := faultdev.New(base.Clone(), faultdev.Options{})
	if err != nil {
		t.Fatal(err)
	}
	return dev
}
