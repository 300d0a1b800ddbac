package kv

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"strings"
)

// Key prefixes. See the package documentation for the schema.
const (
	PrefixCollection byte = 'C'
	PrefixDeferred   byte = 'D'
	PrefixExtents    byte = 'E'
	PrefixFreelist   byte = 'F'
	PrefixOmap       byte = 'M'
	PrefixOnode      byte = 'O'
	PrefixSuper      byte = 'S'
	PrefixStats      byte = 'T'
)

// ErrCorrupt marks a key or record that cannot be decoded.
var ErrCorrupt = errors.New("kv: corrupt metadata")

// ErrInvalidName reports a collection or object name the schema cannot store.
var ErrInvalidName = errors.New("kv: invalid name")

// Name length limits.
const (
	MaxCollectionName = 255
	MaxObjectName     = 4096
)

// ValidateCollection checks that c can be used as a collection name.
func ValidateCollection(c string) error {
	if c == "" || len(c) > MaxCollectionName || strings.IndexByte(c, 0) >= 0 {
		return fmt.Errorf("collection name %q: must be 1..%d bytes without NUL: %w", c, MaxCollectionName, ErrInvalidName)
	}
	return nil
}

// ValidateObject checks that o can be used as an object name.
func ValidateObject(o string) error {
	if o == "" || len(o) > MaxObjectName || strings.IndexByte(o, 0) >= 0 {
		return fmt.Errorf("object name %q: must be 1..%d bytes without NUL: %w", o, MaxObjectName, ErrInvalidName)
	}
	return nil
}

// SuperKey is the superblock's key.
func SuperKey() []byte { return []byte{PrefixSuper} }

// StatsKey is the statistics record's key.
func StatsKey() []byte { return []byte{PrefixStats} }

// CollectionKey is the key of collection c.
func CollectionKey(c string) []byte {
	return append([]byte{PrefixCollection}, c...)
}

// CollectionSpan is the key range [lo, hi) of all collections.
func CollectionSpan() (lo, hi []byte) { return []byte{PrefixCollection}, []byte{PrefixCollection + 1} }

// ParseCollectionKey returns the collection name of a collection key.
func ParseCollectionKey(k []byte) (string, error) {
	if len(k) < 2 || k[0] != PrefixCollection {
		return "", fmt.Errorf("collection key %q: %w", k, ErrCorrupt)
	}
	c := string(k[1:])
	if err := ValidateCollection(c); err != nil {
		return "", fmt.Errorf("collection key %q: %w", k, ErrCorrupt)
	}
	return c, nil
}

// OnodeKey is the key of object o in collection c.
func OnodeKey(c, o string) []byte {
	k := make([]byte, 0, 2+len(c)+len(o))
	k = append(k, PrefixOnode)
	k = append(k, c...)
	k = append(k, 0)
	return append(k, o...)
}

// OnodeSpan is the key range [lo, hi) holding the onodes of collection c, starting at object
// start (inclusive; "" means the first object).
func OnodeSpan(c, start string) (lo, hi []byte) {
	lo = OnodeKey(c, start)
	hi = append([]byte{PrefixOnode}, c...)
	hi = append(hi, 1)
	return lo, hi
}

// AllOnodesSpan is the key range of every onode.
func AllOnodesSpan() (lo, hi []byte) { return []byte{PrefixOnode}, []byte{PrefixOnode + 1} }

// ParseOnodeKey splits an onode key into collection and object names.
func ParseOnodeKey(k []byte) (c, o string, err error) {
	if len(k) < 1 || k[0] != PrefixOnode {
		return "", "", fmt.Errorf("onode key %q: bad prefix: %w", k, ErrCorrupt)
	}
	i := bytes.IndexByte(k[1:], 0)
	if i < 0 {
		return "", "", fmt.Errorf("onode key %q: no separator: %w", k, ErrCorrupt)
	}
	c, o = string(k[1:1+i]), string(k[2+i:])
	if ValidateCollection(c) != nil || ValidateObject(o) != nil {
		return "", "", fmt.Errorf("onode key %q: bad names: %w", k, ErrCorrupt)
	}
	return c, o, nil
}

// OmapKey is the key of omap entry key of the object with the given nid.
func OmapKey(nid uint64, key string) []byte {
	k := make([]byte, 9, 9+len(key))
	k[0] = PrefixOmap
	binary.BigEndian.PutUint64(k[1:], nid)
	return append(k, key...)
}

// OmapSpan is the key range [lo, hi) of nid's omap entries at or after start.
func OmapSpan(nid uint64, start string) (lo, hi []byte) {
	lo = OmapKey(nid, start)
	hi = make([]byte, 9)
	hi[0] = PrefixOmap
	if nid == ^uint64(0) {
		hi[0]++
		return lo, hi[:1]
	}
	binary.BigEndian.PutUint64(hi[1:], nid+1)
	return lo, hi
}

// AllOmapSpan is the key range of every omap entry.
func AllOmapSpan() (lo, hi []byte) { return []byte{PrefixOmap}, []byte{PrefixOmap + 1} }

// ParseOmapKey splits an omap key into nid and user key.
func ParseOmapKey(k []byte) (nid uint64, key string, err error) {
	if len(k) < 9 || k[0] != PrefixOmap {
		return 0, "", fmt.Errorf("omap key %q: %w", k, ErrCorrupt)
	}
	return binary.BigEndian.Uint64(k[1:9]), string(k[9:]), nil
}

// ExtentShardKey is the key of extent-map shard shard (storage-engine/onode) of the object with
// the given nid.
func ExtentShardKey(nid, shard uint64) []byte {
	k := make([]byte, 17)
	k[0] = PrefixExtents
	binary.BigEndian.PutUint64(k[1:], nid)
	binary.BigEndian.PutUint64(k[9:], shard)
	return k
}

// ExtentShardSpan is the key range [lo, hi) of every extent-map shard of nid, in shard order.
func ExtentShardSpan(nid uint64) (lo, hi []byte) {
	lo = make([]byte, 9)
	lo[0] = PrefixExtents
	binary.BigEndian.PutUint64(lo[1:], nid)
	if nid == ^uint64(0) {
		return lo, []byte{PrefixExtents + 1}
	}
	hi = make([]byte, 9)
	hi[0] = PrefixExtents
	binary.BigEndian.PutUint64(hi[1:], nid+1)
	return lo, hi
}

// AllExtentShardsSpan is the key range of every extent-map shard.
func AllExtentShardsSpan() (lo, hi []byte) { return []byte{PrefixExtents}, []byte{PrefixExtents + 1} }

// ParseExtentShardKey splits an extent-map shard key into nid and shard index.
func ParseExtentShardKey(k []byte) (nid, shard uint64, err error) {
	if len(k) != 17 || k[0] != PrefixExtents {
		return 0, 0, fmt.Errorf("extent shard key %q: %w", k, ErrCorrupt)
	}
	return binary.BigEndian.Uint64(k[1:9]), binary.BigEndian.Uint64(k[9:]), nil
}

// DeferredKey is the key of deferred write seq.
func DeferredKey(seq uint64) []byte {
	k := make([]byte, 9)
	k[0] = PrefixDeferred
	binary.BigEndian.PutUint64(k[1:], seq)
	return k
}

// DeferredSpan is the key range of every deferred write.
func DeferredSpan() (lo, hi []byte) { return []byte{PrefixDeferred}, []byte{PrefixDeferred + 1} }

// ParseDeferredKey returns the sequence number of a deferred-write key.
func ParseDeferredKey(k []byte) (uint64, error) {
	if len(k) != 9 || k[0] != PrefixDeferred {
		return 0, fmt.Errorf("deferred key %q: %w", k, ErrCorrupt)
	}
	return binary.BigEndian.Uint64(k[1:]), nil
}
