package metafs

import (
	"bytes"
	"encoding/binary"
	"errors"
	"hash/crc32"
	"testing"

	"github.com/cobaltstore/cobalt/storage-engine/blockdev"
)

// seedRecords is one record of every kind, as the file system writes them.
var seedRecords = []record{
	{kind: opMkdir, path: "/db/wal"},
	{kind: opCreate, ino: 1, path: "/db/000001.log"},
	{kind: opLink, ino: 1, path: "/db/hard"},
	{kind: opUnlink, path: "/db/hard"},
	{kind: opRename, path: "/db/000001.log", path2: "/db/000002.log"},
	{kind: opAddExtent, ino: 1, off: 1 << 30, n: 64 << 10},
	{kind: opSetSize, ino: 1, n: 12345},
	{kind: opRmdir, path: "/db/wal"},
	{kind: opCreate, ino: 1<<63 + 5, path: ""},
	{kind: opSetSize, ino: 300, n: 1<<64 - 1},
	{kind: opAddSpace, off: uint64(smallRegion.End()), n: 64 << 10},
	{kind: opAddSpace, off: 1<<64 - 4096, n: 8192},
	{kind: opTrim, ino: 1, n: 64 << 10},
	{kind: opTrim, ino: 1, n: 1<<64 - 1},
}

// realJournal runs a small workload on smallRegion and returns the device, its superblock and
// the journal's entries as written.
func realJournal(t testing.TB) (*blockdev.MemDevice, superblock, []byte) {
	dev, _ := formatted(t)
	fs, err := Mount(dev, smallRegion, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := fs.MkdirAll("db/sub", 0o755); err != nil {
		t.Fatal(err)
	}
	writeFile(t, fs, "db/a", pattern(9000, 1))
	writeFile(t, fs, "db/sub/b", pattern(100, 2))
	if err := fs.Link("db/a", "db/c"); err != nil {
		t.Fatal(err)
	}
	if err := fs.Rename("db/sub/b", "db/b"); err != nil {
		t.Fatal(err)
	}
	if err := fs.Remove("db/a"); err != nil {
		t.Fatal(err)
	}
	syncDir(t, fs, "db")
	fs.mu.Lock()
	sb, jpos := fs.mu.sb, fs.mu.jpos
	fs.mu.Unlock()
	if err := fs.Close(); err != nil {
		t.Fatal(err)
	}
	buf := blockdev.AlignedBuffer(int(alignUp(jpos, 4096)))
	if _, err := dev.ReadAt(buf, sb.journal.Offset); err != nil {
		t.Fatal(err)
	}
	return dev, sb, buf[:jpos]
}

func FuzzDecodeRecords(f *testing.F) {
	for _, r := range seedRecords {
		f.Add(appendRecord(nil, r))
	}
	f.Add(records(seedRecords...))
	_, sb, j := realJournal(f)
	for pos, seq := 0, uint64(1); ; seq++ {
		payload, size, st := decodeEntry(j[pos:], sb.epoch, seq)
		if st != entryOK {
			break
		}
		f.Add(bytes.Clone(payload))
		pos += size
	}
	f.Add([]byte{})
	f.Add([]byte{byte(opSetSize), 0x80, 0x00, 0x01})
	f.Fuzz(func(t *testing.T, p []byte) {
		recs, err := decodeRecords(p)
		if err != nil {
			if !errors.Is(err, errRecord) {
				t.Fatalf("error %v does not wrap errRecord", err)
			}
			return
		}
		if got := records(recs...); !bytes.Equal(got, p) {
			t.Fatalf("decoded %+v re-encodes to %x, not %x", recs, got, p)
		}
		// Applying them to a state must not panic either.
		st := newState(smallRegion, smallOpts.Unit, smallRegion.End()+1<<20)
		for _, r := range recs {
			freed, err := st.apply(r)
			if err != nil {
				break
			}
			if freed != nil {
				delete(st.inodes, freed.ino)
			}
		}
	})
}

func FuzzDecodeEntry(f *testing.F) {
	_, sb, j := realJournal(f)
	f.Add(j, sb.epoch, uint64(1))
	f.Add(j, sb.epoch, uint64(2))
	f.Add(j[:len(j)-1], sb.epoch, uint64(1))
	f.Add(appendEntry(nil, 7, 3, records(seedRecords...)), uint64(7), uint64(3))
	f.Add(appendEntry(nil, 7, 3, nil), uint64(7), uint64(3))
	f.Add([]byte(entryMagic), uint64(0), uint64(0))
	f.Fuzz(func(t *testing.T, p []byte, epoch, seq uint64) {
		payload, size, st := decodeEntry(p, epoch, seq)
		switch st {
		case entryOK:
			if size < entryHeaderSize || size > len(p) || size != entryHeaderSize+len(payload) {
				t.Fatalf("size %d for a %d-byte payload in %d bytes", size, len(payload), len(p))
			}
			if got := appendEntry(nil, epoch, seq, payload); !bytes.Equal(got, p[:size]) {
				t.Fatalf("entry re-encodes to %x, not %x", got, p[:size])
			}
		case entryPartial:
			if n := binary.LittleEndian.Uint32(p[20:]); int64(n) <= int64(len(p)-entryHeaderSize) {
				t.Fatalf("partial entry of %d payload bytes in %d bytes", n, len(p))
			}
		case entryEnd:
			if payload != nil || size != 0 {
				t.Fatalf("end with payload %x size %d", payload, size)
			}
		default:
			t.Fatalf("status %d", st)
		}
	})
}

// FuzzDecodeSuperblock decodes the input as it is, and as the head of a slot (zero-padded) with
// its checksum fixed so that the fields themselves reach validate. The inputs are kept to the
// fields' 92 bytes: Go's fuzzer is slow with inputs of a whole 4 KiB slot.
func FuzzDecodeSuperblock(f *testing.F) {
	dev, sb, _ := realJournal(f)
	const fields = 92
	f.Add(sb.encode()[:fields])
	old := sb
	old.gen--
	f.Add(old.encode()[:fields])
	buf := blockdev.AlignedBuffer(superReserve)
	if _, err := dev.ReadAt(buf, smallRegion.Offset); err != nil {
		f.Fatal(err)
	}
	f.Add(bytes.Clone(buf[:fields]))
	f.Add(bytes.Clone(buf[SuperblockSize : SuperblockSize+fields]))
	odd := superblock{unit: 64 << 20, uuid: [16]byte{1}, gen: 1<<64 - 1, region: Extent{Offset: 0, Length: 1 << 62},
		journal: Extent{Offset: 64 << 20, Length: 64 << 20}, epoch: 1, blockSize: 512}
	f.Add(odd.encode()[:fields])
	f.Add([]byte(superMagic))
	check := func(t *testing.T, b []byte) {
		s, err := decodeSuperblock(b)
		if err != nil {
			if !errors.Is(err, errNoSuper) && !errors.Is(err, ErrCorrupt) && !errors.Is(err, ErrVersion) {
				t.Fatalf("error %v wraps none of the expected kinds", err)
			}
			return
		}
		if err := s.validate(); err != nil {
			t.Fatalf("decoded %+v does not validate: %v", s, err)
		}
		// The journal may lie in space added after the region, never in the superblock slots.
		if s.journal.Offset < s.region.Offset+superReserve || s.journal.End() < s.journal.Offset || s.region.End() < s.region.Offset {
			t.Fatalf("decoded %+v: journal before the region's superblocks end, or wrapping", s)
		}
		again, err := decodeSuperblock(s.encode())
		if err != nil || again != s {
			t.Fatalf("decoded %+v re-decodes to %+v, %v", s, again, err)
		}
	}
	f.Fuzz(func(t *testing.T, head []byte) {
		check(t, head)
		slot := make([]byte, SuperblockSize)
		copy(slot, head)
		check(t, slot)
		binary.LittleEndian.PutUint32(slot[superCRCOff:], crc32.Checksum(slot[:superCRCOff], castagnoli))
		check(t, slot)
	})
}

// FuzzReplay writes the input into the journal of a formatted region, either raw or (wrap) as
// entries of the right epoch holding payloads of the input split at 2-byte length prefixes, and
// checks it offline. Check must not panic; when it finds the region clean, Mount must succeed
// (or run out of space) and leave a state that checks clean, mounted and offline.
func FuzzReplay(f *testing.F) {
	_, _, j := realJournal(f)
	f.Add(j, false)
	f.Add(j[:len(j)/2], false)
	var wrapped []byte
	addPayload := func(p []byte) {
		wrapped = binary.LittleEndian.AppendUint16(wrapped, uint16(len(p)))
		wrapped = append(wrapped, p...)
	}
	addPayload(records(record{kind: opMkdir, path: "/d"}, record{kind: opCreate, ino: 1, path: "/d/a"}))
	addPayload(records(record{kind: opAddExtent, ino: 1, off: uint64(smallRegion.Offset + 1<<20), n: 8192},
		record{kind: opSetSize, ino: 1, n: 8000}, record{kind: opLink, ino: 1, path: "/b"}))
	addPayload(records(record{kind: opRename, path: "/b", path2: "/c"}, record{kind: opUnlink, path: "/d/a"}))
	end := uint64(smallRegion.End())
	addPayload(records(record{kind: opAddSpace, off: end, n: 64 << 10}, record{kind: opCreate, ino: 2, path: "/s"},
		record{kind: opAddExtent, ino: 2, off: end + 4096, n: 8192}, record{kind: opSetSize, ino: 2, n: 9000}))
	addPayload(records(record{kind: opTrim, ino: 2, n: 4096}, record{kind: opTrim, ino: 1, n: 1 << 20}))
	f.Add(wrapped, true)
	f.Add(append(bytes.Clone(wrapped), 0xff, 0xff, 1, 2, 3), true)
	f.Add([]byte{}, true)
	f.Fuzz(func(t *testing.T, data []byte, wrap bool) {
		dev, sb := formatted(t)
		var j []byte
		if wrap {
			seq := uint64(1)
			for p := data; len(p) >= 2; seq++ {
				n := min(int(binary.LittleEndian.Uint16(p)), len(p)-2)
				j = appendEntry(j, sb.epoch, seq, p[2:2+n])
				p = p[2+n:]
			}
		} else {
			j = data
		}
		if int64(len(j)) > sb.journal.Length {
			j = j[:sb.journal.Length]
		}
		buf := blockdev.AlignedBuffer(int(alignUp(int64(len(j)), 4096)))
		copy(buf, j)
		if _, err := dev.WriteAt(buf, sb.journal.Offset); err != nil {
			t.Fatal(err)
		}
		r, err := Check(dev, smallRegion, Options{})
		if err != nil {
			if !errors.Is(err, ErrCorrupt) {
				t.Fatalf("Check: %v, want nil or ErrCorrupt", err)
			}
			if _, err := Mount(dev.Clone(), smallRegion, Options{}); err == nil {
				t.Fatalf("Mount succeeds where Check finds problems:\n%s", r)
			}
			return
		}
		fs, err := Mount(dev, smallRegion, Options{})
		if errors.Is(err, ErrNoSpace) {
			return
		}
		if err != nil {
			t.Fatalf("Check is clean but Mount fails: %v\n%s", err, r)
		}
		if mr, err := fs.Check(); err != nil || mr.Files != r.Files || mr.Dirs != r.Dirs || mr.Extents != r.Extents {
			t.Fatalf("mounted Check: %v\n%s\noffline:\n%s", err, mr, r)
		}
		// The mounted file system works: a new file gets an inode, space and a durable size.
		if nf, err := fs.Create("/.fuzz-new", wcu); err == nil {
			if _, err := nf.Write([]byte("x")); err != nil {
				t.Fatalf("Write: %v", err)
			}
			if err := nf.Sync(); err != nil && !errors.Is(err, ErrNoSpace) {
				t.Fatalf("Sync: %v", err)
			}
			if err := nf.Close(); err != nil && !errors.Is(err, ErrNoSpace) {
				t.Fatalf("Close: %v", err)
			}
		} else if !errors.Is(err, ErrInvalid) { // a directory of that name
			t.Fatalf("Create: %v", err)
		}
		if err := fs.Close(); err != nil && !errors.Is(err, ErrNoSpace) {
			t.Fatalf("Close: %v", err)
		}
		if r2, err := Check(dev, smallRegion, Options{}); err != nil {
			t.Fatalf("after Mount and Close: %v\n%s\nbefore:\n%s", err, r2, r)
		}
	})
}
