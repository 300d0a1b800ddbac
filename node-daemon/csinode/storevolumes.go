package csinode

import (
	"context"
	"errors"
	"fmt"

	"github.com/cobaltstore/cobalt/node-daemon/frontend"
	"github.com/cobaltstore/cobalt/node-daemon/metrics"
	"github.com/cobaltstore/cobalt/node-daemon/objstore"
	"github.com/cobaltstore/cobalt/node-daemon/server"
	"github.com/cobaltstore/cobalt/node-daemon/volume"
)

// StoreVolumes implements Volumes over the node daemon's mounted stores.
type StoreVolumes struct {
	// Stores is the daemon's set of served stores.
	Stores *server.Stores
	// Ready reports whether the daemon's stores are mounted and served; nil means always.
	ReadyFunc func() error
}

var _ Volumes = (*StoreVolumes)(nil)

// Backend implements Volumes.
func (s *StoreVolumes) Backend(ctx context.Context, storeUUID, volumeUID string) (frontend.Backend, int64, error) {
	m, err := s.Stores.Get(storeUUID)
	if err != nil {
		return nil, 0, fmt.Errorf("%w: %w", ErrStoreNotServed, err)
	}
	info, err := m.Volumes.Get(ctx, volumeUID)
	if errors.Is(err, objstore.ErrNotFound) {
		return nil, 0, fmt.Errorf("%w: %w", ErrVolumeNotFound, err)
	}
	if err != nil {
		return nil, 0, fmt.Errorf("look up volume %s on store %s: %w", volumeUID, storeUUID, err)
	}
	return volume.Backend{Manager: m.Volumes, ID: volumeUID}, info.Size, nil
}

// snapshotter is implemented by mounted engine stores (app.MountedStore).
type snapshotter interface {
	Snapshot() metrics.StoreSnapshot
}

// Healthy implements Volumes: the store must be served, and must not have reported corruption or
// failed deferred (background) writes, which are device faults.
func (s *StoreVolumes) Healthy(storeUUID string) error {
	m, err := s.Stores.Get(storeUUID)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrStoreNotServed, err)
	}
	sn, ok := m.Store.(snapshotter)
	if !ok {
		return nil
	}
	snap := sn.Snapshot()
	switch {
	case snap.Corruptions > 0:
		return fmt.Errorf("%w: store %s on %s detected %d corrupt blocks since it was mounted", ErrStoreCorrupt, storeUUID, m.DevicePath, snap.Corruptions)
	case snap.DeferredErrors > 0:
		return fmt.Errorf("store %s on %s failed %d deferred writes to its device since it was mounted", storeUUID, m.DevicePath, snap.DeferredErrors)
	}
	return nil
}

// Ready implements Volumes.
func (s *StoreVolumes) Ready() error {
	if s.ReadyFunc == nil {
		return nil
	}
	return s.ReadyFunc()
}
