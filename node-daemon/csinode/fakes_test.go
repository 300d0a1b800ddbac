package csinode

import (
	"context"
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
type fakeFrontend struct {
	mu      sync.Mutex
	devices map[string]frontend.Device
	removed []string
}

func (f *fakeFrontend) Expose(_ context.Context, id string, size int64, _ frontend.Backend) (frontend.Device, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if d, ok := f.devices[id]; ok {
		return d, nil
	}
	d := frontend.Device{VolumeID: id, Path: fmt.Sprintf("/dev/fake%d", len(f.devices)), Size: size}
	f.devices[id] = d
	return d, nil
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
