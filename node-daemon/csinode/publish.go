package csinode

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	"github.com/container-storage-interface/spec/lib/go/csi"
	"golang.org/x/sys/unix"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// NodePublishVolume bind-mounts the staged volume at the target path: the staging mount for
// mount access (read-only when asked), the device onto a file for block access.
func (s *Server) NodePublishVolume(ctx context.Context, req *csi.NodePublishVolumeRequest) (*csi.NodePublishVolumeResponse, error) {
	id := req.GetVolumeId()
	if err := required("NodePublishVolume", "volume_id", id, "staging_target_path", req.GetStagingTargetPath(), "target_path", req.GetTargetPath()); err != nil {
		return nil, err
	}
	c, err := parseCapability(id, req.GetVolumeCapability())
	if err != nil {
		return nil, err
	}
	release, err := s.inflight.acquire(id, "NodePublishVolume")
	if err != nil {
		return nil, err
	}
	defer release()
	r, err := s.records.load(id)
	if err != nil {
		return nil, internal(err, "volume %s", id)
	}
	if r == nil {
		return nil, status.Errorf(codes.FailedPrecondition, "volume %s is not staged on node %s: NodeStageVolume must succeed first", id, s.nodeName)
	}
	if staging := filepath.Clean(req.GetStagingTargetPath()); staging != r.StagingPath {
		return nil, status.Errorf(codes.FailedPrecondition, "volume %s is staged at %s, not at %s", id, r.StagingPath, staging)
	}
	if c.accessType != r.AccessType {
		return nil, status.Errorf(codes.InvalidArgument, "volume %s is staged for %s access and cannot be published for %s access", id, r.AccessType, c.accessType)
	}
	tp := filepath.Clean(req.GetTargetPath())
	want := target{AccessType: c.accessType, Readonly: req.GetReadonly() || c.readOnlyMode(), MountFlags: c.mountFlags}
	prev, known := r.Targets[tp]
	if known && (prev.Readonly != want.Readonly || prev.AccessType != want.AccessType) {
		return nil, status.Errorf(codes.AlreadyExists, "volume %s is already published at %s with readonly=%v; this request asks for readonly=%v",
			id, tp, prev.Readonly, want.Readonly)
	}
	if c.mode == csi.VolumeCapability_AccessMode_SINGLE_NODE_SINGLE_WRITER || r.AccessMode == csi.VolumeCapability_AccessMode_SINGLE_NODE_SINGLE_WRITER.String() {
		for _, other := range r.targetPaths() {
			if other == tp {
				continue
			}
			if mnt, err := s.isMountPoint(other); err != nil || mnt {
				return nil, status.Errorf(codes.FailedPrecondition,
					"volume %s has access mode SINGLE_NODE_SINGLE_WRITER (ReadWriteOncePod) and is already published at %s", id, other)
			}
		}
	}
	if !known {
		// Recorded before the mount, so Recover and unpublish know the target whatever happens.
		if r.Targets == nil {
			r.Targets = make(map[string]target)
		}
		r.Targets[tp] = want
		if err := s.records.save(r); err != nil {
			return nil, internal(err, "volume %s", id)
		}
	}
	if err := s.publish(r, tp, want, known); err != nil {
		if !known {
			delete(r.Targets, tp)
			if serr := s.records.save(r); serr != nil {
				s.log.Error(serr, "forget a failed publish target", "volume", id, "target", tp)
			}
		}
		return nil, err
	}
	s.log.Info("volume published", "volume", id, "target", tp, "readonly", want.Readonly, "access", want.AccessType)
	return &csi.NodePublishVolumeResponse{}, nil
}

// mountState is what a path holds relative to a staged volume.
type mountState int

const (
	mountNone  mountState = iota // not a mount point
	mountOurs                    // a mount of the volume's current device
	mountOther                   // a mount of something else: stale (a dead device) or foreign
)

// stateOf tells whether path holds r's current device: for mount access the device of the
// mount, for block access the device node bind-mounted onto the file.
func (s *Server) stateOf(r *record, path string) (mountState, error) {
	if r.AccessType == accessMount {
		dev, err := s.mountedDevice(path)
		switch {
		case err != nil:
			return mountNone, err
		case dev == "":
			return mountNone, nil
		case dev == r.Device:
			return mountOurs, nil
		}
		return mountOther, nil
	}
	mnt, err := s.isMountPoint(path)
	if err != nil || !mnt {
		return mountNone, err
	}
	var got, dev unix.Stat_t
	if err := unix.Stat(path, &got); err != nil {
		return mountNone, fmt.Errorf("stat %s: %w", path, err)
	}
	if r.Device == "" || unix.Stat(r.Device, &dev) != nil || got.Mode&unix.S_IFMT != unix.S_IFBLK || got.Rdev != dev.Rdev {
		return mountOther, nil
	}
	return mountOurs, nil
}

// publish makes tp hold r's volume. owned says tp was a recorded target of r, so a mount of
// another device there is stale and is replaced.
func (s *Server) publish(r *record, tp string, t target, owned bool) error {
	st, err := s.stateOf(r, tp)
	if err != nil {
		return internal(err, "volume %s", r.VolumeID)
	}
	switch {
	case st == mountOurs:
		return nil
	case st == mountOther && !owned:
		return status.Errorf(codes.FailedPrecondition, "target path %s already has something mounted that is not volume %s", tp, r.VolumeID)
	case st == mountOther:
		s.log.Info("replacing a stale publish mount", "volume", r.VolumeID, "target", tp)
		if err := detach(tp); err != nil {
			return internal(err, "volume %s", r.VolumeID)
		}
	}
	if t.AccessType == accessBlock {
		if err := ensureFile(tp); err != nil {
			return internal(err, "volume %s", r.VolumeID)
		}
		if err := s.bindMount(r.Device, tp, t.Readonly, nil); err != nil {
			return internal(err, "volume %s", r.VolumeID)
		}
		return nil
	}
	if err := os.MkdirAll(tp, 0o750); err != nil {
		return internal(err, "create target path of volume %s", r.VolumeID)
	}
	if err := s.bindMount(r.StagingPath, tp, t.Readonly, t.MountFlags); err != nil {
		return internal(err, "volume %s", r.VolumeID)
	}
	return nil
}

// NodeUnpublishVolume unmounts and removes the target path. A target that is not mounted or is
// missing is not an error.
func (s *Server) NodeUnpublishVolume(ctx context.Context, req *csi.NodeUnpublishVolumeRequest) (*csi.NodeUnpublishVolumeResponse, error) {
	id := req.GetVolumeId()
	if err := required("NodeUnpublishVolume", "volume_id", id, "target_path", req.GetTargetPath()); err != nil {
		return nil, err
	}
	release, err := s.inflight.acquire(id, "NodeUnpublishVolume")
	if err != nil {
		return nil, err
	}
	defer release()
	tp := filepath.Clean(req.GetTargetPath())
	if err := s.cleanup(tp); err != nil {
		return nil, internal(err, "unmount volume %s from %s", id, tp)
	}
	r, err := s.records.load(id)
	if err != nil {
		return nil, internal(err, "volume %s", id)
	}
	if _, ok := r.targetOK(tp); ok {
		delete(r.Targets, tp)
		if err := s.records.save(r); err != nil {
			return nil, internal(err, "volume %s", id)
		}
	}
	s.log.Info("volume unpublished", "volume", id, "target", tp)
	return &csi.NodeUnpublishVolumeResponse{}, nil
}
