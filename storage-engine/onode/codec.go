package onode

import (
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
)

// FormatVersion is the version byte written at the start of every encoded Onode header and
// extent-map shard. Version 2 moved the extent map out of the onode record into shards (shard.go);
// version 1 records are refused.
const FormatVersion = 2

// ErrCorrupt marks an encoding that cannot be decoded or an onode that breaks an invariant.
var ErrCorrupt = errors.New("onode: corrupt")

// Encode appends the binary encoding of o's header (everything but the extent map, which is
// encoded in shards by EncodeShard) to dst and returns the extended slice.
//
// Layout (version 2): version byte; uvarint Nid, Size; uvarint xattr count, then per xattr (sorted
// by name) uvarint-length-prefixed name and value; a byte saying whether an omap header follows,
// then the uvarint-length-prefixed header.
func (o *Onode) Encode(dst []byte) []byte {
	dst = append(dst, FormatVersion)
	dst = binary.AppendUvarint(dst, o.Nid)
	dst = binary.AppendUvarint(dst, o.Size)
	dst = binary.AppendUvarint(dst, uint64(len(o.Xattrs)))
	keys := make([]string, 0, len(o.Xattrs))
	for k := range o.Xattrs {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		dst = appendBytes(dst, []byte(k))
		dst = appendBytes(dst, o.Xattrs[k])
	}
	if o.OmapHeader != nil {
		dst = append(dst, 1)
		dst = appendBytes(dst, o.OmapHeader)
	} else {
		dst = append(dst, 0)
	}
	return dst
}

func appendBytes(dst, b []byte) []byte {
	dst = binary.AppendUvarint(dst, uint64(len(b)))
	return append(dst, b...)
}

// Decode parses a header encoding produced by Encode; the result has no extents (see
// DecodeShard and AddShard). The result shares no memory with buf. Any malformed input returns an
// error wrapping ErrCorrupt; Decode never panics.
func Decode(buf []byte) (*Onode, error) {
	r := reader{buf: buf}
	v := r.byte()
	if r.err == nil && v != FormatVersion {
		return nil, fmt.Errorf("onode format version %d, want %d: %w", v, FormatVersion, ErrCorrupt)
	}
	o := &Onode{}
	o.Nid = r.uvarint()
	o.Size = r.uvarint()
	// Each xattr takes at least 2 bytes: counts larger than the remaining input are corrupt, which
	// bounds every allocation by len(buf).
	if n := r.count(2); n > 0 {
		o.Xattrs = make(map[string][]byte, n)
		for range n {
			k := string(r.bytes())
			v := r.bytes()
			if r.err != nil {
				break
			}
			if _, dup := o.Xattrs[k]; dup {
				return nil, fmt.Errorf("duplicate xattr %q: %w", k, ErrCorrupt)
			}
			o.Xattrs[k] = v
		}
	}
	switch r.byte() {
	case 0:
	case 1:
		o.OmapHeader = r.bytes()
		if o.OmapHeader == nil && r.err == nil {
			o.OmapHeader = []byte{}
		}
	default:
		if r.err == nil {
			r.err = fmt.Errorf("bad omap header flag: %w", ErrCorrupt)
		}
	}
	if r.err == nil && r.off != len(buf) {
		r.err = fmt.Errorf("%d trailing bytes: %w", len(buf)-r.off, ErrCorrupt)
	}
	if r.err != nil {
		return nil, fmt.Errorf("decode onode: %w", r.err)
	}
	if err := o.Validate(); err != nil {
		return nil, fmt.Errorf("decode onode: %w", err)
	}
	return o, nil
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

func (r *reader) byte() byte {
	if r.err != nil || r.off >= len(r.buf) {
		r.fail("byte")
		return 0
	}
	b := r.buf[r.off]
	r.off++
	return b
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

func (r *reader) uint32() uint32 {
	if r.err != nil || len(r.buf)-r.off < 4 {
		r.fail("uint32")
		return 0
	}
	v := binary.LittleEndian.Uint32(r.buf[r.off:])
	r.off += 4
	return v
}

// count reads an element count and rejects it if minSize bytes per element cannot fit.
func (r *reader) count(minSize int) int {
	n := r.uvarint()
	if r.err != nil {
		return 0
	}
	if n > uint64(len(r.buf)-r.off)/uint64(minSize) {
		r.fail("count")
		return 0
	}
	return int(n)
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
	b := slices.Clone(r.buf[r.off : r.off+int(n)])
	r.off += int(n)
	return b
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
