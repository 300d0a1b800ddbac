package replica

import (
	"context"
	"errors"
	"fmt"
	"hash/crc32"
	"strconv"
	"strings"

	"github.com/cobaltstore/cobalt/node-daemon/objstore"
	"github.com/cobaltstore/cobalt/node-daemon/volume"
)

// Checksum limits: a checksum request covers at most MaxChecksumLength bytes in blocks of
// MinBlockSize to MaxBlockSize bytes (a power of two).
const (
	MaxChecksumLength = 1 << 30
	MinBlockSize      = 4096
	MaxBlockSize      = 16 << 20
)

// Extents returns the written extents of the volume (where a stripe object exists, up to its
// size), sorted and merged, and the volume's size, for a coordinator of generation gen. A
// rebuild copies only these ranges: the rest of a thin volume was never written and reads as
// zeros.
func (n *Node) Extents(ctx context.Context, storeUUID, id string, gen uint64) ([]Extent, int64, error) {
	m, release, err := n.admit(ctx, storeUUID, id, gen)
	if err != nil {
		return nil, 0, err
	}
	defer release()
	info, err := m.Get(ctx, id)
	if err != nil {
		return nil, 0, fmt.Errorf("replica: extents of volume %q: %w", id, err)
	}
	st, coll := m.Store(), volume.CollectionName(id)
	var out []Extent
	for start := ""; ; {
		names, next, err := st.ListObjects(ctx, coll, start, 1000)
		if err != nil {
			return nil, 0, fmt.Errorf("replica: list stripes of volume %q: %w", id, err)
		}
		for _, name := range names {
			idx, ok := stripeIndex(name)
			if !ok {
				continue // the volume's metadata object
			}
			ost, err := st.Stat(ctx, coll, name)
			if errors.Is(err, objstore.ErrNotFound) {
				continue // trimmed since the listing
			}
			if err != nil {
				return nil, 0, fmt.Errorf("replica: stat %s of volume %q: %w", name, id, err)
			}
			off := idx * info.StripeSize
			length := min(ost.Size, info.StripeSize, max(info.Size-off, 0))
			if length <= 0 {
				continue
			}
			if k := len(out); k > 0 && out[k-1].Offset+out[k-1].Length == off {
				out[k-1].Length += length
				continue
			}
			out = append(out, Extent{Offset: off, Length: length})
		}
		if next == "" {
			return out, info.Size, nil
		}
		start = next
	}
}

// stripeIndex parses a stripe object name (volume.StripeName).
func stripeIndex(name string) (int64, bool) {
	hex, ok := strings.CutPrefix(name, "s.")
	if !ok || len(hex) != 16 {
		return 0, false
	}
	i, err := strconv.ParseInt(hex, 16, 64)
	if err != nil || volume.StripeName(i) != name {
		return 0, false
	}
	return i, true
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

// Checksum returns the CRC-32C of each blockSize-byte block of [off, off+length) of the volume
// (the last one may be shorter), for a coordinator of generation gen. It runs on the replica's
// node so that comparing copies ships checksums, not data.
func (n *Node) Checksum(ctx context.Context, storeUUID, id string, gen uint64, off, length, blockSize int64) ([]uint32, error) {
	if err := ValidateChecksumRequest(off, length, blockSize); err != nil {
		return nil, err
	}
	m, release, err := n.admit(ctx, storeUUID, id, gen)
	if err != nil {
		return nil, err
	}
	defer release()
	table := crc32.MakeTable(crc32.Castagnoli) // the standard library builds it once
	sums := make([]uint32, 0, (length+blockSize-1)/blockSize)
	for pos := int64(0); pos < length; pos += blockSize {
		k := min(blockSize, length-pos)
		data, err := m.Read(ctx, id, off+pos, k)
		if err != nil {
			return nil, fmt.Errorf("replica: checksum volume %q at %d: %w", id, off+pos, err)
		}
		sums = append(sums, crc32.Checksum(data, table))
	}
	return sums, nil
}
