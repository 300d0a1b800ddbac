package replica

import (
	"context"
	"fmt"
	"hash/crc32"

	"github.com/cobaltstore/cobalt/node-daemon/objstore"
)

// Checksum limits: a checksum request covers at most MaxChecksumLength bytes in blocks of
// MinBlockSize to MaxBlockSize bytes (a power of two).
const (
	MaxChecksumLength = 1 << 30
	MinBlockSize      = 4096
	MaxBlockSize      = 16 << 20
)

// Extents returns the written extents of the volume (volume.Manager.WrittenExtents), sorted and
// merged, and the volume's size, for a coordinator of generation gen. A rebuild copies only these
// ranges: the rest of a thin volume was never written and reads as zeros.
func (n *Node) Extents(ctx context.Context, ref Ref, gen uint64) ([]Extent, int64, error) {
	id := ref.Volume
	m, release, err := n.admit(ctx, ref, gen)
	if err != nil {
		return nil, 0, err
	}
	defer release()
	written, info, err := m.WrittenExtents(ctx, id)
	if err != nil {
		return nil, 0, fmt.Errorf("replica: extents of volume %q: %w", id, err)
	}
	out := make([]Extent, len(written))
	for i, e := range written {
		out[i] = Extent(e)
	}
	return out, info.Size, nil
}

// ValidateChecksumRequest checks the bounds of a checksum request.
func ValidateChecksumRequest(off, length, blockSize int64) error {
	if off < 0 || length < 0 || length > MaxChecksumLength {
		return fmt.Errorf("replica: checksum range [%d, +%d) must be non-negative and at most %d bytes: %w", off, length, MaxChecksumLength, objstore.ErrInvalid)
	}
	if blockSize < MinBlockSize || blockSize > MaxBlockSize || blockSize&(blockSize-1) != 0 {
		return fmt.Errorf("replica: checksum block size %d must be a power of two from %d to %d: %w", blockSize, MinBlockSize, MaxBlockSize, objstore.ErrInvalid)
	}
	return nil
}

// ReadNoCache is Read without the node's data cache (volume.Manager.ReadNoCache), for a copy.
func (n *Node) ReadNoCache(ctx context.Context, ref Ref, gen uint64, off, length int64) ([]byte, error) {
	id := ref.Volume
	m, release, err := n.admit(ctx, ref, gen)
	if err != nil {
		return nil, err
	}
	defer release()
	return m.ReadNoCache(ctx, id, off, length)
}

// ReadNoCacheInto is ReadNoCache into p, a buffer the caller owns (volume.Manager.ReadNoCacheInto):
// [off, off+len(p)).
func (n *Node) ReadNoCacheInto(ctx context.Context, ref Ref, gen uint64, off int64, p []byte) error {
	m, release, err := n.admit(ctx, ref, gen)
	if err != nil {
		return err
	}
	defer release()
	return m.ReadNoCacheInto(ctx, ref.Volume, off, p)
}

// checksumRead is how much Checksum reads at once (whole blocks, at least one).
const checksumRead = 4 << 20

// Checksum returns the CRC-32C of each blockSize-byte block of [off, off+length) of the volume
// (the last one may be shorter), for a coordinator of generation gen. It runs on the replica's
// node so that comparing copies ships checksums, not data, and reads the volume without the
// node's data cache (volume.Manager.ReadNoCacheInto): what the device holds, verified by the engine.
func (n *Node) Checksum(ctx context.Context, ref Ref, gen uint64, off, length, blockSize int64) ([]uint32, error) {
	id := ref.Volume
	if err := ValidateChecksumRequest(off, length, blockSize); err != nil {
		return nil, err
	}
	m, release, err := n.admit(ctx, ref, gen)
	if err != nil {
		return nil, err
	}
	defer release()
	sums := make([]uint32, 0, (length+blockSize-1)/blockSize)
	piece := max(blockSize, checksumRead/blockSize*blockSize)
	buf := n.bufs.get(int(min(piece, length)))
	defer n.bufs.put(buf)
	for pos := int64(0); pos < length; pos += piece {
		k := min(piece, length-pos)
		data := buf[:k]
		if err := m.ReadNoCacheInto(ctx, id, off+pos, data); err != nil {
			return nil, fmt.Errorf("replica: checksum volume %q at %d: %w", id, off+pos, err)
		}
		for b := int64(0); b < k; b += blockSize {
			sums = append(sums, crc32.Checksum(data[b:min(b+blockSize, k)], crc32c))
		}
	}
	return sums, nil
}
