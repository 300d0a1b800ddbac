package blockdev_test

import (
	"bytes"
	"encoding/binary"
	"errors"
	"hash/crc32"
	"testing"
	"time"

	"github.com/cobaltstore/cobalt/storage-engine/blockdev"
)

func testLabel() blockdev.Label {
	return blockdev.Label{
		UUID:         [16]byte{0x6b, 0xa7, 0xb8, 0x10, 0x9d, 0xad, 0x11, 0xd1, 0x80, 0xb4, 0x00, 0xc0, 0x4f, 0xd4, 0x30, 0xc8},
		DeviceSize:   10 << 30,
		MinAllocSize: 4096,
		BlockSize:    4096,
		Created:      time.Date(2026, 11, 23, 1, 2, 3, 456789, time.UTC),
	}
}

func TestLabelRoundTrip(t *testing.T) {
	l := testLabel()
	b, err := blockdev.EncodeLabel(l)
	if err != nil {
		t.Fatal(err)
	}
	if len(b) != blockdev.LabelSize || !blockdev.IsAligned(b, blockdev.Alignment) {
		t.Fatalf("encoded %d bytes (aligned=%v)", len(b), blockdev.IsAligned(b, blockdev.Alignment))
	}
	got, err := blockdev.DecodeLabel(b)
	if err != nil {
		t.Fatal(err)
	}
	l.Version = 1 // metadata in a directory: still version 1
	if got != l {
		t.Fatalf("decoded %+v, want %+v", got, l)
	}
	// Metadata on the device: version 2 with the region.
	l.Version, l.MetaOffset, l.MetaLength = 0, 64<<10, 256<<20
	b, err = blockdev.EncodeLabel(l)
	if err != nil {
		t.Fatal(err)
	}
	got, err = blockdev.DecodeLabel(b)
	if err != nil {
		t.Fatal(err)
	}
	l.Version = 2
	if got != l || !got.MetaOnDevice() {
		t.Fatalf("decoded %+v, want %+v", got, l)
	}
	if s := got.UUIDString(); s != "6ba7b810-9dad-11d1-80b4-00c04fd430c8" {
		t.Fatalf("UUIDString = %s", s)
	}
	if got.HasCluster() || got.ClusterIDString() != "" {
		t.Fatalf("a label of version 2 names cluster %q", got.ClusterIDString())
	}
}

// roundTrip encodes l and decodes the result.
func roundTrip(t *testing.T, l blockdev.Label) blockdev.Label {
	t.Helper()
	b, err := blockdev.EncodeLabel(l)
	if err != nil {
		t.Fatal(err)
	}
	got, err := blockdev.DecodeLabel(b)
	if err != nil {
		t.Fatal(err)
	}
	return got
}

// TestLabelDeviceRoles: the two labels of a store whose metadata is on a separate device are
// version 4, with or without a cluster, and decode to what was encoded.
func TestLabelDeviceRoles(t *testing.T) {
	cluster, err := blockdev.ParseUUID(testCluster)
	if err != nil {
		t.Fatal(err)
	}
	data := testLabel()
	data.MetaOnSeparateDevice = true
	meta := testLabel()
	meta.DeviceSize, meta.MetadataDevice, meta.MetaOffset, meta.MetaLength = 1<<30, true, 64<<10, 512<<20
	for _, c := range []struct {
		name    string
		l       blockdev.Label
		cluster bool
	}{
		{"data device", data, false},
		{"data device of a cluster", data, true},
		{"metadata device", meta, false},
		{"metadata device of a cluster", meta, true},
	} {
		t.Run(c.name, func(t *testing.T) {
			l := c.l
			if c.cluster {
				l.ClusterID = cluster
			}
			got := roundTrip(t, l)
			l.Version = 4
			if got != l {
				t.Fatalf("decoded %+v, want %+v", got, l)
			}
			if got.MetaOnDevice() != l.MetadataDevice {
				t.Fatalf("MetaOnDevice = %v for %+v", got.MetaOnDevice(), got)
			}
		})
	}
}

// testCluster is the cluster ID of the tests' version-3 labels.
const testCluster = "0f3c2a9e-5b1d-4e7a-9c8b-2d6f1e0a7b34"

func TestLabelClusterID(t *testing.T) {
	cluster, err := blockdev.ParseUUID(testCluster)
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name        string
		meta        bool
		version     uint32
		wantVersion uint32
	}{
		{"metadata on the device", true, 0, 3},
		{"metadata in a directory", false, 0, 3},
		{"explicit version 3", true, 3, 3},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			l := testLabel()
			l.Version, l.ClusterID = c.version, cluster
			if c.meta {
				l.MetaOffset, l.MetaLength = 64<<10, 256<<20
			}
			got := roundTrip(t, l)
			l.Version = c.wantVersion
			if got != l || got.ClusterIDString() != testCluster || got.MetaOnDevice() != c.meta {
				t.Fatalf("decoded %+v (cluster %q), want %+v", got, got.ClusterIDString(), l)
			}
		})
	}
	// A version-2 label cannot name a cluster.
	l := testLabel()
	l.Version, l.ClusterID, l.MetaOffset, l.MetaLength = 2, cluster, 64<<10, 256<<20
	if _, err := blockdev.EncodeLabel(l); err == nil {
		t.Fatal("encoded a cluster ID in a version-2 label")
	}
}

func TestParseUUID(t *testing.T) {
	for _, c := range []struct {
		in string
		ok bool
	}{
		{testCluster, true},
		{"0f3c2a9e5b1d4e7a9c8b2d6f1e0a7b34", true},
		{"", false},
		{"0f3c2a9e-5b1d-4e7a-9c8b-2d6f1e0a7b3", false},
		{"0f3c2a9e-5b1d-4e7a-9c8b-2d6f1e0a7bzz", false},
		{"0f3c2a9e5-b1d-4e7a-9c8b-2d6f1e0a7b34", false},
		{"my-cluster", false},
	} {
		u, err := blockdev.ParseUUID(c.in)
		if (err == nil) != c.ok {
			t.Errorf("ParseUUID(%q) = %v, %v; ok = %v", c.in, u, err, c.ok)
		}
		if c.ok && blockdev.FormatUUID(u) != testCluster {
			t.Errorf("ParseUUID(%q) = %s", c.in, blockdev.FormatUUID(u))
		}
	}
}

// TestRewriteLabel adopts a version-2 store into a cluster (the node daemon's use) on devices of
// several block sizes, and checks what a crash in the middle of the rewrite leaves: on 512-byte
// blocks the label may be torn, and then the copy is read, and repaired.
func TestRewriteLabel(t *testing.T) {
	cluster, err := blockdev.ParseUUID(testCluster)
	if err != nil {
		t.Fatal(err)
	}
	v2 := testLabel()
	v2.DeviceSize, v2.MetaOffset, v2.MetaLength = 1<<20, 64<<10, 256<<10
	v3 := v2
	v3.ClusterID = cluster
	for _, bs := range []int{512, 4096, 65536} {
		d := blockdev.NewMem(1<<20, bs)
		l := v2
		l.BlockSize = uint32(bs)
		if err := blockdev.WriteLabel(d, l); err != nil {
			t.Fatal(err)
		}
		want := v3
		want.BlockSize = uint32(bs)
		other := want
		other.UUID[0] ^= 1
		if err := blockdev.RewriteLabel(d, other); err == nil {
			t.Fatalf("bs %d: rewrote store %s's label with another store's", bs, l.UUIDString())
		}
		if err := blockdev.RewriteLabel(d, want); err != nil {
			t.Fatalf("bs %d: %v", bs, err)
		}
		got, err := blockdev.ReadLabel(d)
		want.Version = 3
		if err != nil || got != want {
			t.Fatalf("bs %d: read %+v, %v; want %+v", bs, got, err, want)
		}
		if fixed, err := blockdev.RepairLabel(d); fixed || err != nil {
			t.Fatalf("bs %d: RepairLabel of an intact label = %v, %v", bs, fixed, err)
		}
		// The copy: written before the label where the block leaves room for it.
		cp := blockdev.AlignedBuffer(max(bs, 2*blockdev.LabelSize))
		if _, err := d.ReadAt(cp, 0); err != nil {
			t.Fatal(err)
		}
		gotCopy, err := blockdev.DecodeLabel(cp[blockdev.LabelCopyOffset:])
		if wantCopy := bs <= blockdev.LabelCopyOffset; wantCopy && (err != nil || gotCopy != want) || !wantCopy && err == nil {
			t.Fatalf("bs %d: copy %+v, %v", bs, gotCopy, err)
		}
	}

	// A crash tore the label on a 512-byte-block device: its first sector is the new label's, the
	// rest the old one's.
	d := blockdev.NewMem(1<<20, 512)
	old := v2
	old.BlockSize = 512
	if err := blockdev.WriteLabel(d, old); err != nil {
		t.Fatal(err)
	}
	oldEnc, _ := blockdev.EncodeLabel(old)
	want := v3
	want.BlockSize, want.Version = 512, 3
	if err := blockdev.RewriteLabel(d, want); err != nil {
		t.Fatal(err)
	}
	torn := blockdev.AlignedBuffer(blockdev.LabelSize)
	if _, err := d.ReadAt(torn, 0); err != nil {
		t.Fatal(err)
	}
	copy(torn[512:], oldEnc[512:])
	if _, err := d.WriteAt(torn, 0); err != nil {
		t.Fatal(err)
	}
	if _, err := blockdev.DecodeLabel(torn); !errors.Is(err, blockdev.ErrLabelCorrupt) {
		t.Fatalf("torn label decodes: %v", err)
	}
	if got, err := blockdev.ReadLabel(d); err != nil || got != want {
		t.Fatalf("torn label: read %+v, %v; want the copy %+v", got, err, want)
	}
	if sig, err := blockdev.DetectSignature(d); err != nil || sig.Kind != "cobalt" || sig.UUID != want.UUIDString() {
		t.Fatalf("torn label: signature %+v, %v; want the store", sig, err)
	}
	if fixed, err := blockdev.RepairLabel(d); !fixed || err != nil {
		t.Fatalf("RepairLabel = %v, %v; want repaired", fixed, err)
	}
	primary := blockdev.AlignedBuffer(blockdev.LabelSize)
	if _, err := d.ReadAt(primary, 0); err != nil {
		t.Fatal(err)
	}
	if got, err := blockdev.DecodeLabel(primary); err != nil || got != want {
		t.Fatalf("repaired label: %+v, %v; want %+v", got, err, want)
	}

	// A damaged label without a copy stays damaged: nothing is made up.
	d = blockdev.NewMem(1<<20, 512)
	if err := blockdev.WriteLabel(d, old); err != nil {
		t.Fatal(err)
	}
	bad := blockdev.AlignedBuffer(blockdev.LabelSize)
	copy(bad, oldEnc)
	bad[44] ^= 1
	if _, err := d.WriteAt(bad, 0); err != nil {
		t.Fatal(err)
	}
	if _, err := blockdev.ReadLabel(d); !errors.Is(err, blockdev.ErrLabelCorrupt) {
		t.Fatalf("damaged label without a copy: %v, want ErrLabelCorrupt", err)
	}
	if fixed, err := blockdev.RepairLabel(d); fixed || err != nil {
		t.Fatalf("RepairLabel without a copy = %v, %v", fixed, err)
	}
}

func TestEncodeLabelRejectsInvalid(t *testing.T) {
	for name, mut := range map[string]func(*blockdev.Label){
		"zero-uuid":                 func(l *blockdev.Label) { l.UUID = [16]byte{} },
		"tiny-device":               func(l *blockdev.Label) { l.DeviceSize = 4096 },
		"min-alloc-odd":             func(l *blockdev.Label) { l.MinAllocSize = 3000 },
		"min-alloc-huge":            func(l *blockdev.Label) { l.MinAllocSize = 32 << 20 },
		"block-size":                func(l *blockdev.Label) { l.BlockSize = 100 },
		"future-version":            func(l *blockdev.Label) { l.Version = blockdev.LabelVersion + 1 },
		"zero-time":                 func(l *blockdev.Label) { l.Created = time.Time{} },
		"meta-in-label":             func(l *blockdev.Label) { l.MetaOffset, l.MetaLength = 0, 1<<20 },
		"meta-past-end":             func(l *blockdev.Label) { l.MetaOffset, l.MetaLength = 64<<10, l.DeviceSize },
		"meta-v1":                   func(l *blockdev.Label) { l.Version, l.MetaOffset, l.MetaLength = 1, 64<<10, 1<<20 },
		"meta-negative":             func(l *blockdev.Label) { l.MetaOffset, l.MetaLength = 64<<10, -1 },
		"role-v3":                   func(l *blockdev.Label) { l.Version, l.ClusterID[0], l.MetaOnSeparateDevice = 3, 1, true },
		"metadata-device-no-region": func(l *blockdev.Label) { l.MetadataDevice = true },
		"separate-with-region": func(l *blockdev.Label) {
			l.MetaOnSeparateDevice, l.MetaOffset, l.MetaLength = true, 64<<10, 1<<20
		},
		"both-roles": func(l *blockdev.Label) {
			l.MetaOnSeparateDevice, l.MetadataDevice, l.MetaOffset, l.MetaLength = true, true, 64<<10, 1<<20
		},
	} {
		l := testLabel()
		mut(&l)
		if _, err := blockdev.EncodeLabel(l); err == nil {
			t.Errorf("%s: encoded", name)
		}
	}
}

// reseal recomputes the checksum after a test has edited an encoded label.
func reseal(b []byte) {
	binary.LittleEndian.PutUint32(b[4092:], crc32.Checksum(b[:4092], crc32.MakeTable(crc32.Castagnoli)))
}

func TestDecodeLabelErrors(t *testing.T) {
	good, err := blockdev.EncodeLabel(testLabel())
	if err != nil {
		t.Fatal(err)
	}
	edit := func(f func(b []byte)) []byte {
		b := append([]byte(nil), good...)
		f(b)
		return b
	}
	cases := []struct {
		name string
		b    []byte
		want error
	}{
		{"empty", nil, blockdev.ErrNoLabel},
		{"short", good[:4095], blockdev.ErrNoLabel},
		{"zeros", make([]byte, 4096), blockdev.ErrNoLabel},
		{"foreign-magic", edit(func(b []byte) { b[0] = 'X' }), blockdev.ErrNoLabel},
		{"bit-flip", edit(func(b []byte) { b[44] ^= 1 }), blockdev.ErrLabelCorrupt},
		{"bad-crc", edit(func(b []byte) { b[4095] ^= 0xff }), blockdev.ErrLabelCorrupt},
		{"newer-version", edit(func(b []byte) { b[16] = blockdev.LabelVersion + 1; reseal(b) }), blockdev.ErrLabelVersion},
		{"v3-without-cluster", edit(func(b []byte) { b[16] = 3; reseal(b) }), blockdev.ErrLabelCorrupt},
		{"v1-with-cluster", edit(func(b []byte) { b[85] = 1; reseal(b) }), blockdev.ErrLabelCorrupt},
		{"v2-with-cluster", edit(func(b []byte) {
			b[16] = 2
			b[20] = 1
			b[66] = 1
			b[74] = 1
			b[85] = 1
			reseal(b)
		}), blockdev.ErrLabelCorrupt},
		{"v2-unknown-flags", edit(func(b []byte) { b[16] = 2; b[20] = 2; reseal(b) }), blockdev.ErrLabelCorrupt},
		{"v2-meta-flag-empty-region", edit(func(b []byte) { b[16] = 2; b[20] = 1; reseal(b) }), blockdev.ErrLabelCorrupt},
		{"v2-region-without-flag", edit(func(b []byte) { b[16] = 2; b[66] = 1; b[74] = 1; reseal(b) }), blockdev.ErrLabelCorrupt},
		{"v3-with-role", edit(func(b []byte) { b[16] = 3; b[20] = blockdev.LabelFlagMetaOnSeparateDevice; b[85] = 1; reseal(b) }), blockdev.ErrLabelCorrupt},
		{"v4-both-roles", edit(func(b []byte) {
			b[16] = 4
			b[20] = blockdev.LabelFlagMetaOnSeparateDevice | blockdev.LabelFlagMetadataDevice | blockdev.LabelFlagMetaOnDevice
			b[66], b[74] = 1, 1
			reseal(b)
		}), blockdev.ErrLabelCorrupt},
		{"v4-separate-with-region", edit(func(b []byte) {
			b[16] = 4
			b[20] = blockdev.LabelFlagMetaOnSeparateDevice | blockdev.LabelFlagMetaOnDevice
			b[66], b[74] = 1, 1
			reseal(b)
		}), blockdev.ErrLabelCorrupt},
		{"v4-metadata-device-without-region", edit(func(b []byte) { b[16] = 4; b[20] = blockdev.LabelFlagMetadataDevice; reseal(b) }), blockdev.ErrLabelCorrupt},
		{"v4-unknown-flag", edit(func(b []byte) { b[16] = 4; b[20] = 8; reseal(b) }), blockdev.ErrLabelCorrupt},
		{"version-zero", edit(func(b []byte) { b[16] = 0; reseal(b) }), blockdev.ErrLabelVersion},
		{"unknown-flags", edit(func(b []byte) { b[20] = 1; reseal(b) }), blockdev.ErrLabelCorrupt},
		{"zero-uuid", edit(func(b []byte) { clear(b[24:40]); reseal(b) }), blockdev.ErrLabelCorrupt},
		{"bad-min-alloc", edit(func(b []byte) { b[48] = 7; reseal(b) }), blockdev.ErrLabelCorrupt},
	}
	for _, c := range cases {
		if _, err := blockdev.DecodeLabel(c.b); !errors.Is(err, c.want) {
			t.Errorf("%s: err = %v, want %v", c.name, err, c.want)
		}
	}
	// Trailing bytes after the label are ignored.
	if _, err := blockdev.DecodeLabel(append(append([]byte(nil), good...), 1, 2, 3)); err != nil {
		t.Errorf("label followed by data: %v", err)
	}
}

func TestWriteReadLabel(t *testing.T) {
	for _, bs := range []int{512, 4096, 65536} {
		d := blockdev.NewMem(1<<20, bs)
		if _, err := blockdev.ReadLabel(d); !errors.Is(err, blockdev.ErrNoLabel) {
			t.Fatalf("bs %d: blank device: %v, want ErrNoLabel", bs, err)
		}
		l := testLabel()
		l.BlockSize = uint32(bs)
		if err := blockdev.WriteLabel(d, l); err != nil {
			t.Fatalf("bs %d: %v", bs, err)
		}
		got, err := blockdev.ReadLabel(d)
		if err != nil {
			t.Fatalf("bs %d: %v", bs, err)
		}
		if got.UUID != l.UUID || got.BlockSize != uint32(bs) {
			t.Fatalf("bs %d: read %+v", bs, got)
		}
		if d.Stats().Flushes != 1 {
			t.Fatalf("WriteLabel did not flush")
		}
	}
}

func FuzzDecodeLabel(f *testing.F) {
	good, err := blockdev.EncodeLabel(testLabel())
	if err != nil {
		f.Fatal(err)
	}
	f.Add(good)
	f.Add([]byte("cobalt-store-lbl"))
	onDevice := testLabel()
	onDevice.MetaOffset, onDevice.MetaLength = 64<<10, 256<<20
	if good2, err := blockdev.EncodeLabel(onDevice); err == nil {
		f.Add(good2)
	} else {
		f.Fatal(err)
	}
	withCluster := onDevice
	withCluster.ClusterID = [16]byte{0x0f, 0x3c, 0x2a, 0x9e, 15: 0x34}
	if good3, err := blockdev.EncodeLabel(withCluster); err == nil {
		f.Add(good3)
	} else {
		f.Fatal(err)
	}
	for _, l := range []blockdev.Label{onDevice, withCluster} {
		l.MetadataDevice = true
		roles := []blockdev.Label{l}
		l.MetadataDevice, l.MetaOffset, l.MetaLength, l.MetaOnSeparateDevice = false, 0, 0, true
		for _, r := range append(roles, l) {
			b, err := blockdev.EncodeLabel(r)
			if err != nil {
				f.Fatal(err)
			}
			f.Add(b)
		}
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		l, err := blockdev.DecodeLabel(b)
		if err != nil {
			if !errors.Is(err, blockdev.ErrNoLabel) && !errors.Is(err, blockdev.ErrLabelCorrupt) && !errors.Is(err, blockdev.ErrLabelVersion) {
				t.Fatalf("error %v wraps none of the label errors", err)
			}
			return
		}
		// Whatever decodes re-encodes to the same bytes, apart from the reserved area.
		enc, err := blockdev.EncodeLabel(l)
		if err != nil {
			t.Fatalf("decoded label %+v does not re-encode: %v", l, err)
		}
		if !bytes.Equal(enc[:96], b[:96]) {
			t.Fatalf("re-encoded header differs")
		}
		if again, err := blockdev.DecodeLabel(enc); err != nil || again != l {
			t.Fatalf("round trip: %+v %v, want %+v", again, err, l)
		}
	})
}
