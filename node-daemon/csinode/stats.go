package csinode

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/container-storage-interface/spec/lib/go/csi"
	"golang.org/x/sys/unix"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// NodeGetVolumeStats reports a staged or published path's usage: bytes and inodes of the file
// system for mount access, the device's size for block access. (CSI 1.14 reports the volume's
// condition through NodeGetVolumeHealth, not here.)
func (s *Server) NodeGetVolumeStats(ctx context.Context, req *csi.NodeGetVolumeStatsRequest) (*csi.NodeGetVolumeStatsResponse, error) {
	id := req.GetVolumeId()
	if err := required("NodeGetVolumeStats", "volume_id", id, "volume_path", req.GetVolumePath()); err != nil {
		return nil, err
	}
	path := filepath.Clean(req.GetVolumePath())
	r, err := s.records.load(id)
	if err != nil {
		return nil, internal(err, "volume %s", id)
	}
	if r == nil {
		return nil, status.Errorf(codes.NotFound, "volume %s is not staged on node %s", id, s.nodeName)
	}
	if _, err := os.Stat(path); errors.Is(err, os.ErrNotExist) {
		return nil, status.Errorf(codes.NotFound, "volume path %s of volume %s does not exist", path, id)
	}
	if _, published := r.Targets[path]; !published && path != r.StagingPath {
		return nil, status.Errorf(codes.NotFound, "volume %s is neither staged nor published at %s", id, path)
	}
	if r.AccessType == accessBlock {
		if path == r.StagingPath {
			path = r.Device // nothing is mounted at a block volume's staging path
		}
		size, err := deviceSize(path)
		if err != nil {
			return nil, internal(err, "volume %s", id)
		}
		return &csi.NodeGetVolumeStatsResponse{
			Usage: []*csi.VolumeUsage{{Unit: csi.VolumeUsage_BYTES, Total: size}},
		}, nil
	}
	var st unix.Statfs_t
	if err := unix.Statfs(path, &st); err != nil {
		return nil, internal(fmt.Errorf("statfs %s: %w", path, err), "volume %s", id)
	}
	bs := st.Bsize
	return &csi.NodeGetVolumeStatsResponse{
		Usage: []*csi.VolumeUsage{
			{Unit: csi.VolumeUsage_BYTES, Total: int64(st.Blocks) * bs, Available: int64(st.Bavail) * bs, Used: int64(st.Blocks-st.Bfree) * bs},
			{Unit: csi.VolumeUsage_INODES, Total: int64(st.Files), Available: int64(st.Ffree), Used: int64(st.Files - st.Ffree)},
		},
	}, nil
}

// deviceSize returns the size of the block device at path (a device node or a file it is
// bind-mounted onto).
func deviceSize(path string) (int64, error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, fmt.Errorf("open %s: %w", path, err)
	}
	defer f.Close()
	size, err := f.Seek(0, io.SeekEnd)
	if err != nil {
		return 0, fmt.Errorf("size of %s: %w", path, err)
	}
	return size, nil
}
