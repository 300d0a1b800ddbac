package metafs

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"syscall"
	"testing"

	"github.com/cobaltstore/cobalt/storage-engine/blockdev"
	"github.com/cobaltstore/cobalt/storage-engine/blockdev/faultdev"
)

// fillSynced writes synced files of size bytes named prefix0, prefix1, ... until one does not
// fit (ENOSPC); that file is removed. It returns the files written.
func fillSynced(t *testing.T, fs *FS, prefix string, size int, seed uint64) map[string][]byte {
	t.Helper()
	files := map[string][]byte{}
	for i := 0; ; i++ {
		name := fmt.Sprintf("/%s%d", prefix, i)
		data := pattern(size, seed+uint64(i))
		f := create(t, fs, name)
		write(t, f, data)
		err := f.Sync()
		cerr := f.Close()
		if err == nil {
			err = cerr
		}
		if err != nil {
			if !errors.Is(err, syscall.ENOSPC) || !errors.Is(err, ErrNoSpace) {
				t.Fatalf("filling: %v, want ENOSPC", err)
			}
			if err := fs.Remove(name); err != nil {
				t.Fatal(err)
			}
			syncDir(t, fs, "/")
			return files
		}
		files[name] = data
		if i > 10000 {
			t.Fatal("no ENOSPC after 10000 files")
		}
	}
}

// extentsIn returns how many bytes of the named file's extents lie inside e.
func extentsIn(t *testing.T, fs *FS, name string, e Extent) int64 {
	t.Helper()
	fs.mu.Lock()
	defer fs.mu.Unlock()
	ino, ok := fs.mu.st.names[name]
	if !ok {
		t.Fatalf("%s does not exist", name)
	}
	var n int64
	for _, x := range fs.mu.st.inodes[ino].extents {
		if lo, hi := max(x.Offset, e.Offset), min(x.End(), e.End()); hi > lo {
			n += hi - lo
		}
	}
	return n
}

func generation(fs *FS) uint64 {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	return fs.mu.sb.gen
}

// fullUnit is newFullFS's allocation unit.
const fullUnit = 64 << 10

// newFullFS returns a file system of a 4 MiB region (units of fullUnit, a journal of one) on a
// 32 MiB device, filled with synced 256 KiB files until ENOSPC, the region, and those files.
func newFullFS(t *testing.T) (*testEnv, Extent, map[string][]byte) {
	t.Helper()
	region := Extent{Offset: 1 << 20, Length: 4 << 20}
	e := newEnvSize(t, region, Options{Unit: fullUnit, JournalSize: fullUnit}, 32<<20)
	files := fillSynced(t, e.fs, "fill", 256<<10, 1)
	if len(files) == 0 {
		t.Fatal("no file fits")
	}
	return e, region, files
}

// TestAddSpace fills a small file system until ENOSPC, adds an extent after its region, and
// checks that writing continues into it, and that the extent and the files in it survive a
// remount and journal compactions.
func TestAddSpace(t *testing.T) {
	const unit = fullUnit
	e, region, files := newFullFS(t)
	u0 := e.fs.Usage()
	if u0.Size != region.Length || len(e.fs.Space()) != 0 || e.fs.Unit() != unit {
		t.Fatalf("before AddSpace: usage %+v, space %v, unit %d", u0, e.fs.Space(), e.fs.Unit())
	}
	// A gap of two units after the region: the added space need not touch it.
	added := Extent{Offset: region.End() + 2*unit, Length: 8 << 20}
	if err := e.fs.AddSpace(added); err != nil {
		t.Fatalf("AddSpace: %v", err)
	}
	if got := e.fs.Space(); !slices.Equal(got, []Extent{added}) {
		t.Fatalf("Space() = %v, want [%v]", got, added)
	}
	u1 := e.fs.Usage()
	if u1.Size != region.Length+added.Length || u1.Free < u0.Free+added.Length-2*unit {
		t.Fatalf("after AddSpace: usage %+v, before %+v", u1, u0)
	}
	if r := mustCheck(t, e.fs); r.SpaceBytes != added.Length || r.UsedBytes+r.FreeBytes != region.Length+added.Length {
		t.Fatalf("Check after AddSpace:\n%s", r)
	}
	// Writing continues, into the added space.
	var inAdded int64
	for i := range 16 {
		name := fmt.Sprintf("/more%d", i)
		files[name] = pattern(256<<10, 100+uint64(i))
		writeFile(t, e.fs, name, files[name])
		inAdded += extentsIn(t, e.fs, name, added)
	}
	if inAdded < 3<<20 {
		t.Fatalf("only %d bytes of the new files lie in the added space", inAdded)
	}
	expectTree(t, e.fs, files, nil)

	e.remount()
	expectTree(t, e.fs, files, nil)
	if got := e.fs.Space(); !slices.Equal(got, []Extent{added}) {
		t.Fatalf("after a remount Space() = %v, want [%v]", got, added)
	}
	if u := e.fs.Usage(); u.Size != region.Length+added.Length {
		t.Fatalf("after a remount: usage %+v", u)
	}

	// A compaction forced by a full journal (of one unit) keeps the added space.
	gen := generation(e.fs)
	pending := queueCompaction(t, e.fs)
	syncDir(t, e.fs, "/")
	if g := generation(e.fs); g != gen+1 {
		t.Fatalf("generation %d -> %d: want a compaction", gen, g)
	}
	e.crashRemount()
	for name, data := range files {
		expectContent(t, e.fs, name, data)
	}
	if got, err := e.fs.List("/pending"); err != nil || len(got) != len(pending) {
		t.Fatalf("after the compaction and a crash: %d of %d directories (%v)", len(got), len(pending), err)
	}
	if got := e.fs.Space(); !slices.Equal(got, []Extent{added}) {
		t.Fatalf("after a compaction and a crash Space() = %v, want [%v]", got, added)
	}
	if r := mustCheckDev(t, e.dev, region); !slices.Equal(r.Space, []Extent{added}) {
		t.Fatalf("offline Check: Space %v\n%s", r.Space, r)
	}
}

// TestAddSpaceTouchingRegion adds extents that touch the region's end and each other: an
// allocation may then run across the region's end, and files in it check clean and survive.
func TestAddSpaceTouchingRegion(t *testing.T) {
	region := Extent{Offset: 1 << 20, Length: 1 << 20}
	e := newEnvSize(t, region, Options{Unit: 4096, JournalSize: 64 << 10}, 8<<20)
	a := Extent{Offset: region.End(), Length: 1 << 20}
	b := Extent{Offset: a.End(), Length: 1 << 20}
	for _, x := range []Extent{a, b} {
		if err := e.fs.AddSpace(x); err != nil {
			t.Fatal(err)
		}
	}
	data := pattern(2<<20+12345, 7)
	writeFile(t, e.fs, "big", data)
	if got := extentsIn(t, e.fs, "/big", Extent{Offset: region.End(), Length: 2 << 20}); got < 1<<20 {
		t.Fatalf("%d bytes of a 2 MiB file in the 2 MiB of added space", got)
	}
	e.remount()
	expectContent(t, e.fs, "big", data)
	if got := e.fs.Space(); !slices.Equal(got, []Extent{a, b}) {
		t.Fatalf("Space() = %v, want [%v %v]", got, a, b)
	}
}

// TestJournalInAddedSpace: when the region has no room for a new journal, a compaction puts it
// in the added space; the superblock then names a journal outside the region, which mounts.
func TestJournalInAddedSpace(t *testing.T) {
	region := Extent{Offset: 1 << 20, Length: 2 << 20}
	e := newEnvSize(t, region, Options{Unit: 4096, JournalSize: 64 << 10}, 8<<20)
	// Give an inode every free unit of the region (as TestMountWithoutRoomToCompact does).
	closeFile(t, create(t, e.fs, "hog"))
	fs := e.fs
	fs.mu.Lock()
	exts, err := fs.mu.alloc.Allocate(fs.mu.alloc.Free())
	if err != nil {
		fs.mu.Unlock()
		t.Fatal(err)
	}
	for _, x := range exts {
		if _, err := fs.logLocked(record{kind: opAddExtent, ino: fs.mu.st.names["/hog"], off: uint64(x.Offset + region.Offset), n: uint64(x.Length)}); err != nil {
			fs.mu.Unlock()
			t.Fatal(err)
		}
	}
	fs.mu.Unlock()
	syncDir(t, fs, "/")
	added := Extent{Offset: region.End() + 1<<20, Length: 1 << 20}
	if err := fs.AddSpace(added); err != nil {
		t.Fatal(err)
	}
	gen := generation(fs)
	e.remount()
	e.fs.mu.Lock()
	j, g := e.fs.mu.sb.journal, e.fs.mu.sb.gen
	e.fs.mu.Unlock()
	if g != gen+1 || j.Offset < added.Offset || j.End() > added.End() {
		t.Fatalf("after a remount: generation %d (was %d), journal %v; want it compacted into %v", g, gen, j, added)
	}
	writeFile(t, e.fs, "f", pattern(5000, 1))
	e.crashRemount()
	expectContent(t, e.fs, "f", pattern(5000, 1))
	if r := mustCheckDev(t, e.dev, region); !strings.Contains(r.String(), "clean") {
		t.Fatalf("%s", r)
	}
}

// TestAddSpaceRefused: extents that are misaligned, overlap the region or space added before,
// lie past the device or are empty are refused with ErrInvalid and change nothing.
func TestAddSpaceRefused(t *testing.T) {
	const unit = 64 << 10
	region := Extent{Offset: 1 << 20, Length: 4 << 20}
	const devSize = 16 << 20
	first := Extent{Offset: region.End() + 4*unit, Length: 4 * unit}
	tests := []struct {
		name string
		e    Extent
	}{
		{"misaligned-offset", Extent{Offset: region.End() + 4096, Length: unit}},
		{"misaligned-length", Extent{Offset: region.End(), Length: unit + 4096}},
		{"overlaps-region-end", Extent{Offset: region.End() - unit, Length: 2 * unit}},
		{"inside-region", Extent{Offset: region.Offset + unit, Length: unit}},
		{"before-region", Extent{Offset: 0, Length: unit}},
		{"overlaps-earlier-start", Extent{Offset: first.Offset - unit, Length: 2 * unit}},
		{"overlaps-earlier-end", Extent{Offset: first.End() - unit, Length: 2 * unit}},
		{"covers-earlier", Extent{Offset: first.Offset - unit, Length: first.Length + 2*unit}},
		{"same-as-earlier", first},
		{"past-device-end", Extent{Offset: devSize - unit, Length: 2 * unit}},
		{"at-device-end", Extent{Offset: devSize, Length: unit}},
		{"zero-length", Extent{Offset: region.End(), Length: 0}},
		{"negative-length", Extent{Offset: region.End() + unit, Length: -unit}},
		{"wraps-around", Extent{Offset: region.End(), Length: 1<<63 - unit}},
	}
	e := newEnvSize(t, region, Options{Unit: unit, JournalSize: unit}, devSize)
	if err := e.fs.AddSpace(first); err != nil {
		t.Fatal(err)
	}
	want, u0 := e.fs.Space(), e.fs.Usage()
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e.fs.mu.Lock()
			recs := e.fs.mu.recs
			e.fs.mu.Unlock()
			err := e.fs.AddSpace(tc.e)
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("AddSpace(%v): %v, want ErrInvalid", tc.e, err)
			}
			e.fs.mu.Lock()
			queued := e.fs.mu.recs - recs
			e.fs.mu.Unlock()
			if got := e.fs.Space(); !slices.Equal(got, want) || e.fs.Usage() != u0 || queued != 0 {
				t.Fatalf("after a refused AddSpace: Space %v (want %v), usage %+v (was %+v), %d records queued", got, want, e.fs.Usage(), u0, queued)
			}
		})
	}
	e.remount()
	if got := e.fs.Space(); !slices.Equal(got, want) {
		t.Fatalf("after a remount Space() = %v, want %v", got, want)
	}
	// A failed or closed file system refuses it too.
	next := Extent{Offset: first.End(), Length: unit}
	_ = e.fs.fail(errors.New("injected"))
	if err := e.fs.AddSpace(next); !errors.Is(err, ErrFailed) {
		t.Fatalf("AddSpace on a failed file system: %v, want ErrFailed", err)
	}
	e.crashRemount()
	if err := e.fs.Close(); err != nil {
		t.Fatal(err)
	}
	if err := e.fs.AddSpace(next); !errors.Is(err, ErrClosed) {
		t.Fatalf("AddSpace on a closed file system: %v, want ErrClosed", err)
	}
	e.fs = mountT(t, e.dev, region, Options{})
	if got := e.fs.Space(); !slices.Equal(got, want) {
		t.Fatalf("Space() = %v, want %v", got, want)
	}
}

// TestCheckMountedSpace: the mounted Check reports added extents that overlap, and file extents
// outside the region and the added space.
func TestCheckMountedSpace(t *testing.T) {
	region := Extent{Offset: 1 << 20, Length: 4 << 20}
	e := newEnvSize(t, region, Options{Unit: 4096, JournalSize: 64 << 10}, 16<<20)
	added := Extent{Offset: region.End(), Length: 1 << 20}
	if err := e.fs.AddSpace(added); err != nil {
		t.Fatal(err)
	}
	writeFile(t, e.fs, "a", pattern(5000, 1))
	fs := e.fs
	for _, tc := range []struct {
		name   string
		change func(st *state) func()
		want   string
	}{
		{"overlapping-space", func(st *state) func() {
			st.space = append(st.space, Extent{Offset: added.Offset + 4096, Length: 8192})
			return func() { st.space = st.space[:1] }
		}, "overlaps added space extent"},
		{"extent-outside", func(st *state) func() {
			n := st.inodes[st.names["/a"]]
			n.extents = append(n.extents, Extent{Offset: added.End(), Length: 4096})
			n.allocated += 4096
			return func() { n.extents = n.extents[:len(n.extents)-1]; n.allocated -= 4096 }
		}, "outside the region"},
	} {
		fs.mu.Lock()
		undo := tc.change(fs.mu.st)
		fs.mu.Unlock()
		r, err := fs.Check()
		fs.mu.Lock()
		undo()
		fs.mu.Unlock()
		if !errors.Is(err, ErrCorrupt) || !strings.Contains(strings.Join(r.Problems, "\n"), tc.want) {
			t.Fatalf("%s: %v, want a problem mentioning %q\n%s", tc.name, err, tc.want, r)
		}
	}
}

// queueRenames renames name to other and back until the journal has no room for the queued
// records: the next journal flush compacts. The renames do not grow the state, so they need no
// free space; their number is even, so name is where it was.
func queueRenames(t *testing.T, fs *FS, name, other string) {
	t.Helper()
	for i := 0; ; i++ {
		fs.mu.Lock()
		full := fs.mu.jpos+entryHeaderSize+int64(len(fs.mu.pending)) > fs.mu.sb.journal.Length
		fs.mu.Unlock()
		if full && i%2 == 0 {
			return
		}
		from, to := name, other
		if i%2 == 1 {
			from, to = other, name
		}
		if err := fs.Rename(from, to); err != nil {
			t.Fatal(err)
		}
	}
}

// TestPowerCutDuringAddSpace cuts the power at each device write and flush of an AddSpace on a
// full file system (its journal flush, or the compaction it forces) and of writing and syncing
// a file into the added space afterwards. Every post-cut image checks clean and mounts with the
// extent or without it (with it whenever AddSpace returned), with every file synced before, and
// with no file extent outside the region and the space the image holds.
func TestPowerCutDuringAddSpace(t *testing.T) {
	base, _ := formatted(t)
	var files map[string][]byte
	{
		fs := mountT(t, base, smallRegion, Options{})
		files = fillSynced(t, fs, "fill", 64<<10, 1)
		if err := fs.Close(); err != nil {
			t.Fatal(err)
		}
	}
	added := Extent{Offset: smallRegion.End(), Length: 512 << 10}
	newData := pattern(256<<10, 77)
	type run struct {
		addErr, syncErr error
	}
	scenarios := []struct {
		name    string
		compact bool // the journal is full: AddSpace's flush compacts
	}{{"flush", false}, {"compaction", true}}
	for _, sc := range scenarios {
		t.Run(sc.name, func(t *testing.T) {
			do := func(dev *faultdev.Device, cut func()) run {
				fs := mountT(t, dev, smallRegion, Options{})
				if sc.compact {
					queueRenames(t, fs, "/fill0", "/fill0-renamed")
				}
				gen := generation(fs)
				cut()
				var r run
				r.addErr = fs.AddSpace(added)
				if r.addErr == nil && sc.compact && generation(fs) != gen+1 {
					t.Fatalf("AddSpace did not compact: generation %d -> %d", gen, generation(fs))
				}
				if r.addErr != nil {
					if !errors.Is(r.addErr, ErrFailed) {
						t.Fatalf("AddSpace with the power cut: %v, want ErrFailed", r.addErr)
					}
					return r
				}
				f, err := fs.Create("/new", wcu)
				if err != nil {
					r.syncErr = err
					return r
				}
				write(t, f, newData)
				r.syncErr = f.Sync()
				_ = f.Close()
				if r.syncErr == nil && extentsIn(t, fs, "/new", added) < int64(len(newData))/2 {
					t.Fatalf("/new does not lie in the added space (%d bytes in it)", extentsIn(t, fs, "/new", added))
				}
				return r
			}
			newDev := func() *faultdev.Device { return faultDevOf(t, base) }
			var ops int
			{
				dev := newDev()
				var at faultdev.Stats
				r := do(dev, func() { at = dev.Stats() })
				if r.addErr != nil || r.syncErr != nil {
					t.Fatalf("without a power cut: %v, %v", r.addErr, r.syncErr)
				}
				end := dev.Stats()
				ops = int(end.Writes-at.Writes) + int(end.Flushes-at.Flushes)
			}
			if ops < 6 {
				t.Fatalf("AddSpace and a file's write and sync made %d writes and flushes, want at least 6", ops)
			}
			sawWithout, sawWith := false, false
			for k := 0; k <= ops; k++ {
				dev := newDev()
				r := do(dev, func() { dev.PowerCutAfter(faultdev.OpWrite|faultdev.OpFlush, k) })
				if k == ops && (r.addErr != nil || r.syncErr != nil) {
					t.Fatalf("cut after all %d operations: %v, %v", ops, r.addErr, r.syncErr)
				}
				rng := rand.New(rand.NewPCG(uint64(k), 9))
				for i := range 8 {
					img, err := dev.Crash(rng)
					if err != nil {
						t.Fatal(err)
					}
					what := fmt.Sprintf("cut after %d of %d, image %d", k, ops, i)
					if rep, err := Check(img, smallRegion, Options{}); err != nil {
						t.Fatalf("%s: Check: %v\n%s", what, err, rep)
					}
					fs, err := Mount(img, smallRegion, Options{})
					if err != nil {
						t.Fatalf("%s: Mount: %v", what, err)
					}
					space := fs.Space()
					switch {
					case len(space) == 0:
						sawWithout = true
						if r.addErr == nil {
							t.Fatalf("%s: AddSpace returned, but the image has no added space", what)
						}
					case slices.Equal(space, []Extent{added}):
						sawWith = true
					default:
						t.Fatalf("%s: Space() = %v, want none or [%v]", what, space, added)
					}
					fsExtents := fsSpace(smallRegion, space)
					fs.mu.Lock()
					for ino, n := range fs.mu.st.inodes {
						for _, x := range n.extents {
							if !within(fsExtents, x) {
								fs.mu.Unlock()
								t.Fatalf("%s: inode %d extent %v outside the region and the space %v", what, ino, x, space)
							}
						}
					}
					fs.mu.Unlock()
					for name, data := range files {
						expectContent(t, fs, name, data)
					}
					if _, err := fs.Stat("/new"); err == nil {
						if len(space) == 0 {
							t.Fatalf("%s: /new exists without the added space", what)
						}
					} else if r.addErr == nil && r.syncErr == nil {
						t.Fatalf("%s: /new was synced but is missing: %v", what, err)
					}
					if r.addErr == nil && r.syncErr == nil {
						expectContent(t, fs, "/new", newData)
					}
					if rep, err := fs.Check(); err != nil {
						t.Fatalf("%s: mounted Check: %v\n%s", what, err, rep)
					}
					if err := fs.Close(); err != nil {
						t.Fatalf("%s: %v", what, err)
					}
				}
			}
			if !sawWithout || !sawWith {
				t.Fatalf("images with the added space: %v, without: %v; want both", sawWith, sawWithout)
			}
		})
	}
}

// TestAddSpaceJournalFault: when the journal write of AddSpace's record fails, AddSpace returns
// ErrFailed, the extent never became allocatable, and the device mounts without it.
func TestAddSpaceJournalFault(t *testing.T) {
	for _, op := range []faultdev.Op{faultdev.OpWrite, faultdev.OpFlush} {
		t.Run(op.String(), func(t *testing.T) {
			e := newFaultEnv(t)
			added := Extent{Offset: smallRegion.End(), Length: 256 << 10}
			free := e.fs.Usage().Free
			e.dev.FailNext(op, 1, syscall.EIO)
			err := e.fs.AddSpace(added)
			if !errors.Is(err, ErrFailed) || !errors.Is(err, syscall.EIO) {
				t.Fatalf("AddSpace with a failing journal %s: %v, want ErrFailed wrapping EIO", op, err)
			}
			if got := e.fs.Usage().Free; got != free {
				t.Fatalf("free space %d -> %d: the extent became allocatable without a durable record", free, got)
			}
			e.dev.ClearRules()
			fs := expectImage(t, e.dev.DurableImage(), e.files, e.dirs)
			if got := fs.Space(); len(got) != 0 {
				t.Fatalf("the durable image holds added space %v", got)
			}
			if err := fs.Close(); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// TestAddSpaceConcurrent adds extents while other goroutines write and sync files into a small
// file system (a file that finds no space before the extents arrive is skipped): nothing fails
// but for lack of space, the state checks clean, and every extent and synced file survives a
// crash.
func TestAddSpaceConcurrent(t *testing.T) {
	region := Extent{Offset: 1 << 20, Length: 2 << 20}
	const chunk = 1 << 20
	e := newEnvSize(t, region, Options{Unit: 4096, JournalSize: 64 << 10}, region.End()+16*chunk)
	const writers, perWriter = 4, 12
	errs := make(chan error, writers+1)
	var want []Extent
	for i := range 16 {
		want = append(want, Extent{Offset: region.End() + int64(i)*chunk, Length: chunk})
	}
	go func() {
		for _, x := range want {
			if err := e.fs.AddSpace(x); err != nil {
				errs <- err
				return
			}
		}
		errs <- nil
	}()
	files := make([]map[string][]byte, writers)
	for w := range writers {
		files[w] = map[string][]byte{}
		go func() {
			for i := range perWriter {
				name := fmt.Sprintf("/w%d-%d", w, i)
				data := pattern(200<<10, uint64(w*100+i))
				f, err := e.fs.Create(name, wcu)
				if err == nil {
					_, err = f.Write(data)
				}
				if err == nil {
					err = f.Sync()
				}
				if f != nil {
					if cerr := f.Close(); err == nil {
						err = cerr
					}
				}
				if errors.Is(err, ErrNoSpace) {
					// The space is not there yet: try again.
					_ = e.fs.Remove(name)
					continue
				}
				if err != nil {
					errs <- err
					return
				}
				files[w][name] = data
			}
			errs <- nil
		}()
	}
	for range writers + 1 {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	if got := e.fs.Space(); !slices.Equal(got, want) {
		t.Fatalf("Space() = %v, want %v", got, want)
	}
	mustCheck(t, e.fs)
	syncDir(t, e.fs, "/")
	e.crashRemount()
	if got := e.fs.Space(); !slices.Equal(got, want) {
		t.Fatalf("after a crash Space() = %v, want %v", got, want)
	}
	n := 0
	for _, m := range files {
		for name, data := range m {
			expectContent(t, e.fs, name, data)
			n++
		}
	}
	if n == 0 {
		t.Fatal("no file was written")
	}
}

// TestJournalOutsideRegion: a superblock may name a journal after the region; it is valid only
// when the journal's snapshot adds the space it lies in, and never when it ends past the device.
func TestJournalOutsideRegion(t *testing.T) {
	tests := []struct {
		name    string
		journal Extent
		recs    []record
		want    string // a problem containing this; "" for a clean state
	}{
		{"in-added-space", Extent{Offset: smallRegion.End() + 64<<10, Length: 64 << 10}, []record{{kind: opAddSpace, off: uint64(smallRegion.End()), n: 256 << 10}, {kind: opMkdir, path: "/x"}}, ""},
		{"outside-the-space", Extent{Offset: smallRegion.End() + 64<<10, Length: 64 << 10}, []record{{kind: opAddSpace, off: uint64(smallRegion.End()), n: 64 << 10}, {kind: opMkdir, path: "/x"}}, "journal extent"},
		{"past-the-device", Extent{Offset: smallRegion.End(), Length: 1 << 40}, []record{{kind: opMkdir, path: "/x"}}, "past the"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dev, sb := formatted(t)
			sb.gen = 2
			sb.journal = tc.journal
			buf := blockdev.AlignedBuffer(SuperblockSize)
			copy(buf, sb.encode())
			if _, err := dev.WriteAt(buf, smallRegion.Offset); err != nil {
				t.Fatal(err)
			}
			if tc.journal.End() <= dev.Size() {
				writeEntries(t, dev, sb, records(tc.recs...))
			}
			r, err := Check(dev, smallRegion, Options{})
			if tc.want == "" {
				if err != nil {
					t.Fatalf("Check: %v\n%s", err, r)
				}
				fs := mountT(t, dev, smallRegion, Options{})
				if _, err := fs.Stat("/x"); err != nil {
					t.Fatal(err)
				}
				if err := fs.Close(); err != nil {
					t.Fatal(err)
				}
				mustCheckDev(t, dev, smallRegion)
				return
			}
			if !errors.Is(err, ErrCorrupt) || !strings.Contains(strings.Join(r.Problems, "\n"), tc.want) {
				t.Fatalf("Check: %v, want ErrCorrupt and a problem mentioning %q\n%s", err, tc.want, r)
			}
			if _, err := Mount(dev, smallRegion, Options{}); !errors.Is(err, ErrCorrupt) {
				t.Fatalf("Mount: %v, want ErrCorrupt", err)
			}
		})
	}
}
