package kv

import (
	"bytes"
	"errors"
	"path/filepath"
	"testing"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/vfs"
)

func sampleSuper() *Superblock {
	return &Superblock{UUID: "u-1", DeviceSize: 1 << 30, MinAllocSize: 4096, ChecksumBlockSize: 4096, DataStart: 65536, NextNid: 12, Format: 2}
}

func TestSuperblockVersion1DecodesAsFormat1(t *testing.T) {
	v2 := sampleSuper().Encode()
	// A version-1 record is the version-2 one without the trailing format field.
	v1 := append([]byte{RecordVersion}, v2[1:len(v2)-1]...)
	s, err := DecodeSuperblock(v1)
	if err != nil || s.Format != 1 || s.NextNid != 12 {
		t.Fatalf("version 1 superblock: %+v %v", s, err)
	}
	for _, bad := range [][]byte{append([]byte{3}, v2[1:]...), append(v2[:len(v2)-1], 0), append(v2, 0)} {
		if _, err := DecodeSuperblock(bad); !errors.Is(err, ErrCorrupt) {
			t.Errorf("DecodeSuperblock(%x) = %v, want ErrCorrupt", bad, err)
		}
	}
}

func TestRecordsRoundTrip(t *testing.T) {
	s := sampleSuper()
	got, err := DecodeSuperblock(s.Encode())
	if err != nil || *got != *s {
		t.Fatalf("superblock: %+v %v", got, err)
	}
	for _, d := range []*Deferred{{Phys: 0, Data: []byte{1}}, {Phys: 1 << 40, Data: make([]byte, 4096)}, {Phys: 127, Data: make([]byte, 128)}} {
		if got := len(d.Encode()); got != d.Size() {
			t.Fatalf("Deferred{Phys: %d, %d bytes}: Size %d, encoding %d bytes", d.Phys, len(d.Data), d.Size(), got)
		}
	}
	d := &Deferred{Phys: 8192, Data: []byte("block")}
	gd, err := DecodeDeferred(d.Encode())
	if err != nil || gd.Phys != d.Phys || !bytes.Equal(gd.Data, d.Data) {
		t.Fatalf("deferred: %+v %v", gd, err)
	}
	st := &Stats{Objects: 3, LogicalBytes: 1 << 40}
	gs, err := DecodeStats(st.Encode())
	if err != nil || *gs != *st {
		t.Fatalf("stats: %+v %v", gs, err)
	}
	if _, err := DecodeCollection(Collection{}.Encode()); err != nil {
		t.Fatal(err)
	}
}

func TestRecordDecodersRejectGarbage(t *testing.T) {
	bad := sampleSuper()
	bad.MinAllocSize = 3000
	for name, f := range map[string]func([]byte) error{
		"super":      func(b []byte) error { _, err := DecodeSuperblock(b); return err },
		"deferred":   func(b []byte) error { _, err := DecodeDeferred(b); return err },
		"stats":      func(b []byte) error { _, err := DecodeStats(b); return err },
		"collection": func(b []byte) error { _, err := DecodeCollection(b); return err },
	} {
		for _, in := range [][]byte{nil, {9}, {RecordVersion, 0xff}, bad.Encode()} {
			if err := f(in); !errors.Is(err, ErrCorrupt) {
				t.Errorf("%s(%q) = %v, want ErrCorrupt", name, in, err)
			}
		}
	}
	enc := sampleSuper().Encode()
	for n := range len(enc) {
		if _, err := DecodeSuperblock(enc[:n]); !errors.Is(err, ErrCorrupt) {
			t.Fatalf("truncated superblock (%d bytes) accepted: %v", n, err)
		}
	}
}

func FuzzDecodeRecords(f *testing.F) {
	f.Add(sampleSuper().Encode())
	f.Add((&Deferred{Phys: 1, Data: []byte{1}}).Encode())
	f.Add((&Stats{Objects: 1}).Encode())
	f.Add(Collection{}.Encode())
	f.Fuzz(func(t *testing.T, b []byte) {
		if s, err := DecodeSuperblock(b); err == nil {
			if again, err := DecodeSuperblock(s.Encode()); err != nil || *again != *s {
				t.Fatalf("superblock does not round-trip: %v", err)
			}
		} else if !errors.Is(err, ErrCorrupt) {
			t.Fatal(err)
		}
		if d, err := DecodeDeferred(b); err == nil {
			if !bytes.Equal(d.Encode(), b) {
				t.Fatal("deferred does not round-trip")
			}
		} else if !errors.Is(err, ErrCorrupt) {
			t.Fatal(err)
		}
		if s, err := DecodeStats(b); err == nil {
			if again, err := DecodeStats(s.Encode()); err != nil || *again != *s {
				t.Fatal("stats do not round-trip")
			}
		} else if !errors.Is(err, ErrCorrupt) {
			t.Fatal(err)
		}
		if _, err := DecodeCollection(b); err != nil && !errors.Is(err, ErrCorrupt) {
			t.Fatal(err)
		}
	})
}

func TestOpenOnMemFS(t *testing.T) {
	fs := vfs.NewMem()
	dir := filepath.Join("stores", "a", "db")
	db, err := Open(dir, Options{FS: fs, CacheSize: 1 << 20})
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Set(SuperKey(), sampleSuper().Encode(), pebble.Sync); err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	db, err = Open(dir, Options{FS: fs})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	v, c, err := db.Get(SuperKey())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := DecodeSuperblock(v); err != nil {
		t.Fatal(err)
	}
}
