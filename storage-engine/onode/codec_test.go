package onode

import (
	"errors"
	"slices"
	"testing"
)

func sampleOnode() *Onode {
	return &Onode{
		Nid:  42,
		Size: 3 * 4096,
		Extents: []Extent{
			{Logical: 0, Phys: 1 << 20, Length: 8192, Csums: []uint32{1, 2}},
			{Logical: 8192, Phys: 1 << 30, Length: 4096, Csums: []uint32{0xdeadbeef}},
		},
		Xattrs:     map[string][]byte{"user.a": []byte("1"), "b": {}, "": []byte("empty name")},
		OmapHeader: []byte("hdr"),
	}
}

func TestEncodeDecodeRoundTrip(t *testing.T) {
	for name, o := range map[string]*Onode{
		"empty":        {},
		"sample":       sampleOnode(),
		"empty header": {Nid: 1, OmapHeader: []byte{}},
	} {
		t.Run(name, func(t *testing.T) {
			buf := o.Encode(nil)
			got, err := Decode(buf)
			if err != nil {
				t.Fatalf("Decode: %v", err)
			}
			if len(got.Extents) != 0 {
				t.Fatalf("the header encoding carried extents: %+v", got.Extents)
			}
			header := o.Clone()
			header.Extents = nil
			if !got.Equal(header) {
				t.Fatalf("round trip mismatch:\n got %+v\nwant %+v", got, o)
			}
			if (got.OmapHeader == nil) != (o.OmapHeader == nil) {
				t.Fatalf("omap header presence changed: got %v want %v", got.OmapHeader, o.OmapHeader)
			}
		})
	}
}

func TestDecodeRejectsEveryTruncation(t *testing.T) {
	buf := sampleOnode().Encode(nil)
	for n := range len(buf) {
		if _, err := Decode(buf[:n]); !errors.Is(err, ErrCorrupt) {
			t.Fatalf("Decode(first %d of %d bytes) = %v, want ErrCorrupt", n, len(buf), err)
		}
	}
	if _, err := Decode(append(buf, 0)); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("trailing byte accepted: %v", err)
	}
}

func TestDecodeRejectsBadInput(t *testing.T) {
	badVersion := sampleOnode().Encode(nil)
	badVersion[0] = 9
	version1 := sampleOnode().Encode(nil)
	version1[0] = 1
	for name, buf := range map[string][]byte{
		"bad version":  badVersion,
		"version 1":    version1,
		"huge count":   {FormatVersion, 0, 0, 0xff, 0xff, 0xff, 0xff, 0x0f},
		"bad flag":     append((&Onode{}).Encode(nil)[:4], 7),
		"dup xattr":    {FormatVersion, 0, 0, 2, 1, 'a', 0, 1, 'a', 0, 0},
		"varint overf": {FormatVersion, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01},
	} {
		if _, err := Decode(buf); !errors.Is(err, ErrCorrupt) {
			t.Errorf("%s: Decode = %v, want ErrCorrupt", name, err)
		}
	}
}

func TestCloneIsDeep(t *testing.T) {
	o := sampleOnode()
	c := o.Clone()
	c.Extents[0].Csums[0] = 99
	c.Xattrs["user.a"][0] = 'x'
	c.OmapHeader[0] = 'X'
	if !o.Equal(sampleOnode()) {
		t.Fatalf("mutating the clone changed the original: %+v", o)
	}
}

// TestCloneExtentsGrowApart: a clone's extents share one checksum array; appending to one
// extent's checksums must not overwrite the next extent's.
func TestCloneExtentsGrowApart(t *testing.T) {
	o := &Onode{Size: 3 * 4096, Extents: []Extent{
		{Logical: 0, Phys: 8192, Length: 4096, Csums: []uint32{1}},
		{Logical: 4096, Phys: 65536, Length: 8192, Csums: []uint32{2, 3}},
	}}
	c := o.Clone()
	c.Extents[0].Csums = append(c.Extents[0].Csums, 7)
	if got := c.Extents[1].Csums; !slices.Equal(got, []uint32{2, 3}) {
		t.Fatalf("appending to extent 0's checksums changed extent 1's: %v", got)
	}
	if !slices.Equal(o.Extents[1].Csums, []uint32{2, 3}) || !slices.Equal(o.Extents[0].Csums, []uint32{1}) {
		t.Fatalf("the original changed: %+v", o.Extents)
	}
}

// FuzzDecode checks that Decode never panics and that whatever it accepts re-encodes to an
// encoding that decodes to the same onode.
func FuzzDecode(f *testing.F) {
	f.Add(sampleOnode().Encode(nil))
	f.Add((&Onode{}).Encode(nil))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, buf []byte) {
		o, err := Decode(buf)
		if err != nil {
			if !errors.Is(err, ErrCorrupt) {
				t.Fatalf("error does not wrap ErrCorrupt: %v", err)
			}
			return
		}
		again, err := Decode(o.Encode(nil))
		if err != nil {
			t.Fatalf("re-decode of accepted input failed: %v", err)
		}
		if !again.Equal(o) {
			t.Fatalf("re-encode changed the onode")
		}
	})
}

func TestDecodeRejectsOverlongVarint(t *testing.T) {
	// Nid 0 encoded in two bytes instead of one.
	buf := []byte{FormatVersion, 0x80, 0x00, 0, 0, 0}
	if _, err := Decode(buf); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("overlong varint accepted: %v", err)
	}
}
