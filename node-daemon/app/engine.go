package app

import (
	"context"

	"github.com/cobaltstore/cobalt/node-daemon/metrics"
	"github.com/cobaltstore/cobalt/node-daemon/objstore"
)

// Engine formats and mounts stores. Package engine implements it with the storage engine.
type Engine interface {
	// Mkfs formats the device as a new store with the given UUID, its metadata on the device
	// unless the request names a directory.
	Mkfs(ctx context.Context, req MkfsRequest) error
	// Open mounts the store on the device. A store whose metadata is on the device mounts from it
	// alone and ignores req.LegacyDBDir, which is where a store made before label version 2 keeps
	// its metadata ("" when there is none: such a store then fails to mount, saying so). Holding
	// the device open exclusively, it first applies ClaimLabel to the store's label: a store of
	// another cluster is refused (ErrOtherCluster) before anything is written, and a store that
	// req adopts gets its label rewritten (blockdev.RewriteLabel) before it is mounted. The logger
	// in ctx (logr.FromContext), carrying the Store's name, receives the engine's log lines for as
	// long as the store is open.
	Open(ctx context.Context, req OpenRequest) (MountedStore, error)
}

// OpenRequest asks to mount a store.
type OpenRequest struct {
	DevicePath string
	// LegacyDBDir is the metadata directory of a store made before label version 2 ("" for none).
	LegacyDBDir string
	// ClusterID is the cluster this daemon serves (its StorageCluster's UID).
	ClusterID [16]byte
	// Adopt lets a store whose label names no cluster (label version 2) be adopted into
	// ClusterID (devices.Decision.Adopt).
	Adopt bool
	// MetadataDevicePath is the separate metadata device of a store made with one ("" for none):
	// its label must name the store.
	MetadataDevicePath string
}

// MkfsRequest asks for a new store.
type MkfsRequest struct {
	DevicePath string
	// DBDir is a host directory for the metadata database; empty (as the daemon asks) puts the
	// metadata in a region of the device, so that the store mounts from the device alone.
	DBDir string
	UUID  string
	// ClusterID is recorded in the label as the cluster the store belongs to.
	ClusterID [16]byte
	// Force overwrites an existing signature (only when the device inspection allowed it).
	Force bool
	// CreateSize, when > 0, creates the device as a sparse file of this size if it is missing.
	CreateSize int64
	// MetadataDevicePath, if set, is a separate device (a faster one, BlueStore's block.db) that
	// holds the store's metadata instead of DevicePath; it gets a label naming the store, and the
	// store then mounts only with it (OpenRequest.MetadataDevicePath).
	MetadataDevicePath string
}

// MountedStore is an open store.
type MountedStore interface {
	objstore.Store
	// Snapshot reports capacity, usage and engine metrics (DevicePath is filled by the daemon).
	Snapshot() metrics.StoreSnapshot
	// Close flushes deferred writes and unmounts cleanly.
	Close() error
}
