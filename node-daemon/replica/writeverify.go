package replica

import (
	"bytes"
	"context"
	"fmt"
	"hash/crc32"

	"github.com/cobaltstore/cobalt/node-daemon/volume"
)

// WriteVerifier is a Syncer that can write a range and compare it, read back from its device, with
// the bytes written, in one request: a copy then needs no separate checksum request and no
// checksum of the source's bytes on the coordinator. Local and Remote are.
type WriteVerifier interface {
	// WriteVerify writes data at off as Write does, then reads [off, off+len(data)) back without
	// its node's data cache (verified by the engine) and compares it with data in blockSize-byte
	// blocks (a power of two from MinBlockSize to MaxBlockSize). An error means the write failed.
	// When the write succeeded but the range could not be read back (a block the engine finds
	// corrupt, or a node too old to compare), Verified is false and the caller compares another
	// way.
	WriteVerify(ctx context.Context, gen uint64, off int64, data []byte, blockSize int64) (Verified, error)
}

// Verified is what a WriteVerify found.
type Verified struct {
	// Verified: the range was read back and compared; Differ then holds the blocks that differ.
	Verified bool
	Differ   []DifferingBlock
	// Why says why the range was not compared, when Verified is false.
	Why string
}

// DifferingBlock is a block of a verified write that read back other than written: its index
// from the write's offset, in blocks of the request's block size, and the CRC-32C of what was read
// back.
type DifferingBlock struct {
	Index    int64
	Checksum uint32
}

// WriteVerify writes data at off of the volume, for a coordinator of generation gen, as Write
// does, then reads the range back (volume.Manager.ReadNoCacheInto, as Checksum reads) and compares it
// with data in blocks of blockSize bytes (see WriteVerifier). A failed read back after a
// successful write is not an error: Verified is false and says why.
func (n *Node) WriteVerify(ctx context.Context, ref Ref, gen uint64, off int64, data []byte, blockSize int64) (Verified, error) {
	return n.writeVerify(ctx, ref, gen, off, data, false, blockSize)
}

// WriteVerifyOwned is WriteVerify with data handed over, as WriteOwned hands it over.
func (n *Node) WriteVerifyOwned(ctx context.Context, ref Ref, gen uint64, off int64, data []byte, blockSize int64) (Verified, error) {
	return n.writeVerify(ctx, ref, gen, off, data, true, blockSize)
}

func (n *Node) writeVerify(ctx context.Context, ref Ref, gen uint64, off int64, data []byte, owned bool, blockSize int64) (Verified, error) {
	if err := ValidateChecksumRequest(off, int64(len(data)), blockSize); err != nil {
		return Verified{}, err
	}
	var v Verified
	err := n.write(ctx, ref, gen, off, data, owned, func(m *volume.Manager) error {
		back := n.bufs.get(len(data))
		defer n.bufs.put(back)
		if err := m.ReadNoCacheInto(ctx, ref.Volume, off, back); err != nil {
			v.Why = fmt.Sprintf("read back %d bytes at %d: %v", len(data), off, err)
			return nil
		}
		v = Verified{Verified: true, Differ: differingBlocks(data, back, blockSize)}
		return nil
	})
	return v, err
}

// differingBlocks compares want and got (of the same length) in blocks of blockSize bytes and
// returns the blocks that differ, with the CRC-32C of got's.
func differingBlocks(want, got []byte, blockSize int64) []DifferingBlock {
	if bytes.Equal(want, got) {
		return nil
	}
	var out []DifferingBlock
	for i, lo := int64(0), int64(0); lo < int64(len(want)); i, lo = i+1, lo+blockSize {
		hi := min(lo+blockSize, int64(len(want)))
		if !bytes.Equal(want[lo:hi], got[lo:hi]) {
			out = append(out, DifferingBlock{Index: i, Checksum: crc32.Checksum(got[lo:hi], crc32c)})
		}
	}
	return out
}
