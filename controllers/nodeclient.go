package controllers

import (
	"context"
	"errors"

	storagev1alpha1 "github.com/cobaltstore/cobalt/api/v1alpha1"
)

// NodeClient is how the Volume reconciler asks the node daemon that serves a Store to create,
// grow and delete volumes. Package nodeapi implements it over the node daemon's gRPC client
// (cmd/manager wires it in); tests use an in-memory fake.
//
// Contract for implementations:
//   - Safe for concurrent use by several reconciles at once.
//   - The node daemon to call is the one serving store.Status.UUID on store.Spec.NodeName. It
//     publishes its gRPC address (host:port) in the Store's annotation
//     storage.cobalt.io/node-endpoint (v1alpha1.AnnotationNodeEndpoint) once its API serves and on
//     every heartbeat after. The Store reconciler keeps a Store without it not Ready
//     (EndpointPending), so the Volume reconciler never places on or calls such a Store; a Store
//     without that annotation or without a UUID still gets an error, which the reconciler reports
//     and retries with backoff.
//   - A volume is identified by vol.NodeVolumeID() (the Volume object's UID), never by its name, so a
//     deleted and re-created Volume of the same name is a different volume.
//   - Every method is idempotent: CreateVolume of an existing volume returns its current
//     allocation; ResizeVolume to a size the volume already has returns its allocation;
//     DeleteVolume of a missing volume returns nil.
//   - Errors wrap ErrInsufficientCapacity (errors.Is) when the Store lacks room, so the reconciler
//     can say so in the Volume's conditions.
type NodeClient interface {
	// CreateVolume allocates vol.Spec.Size bytes for vol on store, presented as
	// vol.Spec.VolumeMode, and returns what was allocated.
	CreateVolume(ctx context.Context, store *storagev1alpha1.Store, vol *storagev1alpha1.Volume) (VolumeAllocation, error)

	// ResizeVolume grows vol on store to vol.Spec.Size bytes and returns the new allocation.
	// Volumes never shrink: the API server refuses a smaller size.
	ResizeVolume(ctx context.Context, store *storagev1alpha1.Store, vol *storagev1alpha1.Volume) (VolumeAllocation, error)

	// DeleteVolume frees vol's space on store. When it returns nil the data is gone.
	DeleteVolume(ctx context.Context, store *storagev1alpha1.Store, vol *storagev1alpha1.Volume) error
}

// VolumeAllocation is what a node reports about one volume.
type VolumeAllocation struct {
	// AllocatedBytes is the space the Store has reserved for the volume; at least the requested
	// size.
	AllocatedBytes int64
}

// ErrInsufficientCapacity is wrapped by NodeClient errors when a Store has no room for a
// request.
var ErrInsufficientCapacity = errors.New("insufficient capacity on store")
