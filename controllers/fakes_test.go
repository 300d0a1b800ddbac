package controllers

import (
	"context"
	"fmt"
	"sync"

	"github.com/cobaltstore/cobalt/api/v1alpha1"
)

// fakeNodeClient is an in-memory NodeClient: each store is a map of volume ID to allocated
// bytes. A store can be told to fail every call, like an unreachable node.
type fakeNodeClient struct {
	mu struct {
		sync.Mutex
		volumes map[string]map[string]int64 // store name -> volume ID -> bytes
		failing map[string]error            // store name -> error of every call
		calls   []string                    // "create store/vol", "resize ...", "delete ..."
	}
}

func newFakeNodeClient() *fakeNodeClient {
	f := &fakeNodeClient{}
	f.mu.volumes = map[string]map[string]int64{}
	f.mu.failing = map[string]error{}
	return f
}

func (f *fakeNodeClient) record(op string, store *v1alpha1.Store, vol *v1alpha1.Volume) error {
	f.mu.calls = append(f.mu.calls, fmt.Sprintf("%s %s %s/%s", op, store.Name, vol.Namespace, vol.Name))
	return f.mu.failing[store.Name]
}

func (f *fakeNodeClient) CreateVolume(_ context.Context, store *v1alpha1.Store, vol *v1alpha1.Volume) (VolumeAllocation, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.record("create", store, vol); err != nil {
		return VolumeAllocation{}, err
	}
	if f.mu.volumes[store.Name] == nil {
		f.mu.volumes[store.Name] = map[string]int64{}
	}
	if n, ok := f.mu.volumes[store.Name][vol.NodeVolumeID()]; ok {
		return VolumeAllocation{AllocatedBytes: n}, nil
	}
	f.mu.volumes[store.Name][vol.NodeVolumeID()] = vol.Spec.Size.Value()
	return VolumeAllocation{AllocatedBytes: vol.Spec.Size.Value()}, nil
}

func (f *fakeNodeClient) ResizeVolume(_ context.Context, store *v1alpha1.Store, vol *v1alpha1.Volume) (VolumeAllocation, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.record("resize", store, vol); err != nil {
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
	if err := f.record("delete", store, vol); err != nil {
		return err
	}
	delete(f.mu.volumes[store.Name], vol.NodeVolumeID())
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

// Calls returns the calls made so far.
func (f *fakeNodeClient) Calls() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.mu.calls...)
}
