package blockdev

import (
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"hash/crc32"
	"math"
	"time"
)

// The label occupies the first LabelSize bytes of a Cobalt device. Layout (little-endian), version 2
// (version 1 is the same with flags 0 and bytes [64, 80) zero; its metadata lives in a directory of
// the host):
//
//	[0, 16)     magic "cobalt-store-lbl"
//	[16, 20)    format version (LabelVersion)
//	[20, 24)    flags: LabelFlagMetaOnDevice (version 2 only)
//	[24, 40)    store UUID
//	[40, 48)    device size in bytes at mkfs
//	[48, 52)    min_alloc_size in bytes (a power of two, 512 .. 16 MiB)
//	[52, 56)    device logical block size at mkfs
//	[56, 64)    creation time, Unix nanoseconds
//	[64, 72)    metadata region offset (with LabelFlagMetaOnDevice)
//	[72, 80)    metadata region length (with LabelFlagMetaOnDevice)
//	[80, 4092)  reserved, zero
//	[4092, 4096) crc32c (Castagnoli) of bytes [0, 4092)
//
// The version is a ratchet: DecodeLabel refuses versions newer than LabelVersion with
// ErrLabelVersion, so an old binary never misreads a newer store.
const (
	LabelSize    = 4096
	LabelVersion = 2
	labelMagic   = "cobalt-store-lbl"
	labelCRCOff  = LabelSize - 4
	// LabelFlagMetaOnDevice: the store's metadata lives in a region of this device
	// (Label.MetaRegion), not in a directory of the host.
	LabelFlagMetaOnDevice = 1
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
	// Version is the on-disk format version. EncodeLabel writes 2 when it is 0 and the metadata is
	// on the device, else 1, so that builds that read only version 1 still mount stores whose
	// metadata is in a directory.
	Version      uint32
	UUID         [16]byte
	DeviceSize   int64
	MinAllocSize uint32
	BlockSize    uint32
	Created      time.Time
	// MetaOffset and MetaLength locate the metadata region on this device; both are zero when the
	// metadata lives in a directory of the host.
	MetaOffset, MetaLength int64
}

// MetaOnDevice reports whether the store's metadata lives on this device.
func (l Label) MetaOnDevice() bool { return l.MetaLength > 0 }

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
	}
	return nil
}

// EncodeLabel returns the LabelSize-byte encoding of l in an aligned buffer. It fails if l is not
// valid (zero UUID, bad sizes, unknown version).
func EncodeLabel(l Label) ([]byte, error) {
	if l.Version == 0 {
		l.Version = 1
		if l.MetaOnDevice() {
			l.Version = 2
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
	le.PutUint32(b[20:], flags)
	copy(b[24:40], l.UUID[:])
	le.PutUint64(b[40:], uint64(l.DeviceSize))
	le.PutUint32(b[48:], l.MinAllocSize)
	le.PutUint32(b[52:], l.BlockSize)
	le.PutUint64(b[56:], uint64(l.Created.UnixNano()))
	le.PutUint64(b[64:], uint64(l.MetaOffset))
	le.PutUint64(b[72:], uint64(l.MetaLength))
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
	flags := le.Uint32(b[20:])
	switch {
	case l.Version == 1 && flags != 0:
		return Label{}, fmt.Errorf("unknown flags %#x in version 1: %w", flags, ErrLabelCorrupt)
	case flags&^LabelFlagMetaOnDevice != 0:
		return Label{}, fmt.Errorf("unknown flags %#x: %w", flags, ErrLabelCorrupt)
	}
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

// WriteLabel writes l at offset 0 of dev (padding to the block size with zeros) and flushes.
func WriteLabel(dev Device, l Label) error {
	enc, err := EncodeLabel(l)
	if err != nil {
		return err
	}
	bs := dev.BlockSize()
	n := (LabelSize + bs - 1) / bs * bs
	buf := AlignedBuffer(n)
	copy(buf, enc)
	if _, err := dev.WriteAt(buf, 0); err != nil {
		return fmt.Errorf("blockdev: write label: %w", err)
	}
	if err := dev.Flush(); err != nil {
		return fmt.Errorf("blockdev: write label: %w", err)
	}
	return nil
}

// ReadLabel reads and decodes the label at offset 0 of dev.
func ReadLabel(dev Device) (Label, error) {
	bs := dev.BlockSize()
	buf := AlignedBuffer((LabelSize + bs - 1) / bs * bs)
	if _, err := dev.ReadAt(buf, 0); err != nil {
		return Label{}, fmt.Errorf("blockdev: read label: %w", err)
	}
	l, err := DecodeLabel(buf)
	if err != nil {
		return Label{}, fmt.Errorf("blockdev: read label: %w", err)
	}
	return l, nil
}
