package volume

import (
	"encoding/binary"
	"fmt"
	"strconv"
	"strings"

	"github.com/cobaltstore/cobalt/node-daemon/objstore"
)

// Layout constants.
const (
	// DefaultStripeSize is the stripe size of a volume created with stripe size 0.
	DefaultStripeSize = 4 << 20
	// MinStripeSize and MaxStripeSize bound a volume's stripe size (a power of two).
	MinStripeSize = 64 << 10
	MaxStripeSize = 64 << 20
	// SizeAlignment: a volume's size is a multiple of this.
	SizeAlignment = 4096
	// MaxIDLength bounds a volume ID.
	MaxIDLength = 200

	collectionPrefix = "vol."
	metaObject       = "meta"
	stripePrefix     = "s."
	attrFormat       = "format"
	attrSize         = "size"
	attrStripeSize   = "stripe_size"
	formatVersion    = 1
)

// CollectionName returns the collection holding volume id.
func CollectionName(id string) string { return collectionPrefix + id }

// StripeName returns the object name of stripe index i (>= 0): stripePrefix and i as 16 lower-case
// hex digits (every read names its stripes: built by hand, one allocation).
func StripeName(i int64) string {
	const digits = "0123456789abcdef"
	var b [len(stripePrefix) + 16]byte
	copy(b[:], stripePrefix)
	for j, u := len(b)-1, uint64(i); j >= len(stripePrefix); j, u = j-1, u>>4 {
		b[j] = digits[u&0xf]
	}
	return string(b[:])
}

// stripeIndex parses a stripe object name (StripeName); ok is false for other objects.
func stripeIndex(name string) (int64, bool) {
	hex, ok := strings.CutPrefix(name, stripePrefix)
	if !ok || len(hex) != 16 {
		return 0, false
	}
	i, err := strconv.ParseInt(hex, 16, 64)
	if err != nil || StripeName(i) != name {
		return 0, false
	}
	return i, true
}

// ValidateID checks a volume ID: 1 to MaxIDLength characters of [A-Za-z0-9._-].
func ValidateID(id string) error {
	if id == "" || len(id) > MaxIDLength {
		return fmt.Errorf("volume ID %q must be 1-%d characters: %w", id, MaxIDLength, objstore.ErrInvalid)
	}
	for _, r := range id {
		ok := r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '.' || r == '_' || r == '-'
		if !ok {
			return fmt.Errorf("volume ID %q has character %q outside [A-Za-z0-9._-]: %w", id, r, objstore.ErrInvalid)
		}
	}
	return nil
}

// idFromCollection returns the volume ID of a collection name, if it is a volume's.
func idFromCollection(c string) (string, bool) {
	id, ok := strings.CutPrefix(c, collectionPrefix)
	if !ok || ValidateID(id) != nil {
		return "", false
	}
	return id, true
}

// params are a volume's persistent attributes.
type params struct {
	size, stripeSize int64
}

func (p params) attrOps(c string) []objstore.Op {
	return []objstore.Op{
		objstore.SetAttr(c, metaObject, attrFormat, []byte{formatVersion}),
		objstore.SetAttr(c, metaObject, attrSize, binary.LittleEndian.AppendUint64(nil, uint64(p.size))),
		objstore.SetAttr(c, metaObject, attrStripeSize, binary.LittleEndian.AppendUint64(nil, uint64(p.stripeSize))),
	}
}

func decodeParams(attrs map[string][]byte) (params, error) {
	if f := attrs[attrFormat]; len(f) != 1 || f[0] != formatVersion {
		return params{}, fmt.Errorf("unknown volume format %v: %w", f, objstore.ErrCorrupt)
	}
	size, sizeOK := decodeInt(attrs[attrSize])
	stripe, stripeOK := decodeInt(attrs[attrStripeSize])
	if !sizeOK || !stripeOK || validateParams(params{size, stripe}) != nil {
		return params{}, fmt.Errorf("bad volume size or stripe attributes: %w", objstore.ErrCorrupt)
	}
	return params{size: size, stripeSize: stripe}, nil
}

func decodeInt(b []byte) (int64, bool) {
	if len(b) != 8 {
		return 0, false
	}
	v := binary.LittleEndian.Uint64(b)
	return int64(v), v <= 1<<62
}

func validateSize(size int64) error {
	if size <= 0 || size%SizeAlignment != 0 || size > 1<<60 {
		return fmt.Errorf("volume size %d must be positive, at most 2^60 and a multiple of %d: %w", size, SizeAlignment, objstore.ErrInvalid)
	}
	return nil
}

func validateParams(p params) error {
	if err := validateSize(p.size); err != nil {
		return err
	}
	s := p.stripeSize
	if s < MinStripeSize || s > MaxStripeSize || s&(s-1) != 0 {
		return fmt.Errorf("stripe size %d must be a power of two from %d to %d: %w", s, MinStripeSize, MaxStripeSize, objstore.ErrInvalid)
	}
	return nil
}

// segment is the part of an I/O that falls in one stripe.
type segment struct {
	stripe int64 // stripe index
	off    int64 // offset inside the stripe
	length int64
	pos    int64 // offset of the segment inside the I/O buffer
}

// split cuts [off, off+length) into per-stripe segments.
func split(off, length, stripeSize int64) []segment {
	return appendSegments(nil, off, length, stripeSize)
}

// appendSegments appends the per-stripe segments of [off, off+length) to segs and returns the
// extended slice (a hot path passes an array of its own and allocates nothing).
func appendSegments(segs []segment, off, length, stripeSize int64) []segment {
	for pos := int64(0); pos < length; {
		abs := off + pos
		in := abs % stripeSize
		n := min(stripeSize-in, length-pos)
		segs = append(segs, segment{stripe: abs / stripeSize, off: in, length: n, pos: pos})
		pos += n
	}
	return segs
}
