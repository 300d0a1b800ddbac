package controllers

import (
	"context"
	"errors"
	"time"

	storagev1alpha1 "github.com/cobaltstore/cobalt/api/v1alpha1"
)

// NodeClient is how the Volume and Snapshot reconcilers ask the node daemon that serves a Store
// to create, grow and delete volumes, and to take, describe and delete snapshots. Package nodeapi implements it over the node daemon's gRPC client
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
//   - A snapshot is identified by snap.NodeSnapshotID() (the Snapshot object's UID). A snapshot,
//     a restore from it and a clone of a volume all live on their source's Store.
//   - Every method is idempotent: CreateVolume of an existing volume returns its current
//     allocation; ResizeVolume to a size the volume already has returns its allocation;
//     DeleteVolume of a missing volume returns nil; CreateSnapshot of a snapshot already taken
//     of the same volume describes it; DeleteSnapshot of a missing snapshot returns nil.
//   - Errors wrap ErrInsufficientCapacity (errors.Is) when the Store lacks room, so the reconciler
//     can say so in the Volume's conditions; ErrSmallerThanSource when a restore or clone is
//     smaller than its source; ErrSnapshotNotFound when GetSnapshot finds no such snapshot.
type NodeClient interface {
	// CreateVolume allocates vol.Spec.Size bytes for vol on store, presented as
	// vol.Spec.VolumeMode, and returns what was allocated. A non-empty source makes the volume
	// start with the content of that snapshot or volume, which must be on store too.
	CreateVolume(ctx context.Context, store *storagev1alpha1.Store, vol *storagev1alpha1.Volume, source ContentSource) (VolumeAllocation, error)

	// ResizeVolume grows vol on store to vol.Spec.Size bytes and returns the new allocation.
	// Volumes never shrink: the API server refuses a smaller size.
	ResizeVolume(ctx context.Context, store *storagev1alpha1.Store, vol *storagev1alpha1.Volume) (VolumeAllocation, error)

	// DeleteVolume frees vol's space on store. When it returns nil the data is gone.
	DeleteVolume(ctx context.Context, store *storagev1alpha1.Store, vol *storagev1alpha1.Volume) error

	// CreateSnapshot takes snap of vol on store (vol's Store) and describes it. The snapshot
	// holds every write vol acknowledged before the call.
	CreateSnapshot(ctx context.Context, store *storagev1alpha1.Store, vol *storagev1alpha1.Volume, snap *storagev1alpha1.Snapshot) (SnapshotInfo, error)

	// GetSnapshot describes snap on store; the error wraps ErrSnapshotNotFound when the node
	// does not have it.
	GetSnapshot(ctx context.Context, store *storagev1alpha1.Store, snap *storagev1alpha1.Snapshot) (SnapshotInfo, error)

	// DeleteSnapshot deletes snap on store, freeing the space only it holds. When it returns nil
	// the snapshot is gone (or never was).
	DeleteSnapshot(ctx context.Context, store *storagev1alpha1.Store, snap *storagev1alpha1.Snapshot) error
}

// ContentSource is what a new volume is made from on its Store: at most one of a snapshot's
// node ID (Snapshot.NodeSnapshotID) and a volume's (Volume.NodeVolumeID). The zero value makes
// an empty volume.
type ContentSource struct {
	SnapshotID string
	VolumeID   string
}

// IsZero is true for an empty volume's source.
func (s ContentSource) IsZero() bool { return s.SnapshotID == "" && s.VolumeID == "" }

// String describes the source for messages: "snapshot <id>", "volume <id>" or "none".
func (s ContentSource) String() string {
	switch {
	case s.SnapshotID != "":
		return "snapshot " + s.SnapshotID
	case s.VolumeID != "":
		return "volume " + s.VolumeID
	}
	return "none"
}

// SnapshotInfo is what a node reports about one snapshot.
type SnapshotInfo struct {
	// SourceVolumeID is the node ID of the volume the snapshot was taken of (it may be gone).
	SourceVolumeID string
	// RestoreBytes is the source's size when the snapshot was taken: the smallest restore.
	RestoreBytes int64
	// ReferencedBytes is the space the snapshot's data uses, shared or not; ExclusiveBytes the
	// part only the snapshot holds, which deleting it frees.
	ReferencedBytes int64
	ExclusiveBytes  int64
	// CreationTime is when the node took it; zero when the node did not record it.
	CreationTime time.Time
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

// ErrSmallerThanSource is wrapped by NodeClient errors when a restore or clone asks for less
// than its source's size; the node's message gives both sizes.
var ErrSmallerThanSource = errors.New("volume is smaller than its source")

// ErrSnapshotNotFound is wrapped by GetSnapshot's error when the node has no such snapshot.
var ErrSnapshotNotFound = errors.New("snapshot not found on store")
