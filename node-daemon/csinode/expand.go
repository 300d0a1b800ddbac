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

// NodeExpandVolume grows the volume's device to the volume's size on its store (the controller
// grew that already) and then, for mount access, the file system, online.
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
	_, size, err := s.volumes.Backend(ctx, r.StoreUUID, r.VolumeUID)
	if err != nil {
		return nil, s.volumeStatus(err, r)
	}
	if want := req.GetCapacityRange().GetRequiredBytes(); want > size {
		return nil, status.Errorf(codes.Unavailable,
			"volume %s is %d bytes on store %s and %d were asked for: the controller has not grown it yet; retry", id, size, r.StoreUUID, want)
	}
	dev, ok := s.frontend.Device(r.VolumeUID)
	if !ok {
		return nil, status.Errorf(codes.FailedPrecondition,
			"volume %s has no device on node %s: the node daemon could not re-serve it after a restart (see its log), or it is being unstaged", id, s.nodeName)
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
