package replica

import (
	"context"
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

// DirtyStore keeps a DirtyLog durably (encoded, versioned and checksummed by the log). The
// coordinator's is on its local replica's volume (Local.DirtyStore); MemDirtyStore keeps it in
// memory.
type DirtyStore interface {
	// Load returns the log last saved, or nil and no error when none was.
	Load(ctx context.Context) ([]byte, error)
	// Save durably replaces the saved log with data.
	Save(ctx context.Context, data []byte) error
}

// DirtyLog records, per replica, which regions of the volume were written (or trimmed) while the
// replica did not take the writes, so that a replica that comes back is resynced by copying only
// those regions. Regions are RegionSize-aligned; a range marks every region it touches. With a
// DirtyStore, Mark returns once the regions are durable there: only a region's first mark for a
// replica saves the log, and Clear is saved with the next save (a restart before it only makes
// the next resync copy more). It is safe for concurrent use.
type DirtyLog struct {
	regionSize int64
	// store is nil for a log in memory only. It is read under mu or saveMu, and written (Detach)
	// under both.
	store DirtyStore
	// saveMu serializes saves, so a save never replaces a newer one.
	saveMu sync.Mutex
	// mu guards the fields in this struct.
	mu struct {
		sync.Mutex
		// regions maps replica name -> dirty region index -> the version that added it.
		regions map[string]map[int64]uint64
		version uint64 // bumped by every change
		durable uint64 // the version the store holds (all versions with a nil store)
	}
}

// NewDirtyLog returns an empty in-memory log of regionSize-byte regions (0 picks
// DefaultRegionSize).
func NewDirtyLog(regionSize int64) (*DirtyLog, error) {
	if regionSize == 0 {
		regionSize = DefaultRegionSize
	}
	if regionSize < 4096 || regionSize&(regionSize-1) != 0 {
		return nil, fmt.Errorf("replica: dirty region size %d must be a power of two of at least 4096", regionSize)
	}
	l := &DirtyLog{regionSize: regionSize}
	l.mu.regions = make(map[string]map[int64]uint64)
	return l, nil
}

// OpenDirtyLog returns the log saved in store (an empty one when none was saved), with
// regionSize-byte regions (0 picks DefaultRegionSize). A log saved with another region size is
// converted: each saved region marks every region it touches. A corrupt log is an error.
func OpenDirtyLog(ctx context.Context, regionSize int64, store DirtyStore) (*DirtyLog, error) {
	l, err := NewDirtyLog(regionSize)
	if err != nil {
		return nil, err
	}
	l.store = store
	b, err := store.Load(ctx)
	if err != nil {
		return nil, fmt.Errorf("replica: load dirty log: %w", err)
	}
	if b == nil {
		return l, nil
	}
	s, err := decodeDirty(b)
	if err != nil {
		return nil, err
	}
	for name, runs := range s.runs {
		var n int64
		for _, r := range runs {
			n += ((r.first+r.count)*s.regionSize-1)/l.regionSize - r.first*s.regionSize/l.regionSize + 1
		}
		if n > maxDirtyRegions {
			return nil, fmt.Errorf("%w: %d regions of %d bytes for replica %q", errDirtyCorrupt, n, l.regionSize, name)
		}
		set := make(map[int64]uint64, n)
		for _, r := range runs {
			off, end := r.first*s.regionSize, (r.first+r.count)*s.regionSize
			for i := off / l.regionSize; i <= (end-1)/l.regionSize; i++ {
				set[i] = 0
			}
		}
		l.mu.regions[name] = set
	}
	if s.regionSize != l.regionSize {
		l.mu.version = 1 // the store holds the old granularity until the next save
	}
	return l, nil
}

// RegionSize is the log's granularity in bytes.
func (l *DirtyLog) RegionSize() int64 { return l.regionSize }

// Mark records [off, off+length) as dirty for each replica in replicas, and returns once that is
// durable in the log's store. An empty or negative range marks nothing. When saving fails the
// regions stay marked in memory (a later Mark of them saves again) and the error is returned.
func (l *DirtyLog) Mark(ctx context.Context, off, length int64, replicas ...string) error {
	if length <= 0 || off < 0 || len(replicas) == 0 {
		return nil
	}
	first, last := off/l.regionSize, (off+length-1)/l.regionSize
	l.mu.Lock()
	next := l.mu.version + 1
	var need uint64 // the newest version that added one of the regions
	for _, r := range replicas {
		set, ok := l.mu.regions[r]
		if !ok {
			set = make(map[int64]uint64)
			l.mu.regions[r] = set
		}
		for i := first; i <= last; i++ {
			v, ok := set[i]
			if !ok {
				v = next
				set[i] = v
			}
			need = max(need, v)
		}
	}
	if need == next {
		l.mu.version = next
	}
	if l.store == nil {
		l.mu.durable = l.mu.version
	}
	done := need <= l.mu.durable
	l.mu.Unlock()
	if done {
		return nil
	}
	if err := l.save(ctx, need); err != nil {
		return fmt.Errorf("replica: mark [%d, %d) dirty for %v: %w", off, off+length, replicas, err)
	}
	return nil
}

// save makes the store hold at least version need, saving the whole log if it does not yet.
func (l *DirtyLog) save(ctx context.Context, need uint64) error {
	l.saveMu.Lock()
	defer l.saveMu.Unlock()
	l.mu.Lock()
	if need <= l.mu.durable {
		l.mu.Unlock()
		return nil // a save since our mark included it
	}
	version, store := l.mu.version, l.store
	if store == nil {
		l.mu.durable = version // detached meanwhile: memory only
		l.mu.Unlock()
		return nil
	}
	s := dirtySnapshot{regionSize: l.regionSize, runs: make(map[string][]dirtyRun, len(l.mu.regions))}
	for name, set := range l.mu.regions {
		idx := make([]int64, 0, len(set))
		for i := range set {
			idx = append(idx, i)
		}
		s.runs[name] = runsOf(idx)
	}
	l.mu.Unlock()
	if err := store.Save(ctx, encodeDirty(s)); err != nil {
		return fmt.Errorf("save dirty log: %w", err)
	}
	l.mu.Lock()
	l.mu.durable = max(l.mu.durable, version)
	l.mu.Unlock()
	return nil
}

// Detach makes the log live in memory only from now on, as one made without a store: the marks
// it holds stay, and later marks no longer wait for a save. Its user calls it when the replica
// whose volume holds the store leaves (retired, or replaced by a new copy), so that writes that
// must mark a region do not fail on a store that is gone. As for any log without a store, after a
// restart of its coordinator only a Rebuild is safe for the replicas it held marks for (their
// drops are recorded, so a new coordinator rebuilds them).
func (l *DirtyLog) Detach() {
	l.saveMu.Lock()
	defer l.saveMu.Unlock()
	l.mu.Lock()
	defer l.mu.Unlock()
	l.store = nil
	l.mu.durable = l.mu.version
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
	return regionExtents(idx, l.regionSize)
}

// Bytes returns how many bytes of replica are dirty (the regions' total size).
func (l *DirtyLog) Bytes(replica string) int64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	return int64(len(l.mu.regions[replica])) * l.regionSize
}

// Clear forgets the dirty regions of replica (once it has been resynced). It does not save: the
// store keeps them until the next save, which only makes a resync after a restart copy more.
func (l *DirtyLog) Clear(replica string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	delete(l.mu.regions, replica)
}
