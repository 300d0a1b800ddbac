package onode

import (
	"fmt"
	"maps"
	"slices"
)

// Onode is the metadata of one object.
type Onode struct {
	// Nid is the store-unique numeric id of the object; omap keys are stored under it.
	Nid uint64
	// Size is the logical size of the object in bytes. Bytes below Size not covered by an extent
	// read as zeros.
	Size uint64
	// Extents maps logical ranges to the device, sorted by Logical, non-overlapping.
	Extents []Extent
	// Xattrs are the object's extended attributes.
	Xattrs map[string][]byte
	// OmapHeader is the object's omap header (nil when unset).
	OmapHeader []byte

	// dirty lists the logical ranges whose mapping changed since the last ClearDirty (shard.go).
	dirty []span
	// ownCsums holds the first element of each checksum array that SetCsum copied for this
	// onode: it writes into those in place and copies any other first (Fork). A staged change
	// writes few extents' checksums, so a list searched in order is enough.
	ownCsums []*uint32
}

// Extent maps [Logical, Logical+Length) of an object to [Phys, Phys+Length) on the device.
type Extent struct {
	Logical uint64
	Phys    uint64
	Length  uint64
	// Csums holds the crc32c of each checksum block of the extent, in order.
	Csums []uint32
}

// LogicalEnd is the first logical byte past the extent.
func (e Extent) LogicalEnd() uint64 { return e.Logical + e.Length }

// Clone returns a deep copy of o that shares no memory with it, including the changes recorded
// since the last ClearDirty (an onode staged under one name and copied when it moves to another
// must still have its changed shards stored).
func (o *Onode) Clone() *Onode {
	c := o.cloneAttrs()
	if len(o.Extents) > 0 {
		// Every extent's checksums go into one array (a fragmented object has many extents of a
		// block or two each), each extent's slice capped at its end, so appending to one of them
		// copies it instead of overwriting the next extent's.
		n := 0
		for _, e := range o.Extents {
			n += len(e.Csums)
		}
		csums := make([]uint32, 0, n)
		c.Extents = make([]Extent, len(o.Extents))
		for i, e := range o.Extents {
			if e.Csums != nil {
				at := len(csums)
				csums = append(csums, e.Csums...)
				e.Csums = csums[at:len(csums):len(csums)]
			}
			c.Extents[i] = e
		}
	}
	return c
}

// Fork returns a copy of o to change while o stays as it is (a published onode, staged for a
// change). It is Clone, except that its extents share their checksum arrays with o's (each slice
// capped at its length, so an append copies it) until SetCsum changes one, which copies that
// extent's first: staging a small overwrite of a large object copies the checksums of the extent
// it changes, not of every extent. So nothing may write into an extent's checksums but SetCsum,
// neither an element nor an append to a slice cut shorter; Punch and Insert make new arrays.
func (o *Onode) Fork() *Onode {
	c := o.cloneAttrs()
	if len(o.Extents) > 0 {
		c.Extents = make([]Extent, len(o.Extents))
		for i, e := range o.Extents {
			e.Csums = e.Csums[:len(e.Csums):len(e.Csums)]
			c.Extents[i] = e
		}
	}
	return c
}

// SetCsum sets the checksum of block idx of extent i, first copying the extent's checksums unless
// an earlier SetCsum of o made them (they may be shared, see Fork).
func (o *Onode) SetCsum(i int, idx uint64, sum uint32) {
	e := &o.Extents[i]
	if !slices.Contains(o.ownCsums, &e.Csums[0]) {
		e.Csums = slices.Clone(e.Csums)
		o.ownCsums = append(o.ownCsums, &e.Csums[0])
	}
	e.Csums[idx] = sum
}

// cloneAttrs returns a copy of o without extents: size, dirty ranges, xattrs and omap header,
// sharing no memory with o.
func (o *Onode) cloneAttrs() *Onode {
	c := &Onode{Nid: o.Nid, Size: o.Size, dirty: slices.Clone(o.dirty)}
	if len(o.Xattrs) > 0 {
		c.Xattrs = make(map[string][]byte, len(o.Xattrs))
		for k, v := range o.Xattrs {
			c.Xattrs[k] = slices.Clone(v)
		}
	}
	if o.OmapHeader != nil {
		c.OmapHeader = slices.Clone(o.OmapHeader)
	}
	return c
}

// Validate checks the structural invariants that do not depend on the store's geometry.
func (o *Onode) Validate() error {
	var prevEnd uint64
	for i, e := range o.Extents {
		if e.Length == 0 {
			return fmt.Errorf("extent %d has zero length: %w", i, ErrCorrupt)
		}
		if e.Logical+e.Length < e.Logical || e.Phys+e.Length < e.Phys {
			return fmt.Errorf("extent %d overflows: %w", i, ErrCorrupt)
		}
		if i > 0 && e.Logical < prevEnd {
			return fmt.Errorf("extent %d at %d overlaps or is out of order (previous ends at %d): %w", i, e.Logical, prevEnd, ErrCorrupt)
		}
		prevEnd = e.LogicalEnd()
	}
	return nil
}

// Equal reports whether two onodes hold the same metadata.
func (o *Onode) Equal(p *Onode) bool {
	if o.Nid != p.Nid || o.Size != p.Size || len(o.Extents) != len(p.Extents) {
		return false
	}
	for i := range o.Extents {
		a, b := o.Extents[i], p.Extents[i]
		if a.Logical != b.Logical || a.Phys != b.Phys || a.Length != b.Length || !slices.Equal(a.Csums, b.Csums) {
			return false
		}
	}
	if (o.OmapHeader == nil) != (p.OmapHeader == nil) || string(o.OmapHeader) != string(p.OmapHeader) {
		return false
	}
	return maps.EqualFunc(o.Xattrs, p.Xattrs, func(a, b []byte) bool { return string(a) == string(b) })
}
