package controllers

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/cobaltstore/cobalt/api/v1alpha1"
)

// fakeSnapshotTime is when the fake node takes every snapshot.
var fakeSnapshotTime = time.Date(2026, 1, 2, 3, 0, 0, 0, time.UTC)

// fakeSnapshot is what the fake node holds for one snapshot.
type fakeSnapshot struct {
	SourceVolumeID              string
	Size, Referenced, Exclusive int64
}

// fakeNodeClient is an in-memory NodeClient: each store is a map of volume ID to allocated
// bytes and one of snapshot ID to snapshot. A store can be told to fail every call, like an
// unreachable node. Like the node, it refuses a restore or clone whose source is not on the
// volume's store or is larger than the volume.
type fakeNodeClient struct {
	mu struct {
		sync.Mutex
		volumes   map[string]map[string]int64         // store name -> volume ID -> bytes
		snapshots map[string]map[string]*fakeSnapshot // store name -> snapshot ID -> snapshot
		sources   map[string]ContentSource            // volume ID -> what it was created from
		failing   map[string]error                    // store name -> error of every call
		calls     []string                            // "create store ns/vol", "snapshot store ns/snap", ...
	}
}

func newFakeNodeClient() *fakeNodeClient {
	f := &fakeNodeClient{}
	f.mu.volumes = map[string]map[string]int64{}
	f.mu.snapshots = map[string]map[string]*fakeSnapshot{}
	f.mu.sources = map[string]ContentSource{}
	f.mu.failing = map[string]error{}
	return f
}

// REQUIRES: f.mu
func (f *fakeNodeClient) recordLocked(op string, store *v1alpha1.Store, namespace, name string) error {
	f.mu.calls = append(f.mu.calls, fmt.Sprintf("%s %s %s/%s", op, store.Name, namespace, name))
	return f.mu.failing[store.Name]
}

func (f *fakeNodeClient) CreateVolume(_ context.Context, store *v1alpha1.Store, vol *v1alpha1.Volume, source ContentSource) (VolumeAllocation, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.recordLocked("create", store, vol.Namespace, vol.Name); err != nil {
		return VolumeAllocation{}, err
	}
	if f.mu.volumes[store.Name] == nil {
		f.mu.volumes[store.Name] = map[string]int64{}
	}
	if n, ok := f.mu.volumes[store.Name][vol.NodeVolumeID()]; ok {
		return VolumeAllocation{AllocatedBytes: n}, nil
	}
	size := vol.Spec.Size.Value()
	var srcSize int64
	switch {
	case source.SnapshotID != "":
		s, ok := f.mu.snapshots[store.Name][source.SnapshotID]
		if !ok {
			return VolumeAllocation{}, fmt.Errorf("source snapshot %s not found on store %s", source.SnapshotID, store.Name)
		}
		srcSize = s.Size
	case source.VolumeID != "":
		n, ok := f.mu.volumes[store.Name][source.VolumeID]
		if !ok {
			return VolumeAllocation{}, fmt.Errorf("source volume %s not found on store %s", source.VolumeID, store.Name)
		}
		srcSize = n
	}
	if size < srcSize {
		return VolumeAllocation{}, fmt.Errorf("size %d is smaller than the source's %d: %w", size, srcSize, ErrSmallerThanSource)
	}
	f.mu.volumes[store.Name][vol.NodeVolumeID()] = size
	f.mu.sources[vol.NodeVolumeID()] = source
	return VolumeAllocation{AllocatedBytes: size}, nil
}

func (f *fakeNodeClient) ResizeVolume(_ context.Context, store *v1alpha1.Store, vol *v1alpha1.Volume) (VolumeAllocation, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.recordLocked("resize", store, vol.Namespace, vol.Name); err != nil {
		return VolumeAllocation{}, err
	}
	n, ok := f.mu.volumes[store.Name][vol.NodeVolumeID()]
	if !ok {
		return VolumeAllocation{}, fmt.Errorf("volume %s not found on store %s", vol.NodeVolumeID(), store.Name)
	}
	n = max(n, vol.Spec.Size.Value())
	f.mu.volumes[store.Name][vol.NodeVolumeID()] = n
	return VolumeAllocation{AllocatedBytes: n}, nil
}

func (f *fakeNodeClient) DeleteVolume(_ context.Context, store *v1alpha1.Store, vol *v1alpha1.Volume) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.recordLocked("delete", store, vol.Namespace, vol.Name); err != nil {
		return err
	}
	delete(f.mu.volumes[store.Name], vol.NodeVolumeID())
	return nil
}

// info describes s; the caller holds the fake's lock.
func (s *fakeSnapshot) info() SnapshotInfo {
	return SnapshotInfo{SourceVolumeID: s.SourceVolumeID, RestoreBytes: s.Size, ReferencedBytes: s.Referenced,
		ExclusiveBytes: s.Exclusive, CreationTime: fakeSnapshotTime}
}

func (f *fakeNodeClient) CreateSnapshot(_ context.Context, store *v1alpha1.Store, vol *v1alpha1.Volume, snap *v1alpha1.Snapshot) (SnapshotInfo, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.recordLocked("snapshot", store, snap.Namespace, snap.Name); err != nil {
		return SnapshotInfo{}, err
	}
	if s, ok := f.mu.snapshots[store.Name][snap.NodeSnapshotID()]; ok {
		if s.SourceVolumeID != vol.NodeVolumeID() {
			return SnapshotInfo{}, fmt.Errorf("snapshot %s exists of another volume", snap.NodeSnapshotID())
		}
		return s.info(), nil
	}
	n, ok := f.mu.volumes[store.Name][vol.NodeVolumeID()]
	if !ok {
		return SnapshotInfo{}, fmt.Errorf("volume %s not found on store %s", vol.NodeVolumeID(), store.Name)
	}
	if f.mu.snapshots[store.Name] == nil {
		f.mu.snapshots[store.Name] = map[string]*fakeSnapshot{}
	}
	// The fake volume is fully written: the snapshot references all of it and shares all of it.
	s := &fakeSnapshot{SourceVolumeID: vol.NodeVolumeID(), Size: n, Referenced: n}
	f.mu.snapshots[store.Name][snap.NodeSnapshotID()] = s
	return s.info(), nil
}

func (f *fakeNodeClient) GetSnapshot(_ context.Context, store *v1alpha1.Store, snap *v1alpha1.Snapshot) (SnapshotInfo, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.mu.failing[store.Name]; err != nil {
		return SnapshotInfo{}, err
	}
	s, ok := f.mu.snapshots[store.Name][snap.NodeSnapshotID()]
	if !ok {
		return SnapshotInfo{}, fmt.Errorf("snapshot %s on store %s: %w", snap.NodeSnapshotID(), store.Name, ErrSnapshotNotFound)
	}
	return s.info(), nil
}

func (f *fakeNodeClient) DeleteSnapshot(_ context.Context, store *v1alpha1.Store, snap *v1alpha1.Snapshot) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.recordLocked("delete-snapshot", store, snap.Namespace, snap.Name); err != nil {
		return err
	}
	delete(f.mu.snapshots[store.Name], snap.NodeSnapshotID())
	return nil
}

// Fail makes every call on store return err; a nil err heals it.
func (f *fakeNodeClient) Fail(store string, err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err == nil {
		delete(f.mu.failing, store)
		return
	}
	f.mu.failing[store] = err
}

// Allocated is the bytes the store holds for vol, and whether it holds it at all.
func (f *fakeNodeClient) Allocated(store string, vol *v1alpha1.Volume) (int64, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	n, ok := f.mu.volumes[store][vol.NodeVolumeID()]
	return n, ok
}

// Source is what vol was created from on the node; zero when it was created empty or not at all.
func (f *fakeNodeClient) Source(vol *v1alpha1.Volume) ContentSource {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.mu.sources[vol.NodeVolumeID()]
}

// Snapshot is what the store holds for snap, and whether it holds it at all.
func (f *fakeNodeClient) Snapshot(store string, snap *v1alpha1.Snapshot) (fakeSnapshot, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	s, ok := f.mu.snapshots[store][snap.NodeSnapshotID()]
	if !ok {
		return fakeSnapshot{}, false
	}
	return *s, true
}

// Overwrite simulates the source of snap overwriting n bytes it shares with snap: the
// snapshot's exclusive size grows by n.
func (f *fakeNodeClient) Overwrite(store string, snap *v1alpha1.Snapshot, n int64) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if s, ok := f.mu.snapshots[store][snap.NodeSnapshotID()]; ok {
		s.Exclusive = min(s.Exclusive+n, s.Referenced)
	}
}

// Calls returns the calls made so far.
func (f *fakeNodeClient) Calls() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.mu.calls...)
}

// Count is how many calls equal call.
func (f *fakeNodeClient) Count(call string) int {
	n := 0
	for _, c := range f.Calls() {
		if c == call {
			n++
		}
	}
	return n
}
