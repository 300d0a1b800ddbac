package metafs

import (
	"encoding/binary"
	"errors"
	"hash/crc32"
	"testing"

	"github.com/cobaltstore/cobalt/storage-engine/blockdev"
)

// TestNewerSuperblockIsNotSkipped: a slot written by a newer format makes Mount and Check fail
// with ErrVersion even when the other slot holds a valid superblock of this version: that one is
// older, and the journal it names may have been compacted away and its space reused, so mounting
// it would bring back an old state, or garbage.
func TestNewerSuperblockIsNotSkipped(t *testing.T) {
	dev, sb := formatted(t)
	// The next generation, in the other slot, written by a newer format.
	next := sb
	next.gen++
	b := next.encode()
	binary.LittleEndian.PutUint32(b[16:], superVersion+1)
	binary.LittleEndian.PutUint32(b[superCRCOff:], crc32.Checksum(b[:superCRCOff], castagnoli))
	buf := blockdev.AlignedBuffer(SuperblockSize)
	copy(buf, b)
	if _, err := dev.WriteAt(buf, smallRegion.Offset+int64(next.gen%2)*SuperblockSize); err != nil {
		t.Fatal(err)
	}
	if _, err := Mount(dev, smallRegion, smallOpts); !errors.Is(err, ErrVersion) {
		t.Fatalf("Mount with a newer superblock in one slot = %v, want ErrVersion", err)
	}
	if _, err := Check(dev, smallRegion, smallOpts); !errors.Is(err, ErrVersion) {
		t.Fatalf("Check with a newer superblock in one slot = %v, want ErrVersion", err)
	}
}
