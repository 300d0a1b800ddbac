package csinode

import (
	"context"
	"errors"

	"github.com/cobaltstore/cobalt/node-daemon/frontend"
)

// Volumes is what the node plugin needs from the node daemon: a volume's data as a
// frontend.Backend, and whether its store is served and healthy. The daemon implements it over its
// mounted stores (StoreVolumes); tests may implement it over anything.
type Volumes interface {
	// Backend returns the volume's data and its current size in bytes. A store this node does not
	// serve is an error wrapping ErrStoreNotServed; a missing volume, ErrVolumeNotFound.
	Backend(ctx context.Context, storeUUID, volumeUID string) (frontend.Backend, int64, error)
	// Healthy returns nil when the store is served and has reported no fault, otherwise an error
	// saying what is wrong (wrapping ErrStoreNotServed or ErrStoreCorrupt when that is the case).
	Healthy(storeUUID string) error
	// Ready returns nil once the daemon's stores are mounted and served.
	Ready() error
}

var (
	// ErrStoreNotServed: the volume's store is not mounted on this node.
	ErrStoreNotServed = errors.New("store is not served by this node")
	// ErrStoreCorrupt: the store detected corrupt data (Healthy).
	ErrStoreCorrupt = errors.New("store detected corruption")
	// ErrVolumeNotFound: the store has no such volume.
	ErrVolumeNotFound = errors.New("volume not found")
)
