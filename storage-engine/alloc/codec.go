package alloc

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// freelistFormat is the version byte of EncodeExtents' output.
const freelistFormat = 1

// ErrCorruptFreelist: DecodeExtents was given bytes that are not a valid encoding.
var ErrCorruptFreelist = errors.New("alloc: corrupt encoded free list")

// EncodeExtents encodes a sorted, disjoint list of extents (as Extents returns) compactly for
// storage in the KV: a version byte, the count, then for each extent the gap from the previous
// extent's end and the length, as uvarints. Extents are written in the order given.
func EncodeExtents(exts []Extent) []byte {
	b := make([]byte, 0, 1+binary.MaxVarintLen64*(1+2*len(exts)))
	b = append(b, freelistFormat)
	b = binary.AppendUvarint(b, uint64(len(exts)))
	var prevEnd int64
	for _, e := range exts {
		b = binary.AppendUvarint(b, uint64(e.Offset-prevEnd))
		b = binary.AppendUvarint(b, uint64(e.Length))
		prevEnd = e.End()
	}
	return b
}

// DecodeExtents decodes EncodeExtents' output. Garbage yields an error wrapping ErrCorruptFreelist,
// never a panic; the result is sorted and disjoint with positive lengths (validate it against the
// device with NewExtentFromFree or NewBitmapFromFree).
func DecodeExtents(b []byte) ([]Extent, error) {
	if len(b) == 0 || b[0] != freelistFormat {
		return nil, fmt.Errorf("free list format byte: %w", ErrCorruptFreelist)
	}
	b = b[1:]
	n, k := binary.Uvarint(b)
	if k <= 0 || n > uint64(len(b)) { // every extent takes at least two bytes
		return nil, fmt.Errorf("free list count: %w", ErrCorruptFreelist)
	}
	b = b[k:]
	out := make([]Extent, 0, n)
	var prevEnd int64
	for i := range n {
		gap, k1 := binary.Uvarint(b)
		if k1 <= 0 {
			return nil, fmt.Errorf("extent %d gap: %w", i, ErrCorruptFreelist)
		}
		length, k2 := binary.Uvarint(b[k1:])
		if k2 <= 0 {
			return nil, fmt.Errorf("extent %d length: %w", i, ErrCorruptFreelist)
		}
		b = b[k1+k2:]
		const maxInt64 = 1<<63 - 1
		if length == 0 || gap > uint64(maxInt64-prevEnd) || length > uint64(maxInt64-prevEnd-int64(gap)) {
			return nil, fmt.Errorf("extent %d: gap %d length %d after %d: %w", i, gap, length, prevEnd, ErrCorruptFreelist)
		}
		e := Extent{Offset: prevEnd + int64(gap), Length: int64(length)}
		out = append(out, e)
		prevEnd = e.End()
	}
	if len(b) != 0 {
		return nil, fmt.Errorf("%d trailing bytes: %w", len(b), ErrCorruptFreelist)
	}
	return out, nil
}
