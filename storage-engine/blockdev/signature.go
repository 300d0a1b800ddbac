package blockdev

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
)

// Signature is an on-disk signature found on a device: a Cobalt store, a filesystem, a partition
// table or another storage layer. mkfs refuses a device with any signature unless forced, and
// prints the signature to say why.
type Signature struct {
	// Kind is a short name: "cobalt", "ext2", "ext3", "ext4", "xfs", "btrfs", "f2fs", "swap",
	// "luks", "lvm2", "mdraid", "bluestore", "vfat", "ntfs", "exfat", "iso9660", "squashfs", "gpt",
	// "mbr". The zero Signature (Kind "") means nothing was recognized.
	Kind string
	// Offset is the byte offset of the magic that identified it.
	Offset int64
	// UUID is the store UUID when Kind is "cobalt" and the label is intact.
	UUID string
	// MetadataDevice: Kind is "cobalt" and the device is the metadata device of store UUID (label
	// version 4), not a store.
	MetadataDevice bool
	// Detail says what was found in words.
	Detail string
}

// IsZero reports whether no signature was found.
func (s Signature) IsZero() bool { return s.Kind == "" }

// String is "cobalt store <uuid>", "cobalt metadata device of store <uuid>", or the detail and
// offset of another signature.
func (s Signature) String() string {
	switch {
	case s.Kind == "":
		return "no signature"
	case s.Kind == "cobalt" && s.UUID != "" && s.MetadataDevice:
		return "cobalt metadata device of store " + s.UUID
	case s.Kind == "cobalt" && s.UUID != "":
		return "cobalt store " + s.UUID
	}
	return fmt.Sprintf("%s (%s, magic at byte %d)", s.Kind, s.Detail, s.Offset)
}

// signatureScanSize is how much of the start of a device DetectSignatures reads: enough for the
// btrfs superblock at 64 KiB and the other magics below it.
const signatureScanSize = 128 << 10

// DetectSignature returns the most specific signature on dev (see DetectSignatures), or the zero
// Signature when there is none.
func DetectSignature(dev Device) (Signature, error) {
	sigs, err := DetectSignatures(dev)
	if err != nil || len(sigs) == 0 {
		return Signature{}, err
	}
	return sigs[0], nil
}

// DetectSignatures reads the first 128 KiB of dev and returns every signature it recognizes, most
// specific first (a Cobalt label, then filesystems and storage layers, then partition tables).
// A damaged Cobalt label (right magic, bad checksum) is reported as Kind "cobalt" without a UUID,
// unless the copy RewriteLabel keeps is valid (a rewrite torn by a crash): then it is the store.
func DetectSignatures(dev Device) ([]Signature, error) {
	bs := int64(dev.BlockSize())
	n := min(dev.Size(), signatureScanSize)
	n -= n % bs
	buf := AlignedBuffer(int(n))
	if _, err := dev.ReadAt(buf, 0); err != nil {
		return nil, fmt.Errorf("blockdev: detect signature: %w", err)
	}
	return scanSignatures(buf), nil
}

// scanSignatures recognizes signatures in b, the first bytes of a device. It never panics,
// whatever the length or contents of b.
func scanSignatures(b []byte) []Signature {
	var out []Signature
	add := func(kind string, off int64, detail string) {
		out = append(out, Signature{Kind: kind, Offset: off, Detail: detail})
	}
	at := func(off int, magic string) bool {
		return off >= 0 && off+len(magic) <= len(b) && string(b[off:off+len(magic)]) == magic
	}
	le16 := func(off int) uint16 { return binary.LittleEndian.Uint16(b[off:]) }
	le32 := func(off int) uint32 { return binary.LittleEndian.Uint32(b[off:]) }

	// Cobalt's own label.
	if at(0, labelMagic) {
		l, err := decodeLabelOrCopy(b)
		switch {
		case err == nil:
			what := "store"
			if l.MetadataDevice {
				what = "metadata device"
			}
			out = append(out, Signature{Kind: "cobalt", UUID: l.UUIDString(), MetadataDevice: l.MetadataDevice,
				Detail: fmt.Sprintf("Cobalt %s label version %d", what, l.Version)})
		case errors.Is(err, ErrLabelVersion):
			add("cobalt", 0, fmt.Sprintf("Cobalt store label of a newer format: %v", err))
		default:
			add("cobalt", 0, fmt.Sprintf("damaged Cobalt store label: %v", err))
		}
	}
	// Filesystems and storage layers.
	if len(b) >= 1024+0x68 && le16(1024+56) == 0xEF53 {
		compat, incompat, roCompat := le32(1024+0x5C), le32(1024+0x60), le32(1024+0x64)
		kind := "ext2"
		switch {
		case incompat&(0x40|0x80|0x200) != 0 || roCompat&(0x8|0x20|0x40|0x400) != 0:
			kind = "ext4" // extents, 64bit, flex_bg / huge_file, dir_nlink, extra_isize, metadata_csum
		case compat&0x4 != 0:
			kind = "ext3" // has_journal
		}
		add(kind, 1080, kind+" filesystem superblock")
	}
	if at(0, "XFSB") {
		add("xfs", 0, "XFS filesystem superblock")
	}
	if at(65536+64, "_BHRfS_M") {
		add("btrfs", 65536+64, "btrfs filesystem superblock")
	}
	if len(b) >= 1028 && le32(1024) == 0xF2F52010 {
		add("f2fs", 1024, "F2FS filesystem superblock")
	}
	if at(0, "LUKS\xba\xbe") {
		add("luks", 0, "LUKS encrypted volume header")
	}
	if at(512, "LABELONE") && at(512+24, "LVM2 001") {
		add("lvm2", 512, "LVM2 physical volume label")
	}
	for _, off := range []int{4096, 0} { // md superblock 1.2 at 4 KiB, 1.1 at 0
		if len(b) >= off+4 && le32(off) == 0xA92B4EFC {
			add("mdraid", int64(off), "Linux software RAID (md) member superblock")
			break
		}
	}
	if at(0, "bluestore block device") {
		add("bluestore", 0, "Ceph BlueStore OSD block device")
	}
	for _, page := range []int{4096, 8192, 16384, 65536} {
		if at(page-10, "SWAPSPACE2") || at(page-10, "SWAP-SPACE") {
			add("swap", int64(page-10), "Linux swap space")
			break
		}
	}
	if at(0, "hsqs") {
		add("squashfs", 0, "SquashFS image")
	}
	if at(32769, "CD001") {
		add("iso9660", 32769, "ISO 9660 (CD/DVD image) volume descriptor")
	}
	bootSig := len(b) >= 512 && b[510] == 0x55 && b[511] == 0xAA
	switch {
	case at(3, "NTFS    "):
		add("ntfs", 3, "NTFS filesystem boot sector")
	case at(3, "EXFAT   "):
		add("exfat", 3, "exFAT filesystem boot sector")
	case bootSig && (at(82, "FAT32   ") || at(54, "FAT12   ") || at(54, "FAT16   ") || at(54, "FAT     ")):
		add("vfat", 0, "FAT filesystem boot sector")
	}
	// Partition tables last: a filesystem on the whole device is the more specific finding.
	gpt := false
	for _, off := range []int{512, 4096} {
		if at(off, "EFI PART") {
			add("gpt", int64(off), "GPT partition table header")
			gpt = true
			break
		}
	}
	if bootSig && !gpt && !hasKind(out, "vfat", "ntfs", "exfat") && mbrHasPartition(b) {
		add("mbr", 510, "MBR partition table (boot signature 0x55AA)")
	}
	return out
}

func hasKind(sigs []Signature, kinds ...string) bool {
	for _, s := range sigs {
		for _, k := range kinds {
			if s.Kind == k {
				return true
			}
		}
	}
	return false
}

// mbrHasPartition reports whether any of the four MBR partition entries is in use (type != 0).
func mbrHasPartition(b []byte) bool {
	for i := range 4 {
		entry := b[446+16*i : 446+16*(i+1)]
		if entry[4] != 0 && !bytes.Equal(entry, make([]byte, 16)) {
			return true
		}
	}
	return false
}
