package metafs

import (
	"fmt"
	"testing"
)

// TestCloseTrimsSpaceAheadOfSize: a file that grew in steps was given space ahead of its size;
// closing it gives that space back (once the trim is durable), its data stays, and a remount
// (clean or after a crash once the trim is durable) finds the file with only the space it needs.
// A WAL keeps its space: it is recorded at its allocation.
func TestCloseTrimsSpaceAheadOfSize(t *testing.T) {
	const unit = 64 << 10
	for _, tc := range []struct {
		name    string
		file    string
		size    int
		trimmed bool
	}{
		{"table", "000005.sst", 3<<20 + 100, true},
		{"just past a doubling", "MANIFEST-000006", 1<<20 + 100, true},
		{"wal", "000008.log", 3<<20 + 100, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, fsTestRegion, Options{Unit: unit, JournalSize: 256 << 10})
			data := pattern(tc.size, 7)
			f := create(t, e.fs, tc.file)
			for off := 0; off < len(data); off += 100 << 10 {
				write(t, f, data[off:min(off+100<<10, len(data))])
				syncFile(t, f)
			}
			allocated := func() int64 {
				e.fs.mu.Lock()
				defer e.fs.mu.Unlock()
				return e.fs.mu.st.inodes[e.fs.mu.st.names["/"+tc.file]].allocated
			}
			before := allocated()
			need := alignUp(int64(tc.size), unit)
			if before <= need {
				t.Fatalf("the file was allocated %d bytes for %d: the test needs it allocated ahead", before, tc.size)
			}
			freeBefore := e.fs.Usage().Free
			closeFile(t, f)
			syncDir(t, e.fs, "/") // makes the trim durable
			want := before
			if tc.trimmed {
				want = need
			}
			if got := allocated(); got != want {
				t.Fatalf("after close the file holds %d bytes of space, want %d (before %d)", got, want, before)
			}
			if gained := e.fs.Usage().Free - freeBefore; gained != before-want {
				t.Fatalf("closing freed %d bytes, want %d", gained, before-want)
			}
			mustCheck(t, e.fs)
			e.crashRemount()
			if got := allocated(); got != want {
				t.Fatalf("after a crash remount the file holds %d bytes of space, want %d", got, want)
			}
			if !tc.trimmed {
				return
			}
			expectContent(t, e.fs, tc.file, data)
			e.remount()
			expectContent(t, e.fs, tc.file, data)
		})
	}
}

// TestTrimRecordsChecked: a trim that would drop recorded data, is not whole units, or exceeds
// the file's space is corrupt at replay.
func TestTrimRecordsChecked(t *testing.T) {
	st := newState(fsTestRegion, 64<<10, fsTestRegion.End()+1<<20)
	base := []record{
		{kind: opCreate, ino: 1, path: "/f"},
		{kind: opAddExtent, ino: 1, off: uint64(fsTestRegion.Offset + 1<<20), n: 256 << 10},
		{kind: opSetSize, ino: 1, n: 100 << 10},
	}
	for _, r := range base {
		if _, err := st.apply(r); err != nil {
			t.Fatal(err)
		}
	}
	for _, keep := range []uint64{64 << 10, 100 << 10, 320 << 10, 1<<64 - 1} {
		t.Run(fmt.Sprint(keep), func(t *testing.T) {
			if _, err := st.apply(record{kind: opTrim, ino: 1, n: keep}); err == nil {
				t.Fatalf("trim to %d bytes of a file of 100 KiB recorded in 256 KiB of space was accepted", keep)
			}
		})
	}
	if _, err := st.apply(record{kind: opTrim, ino: 2, n: 0}); err == nil {
		t.Fatal("trim of a missing inode was accepted")
	}
	if _, err := st.apply(record{kind: opTrim, ino: 1, n: 128 << 10}); err != nil {
		t.Fatal(err)
	}
	if n := st.inodes[1]; n.allocated != 128<<10 || len(n.extents) != 1 || n.extents[0].Length != 128<<10 {
		t.Fatalf("after trim: allocated %d, extents %v", n.allocated, n.extents)
	}
}
