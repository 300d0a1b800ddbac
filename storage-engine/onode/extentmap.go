package onode

import (
	"slices"
	"sort"
)

// PhysRange is a run of device bytes that an extent-map change stopped referencing.
type PhysRange struct {
	Phys, Length uint64
}

// Find returns the index of the first extent whose end lies past off: the extent containing off if
// there is one, otherwise the next extent to the right (len(o.Extents) if none).
func (o *Onode) Find(off uint64) int {
	return sort.Search(len(o.Extents), func(i int) bool { return o.Extents[i].LogicalEnd() > off })
}

// Punch removes the mapping of the logical range [off, off+length), splitting extents that straddle
// its ends, and returns the physical ranges no longer referenced by o. off and length must be
// multiples of csumBlock, as are all extent boundaries, so checksums split cleanly.
func (o *Onode) Punch(off, length, csumBlock uint64) []PhysRange {
	if length == 0 {
		return nil
	}
	o.MarkDirty(off, length)
	end := off + length
	i := o.Find(off)
	var freed []PhysRange
	var keep []Extent
	j := i
	for ; j < len(o.Extents) && o.Extents[j].Logical < end; j++ {
		e := o.Extents[j]
		// Left remainder.
		if e.Logical < off {
			n := off - e.Logical
			keep = append(keep, Extent{Logical: e.Logical, Phys: e.Phys, Length: n, Csums: slices.Clone(e.Csums[:min(uint64(len(e.Csums)), n/csumBlock)])})
		}
		// Right remainder.
		var right *Extent
		if e.LogicalEnd() > end {
			skip := end - e.Logical
			k := min(uint64(len(e.Csums)), skip/csumBlock)
			right = &Extent{Logical: end, Phys: e.Phys + skip, Length: e.LogicalEnd() - end, Csums: slices.Clone(e.Csums[k:])}
		}
		cutStart := max(off, e.Logical)
		cutEnd := min(end, e.LogicalEnd())
		freed = append(freed, PhysRange{Phys: e.Phys + (cutStart - e.Logical), Length: cutEnd - cutStart})
		if right != nil {
			keep = append(keep, *right)
		}
	}
	o.Extents = slices.Replace(o.Extents, i, j, keep...)
	return freed
}

// Insert adds e to the extent map. The logical range of e must not be mapped (Punch it first).
func (o *Onode) Insert(e Extent) {
	o.MarkDirty(e.Logical, e.Length)
	i := o.Find(e.Logical)
	o.Extents = slices.Insert(o.Extents, i, e)
}

// MappedFrom reports whether any byte at or beyond off is mapped to the device.
func (o *Onode) MappedFrom(off uint64) bool {
	i := o.Find(off)
	return i < len(o.Extents)
}
