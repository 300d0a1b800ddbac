package kv

import (
	"encoding/binary"
	"fmt"
)

// RecordVersion is the version byte that starts every record in this file.
const RecordVersion = 1

// Superblock describes a store's format and geometry. It is written by mkfs and updated when the
// next nid advances.
type Superblock struct {
	UUID              string
	DeviceSize        uint64
	MinAllocSize      uint64
	ChecksumBlockSize uint64
	// DataStart is the first device byte the allocator manages (the label lives below it).
	DataStart uint64
	// NextNid is larger than every nid ever handed out.
	NextNid uint64
	// Format is the store's metadata format version (the store refuses formats it does not
	// read). Superblock records of version 1 predate the field and decode as format 1.
	Format uint64
}

// SuperblockVersion is the record version Superblock.Encode writes; DecodeSuperblock also reads
// version 1 (without Format).
const SuperblockVersion = 2

// Encode returns the record's encoding.
func (s *Superblock) Encode() []byte {
	b := []byte{SuperblockVersion}
	b = binary.AppendUvarint(b, uint64(len(s.UUID)))
	b = append(b, s.UUID...)
	for _, v := range []uint64{s.DeviceSize, s.MinAllocSize, s.ChecksumBlockSize, s.DataStart, s.NextNid, s.Format} {
		b = binary.AppendUvarint(b, v)
	}
	return b
}

// DecodeSuperblock parses a superblock record.
func DecodeSuperblock(b []byte) (*Superblock, error) {
	r := reader{buf: b}
	v := r.versionIn("superblock", RecordVersion, SuperblockVersion)
	s := &Superblock{UUID: string(r.bytes())}
	s.DeviceSize = r.uvarint()
	s.MinAllocSize = r.uvarint()
	s.ChecksumBlockSize = r.uvarint()
	s.DataStart = r.uvarint()
	s.NextNid = r.uvarint()
	s.Format = 1
	if v >= 2 {
		s.Format = r.uvarint()
	}
	if err := r.finish("superblock"); err != nil {
		return nil, err
	}
	if s.Format == 0 {
		return nil, fmt.Errorf("superblock format version 0: %w", ErrCorrupt)
	}
	pow2 := func(v uint64) bool { return v != 0 && v&(v-1) == 0 }
	if !pow2(s.MinAllocSize) || !pow2(s.ChecksumBlockSize) || s.MinAllocSize%s.ChecksumBlockSize != 0 ||
		s.DataStart%s.MinAllocSize != 0 || s.DataStart > s.DeviceSize || s.UUID == "" {
		return nil, fmt.Errorf("superblock geometry %+v is invalid: %w", *s, ErrCorrupt)
	}
	return s, nil
}

// Collection is the record stored under a collection key.
type Collection struct{}

// Encode returns the record's encoding.
func (Collection) Encode() []byte { return []byte{RecordVersion} }

// DecodeCollection parses a collection record.
func DecodeCollection(b []byte) (Collection, error) {
	r := reader{buf: b}
	r.version("collection")
	return Collection{}, r.finish("collection")
}

// Deferred is one logged in-place write of a single checksum block.
type Deferred struct {
	Phys uint64
	Data []byte
}

// Encode returns the record's encoding: version, uvarint Phys, uvarint-length-prefixed Data.
func (d *Deferred) Encode() []byte {
	return d.AppendTo(make([]byte, 0, d.Size()))
}

// Size is the length of the record's encoding.
func (d *Deferred) Size() int {
	return 1 + uvarintLen(d.Phys) + uvarintLen(uint64(len(d.Data))) + len(d.Data)
}

// AppendTo appends the record's encoding to b.
func (d *Deferred) AppendTo(b []byte) []byte {
	b = append(b, RecordVersion)
	b = binary.AppendUvarint(b, d.Phys)
	b = binary.AppendUvarint(b, uint64(len(d.Data)))
	return append(b, d.Data...)
}

// DecodeDeferred parses a deferred-write record.
func DecodeDeferred(b []byte) (*Deferred, error) {
	r := reader{buf: b}
	r.version("deferred write")
	d := &Deferred{Phys: r.uvarint(), Data: r.bytes()}
	if err := r.finish("deferred write"); err != nil {
		return nil, err
	}
	if len(d.Data) == 0 {
		return nil, fmt.Errorf("deferred write at %d has no data: %w", d.Phys, ErrCorrupt)
	}
	return d, nil
}

// Stats is the persisted store statistics record.
type Stats struct {
	Objects      uint64
	LogicalBytes uint64
}

// Encode returns the record's encoding.
func (s *Stats) Encode() []byte {
	b := []byte{RecordVersion}
	b = binary.AppendUvarint(b, s.Objects)
	return binary.AppendUvarint(b, s.LogicalBytes)
}

// DecodeStats parses a statistics record.
func DecodeStats(b []byte) (*Stats, error) {
	r := reader{buf: b}
	r.version("stats")
	s := &Stats{Objects: r.uvarint(), LogicalBytes: r.uvarint()}
	if err := r.finish("stats"); err != nil {
		return nil, err
	}
	return s, nil
}

// reader consumes an encoding; after the first error every method returns zero values.
type reader struct {
	buf []byte
	off int
	err error
}

func (r *reader) fail(what string) {
	if r.err == nil {
		r.err = fmt.Errorf("truncated or invalid %s at byte %d: %w", what, r.off, ErrCorrupt)
	}
}

// versionIn reads a version byte that must lie in [lo, hi] and returns it.
func (r *reader) versionIn(what string, lo, hi byte) byte {
	if len(r.buf) == 0 {
		r.fail(what + " version")
		return 0
	}
	if v := r.buf[0]; v < lo || v > hi {
		r.err = fmt.Errorf("%s record version %d, want %d..%d: %w", what, v, lo, hi, ErrCorrupt)
		return 0
	}
	r.off = 1
	return r.buf[0]
}

func (r *reader) version(what string) {
	if len(r.buf) == 0 {
		r.fail(what + " version")
		return
	}
	if r.buf[0] != RecordVersion {
		r.err = fmt.Errorf("%s record version %d, want %d: %w", what, r.buf[0], RecordVersion, ErrCorrupt)
		return
	}
	r.off = 1
}

func (r *reader) uvarint() uint64 {
	if r.err != nil {
		return 0
	}
	v, n := binary.Uvarint(r.buf[r.off:])
	if n <= 0 || n != uvarintLen(v) { // overlong encodings are refused: one value, one encoding
		r.fail("varint")
		return 0
	}
	r.off += n
	return v
}

func (r *reader) bytes() []byte {
	n := r.uvarint()
	if r.err != nil {
		return nil
	}
	if n > uint64(len(r.buf)-r.off) {
		r.fail("length")
		return nil
	}
	b := append([]byte(nil), r.buf[r.off:r.off+int(n)]...)
	r.off += int(n)
	return b
}

func (r *reader) finish(what string) error {
	if r.err == nil && r.off != len(r.buf) {
		r.fail("end (trailing bytes)")
	}
	if r.err != nil {
		return fmt.Errorf("decode %s: %w", what, r.err)
	}
	return nil
}

// uvarintLen is the length of the minimal uvarint encoding of v.
func uvarintLen(v uint64) int {
	n := 1
	for v >= 0x80 {
		v >>= 7
		n++
	}
	return n
}
