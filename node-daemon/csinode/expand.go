package csinode

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"

	"github.com/container-storage-interface/spec/lib/go/csi"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// NodeExpandVolume grows the volume's device to the volume's size on its store, or for a
// replicated volume to what every copy holds (the controller grew those already), and then, for
// mount access, the file system, online.
func (s *Server) NodeExpandVolume(ctx context.Context, req *csi.NodeExpandVolumeRequest) (*csi.NodeExpandVolumeResponse, error) {
	id := req.GetVolumeId()
	if err := required("NodeExpandVolume", "volume_id", id, "volume_path", req.GetVolumePath()); err != nil {
		return nil, err
	}
	release, err := s.inflight.acquire(id, "NodeExpandVolume")
	if err != nil {
		return nil, err
	}
	defer release()
	r, err := s.records.load(id)
	if err != nil {
		return nil, internal(err, "volume %s", id)
	}
	if r == nil {
		return nil, status.Errorf(codes.NotFound, "volume %s is not staged on node %s", id, s.nodeName)
	}
	if _, err := os.Stat(filepath.Clean(req.GetVolumePath())); errors.Is(err, os.ErrNotExist) {
		return nil, status.Errorf(codes.NotFound, "volume path %s of volume %s does not exist", req.GetVolumePath(), id)
	}
	size, err := s.volumeSize(ctx, r)
	if err != nil {
		return nil, err
	}
	if want := req.GetCapacityRange().GetRequiredBytes(); want > size {
		where := "on store " + r.StoreUUID
		if r.replicated() {
			where = "on its smallest copy"
		}
		return nil, status.Errorf(codes.Unavailable,
			"volume %s is %d bytes %s and %d were asked for: the controller has not grown it yet; retry", id, size, where, want)
	}
	dev, ok := s.frontend.Device(r.VolumeUID)
	if !ok {
		return nil, s.notServed(r)
	}
	if dev.Size < size {
		if dev, err = s.frontend.Resize(ctx, r.VolumeUID, size); err != nil {
			return nil, internal(err, "grow the device of volume %s to %d bytes", id, size)
		}
	}
	if r.AccessType == accessMount {
		if _, err := s.resizer.Resize(dev.Path, r.StagingPath); err != nil {
			if strings.Contains(err.Error(), "Permission denied to resize") {
				// ext4's online resize needs CAP_SYS_RESOURCE.
				return nil, status.Errorf(codes.FailedPrecondition,
					"volume %s: its device grew to %d bytes but the node daemon may not grow its ext4 file system online: it lacks CAP_SYS_RESOURCE (run its container privileged): %v", id, size, err)
			}
			return nil, internal(err, "grow the %s file system of volume %s on %s", r.FsType, id, dev.Path)
		}
	}
	s.log.Info("volume expanded", "volume", id, "bytes", size, "device", dev.Path)
	return &csi.NodeExpandVolumeResponse{CapacityBytes: size}, nil
}

// volumeSize returns the size r's volume has now: on its store, or on every copy of a replicated
// volume (its open backend's Size).
func (s *Server) volumeSize(ctx context.Context, r *record) (int64, error) {
	if r.replicated() {
		return s.replicatedSize(ctx, r)
	}
	_, size, err := s.volumes.Backend(ctx, r.StoreUUID, r.VolumeUID)
	if err != nil {
		return 0, s.volumeStatus(err, r)
	}
	return size, nil
}
