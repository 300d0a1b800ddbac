package csinode

import (
	"context"
	"errors"

	"github.com/cobaltstore/cobalt/node-daemon/frontend"
)

// ReplicatedVolumes is what the node plugin needs to serve a replicated volume (volume context
// driver.ContextReplicas): a backend whose writes go to every in-sync copy through a coordinator
// (package replica) of the attachment's generation. The node daemon implements it over the
// Kubernetes API (the Volume's copies, its Stores' node endpoints) and the node API; tests may
// implement it over anything.
type ReplicatedVolumes interface {
	// Open starts coordinating the volume's I/O on this node at req.Generation and returns its
	// backend and its size in bytes (what every copy can hold). Errors wrap ErrVolumeNotFound
	// when the Volume or its copies are gone, ErrFenced when a copy has seen a newer generation
	// (the volume is attached elsewhere now), and ErrNoInSyncCopy when no copy can serve it.
	Open(ctx context.Context, req ReplicatedOpen) (ReplicatedBackend, int64, error)
}

// ReplicatedOpen names a replicated volume to open.
type ReplicatedOpen struct {
	// Volume is the Volume object, "<namespace>/<name>".
	Volume string
	// VolumeUID is the volume's identity on its nodes (the Volume object's UID).
	VolumeUID string
	// Generation is the attachment's generation (publish context driver.PublishContextGeneration).
	Generation uint64
}

// ReplicatedBackend is an open replicated volume. Its I/O errors wrap ErrFenced once a newer
// generation took the volume over and ErrNoInSyncCopy while no in-sync copy can be reached (the
// node plugin reports those in NodeGetVolumeHealth).
type ReplicatedBackend interface {
	frontend.Backend
	// Size returns what every copy can hold now (the smallest allocation), for expansion. Its
	// errors wrap ErrFenced and ErrNoInSyncCopy as Open's do.
	Size(ctx context.Context) (int64, error)
	// Close stops coordinating: it flushes, stops every resync or rebuild it runs and closes its
	// streams to the other nodes. The node plugin calls it once, after every I/O call it passed
	// on has returned and no other will come; only if the caller's context ends while calls are
	// still in flight does it call Close regardless, and Close must then make them return.
	Close(ctx context.Context) error
}

var (
	// ErrFenced: a copy of the volume accepted a newer attachment generation than the one asked
	// for; another node serves the volume now.
	ErrFenced = errors.New("volume is attached to another node at a newer generation")
	// ErrNoInSyncCopy: no copy of the volume that holds every acknowledged write can be reached.
	ErrNoInSyncCopy = errors.New("no in-sync copy of the volume can be reached")
)
