package metafs

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
)

// The superblock is kept in two slots, the first two SuperblockSize blocks of the region. Each
// update writes the slot the generation selects (gen % 2) and flushes, so a torn update leaves
// the other slot, one generation older, intact; Mount uses the valid slot of the highest
// generation. Layout, little-endian:
//
//	[0, 16)     magic "cobalt-metafs-sb"
//	[16, 20)    version (superVersion)
//	[20, 24)    allocation unit in bytes
//	[24, 40)    owner UUID (the store's)
//	[40, 48)    generation
//	[48, 56)    region offset on the device
//	[56, 64)    region length
//	[64, 72)    journal offset on the device (in the region or in space added after it)
//	[72, 80)    journal length
//	[80, 88)    journal epoch
//	[88, 92)    device block size at format
//	[92, 4092)  zero
//	[4092, 4096) crc32c of [0, 4092)
const (
	SuperblockSize = 4096
	superVersion   = 1
	superMagic     = "cobalt-metafs-sb"
	superCRCOff    = SuperblockSize - 4
	// superReserve is how much of the region start the two superblock slots take.
	superReserve = 2 * SuperblockSize
)

// superblock is the decoded root of the file system.
type superblock struct {
	unit      uint32
	uuid      [16]byte
	gen       uint64
	region    Extent
	journal   Extent
	epoch     uint64
	blockSize uint32
}

func (s superblock) encode() []byte {
	b := make([]byte, SuperblockSize)
	copy(b, superMagic)
	le := binary.LittleEndian
	le.PutUint32(b[16:], superVersion)
	le.PutUint32(b[20:], s.unit)
	copy(b[24:40], s.uuid[:])
	le.PutUint64(b[40:], s.gen)
	le.PutUint64(b[48:], uint64(s.region.Offset))
	le.PutUint64(b[56:], uint64(s.region.Length))
	le.PutUint64(b[64:], uint64(s.journal.Offset))
	le.PutUint64(b[72:], uint64(s.journal.Length))
	le.PutUint64(b[80:], s.epoch)
	le.PutUint32(b[88:], s.blockSize)
	le.PutUint32(b[superCRCOff:], crc32.Checksum(b[:superCRCOff], castagnoli))
	return b
}

// errNoSuper: the slot holds no superblock of ours (never written, or another format).
var errNoSuper = errors.New("no metafs superblock")

// decodeSuperblock parses one slot. It never panics: foreign bytes give errNoSuper, a checksum
// mismatch or impossible values ErrCorrupt, a newer version ErrVersion.
func decodeSuperblock(b []byte) (superblock, error) {
	if len(b) < SuperblockSize || string(b[:len(superMagic)]) != superMagic {
		return superblock{}, errNoSuper
	}
	le := binary.LittleEndian
	if got, want := le.Uint32(b[superCRCOff:]), crc32.Checksum(b[:superCRCOff], castagnoli); got != want {
		return superblock{}, fmt.Errorf("superblock checksum %#08x, computed %#08x: %w", got, want, ErrCorrupt)
	}
	if v := le.Uint32(b[16:]); v != superVersion {
		return superblock{}, fmt.Errorf("superblock version %d (this build reads %d): %w", v, superVersion, ErrVersion)
	}
	s := superblock{
		unit:      le.Uint32(b[20:]),
		gen:       le.Uint64(b[40:]),
		region:    Extent{Offset: int64(le.Uint64(b[48:])), Length: int64(le.Uint64(b[56:]))},
		journal:   Extent{Offset: int64(le.Uint64(b[64:])), Length: int64(le.Uint64(b[72:]))},
		epoch:     le.Uint64(b[80:]),
		blockSize: le.Uint32(b[88:]),
	}
	copy(s.uuid[:], b[24:40])
	if err := s.validate(); err != nil {
		return superblock{}, fmt.Errorf("superblock: %w: %w", err, ErrCorrupt)
	}
	return s, nil
}

func (s superblock) validate() error {
	u := int64(s.unit)
	switch {
	case s.unit < 4096 || s.unit&(s.unit-1) != 0 || s.unit > 64<<20:
		return fmt.Errorf("allocation unit %d is not a power of two in [4 KiB, 64 MiB]", s.unit)
	case s.blockSize < 512 || s.blockSize > SuperblockSize || s.blockSize&(s.blockSize-1) != 0:
		return fmt.Errorf("block size %d is not a power of two in [512, 4096]", s.blockSize)
	case s.region.Offset < 0 || s.region.Length <= 0 || s.region.Offset%u != 0 || s.region.Length%u != 0 || s.region.End() < s.region.Offset:
		return fmt.Errorf("region %v is not whole units of %d", s.region, u)
	case s.journal.Length <= 0 || s.journal.Offset%u != 0 || s.journal.Length%u != 0 ||
		s.journal.Offset < reservedEnd(s.region, u) || s.journal.End() < s.journal.Offset:
		// The journal may lie in space added after the region (AddSpace): whether it lies in
		// the file system's space is known once its snapshot is replayed.
		return fmt.Errorf("journal %v is not whole units after region %v's superblocks", s.journal, s.region)
	case s.epoch == 0:
		return errors.New("epoch 0")
	}
	return nil
}
