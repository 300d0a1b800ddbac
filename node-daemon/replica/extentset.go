package replica

// subtractExtents returns the parts of a that b does not cover; both sorted and merged
// (mergeExtents), as the result is.
func subtractExtents(a, b []Extent) []Extent {
	var out []Extent
	j := 0
	for _, e := range a {
		off, end := e.Offset, e.Offset+e.Length
		for j < len(b) && b[j].Offset+b[j].Length <= off {
			j++
		}
		for k := j; k < len(b) && b[k].Offset < end && off < end; k++ {
			if b[k].Offset > off {
				out = append(out, Extent{Offset: off, Length: b[k].Offset - off})
			}
			off = max(off, b[k].Offset+b[k].Length)
		}
		if off < end {
			out = append(out, Extent{Offset: off, Length: end - off})
		}
	}
	return out
}

// intersectExtents returns the parts of a that b covers; both sorted and merged (mergeExtents),
// as the result is.
func intersectExtents(a, b []Extent) []Extent {
	var out []Extent
	for i, j := 0, 0; i < len(a) && j < len(b); {
		lo := max(a[i].Offset, b[j].Offset)
		hi := min(a[i].Offset+a[i].Length, b[j].Offset+b[j].Length)
		if lo < hi {
			out = append(out, Extent{Offset: lo, Length: hi - lo})
		}
		if a[i].Offset+a[i].Length < b[j].Offset+b[j].Length {
			i++
		} else {
			j++
		}
	}
	return out
}
