package volume

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/cobaltstore/cobalt/node-daemon/objstore"
)

// Snapshot layout: snapshot ID lives in collection "snap.<ID>" (IDs are checked like volume IDs,
// in a namespace of their own), holding a clone of each object of the source volume, meta object
// included, plus two attributes on meta.
const (
	snapshotPrefix = "snap."
	// attrSnapshotOf is the ID of the volume a snapshot was taken of.
	attrSnapshotOf = "snapshot_of"
	// attrCreated is when the snapshot was taken: Unix nanoseconds, 8 bytes little-endian.
	attrCreated = "created"
	// attrDeleting marks a snapshot whose deletion has begun: it is no longer readable, and Open
	// finishes the deletion.
	attrDeleting = "deleting"
	// attrOrigin on a volume's meta says what it was made from: OriginSnapshot or OriginVolume
	// followed by the source's ID.
	attrOrigin = "origin"
)

// Prefixes of Info.Origin: the volume was restored from a snapshot, or cloned from a volume.
const (
	OriginSnapshot = "snapshot/"
	OriginVolume   = "volume/"
)

// SnapshotCollectionName returns the collection holding snapshot id.
func SnapshotCollectionName(id string) string { return snapshotPrefix + id }

// SnapshotInfo describes a snapshot.
type SnapshotInfo struct {
	ID string
	// Source is the volume the snapshot was taken of (it may have been deleted since).
	Source string
	// Size and StripeSize are the source's when the snapshot was taken.
	Size, StripeSize int64
	// Referenced is the space the snapshot's data uses, shared or not; Exclusive the part that
	// only the snapshot holds: what DeleteSnapshot frees (as the store reports it, see
	// objstore.Store.CollectionUsage).
	Referenced, Exclusive int64
	// Created is when the snapshot was taken (the zero time for one taken before snapshots
	// recorded it).
	Created time.Time
}

func snapshotIDFromCollection(c string) (string, bool) {
	id, ok := strings.CutPrefix(c, snapshotPrefix)
	if !ok || ValidateID(id) != nil {
		return "", false
	}
	return id, true
}

// loadSnapshot loads snapshot id from the attributes of its meta object; a snapshot marked as
// being deleted is deleted now (nil, nil).
func (m *Manager) loadSnapshot(ctx context.Context, id string) (*vol, error) {
	c := SnapshotCollectionName(id)
	attrs, err := m.store.GetAttrs(ctx, c, metaObject)
	if err != nil {
		return nil, fmt.Errorf("volume: load snapshot %s: %w", id, err)
	}
	if _, deleting := attrs[attrDeleting]; deleting {
		if err := m.deleteCollection(ctx, c); err != nil {
			return nil, fmt.Errorf("volume: finish deleting snapshot %s: %w", id, err)
		}
		return nil, nil
	}
	p, err := decodeParams(attrs)
	if err != nil {
		return nil, fmt.Errorf("volume: load snapshot %s: %w", id, err)
	}
	src := string(attrs[attrSnapshotOf])
	if ValidateID(src) != nil {
		return nil, fmt.Errorf("volume: load snapshot %s: bad source %q: %w", id, src, objstore.ErrCorrupt)
	}
	s := newVol(id, p)
	s.coll, s.source = c, src
	if b, ok := attrs[attrCreated]; ok {
		if len(b) != 8 {
			return nil, fmt.Errorf("volume: load snapshot %s: creation time of %d bytes: %w", id, len(b), objstore.ErrCorrupt)
		}
		s.created = time.Unix(0, int64(binary.LittleEndian.Uint64(b))).UTC()
	}
	return s, nil
}

func (m *Manager) lookupSnapshot(id string) (*vol, error) {
	if err := ValidateID(id); err != nil {
		return nil, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	s, ok := m.mu.snaps[id]
	if !ok {
		return nil, fmt.Errorf("snapshot %q on store %s: %w", id, m.store.UUID(), objstore.ErrNotFound)
	}
	return s, nil
}

// cloneOps returns the ops that clone every object of collection src into collection dst, meta
// included when withMeta. REQUIRES: src does not change meanwhile (the caller holds its gate).
func (m *Manager) cloneOps(ctx context.Context, src, dst string, withMeta bool) ([]objstore.Op, error) {
	var ops []objstore.Op
	for start := ""; ; {
		objs, next, err := m.store.ListObjects(ctx, src, start, 1000)
		if err != nil {
			return nil, fmt.Errorf("list %s: %w", src, err)
		}
		for _, o := range objs {
			if o != metaObject || withMeta {
				ops = append(ops, objstore.CloneTo(src, o, dst, o))
			}
		}
		if next == "" {
			return ops, nil
		}
		start = next
	}
}

// Snapshot takes snapshot snapID of volume volID: a read-only, crash-consistent copy that holds
// every write acknowledged before Snapshot was called and none that starts after it returns.
// It is one store transaction that clones every stripe object and the meta object into the
// snapshot's collection, sharing their data (no data is copied; the volume's next write to a
// shared allocation unit copies it). The volume's I/O waits only while the transaction is built
// and committed: Snapshot takes the volume's I/O gate exclusively, as Flush does, so the writes
// in flight finish first and later ones wait. Taking a snapshot that exists of the same volume
// returns it; of another volume gives ErrConflict.
func (m *Manager) Snapshot(ctx context.Context, volID, snapID string) (SnapshotInfo, error) {
	if err := ValidateID(snapID); err != nil {
		return SnapshotInfo{}, err
	}
	v, err := m.lookup(volID)
	if err != nil {
		return SnapshotInfo{}, err
	}
	m.ctl.Lock()
	defer m.ctl.Unlock()
	m.mu.Lock()
	s, exists := m.mu.snaps[snapID]
	current := m.mu.vols[volID] == v
	m.mu.Unlock()
	if exists {
		if s.source != volID {
			return SnapshotInfo{}, fmt.Errorf("snapshot %q is of volume %q, asked for %q: %w", snapID, s.source, volID, ErrConflict)
		}
		return m.snapshotInfo(ctx, s)
	}
	if !current { // deleted after the lookup
		return SnapshotInfo{}, fmt.Errorf("volume %q on store %s: %w", volID, m.store.UUID(), objstore.ErrNotFound)
	}
	c := SnapshotCollectionName(snapID)
	created := time.Unix(0, time.Now().UnixNano()).UTC() // as it reads back from the store
	if err := m.snapshotLocked(ctx, v, c, created); err != nil {
		if errors.Is(err, objstore.ErrExists) {
			return SnapshotInfo{}, fmt.Errorf("volume: snapshot %q is still being deleted: %w", snapID, err)
		}
		return SnapshotInfo{}, fmt.Errorf("volume: snapshot %q of %q: %w", snapID, volID, err)
	}
	s = newVol(snapID, params{size: v.size.Load(), stripeSize: v.stripeSize})
	s.coll, s.source, s.created = c, volID, created
	m.mu.Lock()
	m.mu.snaps[snapID] = s
	m.mu.Unlock()
	return m.snapshotInfo(ctx, s)
}

// snapshotLocked commits the snapshot transaction of v into collection c with v's I/O paused,
// recording created as its creation time. REQUIRES: m.ctl.
func (m *Manager) snapshotLocked(ctx context.Context, v *vol, c string, created time.Time) error {
	v.gate.Lock()
	defer v.gate.Unlock()
	clones, err := m.cloneOps(ctx, v.coll, c, true)
	if err != nil {
		return err
	}
	ops := make([]objstore.Op, 0, len(clones)+2)
	ops = append(ops, objstore.CreateCollection(c))
	ops = append(ops, clones...)
	ops = append(ops, objstore.SetAttr(c, metaObject, attrSnapshotOf, []byte(v.id)),
		objstore.SetAttr(c, metaObject, attrCreated, binary.LittleEndian.AppendUint64(nil, uint64(created.UnixNano()))))
	return m.store.Commit(ctx, ops)
}

// ReadSnapshot reads length bytes of snapshot id at off, as the volume read when the snapshot was
// taken.
func (m *Manager) ReadSnapshot(ctx context.Context, id string, off, length int64) ([]byte, error) {
	s, err := m.lookupSnapshot(id)
	if err != nil {
		return nil, err
	}
	s.gate.RLock()
	defer s.gate.RUnlock()
	return m.readNew(ctx, s, off, length, m.storeRead)
}

// CreateFromSnapshot creates volume volID from snapshot snapID (a restore): one transaction that
// clones the snapshot's stripe objects, sharing their data, and writes the new volume's meta.
// size 0 is the snapshot's size; a larger size grows the volume (the range past the snapshot
// reads as zeros); a smaller one gives ErrShrink. The new volume has none of the snapshot's user
// attributes. Repeating a restore that succeeded returns the volume; a volume volID of another
// origin or size gives ErrConflict.
func (m *Manager) CreateFromSnapshot(ctx context.Context, snapID, volID string, size int64) (Info, error) {
	if _, err := m.lookupSnapshot(snapID); err != nil {
		return Info{}, err
	}
	m.ctl.Lock()
	defer m.ctl.Unlock()
	s, err := m.lookupSnapshot(snapID) // again: DeleteSnapshot may have run meanwhile
	if err != nil {
		return Info{}, err
	}
	s.gate.RLock()
	defer s.gate.RUnlock()
	return m.createFromLocked(ctx, s, OriginSnapshot+snapID, volID, size)
}

// CloneVolume creates volume dstID as a copy of volume srcID, crash-consistent as Snapshot is
// (the source's I/O waits while the clone is committed), sharing its data. size is as for
// CreateFromSnapshot.
func (m *Manager) CloneVolume(ctx context.Context, srcID, dstID string, size int64) (Info, error) {
	if _, err := m.lookup(srcID); err != nil {
		return Info{}, err
	}
	m.ctl.Lock()
	defer m.ctl.Unlock()
	v, err := m.lookup(srcID) // again: Delete may have run meanwhile
	if err != nil {
		return Info{}, err
	}
	v.gate.Lock()
	defer v.gate.Unlock()
	return m.createFromLocked(ctx, v, OriginVolume+srcID, dstID, size)
}

// createFromLocked creates volume id from src's stripes. REQUIRES: m.ctl, and src.gate (so src's
// stripes do not change meanwhile).
func (m *Manager) createFromLocked(ctx context.Context, src *vol, origin, id string, size int64) (Info, error) {
	if err := ValidateID(id); err != nil {
		return Info{}, err
	}
	srcSize := src.size.Load()
	if size == 0 {
		size = srcSize
	}
	if err := validateSize(size); err != nil {
		return Info{}, err
	}
	// A repeat is checked first: the source may have grown since the volume was made from it.
	m.mu.Lock()
	v, exists := m.mu.vols[id]
	m.mu.Unlock()
	if exists {
		if v.origin != origin || v.size.Load() != size {
			return Info{}, fmt.Errorf("volume %q exists (origin %q, %d bytes), asked for one from %s of %d bytes: %w",
				id, v.origin, v.size.Load(), origin, size, ErrConflict)
		}
		return m.info(ctx, v)
	}
	if size < srcSize {
		return Info{}, fmt.Errorf("volume %q from %s: size %d is smaller than the source's %d bytes: %w", id, origin, size, srcSize, ErrShrink)
	}
	if err := m.checkCapacity(ctx, size); err != nil {
		return Info{}, err
	}
	c := CollectionName(id)
	clones, err := m.cloneOps(ctx, src.coll, c, false)
	if err != nil {
		return Info{}, fmt.Errorf("volume: create %q from %s: %w", id, origin, err)
	}
	inc, err := newIncarnation()
	if err != nil {
		return Info{}, err
	}
	p := params{size: size, stripeSize: src.stripeSize}
	ops := make([]objstore.Op, 0, len(clones)+7)
	ops = append(ops, objstore.CreateCollection(c), objstore.Touch(c, metaObject), incarnationOp(c, inc))
	ops = append(ops, p.attrOps(c)...)
	ops = append(ops, objstore.SetAttr(c, metaObject, attrOrigin, []byte(origin)))
	ops = append(ops, clones...)
	if err := m.store.Commit(ctx, ops); err != nil {
		if errors.Is(err, objstore.ErrExists) {
			return Info{}, fmt.Errorf("volume %q is still being deleted: %w", id, err)
		}
		return Info{}, fmt.Errorf("volume: create %q from %s: %w", id, origin, err)
	}
	v = newVol(id, p)
	v.origin = origin
	v.incarnation.Store(&inc)
	m.mu.Lock()
	m.mu.vols[id] = v
	m.mu.Unlock()
	return m.info(ctx, v)
}

// DeleteSnapshot deletes snapshot id. It frees the space only the snapshot holds; data it shares
// with its source or with volumes restored from it stays. The first transaction marks the
// snapshot as being deleted, so an interrupted deletion is finished by the next Open (or a
// repeated DeleteSnapshot) and a half-deleted snapshot is never read. Deleting a missing snapshot
// succeeds.
func (m *Manager) DeleteSnapshot(ctx context.Context, id string) error {
	if err := ValidateID(id); err != nil {
		return err
	}
	m.ctl.Lock()
	defer m.ctl.Unlock()
	m.mu.Lock()
	s, ok := m.mu.snaps[id]
	delete(m.mu.snaps, id)
	m.mu.Unlock()
	if ok {
		s.gate.Lock() // wait for reads in flight
		defer s.gate.Unlock()
	}
	c := SnapshotCollectionName(id)
	err := m.store.Commit(ctx, []objstore.Op{objstore.SetAttr(c, metaObject, attrDeleting, []byte{1})})
	if err != nil && !errors.Is(err, objstore.ErrNotFound) {
		return fmt.Errorf("volume: delete snapshot %q: %w", id, err)
	}
	if err := m.deleteCollection(ctx, c); err != nil {
		return fmt.Errorf("volume: delete snapshot %q: %w", id, err)
	}
	return nil
}

// GetSnapshot describes snapshot id.
func (m *Manager) GetSnapshot(ctx context.Context, id string) (SnapshotInfo, error) {
	s, err := m.lookupSnapshot(id)
	if err != nil {
		return SnapshotInfo{}, err
	}
	return m.snapshotInfo(ctx, s)
}

// ListSnapshots describes every snapshot, sorted by ID.
func (m *Manager) ListSnapshots(ctx context.Context) ([]SnapshotInfo, error) {
	out, _, err := m.ListSnapshotsPage(ctx, "", "", 0)
	return out, err
}

// ListSnapshotsPage describes, sorted by ID, up to limit snapshots (all when limit <= 0) whose ID
// is start or after it, only those of volume source when source is not "". next is the ID the
// next page starts at, or "" when none is left. Only the page's snapshots are measured, so a page
// costs the same however many snapshots the store holds.
func (m *Manager) ListSnapshotsPage(ctx context.Context, source, start string, limit int) (infos []SnapshotInfo, next string, err error) {
	m.mu.Lock()
	snaps := make([]*vol, 0, len(m.mu.snaps))
	for _, s := range m.mu.snaps {
		if s.id >= start && (source == "" || s.source == source) {
			snaps = append(snaps, s)
		}
	}
	m.mu.Unlock()
	sort.Slice(snaps, func(i, j int) bool { return snaps[i].id < snaps[j].id })
	if limit > 0 && len(snaps) > limit {
		next = snaps[limit].id
		snaps = snaps[:limit]
	}
	out := make([]SnapshotInfo, 0, len(snaps))
	for _, s := range snaps {
		info, err := m.snapshotInfo(ctx, s)
		if errors.Is(err, objstore.ErrNotFound) {
			continue // deleted meanwhile
		}
		if err != nil {
			return nil, "", err
		}
		out = append(out, info)
	}
	return out, next, nil
}

func (m *Manager) snapshotInfo(ctx context.Context, s *vol) (SnapshotInfo, error) {
	u, err := m.store.CollectionUsage(ctx, s.coll)
	if err != nil {
		return SnapshotInfo{}, fmt.Errorf("volume: usage of snapshot %q: %w", s.id, err)
	}
	return SnapshotInfo{ID: s.id, Source: s.source, Size: s.size.Load(), StripeSize: s.stripeSize,
		Referenced: u.Referenced, Exclusive: u.Exclusive, Created: s.created}, nil
}
