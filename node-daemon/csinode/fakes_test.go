package csinode

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/cobaltstore/cobalt/node-daemon/frontend"
)

// fakeVolumes serves volumes of fixed sizes from memory; a store missing from it is not served.
type fakeVolumes struct {
	stores map[string]map[string]int64 // store UUID → volume UID → size
	sick   map[string]error
}

func (f *fakeVolumes) Backend(_ context.Context, store, uid string) (frontend.Backend, int64, error) {
	vols, ok := f.stores[store]
	if !ok {
		return nil, 0, fmt.Errorf("store %s: %w", store, ErrStoreNotServed)
	}
	size, ok := vols[uid]
	if !ok {
		return nil, 0, fmt.Errorf("volume %s: %w", uid, ErrVolumeNotFound)
	}
	return nil, size, nil
}

func (f *fakeVolumes) Healthy(store string) error {
	if _, ok := f.stores[store]; !ok {
		return fmt.Errorf("store %s: %w", store, ErrStoreNotServed)
	}
	return f.sick[store]
}

func (f *fakeVolumes) Ready() error { return nil }

// fakeFrontend hands out device paths without attaching anything: enough for block staging and
// for the calls that fail before mounting.
// It keeps the backend of each device, as a real frontend serves it (Expose replaces it).
type fakeFrontend struct {
	mu       sync.Mutex
	devices  map[string]frontend.Device
	backends map[string]frontend.Backend
	removed  []string
}

func (f *fakeFrontend) Expose(_ context.Context, id string, size int64, b frontend.Backend) (frontend.Device, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.backends == nil {
		f.backends = make(map[string]frontend.Backend)
	}
	f.backends[id] = b
	if d, ok := f.devices[id]; ok {
		if size < d.Size {
			return d, fmt.Errorf("expose %s: size %d is smaller than the exposed %d", id, size, d.Size)
		}
		d.Size = size
		f.devices[id] = d
		return d, nil
	}
	d := frontend.Device{VolumeID: id, Path: fmt.Sprintf("/dev/fake%d", len(f.devices)), Size: size}
	f.devices[id] = d
	return d, nil
}

// backend returns the backend the device of volume id is served by, or nil.
func (f *fakeFrontend) backend(id string) frontend.Backend {
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, ok := f.devices[id]; !ok {
		return nil
	}
	return f.backends[id]
}

func (f *fakeFrontend) Resize(_ context.Context, id string, size int64) (frontend.Device, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	d, ok := f.devices[id]
	if !ok {
		return d, frontend.ErrNotExposed
	}
	d.Size = size
	f.devices[id] = d
	return d, nil
}

func (f *fakeFrontend) Remove(_ context.Context, id string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.devices, id)
	delete(f.backends, id)
	f.removed = append(f.removed, id)
	return nil
}

func (f *fakeFrontend) Device(id string) (frontend.Device, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	d, ok := f.devices[id]
	return d, ok
}

func (f *fakeFrontend) Close(context.Context) error { return nil }

// fakeReplicated fences like the replica layer: opening a volume at a generation claims it, so
// backends of older generations fail their I/O with ErrFenced from then on, and opening at an
// older generation than the newest claimed fails with ErrFenced.
type fakeReplicated struct {
	mu     sync.Mutex
	vols   map[string]*fakeReplicatedVolume // by volume UID
	opened []ReplicatedOpen
}

type fakeReplicatedVolume struct {
	size     int64
	newest   uint64 // the newest generation that claimed the volume
	noInSync bool   // no in-sync copy can be reached: Open, Size and I/O fail
	backends []*fakeReplicatedBackend
}

func newFakeReplicated(sizes map[string]int64) *fakeReplicated {
	f := &fakeReplicated{vols: make(map[string]*fakeReplicatedVolume)}
	for uid, size := range sizes {
		f.vols[uid] = &fakeReplicatedVolume{size: size}
	}
	return f
}

func (f *fakeReplicated) Open(_ context.Context, req ReplicatedOpen) (ReplicatedBackend, int64, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	v, ok := f.vols[req.VolumeUID]
	switch {
	case !ok:
		return nil, 0, fmt.Errorf("volume %s: %w", req.Volume, ErrVolumeNotFound)
	case req.Generation < v.newest:
		return nil, 0, fmt.Errorf("open %s at generation %d, a copy accepted %d: %w", req.Volume, req.Generation, v.newest, ErrFenced)
	case v.noInSync:
		return nil, 0, fmt.Errorf("open %s: %w", req.Volume, ErrNoInSyncCopy)
	}
	v.newest = req.Generation
	f.opened = append(f.opened, req)
	b := &fakeReplicatedBackend{f: f, v: v, gen: req.Generation}
	v.backends = append(v.backends, b)
	return b, v.size, nil
}

// claim opens uid at gen as another node would, fencing this node's older backends.
func (f *fakeReplicated) claim(uid string, gen uint64) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.vols[uid].newest = gen
}

// set changes a volume under the fake's lock.
func (f *fakeReplicated) set(uid string, change func(*fakeReplicatedVolume)) {
	f.mu.Lock()
	defer f.mu.Unlock()
	change(f.vols[uid])
}

// backendsOf returns the generations of uid's backends and whether each is closed.
func (f *fakeReplicated) backendsOf(uid string) (gens []uint64, closed []bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, b := range f.vols[uid].backends {
		gens, closed = append(gens, b.gen), append(closed, b.closes > 0)
	}
	return gens, closed
}

// misuse returns the calls made on closed backends and the backends closed more than once.
func (f *fakeReplicated) misuse() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []string
	for uid, v := range f.vols {
		for _, b := range v.backends {
			if b.afterClose > 0 || b.closes > 1 {
				out = append(out, fmt.Sprintf("%s generation %d: %d calls after Close, closed %d times", uid, b.gen, b.afterClose, b.closes))
			}
		}
	}
	return out
}

type fakeReplicatedBackend struct {
	f          *fakeReplicated
	v          *fakeReplicatedVolume
	gen        uint64
	closes     int
	afterClose int
	// block, when set, holds every I/O call until it is closed.
	block chan struct{}
}

func (b *fakeReplicatedBackend) io() error {
	b.f.mu.Lock()
	block := b.block
	b.f.mu.Unlock()
	if block != nil {
		<-block
	}
	b.f.mu.Lock()
	defer b.f.mu.Unlock()
	switch {
	case b.closes > 0:
		b.afterClose++
		return errors.New("I/O on a closed backend")
	case b.gen < b.v.newest:
		return fmt.Errorf("generation %d: %w", b.gen, ErrFenced)
	case b.v.noInSync:
		return ErrNoInSyncCopy
	}
	return nil
}

func (b *fakeReplicatedBackend) ReadAt(_ context.Context, p []byte, _ int64) error {
	clear(p)
	return b.io()
}
func (b *fakeReplicatedBackend) WriteAt(context.Context, []byte, int64) error { return b.io() }
func (b *fakeReplicatedBackend) Flush(context.Context) error                  { return b.io() }
func (b *fakeReplicatedBackend) Trim(context.Context, int64, int64) error     { return b.io() }

func (b *fakeReplicatedBackend) Size(context.Context) (int64, error) {
	b.f.mu.Lock()
	defer b.f.mu.Unlock()
	switch {
	case b.gen < b.v.newest:
		return 0, ErrFenced
	case b.v.noInSync:
		return 0, ErrNoInSyncCopy
	}
	return b.v.size, nil
}

func (b *fakeReplicatedBackend) Close(context.Context) error {
	b.f.mu.Lock()
	defer b.f.mu.Unlock()
	b.closes++
	return nil
}
