package volume

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cobaltstore/cobalt/node-daemon/objstore"
)

// deleteBatch is how many stripe objects one Delete transaction removes.
const deleteBatch = 256

// Info describes a volume.
type Info struct {
	ID         string
	Size       int64
	StripeSize int64
	// Allocated is the data stored for the volume: the sum of its stripe objects' sizes.
	Allocated int64
	// Origin is what the volume was made from: OriginSnapshot or OriginVolume followed by the
	// source's ID, or "" when it was created empty.
	Origin string
	// Incarnation names this incarnation of the volume (see Manager.Incarnation); "" for a volume
	// made by older code that was never asked for it.
	Incarnation string
}

// vol is a loaded volume, or a snapshot (snapshot.go), which is never written.
type vol struct {
	id, coll   string
	stripeSize int64
	size       atomic.Int64
	// origin is a volume's attrOrigin; source is a snapshot's source volume.
	origin, source string
	// created is when a snapshot was taken (zero for a volume).
	created time.Time
	// incarnation is a volume's attrIncarnation (nil until it has one); set once.
	incarnation atomic.Pointer[string]
	// gate is held shared by every I/O and exclusively by Flush, Delete, Snapshot and
	// CloneVolume (of a snapshot: shared by reads and restores, exclusively by DeleteSnapshot).
	gate sync.RWMutex
}

// Manager manages the volumes of one store. It is safe for concurrent use.
//
// Locking: ctl serializes the control operations (Create, Resize, Delete and the snapshot
// operations) and is held across their store commits; mu guards only the volume and snapshot
// maps and is never held across store calls, so I/O never waits for a control operation's
// commit. Lock order: ctl, then mu.
type Manager struct {
	store objstore.Store
	// storeRead and storeReadNoCache read the store into the caller's buffer
	// (objstore.ReaderInto and NoCacheReaderInto of store), made once: a method value made per
	// read would be an allocation per read.
	storeRead, storeReadNoCache objstore.ReadIntoFunc

	ctl sync.Mutex
	// mu guards the fields in this struct.
	mu struct {
		sync.Mutex
		vols  map[string]*vol
		snaps map[string]*vol
	}
}

// Open loads the volumes of store.
func Open(ctx context.Context, store objstore.Store) (*Manager, error) {
	m := &Manager{store: store, storeRead: objstore.ReaderInto(store), storeReadNoCache: objstore.NoCacheReaderInto(store)}
	m.mu.vols = make(map[string]*vol)
	m.mu.snaps = make(map[string]*vol)
	colls, err := store.ListCollections(ctx)
	if err != nil {
		return nil, fmt.Errorf("volume: list collections of store %s: %w", store.UUID(), err)
	}
	for _, c := range colls {
		if id, ok := snapshotIDFromCollection(c); ok {
			s, err := m.loadSnapshot(ctx, id)
			if err != nil {
				return nil, err
			}
			if s != nil {
				m.mu.snaps[id] = s
			}
			continue
		}
		id, ok := idFromCollection(c)
		if !ok {
			continue
		}
		attrs, err := store.GetAttrs(ctx, c, metaObject)
		if err != nil {
			return nil, fmt.Errorf("volume: load %s: %w", id, err)
		}
		p, err := decodeParams(attrs)
		if err != nil {
			return nil, fmt.Errorf("volume: load %s: %w", id, err)
		}
		v := newVol(id, p)
		v.origin = string(attrs[attrOrigin])
		if inc, ok := attrs[attrIncarnation]; ok && len(inc) > 0 {
			s := string(inc)
			v.incarnation.Store(&s)
		}
		m.mu.vols[id] = v
	}
	return m, nil
}

func newVol(id string, p params) *vol {
	v := &vol{id: id, coll: CollectionName(id), stripeSize: p.stripeSize}
	v.size.Store(p.size)
	return v
}

// Store returns the store the manager works on.
func (m *Manager) Store() objstore.Store { return m.store }

func (m *Manager) lookup(id string) (*vol, error) {
	if err := ValidateID(id); err != nil {
		return nil, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	v, ok := m.mu.vols[id]
	if !ok {
		return nil, fmt.Errorf("volume %q on store %s: %w", id, m.store.UUID(), objstore.ErrNotFound)
	}
	return v, nil
}

// Create creates volume id. stripeSize 0 picks DefaultStripeSize. Creating a volume that exists
// with the same size and stripe size returns it; other parameters give ErrConflict.
func (m *Manager) Create(ctx context.Context, id string, size, stripeSize int64) (Info, error) {
	if err := ValidateID(id); err != nil {
		return Info{}, err
	}
	if stripeSize == 0 {
		stripeSize = DefaultStripeSize
	}
	p := params{size: size, stripeSize: stripeSize}
	if err := validateParams(p); err != nil {
		return Info{}, err
	}
	if err := m.checkCapacity(ctx, size); err != nil {
		return Info{}, err
	}
	m.ctl.Lock()
	defer m.ctl.Unlock()
	m.mu.Lock()
	v, ok := m.mu.vols[id]
	m.mu.Unlock()
	if ok {
		if v.size.Load() != size || v.stripeSize != stripeSize {
			return Info{}, fmt.Errorf("volume %q has size %d and stripe size %d, asked for %d and %d: %w",
				id, v.size.Load(), v.stripeSize, size, stripeSize, ErrConflict)
		}
		return m.info(ctx, v)
	}
	inc, err := newIncarnation()
	if err != nil {
		return Info{}, err
	}
	c := CollectionName(id)
	ops := append([]objstore.Op{objstore.CreateCollection(c), objstore.Touch(c, metaObject), incarnationOp(c, inc)}, p.attrOps(c)...)
	if err := m.store.Commit(ctx, ops); err != nil {
		if errors.Is(err, objstore.ErrExists) {
			return Info{}, fmt.Errorf("volume %q is still being deleted: %w", id, err)
		}
		return Info{}, fmt.Errorf("volume: create %q: %w", id, err)
	}
	v = newVol(id, p)
	v.incarnation.Store(&inc)
	m.mu.Lock()
	m.mu.vols[id] = v
	m.mu.Unlock()
	return Info{ID: id, Size: size, StripeSize: stripeSize, Incarnation: inc}, nil
}

// checkCapacity refuses a volume larger than the whole store: thin provisioning admits
// over-commitment across volumes, but a single volume that can never be filled is a mistake.
func (m *Manager) checkCapacity(ctx context.Context, size int64) error {
	fs, err := m.store.Statfs(ctx)
	if err != nil {
		return fmt.Errorf("volume: statfs: %w", err)
	}
	if size > fs.Total {
		return fmt.Errorf("volume size %d exceeds store capacity %d: %w", size, fs.Total, objstore.ErrNoSpace)
	}
	return nil
}

// Resize grows volume id to size; a smaller size gives ErrShrink, the same size is a no-op.
func (m *Manager) Resize(ctx context.Context, id string, size int64) (Info, error) {
	v, err := m.lookup(id)
	if err != nil {
		return Info{}, err
	}
	if err := validateSize(size); err != nil {
		return Info{}, err
	}
	m.ctl.Lock()
	defer m.ctl.Unlock()
	cur := v.size.Load()
	switch {
	case size < cur:
		return Info{}, fmt.Errorf("volume %q is %d bytes, asked for %d: %w", id, cur, size, ErrShrink)
	case size > cur:
		if err := m.checkCapacity(ctx, size); err != nil {
			return Info{}, err
		}
		p := params{size: size, stripeSize: v.stripeSize}
		if err := m.store.Commit(ctx, p.attrOps(v.coll)); err != nil {
			return Info{}, fmt.Errorf("volume: resize %q to %d: %w", id, size, err)
		}
		v.size.Store(size)
	}
	return m.info(ctx, v)
}

// Delete deletes volume id and frees its space. Deleting a missing volume succeeds, and so does
// finishing the deletion of a volume whose earlier Delete was interrupted.
func (m *Manager) Delete(ctx context.Context, id string) error {
	if err := ValidateID(id); err != nil {
		return err
	}
	m.ctl.Lock()
	defer m.ctl.Unlock()
	m.mu.Lock()
	v, ok := m.mu.vols[id]
	delete(m.mu.vols, id)
	m.mu.Unlock()
	if ok {
		// Wait for in-flight I/O; new I/O no longer finds the volume.
		v.gate.Lock()
		defer v.gate.Unlock()
	}
	if err := m.deleteCollection(ctx, CollectionName(id)); err != nil {
		return fmt.Errorf("volume: delete %q: %w", id, err)
	}
	return nil
}

// deleteCollection removes the objects of collection c in batches, then its meta object and c
// itself in the last transaction, so that an interrupted deletion leaves the meta object and a
// repeated one finishes. A missing collection is already deleted.
func (m *Manager) deleteCollection(ctx context.Context, c string) error {
	for {
		objs, _, err := m.store.ListObjects(ctx, c, "", deleteBatch)
		if errors.Is(err, objstore.ErrNotFound) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("list %s: %w", c, err)
		}
		var ops []objstore.Op
		last := false
		for _, o := range objs {
			if o != metaObject {
				ops = append(ops, objstore.Remove(c, o))
			}
		}
		if len(ops) == 0 {
			last = true
			if len(objs) > 0 {
				ops = append(ops, objstore.Remove(c, metaObject))
			}
			ops = append(ops, objstore.RemoveCollection(c))
		}
		if err := m.store.Commit(ctx, ops); err != nil {
			return fmt.Errorf("remove objects of %s: %w", c, err)
		}
		if last {
			return nil
		}
	}
}

// Get describes volume id.
func (m *Manager) Get(ctx context.Context, id string) (Info, error) {
	v, err := m.lookup(id)
	if err != nil {
		return Info{}, err
	}
	return m.info(ctx, v)
}

// List describes every volume, sorted by ID.
func (m *Manager) List(ctx context.Context) ([]Info, error) {
	m.mu.Lock()
	vols := make([]*vol, 0, len(m.mu.vols))
	for _, v := range m.mu.vols {
		vols = append(vols, v)
	}
	m.mu.Unlock()
	sort.Slice(vols, func(i, j int) bool { return vols[i].id < vols[j].id })
	out := make([]Info, 0, len(vols))
	for _, v := range vols {
		info, err := m.info(ctx, v)
		if errors.Is(err, objstore.ErrNotFound) {
			continue // deleted meanwhile
		}
		if err != nil {
			return nil, err
		}
		out = append(out, info)
	}
	return out, nil
}

// Count returns the number of volumes.
func (m *Manager) Count() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.mu.vols)
}

// info computes a volume's Info, summing its stripe objects' sizes.
func (m *Manager) info(ctx context.Context, v *vol) (Info, error) {
	info := Info{ID: v.id, Size: v.size.Load(), StripeSize: v.stripeSize, Origin: v.origin}
	if inc := v.incarnation.Load(); inc != nil {
		info.Incarnation = *inc
	}
	err := m.stripes(ctx, v, func(_, size int64) { info.Allocated += size })
	if err != nil {
		return Info{}, fmt.Errorf("volume: %w", err)
	}
	return info, nil
}

// Extent is a byte range [Offset, Offset+Length) of a volume.
type Extent struct {
	Offset, Length int64
}

// WrittenExtents returns the ranges of volume id that were written (where a stripe object
// exists, up to its size and the volume's), sorted and merged, and the volume's Info: the rest of
// a thin volume was never written and reads as zeros. Writes that run meanwhile may or may not be
// in it.
func (m *Manager) WrittenExtents(ctx context.Context, id string) ([]Extent, Info, error) {
	v, err := m.lookup(id)
	if err != nil {
		return nil, Info{}, err
	}
	info := Info{ID: v.id, Size: v.size.Load(), StripeSize: v.stripeSize, Origin: v.origin}
	var out []Extent
	err = m.stripes(ctx, v, func(idx, size int64) {
		info.Allocated += size
		off := idx * v.stripeSize
		length := min(size, v.stripeSize, max(info.Size-off, 0))
		if length <= 0 {
			return
		}
		if k := len(out); k > 0 && out[k-1].Offset+out[k-1].Length == off {
			out[k-1].Length += length
			return
		}
		out = append(out, Extent{Offset: off, Length: length})
	})
	if err != nil {
		return nil, Info{}, fmt.Errorf("volume: written extents: %w", err)
	}
	return out, info, nil
}

// stripes calls fn with the index and size of each stripe object of v, in index order (object
// names sort by index); a stripe trimmed after the listing is left out.
func (m *Manager) stripes(ctx context.Context, v *vol, fn func(idx, size int64)) error {
	for start := ""; ; {
		objs, next, err := m.store.ListObjects(ctx, v.coll, start, 1000)
		if err != nil {
			return fmt.Errorf("list stripes of %q: %w", v.id, err)
		}
		for _, o := range objs {
			idx, ok := stripeIndex(o)
			if !ok {
				continue // the meta object
			}
			st, err := m.store.Stat(ctx, v.coll, o)
			if errors.Is(err, objstore.ErrNotFound) {
				continue // trimmed meanwhile
			}
			if err != nil {
				return fmt.Errorf("stat %s of %q: %w", o, v.id, err)
			}
			fn(idx, st.Size)
		}
		if next == "" {
			return nil
		}
		start = next
	}
}
