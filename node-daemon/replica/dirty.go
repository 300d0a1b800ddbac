package replica

import (
	"fmt"
	"slices"
	"sync"
)

// DefaultRegionSize is the granularity of a DirtyLog made with region size 0.
const DefaultRegionSize = 1 << 20

// Extent is a byte range [Offset, Offset+Length) of a volume.
type Extent struct {
	Offset, Length int64
}

// DirtyLog records, per replica, which regions of the volume were written (or trimmed) while the
// replica did not take the writes, so that a replica that comes back is resynced by copying only
// those regions. Regions are RegionSize-aligned; a range marks every region it touches. It is kept
// in memory by the coordinator. It is safe for concurrent use.
type DirtyLog struct {
	regionSize int64
	// mu guards the fields in this struct.
	mu struct {
		sync.Mutex
		regions map[string]map[int64]struct{} // replica name -> dirty region indexes
	}
}

// NewDirtyLog returns an empty log of regionSize-byte regions (0 picks DefaultRegionSize).
func NewDirtyLog(regionSize int64) (*DirtyLog, error) {
	if regionSize == 0 {
		regionSize = DefaultRegionSize
	}
	if regionSize < 4096 || regionSize&(regionSize-1) != 0 {
		return nil, fmt.Errorf("replica: dirty region size %d must be a power of two of at least 4096", regionSize)
	}
	l := &DirtyLog{regionSize: regionSize}
	l.mu.regions = make(map[string]map[int64]struct{})
	return l, nil
}

// RegionSize is the log's granularity in bytes.
func (l *DirtyLog) RegionSize() int64 { return l.regionSize }

// Mark records [off, off+length) as dirty for each replica in replicas. An empty or negative
// range marks nothing.
func (l *DirtyLog) Mark(off, length int64, replicas ...string) {
	if length <= 0 || off < 0 || len(replicas) == 0 {
		return
	}
	first, last := off/l.regionSize, (off+length-1)/l.regionSize
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, r := range replicas {
		set, ok := l.mu.regions[r]
		if !ok {
			set = make(map[int64]struct{})
			l.mu.regions[r] = set
		}
		for i := first; i <= last; i++ {
			set[i] = struct{}{}
		}
	}
}

// Extents returns the dirty ranges of replica, sorted and merged, region-aligned.
func (l *DirtyLog) Extents(replica string) []Extent {
	l.mu.Lock()
	idx := make([]int64, 0, len(l.mu.regions[replica]))
	for i := range l.mu.regions[replica] {
		idx = append(idx, i)
	}
	l.mu.Unlock()
	slices.Sort(idx)
	var out []Extent
	for _, i := range idx {
		off := i * l.regionSize
		if n := len(out); n > 0 && out[n-1].Offset+out[n-1].Length == off {
			out[n-1].Length += l.regionSize
			continue
		}
		out = append(out, Extent{Offset: off, Length: l.regionSize})
	}
	return out
}

// Bytes returns how many bytes of replica are dirty (the regions' total size).
func (l *DirtyLog) Bytes(replica string) int64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	return int64(len(l.mu.regions[replica])) * l.regionSize
}

// Clear forgets the dirty regions of replica (once it has been resynced).
func (l *DirtyLog) Clear(replica string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	delete(l.mu.regions, replica)
}
