package csinode

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strconv"

	"github.com/container-storage-interface/spec/lib/go/csi"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/cobaltstore/cobalt/csi/driver"
)

// Reasons of the volume health entries of replicated volumes.
const (
	ReasonFenced       = "Fenced"
	ReasonNoInSyncCopy = "NoInSyncCopy"
)

// parseReplicas returns the number of copies the volume context gives (1 when it gives none).
func parseReplicas(volumeID string, vctx map[string]string) (int, error) {
	v, ok := vctx[driver.ContextReplicas]
	if !ok {
		return 1, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 {
		return 0, status.Errorf(codes.InvalidArgument,
			"volume %s: volume_context %s is %q, not a number of copies (1 or more): the PersistentVolume was edited", volumeID, driver.ContextReplicas, v)
	}
	return n, nil
}

// parseGeneration returns the attachment generation of a replicated volume's publish context.
func parseGeneration(volumeID string, pctx map[string]string) (uint64, error) {
	v, ok := pctx[driver.PublishContextGeneration]
	if !ok {
		return 0, status.Errorf(codes.InvalidArgument,
			"volume %s is replicated and publish_context has no %s: ControllerPublishVolume must attach it to this node first (the CSIDriver %s must have attachRequired: true)",
			volumeID, driver.PublishContextGeneration, driver.Name)
	}
	gen, err := strconv.ParseUint(v, 10, 64)
	if err != nil || gen == 0 {
		return 0, status.Errorf(codes.InvalidArgument,
			"volume %s: publish_context %s is %q, not an attachment generation (a number, 1 or more)", volumeID, driver.PublishContextGeneration, v)
	}
	return gen, nil
}

// exposeReplicated serves r's replicated volume through the frontend at r.Generation. A backend
// already open at that generation is exposed again (idempotent); otherwise the volume is opened
// at r.Generation, which fences the backend of an older generation if one is open, and that one
// is closed once the frontend serves the new one.
func (s *Server) exposeReplicated(ctx context.Context, r *record) error {
	if s.replicated == nil {
		return s.noReplicatedPath(r)
	}
	b := s.open.get(r.VolumeID)
	var size int64
	if b != nil && b.gen == r.Generation {
		var err error
		if size, err = b.backend.Size(ctx); err != nil {
			return s.replicatedStatus(err, r)
		}
	} else {
		rb, n, err := s.replicated.Open(ctx, ReplicatedOpen{Volume: r.Volume, VolumeUID: r.VolumeUID, Generation: r.Generation})
		if err != nil {
			return s.replicatedStatus(err, r)
		}
		old := b
		b, size = newServedReplica(rb, r.Generation), n
		if err := s.open.put(r.VolumeID, b); err != nil {
			if cerr := rb.Close(ctx); cerr != nil {
				s.log.Error(cerr, "close a replicated volume opened during shutdown", "volume", r.VolumeID)
			}
			return status.Errorf(codes.Unavailable, "volume %s: %v; retry", r.VolumeID, err)
		}
		if old != nil {
			// The new backend's Open fenced the old one: whatever the frontend still sends it fails.
			s.log.Info("replicated volume reopened at a newer generation", "volume", r.VolumeID, "object", r.Volume, "from", old.gen, "to", r.Generation)
			defer func() {
				if err := old.shutdown(ctx); err != nil {
					s.log.Error(err, "close the replicated volume's backend of an older generation", "volume", r.VolumeID, "generation", old.gen)
				}
			}()
		}
	}
	return s.exposeBackend(ctx, r, size, b)
}

// closeReplica closes the open backend of volumeID, if any; the frontend must have stopped using
// it (its device is removed). Everything acknowledged was flushed by the device's removal, so a
// failure to close is logged, not returned: the backend is gone either way.
func (s *Server) closeReplica(ctx context.Context, volumeID string) {
	b := s.open.take(volumeID)
	if b == nil {
		return
	}
	if err := b.shutdown(ctx); err != nil {
		s.log.Error(err, "close a replicated volume's backend", "volume", volumeID, "generation", b.gen)
	}
}

// Close closes the backend of every replicated volume the server has open (flushing each, stopping
// its resyncs and rebuilds, closing its streams), and makes the server open no more: I/O on their
// devices fails from then on. The node daemon calls it once the CSI gRPC server has stopped.
// Staged volumes keep their records: Recover reopens them after the restart.
func (s *Server) Close(ctx context.Context) error {
	vols := s.open.close()
	ids := make([]string, 0, len(vols))
	for id := range vols {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	var errs []error
	for _, id := range ids {
		if err := vols[id].shutdown(ctx); err != nil {
			errs = append(errs, fmt.Errorf("close replicated volume %s (generation %d): %w", id, vols[id].gen, err))
		}
	}
	return errors.Join(errs...)
}

// replicatedSize returns what every copy of r's open replicated volume can hold now.
func (s *Server) replicatedSize(ctx context.Context, r *record) (int64, error) {
	b := s.open.get(r.VolumeID)
	if b == nil {
		return 0, s.notServed(r)
	}
	size, err := b.backend.Size(ctx)
	if err != nil {
		return 0, s.replicatedStatus(err, r)
	}
	return size, nil
}

// notServed is the status of a call that needs r's device when the server does not serve it.
func (s *Server) notServed(r *record) error {
	return status.Errorf(codes.FailedPrecondition,
		"volume %s has no device on node %s: the node daemon could not re-serve it after a restart (see its log), or it is being unstaged", r.VolumeID, s.nodeName)
}

// noReplicatedPath is the status of a replicated volume on a server without Options.Replicated.
func (s *Server) noReplicatedPath(r *record) error {
	return status.Errorf(codes.FailedPrecondition,
		"volume %s is replicated (%d copies) and the node daemon on node %s does not serve replicated volumes: it runs without the replicated data path", r.VolumeID, r.Replicas, s.nodeName)
}

// replicatedStatus converts an error of ReplicatedVolumes.Open or ReplicatedBackend.Size to a
// status a user can act on.
func (s *Server) replicatedStatus(err error, r *record) error {
	switch {
	case errors.Is(err, ErrVolumeNotFound):
		return status.Errorf(codes.NotFound, "replicated volume %s (Volume %s, uid %s) does not exist or has no copies left: %v", r.VolumeID, r.Volume, r.VolumeUID, err)
	case errors.Is(err, ErrFenced):
		return status.Errorf(codes.FailedPrecondition,
			"volume %s is attached to another node at a newer generation than %d: node %s may not serve it (the Pod's attachment moved; this node must unstage it): %v", r.VolumeID, r.Generation, s.nodeName, err)
	case errors.Is(err, ErrNoInSyncCopy):
		return status.Errorf(codes.Unavailable,
			"no in-sync copy of volume %s can be reached from node %s: the nodes holding its copies are down or unreachable; it is served again when one is back: %v", r.VolumeID, s.nodeName, err)
	}
	return internal(err, "replicated volume %s at generation %d", r.VolumeID, r.Generation)
}

// replicaHealth returns the adverse condition of r's replicated volume that its I/O found, or nil.
func (s *Server) replicaHealth(r *record) *csi.VolumeHealth_VolumeHealthEntry {
	b := s.open.get(r.VolumeID)
	if b == nil {
		return nil // the device check reports it as not served
	}
	err := b.fault()
	switch {
	case errors.Is(err, ErrFenced):
		return &csi.VolumeHealth_VolumeHealthEntry{Status: csi.VolumeHealthErrorType_INACCESSIBLE, Reason: ReasonFenced, Message: fmt.Sprintf(
			"volume %s is attached to another node at a newer generation than %d: node %s's I/O to it is refused; its Pod must run where it is attached now (%v)", r.VolumeID, b.gen, s.nodeName, err)}
	case errors.Is(err, ErrNoInSyncCopy):
		return &csi.VolumeHealth_VolumeHealthEntry{Status: csi.VolumeHealthErrorType_INACCESSIBLE, Reason: ReasonNoInSyncCopy, Message: fmt.Sprintf(
			"no in-sync copy of volume %s can be reached from node %s: I/O fails until a node holding one is back (%v)", r.VolumeID, s.nodeName, err)}
	}
	return nil
}
