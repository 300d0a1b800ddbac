package onode

import (
	"encoding/binary"
	"fmt"
	"math"
	"slices"
)

// Extent-map shards.
//
// An object's extent map is not stored in its onode record but in shards, as BlueStore stores
// extent-map shards: shard i holds the extents, or the parts of extents, that fall in the logical
// range [i*size, (i+1)*size), under a key of its own (storage-engine/kv), so that a small overwrite
// of a large object rewrites one shard of a few hundred bytes instead of the whole map with every
// checksum. The shard size is a multiple of the allocation unit (ShardSize), so extents split at
// shard boundaries cleanly, checksums with them.
//
// The encoding is canonical: pieces that continue each other both logically and physically are
// stored as one extent, and an empty shard is not stored at all, so one extent map has exactly
// one set of shard records. In memory an extent may span shards; it is cut at shard boundaries
// only when encoded.
//
// Change tracking: Punch and Insert record the logical ranges they change, and the store calls
// MarkDirty when it changes a checksum in place; DirtyShards then names the shards to rewrite.
// Clone copies the marks; a decoded onode has none.

// MinShardSize is the logical span of a shard when the allocation unit is smaller.
const MinShardSize = 64 << 10

// ShardSize returns the logical span of one extent-map shard of a store whose allocation unit is
// unit bytes.
func ShardSize(unit uint64) uint64 { return max(MinShardSize, unit) }

// span is a logical range [lo, hi) whose mapping changed.
type span struct{ lo, hi uint64 }

// MarkDirty records that the mapping or checksums of [off, off+n) changed.
func (o *Onode) MarkDirty(off, n uint64) {
	if n == 0 {
		return
	}
	hi := off + n
	if hi < off {
		hi = math.MaxUint64
	}
	if l := len(o.dirty); l > 0 && o.dirty[l-1].lo <= off && off <= o.dirty[l-1].hi {
		o.dirty[l-1].hi = max(o.dirty[l-1].hi, hi)
		return
	}
	o.dirty = append(o.dirty, span{off, hi})
}

// ClearDirty forgets the recorded changes.
func (o *Onode) ClearDirty() { o.dirty = nil }

// DirtyShards returns, in increasing order, the indices of the shards of size shardSize that
// changed since the last ClearDirty (or since the onode was decoded).
func (o *Onode) DirtyShards(shardSize uint64) []uint64 {
	var out []uint64
	for _, d := range o.dirty {
		for i := d.lo / shardSize; i <= (d.hi-1)/shardSize; i++ {
			out = append(out, i)
		}
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// Shards returns, in increasing order, the indices of the shards of size shardSize that hold at
// least one mapped byte.
func (o *Onode) Shards(shardSize uint64) []uint64 {
	var out []uint64
	for _, e := range o.Extents {
		for i := e.Logical / shardSize; i <= (e.LogicalEnd()-1)/shardSize; i++ {
			if n := len(out); n == 0 || out[n-1] != i {
				out = append(out, i)
			}
		}
	}
	return out
}

// EncodeShard appends the encoding of shard i (of size shardSize; checksum blocks of csumBlock
// bytes) to dst. It reports false, leaving dst unchanged, when no byte of the shard is mapped.
//
// Layout (version 2): version byte; uvarint extent count (at least 1); per extent uvarint logical
// offset from the shard's start, Phys, Length, checksum count, then 4 little-endian bytes per
// checksum.
func (o *Onode) EncodeShard(dst []byte, i, shardSize, csumBlock uint64) ([]byte, bool) {
	lo, hi := i*shardSize, i*shardSize+shardSize
	type piece struct {
		off, phys, length uint64
		csums             [][]uint32 // slices of the extents' checksums, in order
	}
	var stack [4]piece
	pieces := stack[:0]
	for j := o.Find(lo); j < len(o.Extents) && o.Extents[j].Logical < hi; j++ {
		e := o.Extents[j]
		cl, ch := max(lo, e.Logical), min(hi, e.LogicalEnd())
		a := min(uint64(len(e.Csums)), (cl-e.Logical)/csumBlock)
		b := min(uint64(len(e.Csums)), (ch-e.Logical)/csumBlock)
		p := piece{off: cl - lo, phys: e.Phys + (cl - e.Logical), length: ch - cl}
		if n := len(pieces); n > 0 {
			last := &pieces[n-1]
			if last.off+last.length == p.off && last.phys+last.length == p.phys {
				last.length += p.length
				last.csums = append(last.csums, e.Csums[a:b])
				continue
			}
		}
		p.csums = [][]uint32{e.Csums[a:b]}
		pieces = append(pieces, p)
	}
	if len(pieces) == 0 {
		return dst, false
	}
	dst = append(dst, FormatVersion)
	dst = binary.AppendUvarint(dst, uint64(len(pieces)))
	for _, p := range pieces {
		dst = binary.AppendUvarint(dst, p.off)
		dst = binary.AppendUvarint(dst, p.phys)
		dst = binary.AppendUvarint(dst, p.length)
		n := 0
		for _, cs := range p.csums {
			n += len(cs)
		}
		dst = binary.AppendUvarint(dst, uint64(n))
		dst = slices.Grow(dst, 4*n)
		for _, cs := range p.csums {
			for _, c := range cs {
				dst = binary.LittleEndian.AppendUint32(dst, c)
			}
		}
	}
	return dst, true
}

// DecodeShard parses the encoding of shard i (of size shardSize, checksum blocks of csumBlock
// bytes) produced by EncodeShard and returns its extents with absolute logical offsets; each has
// one checksum per checksum block. The result shares no memory with buf.
// Malformed or non-canonical input returns an error wrapping ErrCorrupt; DecodeShard never panics.
func DecodeShard(buf []byte, i, shardSize, csumBlock uint64) ([]Extent, error) {
	if csumBlock == 0 || shardSize == 0 || i > (math.MaxUint64-shardSize)/shardSize {
		return nil, fmt.Errorf("shard %d of size %d is out of range: %w", i, shardSize, ErrCorrupt)
	}
	base := i * shardSize
	r := reader{buf: buf}
	if v := r.byte(); r.err == nil && v != FormatVersion {
		return nil, fmt.Errorf("extent shard format version %d, want %d: %w", v, FormatVersion, ErrCorrupt)
	}
	// Each extent takes at least 4 bytes and each checksum 4: counts larger than the remaining
	// input are corrupt, which bounds every allocation by len(buf).
	n := r.count(4)
	if r.err == nil && n == 0 {
		return nil, fmt.Errorf("empty extent shard %d: %w", i, ErrCorrupt)
	}
	exts := make([]Extent, 0, n)
	var prevEnd, prevPhysEnd uint64
	for j := range n {
		off, phys, length := r.uvarint(), r.uvarint(), r.uvarint()
		var csums []uint32
		if nc := r.count(4); nc > 0 {
			csums = make([]uint32, nc)
			for k := range csums {
				csums[k] = r.uint32()
			}
		}
		if r.err != nil {
			break
		}
		switch {
		case length == 0 || off > shardSize || length > shardSize-off:
			return nil, fmt.Errorf("extent %d of shard %d at +%d length %d does not fit the shard: %w", j, i, off, length, ErrCorrupt)
		case length%csumBlock != 0 || uint64(len(csums)) != length/csumBlock:
			return nil, fmt.Errorf("extent %d of shard %d: %d bytes with %d checksums of %d-byte blocks: %w", j, i, length, len(csums), csumBlock, ErrCorrupt)
		case phys+length < phys:
			return nil, fmt.Errorf("extent %d of shard %d overflows the device: %w", j, i, ErrCorrupt)
		case j > 0 && off < prevEnd:
			return nil, fmt.Errorf("extent %d of shard %d overlaps or is out of order: %w", j, i, ErrCorrupt)
		case j > 0 && off == prevEnd && phys == prevPhysEnd:
			return nil, fmt.Errorf("extent %d of shard %d continues the previous one (not canonical): %w", j, i, ErrCorrupt)
		}
		prevEnd, prevPhysEnd = off+length, phys+length
		exts = append(exts, Extent{Logical: base + off, Phys: phys, Length: length, Csums: csums})
	}
	if r.err == nil && r.off != len(buf) {
		r.err = fmt.Errorf("%d trailing bytes: %w", len(buf)-r.off, ErrCorrupt)
	}
	if r.err != nil {
		return nil, fmt.Errorf("decode extent shard %d: %w", i, r.err)
	}
	return exts, nil
}

// AddShard appends the extents of a decoded shard to o's extent map. Shards must be added in
// increasing order; an extent that continues the last one logically and physically is merged
// into it, so an extent written as one stays one in memory.
func (o *Onode) AddShard(exts []Extent) error {
	for _, e := range exts {
		n := len(o.Extents)
		if n == 0 {
			o.Extents = append(o.Extents, e)
			continue
		}
		last := &o.Extents[n-1]
		switch {
		case e.Logical < last.LogicalEnd():
			return fmt.Errorf("extent at %d overlaps or precedes the extent ending at %d: %w", e.Logical, last.LogicalEnd(), ErrCorrupt)
		case e.Logical == last.LogicalEnd() && e.Phys == last.Phys+last.Length:
			last.Length += e.Length
			last.Csums = append(last.Csums, e.Csums...)
		default:
			o.Extents = append(o.Extents, e)
		}
	}
	return nil
}
