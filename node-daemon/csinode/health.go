package csinode

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"

	"github.com/container-storage-interface/spec/lib/go/csi"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// Reasons of the volume health entries NodeGetVolumeHealth reports.
const (
	ReasonStoreNotServed = "StoreNotServed"
	ReasonStoreCorrupt   = "StoreCorrupt"
	ReasonStoreFault     = "StoreFault"
	ReasonNotServed      = "DeviceNotServed"
	ReasonStaleMount     = "StaleMount"
)

// NodeGetVolumeHealth reports the volume's health from this node: its store must be served and
// healthy (a replicated volume's I/O must not have found it fenced or without an in-sync copy),
// its device exposed, and the publish path (or the staging path) must hold that device
// and not the mount of a device that died with a previous daemon. An empty list means healthy.
func (s *Server) NodeGetVolumeHealth(ctx context.Context, req *csi.NodeGetVolumeHealthRequest) (*csi.NodeGetVolumeHealthResponse, error) {
	id := req.GetVolumeId()
	if err := required("NodeGetVolumeHealth", "volume_id", id); err != nil {
		return nil, err
	}
	r, err := s.records.load(id)
	if err != nil {
		return nil, internal(err, "volume %s", id)
	}
	if r == nil {
		return nil, status.Errorf(codes.NotFound, "volume %s is not staged on node %s", id, s.nodeName)
	}
	path := r.StagingPath
	if p := req.GetVolumePublishPath(); p != "" {
		path = filepath.Clean(p)
		if _, ok := r.Targets[path]; !ok {
			return nil, status.Errorf(codes.NotFound, "volume %s is not published at %s", id, path)
		}
	}
	return &csi.NodeGetVolumeHealthResponse{VolumeHealth: &csi.VolumeHealth{VolumeId: id, HealthStatuses: s.health(r, path)}}, nil
}

// health returns the adverse conditions of r's volume as seen from path.
func (s *Server) health(r *record, path string) []*csi.VolumeHealth_VolumeHealthEntry {
	entry := func(st csi.VolumeHealthErrorType, reason, msg string, args ...any) []*csi.VolumeHealth_VolumeHealthEntry {
		return []*csi.VolumeHealth_VolumeHealthEntry{{Status: st, Reason: reason, Message: fmt.Sprintf(msg, args...)}}
	}
	if r.replicated() {
		if e := s.replicaHealth(r); e != nil {
			return []*csi.VolumeHealth_VolumeHealthEntry{e}
		}
	} else if err := s.volumes.Healthy(r.StoreUUID); err != nil {
		switch {
		case errors.Is(err, ErrStoreNotServed):
			return entry(csi.VolumeHealthErrorType_INACCESSIBLE, ReasonStoreNotServed,
				"store %s of volume %s is not served by node %s: is its device still present? (%v)", r.StoreUUID, r.VolumeID, s.nodeName, err)
		case errors.Is(err, ErrStoreCorrupt):
			return entry(csi.VolumeHealthErrorType_DATA_LOSS, ReasonStoreCorrupt, "store %s of volume %s: %v", r.StoreUUID, r.VolumeID, err)
		}
		return entry(csi.VolumeHealthErrorType_DEGRADED, ReasonStoreFault, "store %s of volume %s is not healthy: %v", r.StoreUUID, r.VolumeID, err)
	}
	dev, ok := s.frontend.Device(r.VolumeUID)
	if !ok || dev.Path != r.Device {
		return entry(csi.VolumeHealthErrorType_INACCESSIBLE, ReasonNotServed,
			"volume %s is not served as a block device on node %s: I/O fails until it is staged again or the node daemon re-serves it", r.VolumeID, s.nodeName)
	}
	if r.AccessType == accessBlock && path == r.StagingPath {
		return nil // nothing is mounted at a block volume's staging path
	}
	st, err := s.stateOf(r, path)
	if err != nil {
		return entry(csi.VolumeHealthErrorType_INACCESSIBLE, ReasonStaleMount, "volume %s: %v", r.VolumeID, err)
	}
	if st != mountOurs {
		return entry(csi.VolumeHealthErrorType_INACCESSIBLE, ReasonStaleMount,
			"%s does not hold volume %s's device %s: a mount of a previous node daemon's device returns I/O errors; restart the Pod", path, r.VolumeID, r.Device)
	}
	return nil
}
