package blockdev_test

import (
	"encoding/binary"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cobaltstore/cobalt/storage-engine/blockdev"
)

// image builds a 1 MiB in-memory device whose first bytes are set by put.
func image(t testing.TB, put func(b []byte)) *blockdev.MemDevice {
	t.Helper()
	b := blockdev.AlignedBuffer(256 << 10)
	put(b)
	d := blockdev.NewMem(1<<20, 4096)
	if _, err := d.WriteAt(b, 0); err != nil {
		t.Fatal(err)
	}
	return d
}

func TestDetectSignatureSynthetic(t *testing.T) {
	le := binary.LittleEndian
	extSB := func(compat, incompat, roCompat uint32) func(b []byte) {
		return func(b []byte) {
			le.PutUint16(b[1080:], 0xEF53)
			le.PutUint32(b[1024+0x5C:], compat)
			le.PutUint32(b[1024+0x60:], incompat)
			le.PutUint32(b[1024+0x64:], roCompat)
		}
	}
	mbr := func(b []byte) { b[510], b[511] = 0x55, 0xAA; b[446+4] = 0x83 }
	cases := []struct {
		name, kind string
		put        func(b []byte)
	}{
		{"blank", "", func([]byte) {}},
		{"ext2", "ext2", extSB(0, 0, 0)},
		{"ext3", "ext3", extSB(0x4, 0x2, 0)},
		{"ext4", "ext4", extSB(0x4, 0x2|0x40|0x200, 0)},
		{"xfs", "xfs", func(b []byte) { copy(b, "XFSB") }},
		{"btrfs", "btrfs", func(b []byte) { copy(b[65536+64:], "_BHRfS_M") }},
		{"f2fs", "f2fs", func(b []byte) { le.PutUint32(b[1024:], 0xF2F52010) }},
		{"swap", "swap", func(b []byte) { copy(b[4086:], "SWAPSPACE2") }},
		{"swap-64k-pages", "swap", func(b []byte) { copy(b[65526:], "SWAPSPACE2") }},
		{"luks", "luks", func(b []byte) { copy(b, "LUKS\xba\xbe\x00\x02") }},
		{"lvm2", "lvm2", func(b []byte) { copy(b[512:], "LABELONE"); copy(b[536:], "LVM2 001") }},
		{"mdraid", "mdraid", func(b []byte) { le.PutUint32(b[4096:], 0xA92B4EFC) }},
		{"bluestore", "bluestore", func(b []byte) { copy(b, "bluestore block device\n") }},
		{"squashfs", "squashfs", func(b []byte) { copy(b, "hsqs") }},
		{"iso9660", "iso9660", func(b []byte) { copy(b[32769:], "CD001") }},
		{"ntfs", "ntfs", func(b []byte) { copy(b[3:], "NTFS    "); b[510], b[511] = 0x55, 0xAA }},
		{"exfat", "exfat", func(b []byte) { copy(b[3:], "EXFAT   "); b[510], b[511] = 0x55, 0xAA }},
		{"vfat32", "vfat", func(b []byte) { copy(b[82:], "FAT32   "); b[510], b[511] = 0x55, 0xAA }},
		{"vfat16", "vfat", func(b []byte) { copy(b[54:], "FAT16   "); b[510], b[511] = 0x55, 0xAA }},
		{"gpt", "gpt", func(b []byte) { mbr(b); copy(b[512:], "EFI PART") }},
		{"gpt-4k", "gpt", func(b []byte) { copy(b[4096:], "EFI PART") }},
		{"mbr", "mbr", mbr},
		{"boot-sig-without-partitions", "", func(b []byte) { b[510], b[511] = 0x55, 0xAA }},
		{"xfs-wins-over-mbr", "xfs", func(b []byte) { mbr(b); copy(b, "XFSB") }},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			sig, err := blockdev.DetectSignature(image(t, c.put))
			if err != nil {
				t.Fatal(err)
			}
			if sig.Kind != c.kind {
				t.Fatalf("Kind = %q (%s), want %q", sig.Kind, sig, c.kind)
			}
			if c.kind == "" && (!sig.IsZero() || sig.String() != "no signature") {
				t.Fatalf("blank: %+v", sig)
			}
			if c.kind != "" && !strings.Contains(sig.String(), c.kind) {
				t.Fatalf("String() = %q does not name %s", sig.String(), c.kind)
			}
		})
	}
}

func TestDetectSignatureCobalt(t *testing.T) {
	d := blockdev.NewMem(1<<20, 4096)
	l := testLabel()
	if err := blockdev.WriteLabel(d, l); err != nil {
		t.Fatal(err)
	}
	sig, err := blockdev.DetectSignature(d)
	if err != nil {
		t.Fatal(err)
	}
	want := "cobalt store 6ba7b810-9dad-11d1-80b4-00c04fd430c8"
	if sig.Kind != "cobalt" || sig.String() != want {
		t.Fatalf("got %q, want %q", sig, want)
	}
	// A metadata device says whose it is.
	m := blockdev.NewMem(1<<20, 4096)
	ml := testLabel()
	ml.DeviceSize, ml.MetadataDevice, ml.MetaOffset, ml.MetaLength = 1<<20, true, 64<<10, 512<<10
	if err := blockdev.WriteLabel(m, ml); err != nil {
		t.Fatal(err)
	}
	if sig, err = blockdev.DetectSignature(m); err != nil {
		t.Fatal(err)
	}
	if want := "cobalt metadata device of store 6ba7b810-9dad-11d1-80b4-00c04fd430c8"; !sig.MetadataDevice || sig.String() != want {
		t.Fatalf("metadata device: got %q (%+v), want %q", sig, sig, want)
	}
	// A damaged label is still recognized as Cobalt's, without a UUID.
	if err := d.FlipBit(30, 0); err != nil {
		t.Fatal(err)
	}
	sig, err = blockdev.DetectSignature(d)
	if err != nil {
		t.Fatal(err)
	}
	if sig.Kind != "cobalt" || sig.UUID != "" || !strings.Contains(sig.String(), "damaged") {
		t.Fatalf("damaged label: %+v", sig)
	}
}

func TestDetectSignatureSmallDevice(t *testing.T) {
	d := blockdev.NewMem(8192, 4096) // smaller than the scan window
	sigs, err := blockdev.DetectSignatures(d)
	if err != nil || len(sigs) != 0 {
		t.Fatalf("blank small device: %v %v", sigs, err)
	}
	if _, err := blockdev.DetectSignatures(blockdev.NewMem(0, 4096)); err != nil {
		t.Fatalf("empty device: %v", err)
	}
}

// TestDetectSignatureRealTools formats files with the system's mkfs tools when they are installed.
func TestDetectSignatureRealTools(t *testing.T) {
	tools := []struct {
		kind string
		argv []string
	}{
		{"ext2", []string{"mkfs.ext2", "-q", "-F"}},
		{"ext3", []string{"mkfs.ext3", "-q", "-F"}},
		{"ext4", []string{"mkfs.ext4", "-q", "-F"}},
		{"swap", []string{"mkswap"}},
		{"xfs", []string{"mkfs.xfs", "-q", "-f"}},
		{"btrfs", []string{"mkfs.btrfs", "-q", "-f"}},
		{"vfat", []string{"mkfs.vfat"}},
	}
	for _, tool := range tools {
		t.Run(tool.kind, func(t *testing.T) {
			if _, err := exec.LookPath(tool.argv[0]); err != nil {
				t.Skipf("%s not installed; the synthetic test covers %s", tool.argv[0], tool.kind)
			}
			path := filepath.Join(t.TempDir(), "fs.img")
			if err := os.WriteFile(path, nil, 0o600); err != nil {
				t.Fatal(err)
			}
			if err := os.Truncate(path, 512<<20); err != nil {
				t.Fatal(err)
			}
			if out, err := exec.Command(tool.argv[0], append(tool.argv[1:], path)...).CombinedOutput(); err != nil {
				t.Fatalf("%s: %v: %s", tool.argv, err, out)
			}
			d, err := blockdev.Open(path, blockdev.Options{ReadOnly: true})
			if err != nil {
				t.Fatal(err)
			}
			defer d.Close()
			sig, err := blockdev.DetectSignature(d)
			if err != nil {
				t.Fatal(err)
			}
			if sig.Kind != tool.kind {
				t.Fatalf("detected %q, want %q", sig, tool.kind)
			}
		})
	}
}

func FuzzDetectSignatures(f *testing.F) {
	good, err := blockdev.EncodeLabel(testLabel())
	if err != nil {
		f.Fatal(err)
	}
	f.Add(good)
	f.Add([]byte("XFSB"))
	f.Fuzz(func(t *testing.T, b []byte) {
		if len(b) > 256<<10 {
			b = b[:256<<10]
		}
		size := int64(len(b)+4095) / 4096 * 4096
		d := blockdev.NewMem(size, 4096)
		buf := blockdev.AlignedBuffer(int(size))
		copy(buf, b)
		if _, err := d.WriteAt(buf, 0); err != nil {
			t.Fatal(err)
		}
		sigs, err := blockdev.DetectSignatures(d)
		if err != nil {
			t.Fatal(err)
		}
		for _, s := range sigs {
			if s.Kind == "" || s.String() == "" {
				t.Fatalf("empty signature in %+v", sigs)
			}
		}
	})
}
