package blockdev

import (
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"hash/crc32"
	"math"
	"strings"
	"time"
)

// The label occupies the first LabelSize bytes of a Cobalt device. Layout (little-endian), version 4
// (version 3 is the same without the device-role flags; version 2 also has bytes [80, 96) zero: no
// cluster; version 1 also has flags 0 and bytes [64, 80) zero: its metadata lives in a directory of
// the host):
//
//	[0, 16)     magic "cobalt-store-lbl"
//	[16, 20)    format version (LabelVersion)
//	[20, 24)    flags: LabelFlagMetaOnDevice (version 2 and later), LabelFlagMetaOnSeparateDevice and
//	            LabelFlagMetadataDevice (version 4)
//	[24, 40)    store UUID
//	[40, 48)    device size in bytes at mkfs
//	[48, 52)    min_alloc_size in bytes (a power of two, 512 .. 16 MiB)
//	[52, 56)    device logical block size at mkfs
//	[56, 64)    creation time, Unix nanoseconds
//	[64, 72)    metadata region offset (with LabelFlagMetaOnDevice)
//	[72, 80)    metadata region length (with LabelFlagMetaOnDevice)
//	[80, 96)    cluster ID: the Cobalt cluster that made (or adopted) the store (version 3: never
//	            zero; version 4: zero for a store that names no cluster)
//	[96, 4092)  reserved, zero
//	[4092, 4096) crc32c (Castagnoli) of bytes [0, 4092)
//
// Device roles (version 4). A store may keep its metadata on a second, faster device (BlueStore's
// block.db). Both devices then carry a label with the store's UUID: the data device's has
// LabelFlagMetaOnSeparateDevice and no region ([64, 80) zero), the metadata device's has
// LabelFlagMetadataDevice and LabelFlagMetaOnDevice with its region on that device; the sizes,
// blocks and creation time are each device's own. A metadata device is not a store: it is mounted
// only with the data device whose UUID it carries.
//
// The version is a ratchet: DecodeLabel refuses versions newer than LabelVersion with
// ErrLabelVersion, so an old binary never misreads a newer store. In particular a binary that
// reads only versions 1 and 2 refuses a version-3 label: it cannot check the cluster, so it must
// not mount the store; likewise a binary that reads up to version 3 refuses both labels of a store
// with a separate metadata device, and never takes the metadata device for a store.
//
// RewriteLabel changes the label of an existing store. A power cut may tear a write (Device), so
// on devices whose logical block is at most LabelCopyOffset RewriteLabel first writes the new label
// to a copy at LabelCopyOffset (inside the space mkfs reserves for the label and zeroes) and only
// then over the label; on devices with larger blocks the label is one block, written whole. A label torn by a crash during the second write fails its
// checksum; ReadLabel and DetectSignatures then read the copy, and RepairLabel writes it back.
const (
	LabelSize    = 4096
	LabelVersion = 4
	// LabelCopyOffset is where RewriteLabel keeps the copy of a label it rewrites.
	LabelCopyOffset = LabelSize
	labelMagic      = "cobalt-store-lbl"
	labelCRCOff     = LabelSize - 4
	// LabelFlagMetaOnDevice: the store's metadata lives in a region of this device
	// (Label.MetaRegion), not in a directory of the host.
	LabelFlagMetaOnDevice = 1
	// LabelFlagMetaOnSeparateDevice: the store's metadata lives on a separate device, whose label
	// carries the same UUID and LabelFlagMetadataDevice (version 4).
	LabelFlagMetaOnSeparateDevice = 2
	// LabelFlagMetadataDevice: this device is the metadata device of the store the UUID names; its
	// region (Label.MetaRegion) holds that store's metadata (version 4, with LabelFlagMetaOnDevice).
	LabelFlagMetadataDevice = 4
	labelFlagsKnown         = LabelFlagMetaOnDevice | LabelFlagMetaOnSeparateDevice | LabelFlagMetadataDevice
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// Label errors. A block whose magic is not Cobalt's gives ErrNoLabel; a Cobalt label that fails its
// checksum or carries impossible values gives ErrLabelCorrupt.
var (
	ErrNoLabel      = errors.New("blockdev: no cobalt label")
	ErrLabelCorrupt = errors.New("blockdev: cobalt label corrupt")
	ErrLabelVersion = errors.New("blockdev: cobalt label version not supported")
)

// Label identifies a Cobalt store on its device.
type Label struct {
	// Version is the on-disk format version. EncodeLabel writes, when it is 0, the oldest version
	// that holds the label: 4 when it has a device role (MetaOnSeparateDevice, MetadataDevice),
	// else 3 when it names a cluster, else 2 when the metadata is on the device, else 1 (so that
	// builds that read only version 1 still mount stores whose metadata is in a directory).
	Version      uint32
	UUID         [16]byte
	DeviceSize   int64
	MinAllocSize uint32
	BlockSize    uint32
	Created      time.Time
	// MetaOffset and MetaLength locate the metadata region on this device; both are zero when the
	// metadata lives in a directory of the host or on a separate device.
	MetaOffset, MetaLength int64
	// MetaOnSeparateDevice: this is the data device of a store whose metadata is on a separate
	// device (the one whose label has MetadataDevice and this UUID). Version 4.
	MetaOnSeparateDevice bool
	// MetadataDevice: this is the metadata device of store UUID, not a store; its region is
	// MetaOffset, MetaLength. Version 4.
	MetadataDevice bool
	// ClusterID identifies the Cobalt cluster the store belongs to (the node daemon records its
	// StorageCluster's UID); zero in labels of version 1 and 2, which name no cluster.
	ClusterID [16]byte
}

// MetaOnDevice reports whether the store's metadata lives on this device: the store's own device,
// or, for a label with MetadataDevice, the metadata device.
func (l Label) MetaOnDevice() bool { return l.MetaLength > 0 }

// hasRole reports whether the label carries a device role of version 4.
func (l Label) hasRole() bool { return l.MetaOnSeparateDevice || l.MetadataDevice }

// HasCluster reports whether the label names the cluster the store belongs to (version 3).
func (l Label) HasCluster() bool { return l.ClusterID != [16]byte{} }

// ClusterIDString formats the cluster ID as a UUID, or "" when the label names no cluster.
func (l Label) ClusterIDString() string {
	if !l.HasCluster() {
		return ""
	}
	return FormatUUID(l.ClusterID)
}

// ParseUUID parses a UUID in the canonical 8-4-4-4-12 form (or as 32 hex digits).
func ParseUUID(s string) ([16]byte, error) {
	var u [16]byte
	h := strings.ReplaceAll(s, "-", "")
	if len(h) != 32 || (len(s) != 32 && (len(s) != 36 || s[8] != '-' || s[13] != '-' || s[18] != '-' || s[23] != '-')) {
		return u, fmt.Errorf("blockdev: %q is not a UUID", s)
	}
	if _, err := hex.Decode(u[:], []byte(h)); err != nil {
		return u, fmt.Errorf("blockdev: %q is not a UUID: %w", s, err)
	}
	return u, nil
}

// UUIDString formats the UUID in the canonical 8-4-4-4-12 form.
func (l Label) UUIDString() string { return FormatUUID(l.UUID) }

// FormatUUID formats a 16-byte UUID as xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx.
func FormatUUID(u [16]byte) string {
	h := hex.EncodeToString(u[:])
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:32]
}

func (l Label) validate() error {
	switch {
	case l.Version == 0 || l.Version > LabelVersion:
		return fmt.Errorf("version %d (this binary reads up to %d): %w", l.Version, LabelVersion, ErrLabelVersion)
	case l.UUID == [16]byte{}:
		return errors.New("zero UUID")
	case l.DeviceSize <= LabelSize:
		return fmt.Errorf("device size %d too small", l.DeviceSize)
	case l.MinAllocSize < 512 || l.MinAllocSize > 16<<20 || l.MinAllocSize&(l.MinAllocSize-1) != 0:
		return fmt.Errorf("min_alloc_size %d is not a power of two in [512, 16 MiB]", l.MinAllocSize)
	case !validBlockSize(int(l.BlockSize)):
		return fmt.Errorf("block size %d is not a power of two in [512, 64 KiB]", l.BlockSize)
	case l.Created.Before(time.Unix(0, math.MinInt64)) || l.Created.After(time.Unix(0, math.MaxInt64)):
		return fmt.Errorf("creation time %v is not representable in Unix nanoseconds", l.Created)
	case l.MetaLength < 0 || l.MetaOffset < 0 || (l.MetaLength == 0) != (l.MetaOffset == 0):
		return fmt.Errorf("metadata region [%d, +%d) is invalid", l.MetaOffset, l.MetaLength)
	case l.MetaLength > 0 && (l.Version < 2 || l.MetaOffset < LabelSize || l.MetaOffset > l.DeviceSize || l.MetaLength > l.DeviceSize-l.MetaOffset):
		return fmt.Errorf("metadata region [%d, +%d) is not inside the %d-byte device after the label (label version %d)", l.MetaOffset, l.MetaLength, l.DeviceSize, l.Version)
	case l.Version == 3 && !l.HasCluster():
		return fmt.Errorf("label version %d without a cluster ID", l.Version)
	case l.Version < 3 && l.HasCluster():
		return fmt.Errorf("cluster ID %s in label version %d (it needs version 3)", l.ClusterIDString(), l.Version)
	case l.Version < 4 && l.hasRole():
		return fmt.Errorf("device role in label version %d (it needs version 4)", l.Version)
	case l.MetaOnSeparateDevice && l.MetadataDevice:
		return errors.New("both the data device of a store with a separate metadata device and a metadata device")
	case l.MetaOnSeparateDevice && l.MetaOnDevice():
		return fmt.Errorf("metadata region [%d, +%d) on the data device of a store whose metadata is on a separate device", l.MetaOffset, l.MetaLength)
	case l.MetadataDevice && !l.MetaOnDevice():
		return errors.New("metadata device without a metadata region")
	}
	return nil
}

// EncodeLabel returns the LabelSize-byte encoding of l in an aligned buffer. It fails if l is not
// valid (zero UUID, bad sizes, unknown version).
func EncodeLabel(l Label) ([]byte, error) {
	if l.Version == 0 {
		switch {
		case l.hasRole():
			l.Version = 4
		case l.HasCluster():
			l.Version = 3
		case l.MetaOnDevice():
			l.Version = 2
		default:
			l.Version = 1
		}
	}
	if err := l.validate(); err != nil {
		return nil, fmt.Errorf("blockdev: encode label: %w", err)
	}
	b := AlignedBuffer(LabelSize)
	copy(b, labelMagic)
	le := binary.LittleEndian
	le.PutUint32(b[16:], l.Version)
	var flags uint32
	if l.MetaOnDevice() {
		flags |= LabelFlagMetaOnDevice
	}
	if l.MetaOnSeparateDevice {
		flags |= LabelFlagMetaOnSeparateDevice
	}
	if l.MetadataDevice {
		flags |= LabelFlagMetadataDevice
	}
	le.PutUint32(b[20:], flags)
	copy(b[24:40], l.UUID[:])
	le.PutUint64(b[40:], uint64(l.DeviceSize))
	le.PutUint32(b[48:], l.MinAllocSize)
	le.PutUint32(b[52:], l.BlockSize)
	le.PutUint64(b[56:], uint64(l.Created.UnixNano()))
	le.PutUint64(b[64:], uint64(l.MetaOffset))
	le.PutUint64(b[72:], uint64(l.MetaLength))
	copy(b[80:96], l.ClusterID[:])
	le.PutUint32(b[labelCRCOff:], crc32.Checksum(b[:labelCRCOff], castagnoli))
	return b, nil
}

// DecodeLabel parses a label from the first LabelSize bytes of b. It never panics: short input or
// a foreign magic gives ErrNoLabel, a bad checksum or impossible field ErrLabelCorrupt, a newer
// version ErrLabelVersion.
func DecodeLabel(b []byte) (Label, error) {
	if len(b) < LabelSize || string(b[:len(labelMagic)]) != labelMagic {
		return Label{}, ErrNoLabel
	}
	b = b[:LabelSize]
	le := binary.LittleEndian
	if got, want := le.Uint32(b[labelCRCOff:]), crc32.Checksum(b[:labelCRCOff], castagnoli); got != want {
		return Label{}, fmt.Errorf("checksum %#08x, computed %#08x: %w", got, want, ErrLabelCorrupt)
	}
	l := Label{
		Version:      le.Uint32(b[16:]),
		DeviceSize:   int64(le.Uint64(b[40:])),
		MinAllocSize: le.Uint32(b[48:]),
		BlockSize:    le.Uint32(b[52:]),
		Created:      time.Unix(0, int64(le.Uint64(b[56:]))).UTC(),
	}
	copy(l.UUID[:], b[24:40])
	copy(l.ClusterID[:], b[80:96])
	flags := le.Uint32(b[20:])
	switch {
	case l.Version == 1 && flags != 0:
		return Label{}, fmt.Errorf("unknown flags %#x in version 1: %w", flags, ErrLabelCorrupt)
	case flags&^labelFlagsKnown != 0:
		return Label{}, fmt.Errorf("unknown flags %#x: %w", flags, ErrLabelCorrupt)
	}
	l.MetaOnSeparateDevice = flags&LabelFlagMetaOnSeparateDevice != 0
	l.MetadataDevice = flags&LabelFlagMetadataDevice != 0
	if flags&LabelFlagMetaOnDevice != 0 {
		l.MetaOffset, l.MetaLength = int64(le.Uint64(b[64:])), int64(le.Uint64(b[72:]))
		if l.MetaLength == 0 {
			return Label{}, fmt.Errorf("metadata on device with an empty region: %w", ErrLabelCorrupt)
		}
	} else if le.Uint64(b[64:]) != 0 || le.Uint64(b[72:]) != 0 {
		return Label{}, fmt.Errorf("metadata region set without the on-device flag: %w", ErrLabelCorrupt)
	}
	if err := l.validate(); err != nil {
		if errors.Is(err, ErrLabelVersion) {
			return Label{}, err
		}
		return Label{}, fmt.Errorf("%w: %w", err, ErrLabelCorrupt)
	}
	return l, nil
}

// WriteLabel writes l at offset 0 of dev (padding to the block size with zeros) and flushes. It is
// for a new store (mkfs): to change the label of an existing store use RewriteLabel.
func WriteLabel(dev Device, l Label) error {
	enc, err := EncodeLabel(l)
	if err != nil {
		return err
	}
	if err := writeLabelAt(dev, enc, 0); err != nil {
		return fmt.Errorf("blockdev: write label: %w", err)
	}
	return nil
}

// RewriteLabel replaces the label of the store on dev by l, so that a crash at any moment leaves a
// label ReadLabel reads: the old one or l. On a device whose logical block is at most
// LabelCopyOffset it writes l to the copy at LabelCopyOffset and flushes before it writes the label
// itself (larger blocks hold the whole label in one block, written whole). It refuses a label of another
// store (l.UUID must be the UUID of the label on dev).
func RewriteLabel(dev Device, l Label) error {
	old, err := ReadLabel(dev)
	if err != nil {
		return fmt.Errorf("blockdev: rewrite label: %w", err)
	}
	if old.UUID != l.UUID {
		return fmt.Errorf("blockdev: rewrite label: the device carries store %s, not %s", old.UUIDString(), l.UUIDString())
	}
	enc, err := EncodeLabel(l)
	if err != nil {
		return fmt.Errorf("blockdev: rewrite label: %w", err)
	}
	if dev.BlockSize() <= LabelCopyOffset {
		if err := writeLabelAt(dev, enc, LabelCopyOffset); err != nil {
			return fmt.Errorf("blockdev: rewrite label: write the copy: %w", err)
		}
	}
	if err := writeLabelAt(dev, enc, 0); err != nil {
		return fmt.Errorf("blockdev: rewrite label: %w", err)
	}
	return nil
}

// RepairLabel writes the copy RewriteLabel left back over a label that fails its checksum (a
// rewrite torn by a crash). It reports whether it repaired anything; a label that decodes, or a
// damaged one without a valid copy, is left as it is.
func RepairLabel(dev Device) (bool, error) {
	buf, err := readLabelArea(dev)
	if err != nil {
		return false, fmt.Errorf("blockdev: repair label: %w", err)
	}
	if _, err := DecodeLabel(buf); !errors.Is(err, ErrLabelCorrupt) {
		return false, nil
	}
	if len(buf) < LabelCopyOffset+LabelSize {
		return false, nil
	}
	cp := buf[LabelCopyOffset : LabelCopyOffset+LabelSize]
	if _, err := DecodeLabel(cp); err != nil {
		return false, nil
	}
	enc := AlignedBuffer(LabelSize)
	copy(enc, cp)
	if err := writeLabelAt(dev, enc, 0); err != nil {
		return false, fmt.Errorf("blockdev: repair label: %w", err)
	}
	return true, nil
}

// writeLabelAt writes the encoded label enc at off (a multiple of LabelSize), padded with zeros to
// the block size, and flushes.
func writeLabelAt(dev Device, enc []byte, off int64) error {
	bs := dev.BlockSize()
	buf := AlignedBuffer((LabelSize + bs - 1) / bs * bs)
	copy(buf, enc)
	if _, err := dev.WriteAt(buf, off); err != nil {
		return err
	}
	return dev.Flush()
}

// readLabelArea reads the label and the room for its copy, in whole blocks (on devices of 64 KiB
// blocks, only the first block: those never have a copy).
func readLabelArea(dev Device) ([]byte, error) {
	bs := dev.BlockSize()
	n := (LabelCopyOffset + LabelSize + bs - 1) / bs * bs
	if int64(n) > dev.Size() {
		n = (LabelSize + bs - 1) / bs * bs
	}
	buf := AlignedBuffer(n)
	if _, err := dev.ReadAt(buf, 0); err != nil {
		return nil, err
	}
	return buf, nil
}

// ReadLabel reads and decodes the label at offset 0 of dev. A label that fails its checksum is
// read from the copy RewriteLabel writes, when that copy is valid (a rewrite torn by a crash).
func ReadLabel(dev Device) (Label, error) {
	buf, err := readLabelArea(dev)
	if err != nil {
		return Label{}, fmt.Errorf("blockdev: read label: %w", err)
	}
	l, err := decodeLabelOrCopy(buf)
	if err != nil {
		return Label{}, fmt.Errorf("blockdev: read label: %w", err)
	}
	return l, nil
}

// decodeLabelOrCopy decodes the label at the start of b, or, when that one carries Cobalt's magic
// but is damaged, the copy at LabelCopyOffset if it is valid.
func decodeLabelOrCopy(b []byte) (Label, error) {
	l, err := DecodeLabel(b)
	if !errors.Is(err, ErrLabelCorrupt) || len(b) < LabelCopyOffset+LabelSize {
		return l, err
	}
	if cp, cerr := DecodeLabel(b[LabelCopyOffset:]); cerr == nil {
		return cp, nil
	}
	return l, err
}
