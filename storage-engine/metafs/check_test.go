package metafs

import (
	"errors"
	"strings"
	"testing"

	"github.com/cobaltstore/cobalt/storage-engine/blockdev"
)

// smallRegion is a 16 MiB region in 4 KiB units with a 64 KiB journal, for crafted journals.
var (
	smallRegion = Extent{Offset: 1 << 20, Length: 16 << 20}
	smallOpts   = Options{Unit: 4096, JournalSize: 64 << 10}
)

// formatted returns a MemDevice with smallRegion formatted, and its superblock.
func formatted(t testing.TB) (*blockdev.MemDevice, superblock) {
	t.Helper()
	dev := blockdev.NewMem(smallRegion.End()+1<<20, 4096)
	if err := Format(dev, smallRegion, smallOpts); err != nil {
		t.Fatal(err)
	}
	sb, err := readSuper(dev, smallRegion)
	if err != nil {
		t.Fatal(err)
	}
	return dev, sb
}

// writeEntries writes the entries (one per payload, seq 1, 2, ...) at the journal's start.
func writeEntries(t testing.TB, dev blockdev.Device, sb superblock, payloads ...[]byte) {
	t.Helper()
	var b []byte
	for i, p := range payloads {
		b = appendEntry(b, sb.epoch, uint64(i+1), p)
	}
	buf := blockdev.AlignedBuffer(int(alignUp(int64(len(b))+1, int64(dev.BlockSize()))))
	copy(buf, b)
	if int64(len(buf)) > sb.journal.Length {
		t.Fatalf("%d bytes of entries for a %d-byte journal", len(buf), sb.journal.Length)
	}
	if _, err := dev.WriteAt(buf, sb.journal.Offset); err != nil {
		t.Fatal(err)
	}
}

func records(rs ...record) []byte {
	var b []byte
	for _, r := range rs {
		b = appendRecord(b, r)
	}
	return b
}

// TestCheckCraftedJournals writes journals describing broken states and checks that Check
// reports each problem (and a valid one as clean).
func TestCheckCraftedJournals(t *testing.T) {
	_, sb := formatted(t)
	data := uint64(sb.journal.End()) // first unit after the journal
	jnl := uint64(sb.journal.Offset)
	reg := uint64(smallRegion.Offset)
	end := uint64(smallRegion.End()) // the device holds 1 MiB after the region
	space := func(off, n uint64) record { return record{kind: opAddSpace, off: off, n: n} }
	file := func(ino uint64, name string, off, n, size uint64) []record {
		rs := []record{{kind: opCreate, ino: ino, path: name}, {kind: opAddExtent, ino: ino, off: off, n: n}}
		if size > 0 {
			rs = append(rs, record{kind: opSetSize, ino: ino, n: size})
		}
		return rs
	}
	cat := func(rss ...[]record) []record {
		var out []record
		for _, rs := range rss {
			out = append(out, rs...)
		}
		return out
	}
	tests := []struct {
		name    string
		entries [][]record
		want    string // a problem containing this; "" for a clean state
	}{
		{"empty", nil, ""},
		{"clean", [][]record{
			{{kind: opMkdir, path: "/d/e"}},
			file(1, "/d/a", data, 8192, 5000),
			{{kind: opLink, ino: 1, path: "/b"}, {kind: opAddExtent, ino: 1, off: data + 8192, n: 4096}},
			file(2, "/d/e/c", data+3*4096, 4096, 0),
		}, ""},
		{"two-files-share-space", [][]record{file(1, "/a", data, 8192, 1), file(2, "/b", data+4096, 4096, 1)}, "overlaps"},
		{"file-in-journal", [][]record{file(1, "/a", jnl+4096, 4096, 1)}, "overlaps journal"},
		{"file-in-superblocks", [][]record{file(1, "/a", reg, 4096, 1)}, "overlaps"},
		{"misaligned-extent", [][]record{file(1, "/a", data+512, 4096, 1)}, "not whole"},
		{"odd-length-extent", [][]record{file(1, "/a", data, 1000, 1)}, "not whole"},
		{"extent-past-region", [][]record{file(1, "/a", uint64(smallRegion.End()), 4096, 1)}, "outside the region"},
		{"extent-before-region", [][]record{file(1, "/a", reg-8192, 4096, 1)}, "outside the region"},
		{"size-past-extents", [][]record{{{kind: opCreate, ino: 1, path: "/a"}, {kind: opSetSize, ino: 1, n: 10}}}, "beyond"},
		{"name-in-missing-dir", [][]record{{{kind: opCreate, ino: 1, path: "/nodir/a"}}}, "no directory"},
		{"unknown-inode", [][]record{{{kind: opLink, ino: 7, path: "/a"}}}, "no inode"},
		{"file-in-added-space", [][]record{
			{space(end, 64<<10)},
			file(1, "/a", end, 8192, 100),
			append(file(2, "/b", data, 4096, 1), space(end+128<<10, 8192), record{kind: opAddExtent, ino: 2, off: end + 128<<10, n: 4096}),
		}, ""},
		{"file-past-added-space", [][]record{{space(end, 64<<10)}, file(1, "/a", end+64<<10, 4096, 1)}, "and the added space"},
		{"file-across-added-spaces", [][]record{{space(end, 8192), space(end+3*4096, 8192)}, file(1, "/a", end+4096, 8192, 1)}, "and the added space"},
		{"space-overlaps-region", [][]record{{space(end-4096, 8192)}}, "overlaps or precedes the region"},
		{"space-inside-region", [][]record{{space(data, 4096)}}, "overlaps or precedes the region"},
		{"space-overlaps-space", [][]record{{space(end, 8192)}, {space(end+4096, 8192)}}, "overlaps added space"},
		{"space-misaligned", [][]record{{space(end+512, 4096)}}, "not whole"},
		{"space-past-device", [][]record{{space(end+1<<20-4096, 8192)}}, "ends past"},
		{"space-empty", [][]record{{space(end, 0)}}, "empty"},
		{"many-overlaps", [][]record{cat(file(1, "/a", data, 4096, 1), file(2, "/b", data, 4096, 1), file(3, "/c", data, 4096, 1), file(4, "/d", jnl, 4096, 1))}, "overlaps"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dev, sb := formatted(t)
			var payloads [][]byte
			for _, rs := range tc.entries {
				payloads = append(payloads, records(rs...))
			}
			writeEntries(t, dev, sb, payloads...)
			r, err := Check(dev, smallRegion, Options{})
			if tc.want == "" {
				if err != nil {
					t.Fatalf("Check: %v\n%s", err, r)
				}
				if r.JournalEntries != len(tc.entries) || r.UsedBytes+r.FreeBytes != smallRegion.Length+r.SpaceBytes {
					t.Fatalf("report: %d entries (want %d), used %d + free %d\n%s", r.JournalEntries, len(tc.entries), r.UsedBytes, r.FreeBytes, r)
				}
				// A clean offline check means it mounts, and checks clean mounted too.
				fs := mountT(t, dev, smallRegion, Options{})
				if err := fs.Close(); err != nil {
					t.Fatal(err)
				}
				mustCheckDev(t, dev, smallRegion)
				return
			}
			if !errors.Is(err, ErrCorrupt) {
				t.Fatalf("Check: %v, want ErrCorrupt\n%s", err, r)
			}
			found := false
			for _, p := range r.Problems {
				found = found || strings.Contains(p, tc.want)
			}
			if !found {
				t.Fatalf("no problem mentions %q\n%s", tc.want, r)
			}
			if _, err := Mount(dev, smallRegion, Options{}); !errors.Is(err, ErrCorrupt) {
				t.Fatalf("Mount of a region Check finds corrupt: %v, want ErrCorrupt", err)
			}
			if tc.name == "many-overlaps" && len(r.Problems) < 3 {
				t.Fatalf("want every overlap listed\n%s", r)
			}
		})
	}
}

func TestCheckCorruptRecords(t *testing.T) {
	for _, tc := range []struct {
		name    string
		payload []byte
	}{
		{"unknown-kind", []byte{99, 1, 2}},
		{"truncated-path", []byte{byte(opMkdir), 10, 'a'}},
		{"non-minimal-varint", []byte{byte(opMkdir), 0x81, 0x00, 'x'}},
		{"overlong-varint", []byte{byte(opSetSize), 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x01, 0}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dev, sb := formatted(t)
			writeEntries(t, dev, sb, tc.payload)
			r, err := Check(dev, smallRegion, Options{})
			if !errors.Is(err, ErrCorrupt) || len(r.Problems) == 0 {
				t.Fatalf("Check: %v, want ErrCorrupt\n%s", err, r)
			}
		})
	}
}

// TestCheckSlots covers the superblock slots: a never-written or damaged slot beside the one in
// use is a note; no usable slot is a problem (or not formatted).
func TestCheckSlots(t *testing.T) {
	dev, _ := formatted(t)
	r := mustCheckDev(t, dev, smallRegion)
	if r.Slots[0].Valid || !r.Slots[1].Valid || r.Slots[1].Generation != 1 || r.Generation != 1 || len(r.Notes) != 1 {
		t.Fatalf("fresh format: %+v\n%s", r.Slots, r)
	}
	if !strings.Contains(r.String(), "clean") || !strings.Contains(r.String(), "slot 0: not valid") {
		t.Fatalf("String():\n%s", r)
	}
	fs := mountT(t, dev, smallRegion, Options{})
	writeFile(t, fs, "f", pattern(10000, 1))
	if err := fs.Close(); err != nil {
		t.Fatal(err)
	}
	r = mustCheckDev(t, dev, smallRegion)
	if !r.Slots[0].Valid || r.Slots[0].Generation != 2 || !r.Slots[1].Valid || r.Generation != 2 || len(r.Notes) != 0 || r.Files != 1 {
		t.Fatalf("after a mount: %+v\n%s", r.Slots, r)
	}
	// A torn update of the older slot is a note.
	if err := dev.FlipBit(smallRegion.Offset+SuperblockSize+100, 3); err != nil {
		t.Fatal(err)
	}
	r = mustCheckDev(t, dev, smallRegion)
	if r.Slots[1].Valid || len(r.Notes) != 1 || r.Files != 1 {
		t.Fatalf("older slot damaged: %+v\n%s", r.Slots, r)
	}
	// Both damaged: nothing to mount.
	if err := dev.FlipBit(smallRegion.Offset+100, 3); err != nil {
		t.Fatal(err)
	}
	r, err := Check(dev, smallRegion, Options{})
	if !errors.Is(err, ErrCorrupt) || len(r.Problems) == 0 {
		t.Fatalf("both slots damaged: %v\n%s", err, r)
	}
	// A later generation without its snapshot entry is corrupt.
	dev, sb := formatted(t)
	sb.gen = 3
	buf := blockdev.AlignedBuffer(SuperblockSize)
	copy(buf, sb.encode())
	if _, err := dev.WriteAt(buf, smallRegion.Offset+SuperblockSize); err != nil {
		t.Fatal(err)
	}
	if r, err := Check(dev, smallRegion, Options{}); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("generation 3 with an empty journal: %v\n%s", err, r)
	}
}

// TestCheckMounted checks that the mounted Check notices leaked and doubly used space.
func TestCheckMounted(t *testing.T) {
	dev, _ := formatted(t)
	fs, err := Mount(dev, smallRegion, Options{})
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, fs, "a", pattern(5000, 1))
	writeFile(t, fs, "b", pattern(5000, 2))
	if r, err := fs.Check(); err != nil || r.Files != 2 || r.UsedBytes+r.FreeBytes != smallRegion.Length {
		t.Fatalf("Check: %v\n%s", err, r)
	}
	// Leak a unit: allocated but referenced by nothing.
	leaked, err := fs.mu.alloc.Allocate(4096)
	if err != nil {
		t.Fatal(err)
	}
	if r, err := fs.Check(); !errors.Is(err, ErrCorrupt) || !strings.Contains(strings.Join(r.Problems, "\n"), "leaked") {
		t.Fatalf("leaked unit: %v\n%s", err, r)
	}
	if err := fs.mu.alloc.Release(leaked); err != nil {
		t.Fatal(err)
	}
	// Give b a's first extent too.
	fs.mu.Lock()
	a := fs.mu.st.inodes[fs.mu.st.names["/a"]]
	b := fs.mu.st.inodes[fs.mu.st.names["/b"]]
	b.extents = append(b.extents, a.extents[0])
	b.allocated += a.extents[0].Length
	fs.mu.Unlock()
	if r, err := fs.Check(); !errors.Is(err, ErrCorrupt) || !strings.Contains(strings.Join(r.Problems, "\n"), "overlaps") {
		t.Fatalf("shared extent: %v\n%s", err, r)
	}
}
