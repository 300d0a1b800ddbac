package csinode

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/container-storage-interface/spec/lib/go/csi"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/cobaltstore/cobalt/csi/driver"
	"github.com/cobaltstore/cobalt/node-daemon/frontend"
)

// NodeStageVolume exposes the volume as a block device and, for mount access, formats it on
// first use and mounts it at the staging path.
func (s *Server) NodeStageVolume(ctx context.Context, req *csi.NodeStageVolumeRequest) (*csi.NodeStageVolumeResponse, error) {
	id := req.GetVolumeId()
	if err := required("NodeStageVolume", "volume_id", id, "staging_target_path", req.GetStagingTargetPath()); err != nil {
		return nil, err
	}
	c, err := parseCapability(id, req.GetVolumeCapability())
	if err != nil {
		return nil, err
	}
	want, err := s.stageRecord(id, req, c)
	if err != nil {
		return nil, err
	}
	release, err := s.inflight.acquire(id, "NodeStageVolume")
	if err != nil {
		return nil, err
	}
	defer release()

	r, err := s.records.load(id)
	if err != nil {
		return nil, internal(err, "volume %s", id)
	}
	created := r == nil
	if r != nil {
		if r.StagingPath != want.StagingPath {
			return nil, status.Errorf(codes.FailedPrecondition, "volume %s is already staged at %s on node %s; unstage it there before staging it at %s",
				id, r.StagingPath, s.nodeName, want.StagingPath)
		}
		if r.replicated() != want.replicated() {
			return nil, status.Errorf(codes.AlreadyExists, "volume %s is already staged at %s as a %s volume; this request stages it as a %s volume",
				id, r.StagingPath, copiesOf(r), copiesOf(want))
		}
		if !r.sameStage(want) || r.StoreUUID != want.StoreUUID || r.VolumeUID != want.VolumeUID {
			return nil, status.Errorf(codes.AlreadyExists,
				"volume %s is already staged at %s with another capability (%s access, mode %s, fs %q, mount flags %v, store %s, uid %s); this request asks for %s access, mode %s, fs %q, mount flags %v, store %s, uid %s",
				id, r.StagingPath, r.AccessType, r.AccessMode, r.FsType, r.MountFlags, r.StoreUUID, r.VolumeUID,
				want.AccessType, want.AccessMode, want.FsType, want.MountFlags, want.StoreUUID, want.VolumeUID)
		}
		if err := s.restageGeneration(r, want); err != nil {
			return nil, err
		}
	} else {
		// The record comes first, so that an unstage after a failure half way finds the device.
		r = want
		if err := s.records.save(r); err != nil {
			return nil, internal(err, "volume %s", id)
		}
	}
	if err := s.stage(ctx, r, !created); err != nil {
		if created {
			s.unwindStage(ctx, r)
		}
		return nil, err
	}
	s.log.Info("volume staged", "volume", id, "device", r.Device, "stagingPath", r.StagingPath, "access", r.AccessType, "fsType", r.FsType,
		"replicas", r.Replicas, "generation", r.Generation)
	return &csi.NodeStageVolumeResponse{}, nil
}

// stageRecord validates the volume and publish contexts of a stage request and returns the
// record it asks for. A single-copy volume needs its store UUID and volume UID; a replicated one
// (ContextReplicas above 1) its Volume object and volume UID, and the attachment generation from
// the publish context.
func (s *Server) stageRecord(id string, req *csi.NodeStageVolumeRequest, c capability) (*record, error) {
	vctx := req.GetVolumeContext()
	replicas, err := parseReplicas(id, vctx)
	if err != nil {
		return nil, err
	}
	keys := []string{driver.ContextStoreUUID, driver.ContextVolumeUID}
	if replicas > 1 {
		keys = []string{driver.ContextVolume, driver.ContextVolumeUID}
	}
	for _, k := range keys {
		if vctx[k] == "" {
			return nil, status.Errorf(codes.InvalidArgument,
				"volume %s: volume_context has no %s: the volume was not provisioned by %s's controller, or its PersistentVolume was edited", id, k, driver.Name)
		}
	}
	want := &record{
		VolumeID: id, Volume: vctx[driver.ContextVolume],
		StoreUUID: vctx[driver.ContextStoreUUID], VolumeUID: vctx[driver.ContextVolumeUID],
		StagingPath: filepath.Clean(req.GetStagingTargetPath()),
		AccessType:  c.accessType, AccessMode: c.mode.String(), FsType: c.fsType, MountFlags: c.mountFlags,
	}
	if replicas == 1 {
		return want, nil
	}
	want.Replicas = replicas
	if want.Generation, err = parseGeneration(id, req.GetPublishContext()); err != nil {
		return nil, err
	}
	if s.replicated == nil {
		return nil, s.noReplicatedPath(want)
	}
	return want, nil
}

// restageGeneration updates the record r of a replicated volume staged again with want: an
// older generation than r's is refused (a stale attachment), a newer one is recorded before the
// volume is reopened at it (so that Recover reopens it at the newest generation the controller
// gave this node).
func (s *Server) restageGeneration(r, want *record) error {
	if !want.replicated() || (r.Generation == want.Generation && r.Replicas == want.Replicas) {
		return nil
	}
	if want.Generation < r.Generation {
		return status.Errorf(codes.FailedPrecondition,
			"volume %s is staged on node %s at attachment generation %d and this request carries the older generation %d: its publish_context is stale; retry once the attachment is current",
			r.VolumeID, s.nodeName, r.Generation, want.Generation)
	}
	if want.Generation > r.Generation {
		s.log.Info("replicated volume staged again at a newer generation", "volume", r.VolumeID, "from", r.Generation, "to", want.Generation)
	}
	r.Generation, r.Replicas = want.Generation, want.Replicas
	if err := s.records.save(r); err != nil {
		return internal(err, "volume %s", r.VolumeID)
	}
	return nil
}

// copiesOf describes r's volume as single-copy or replicated.
func copiesOf(r *record) string {
	if r.replicated() {
		return fmt.Sprintf("replicated (%d copies)", r.Replicas)
	}
	return "single-copy"
}

// stage exposes r's volume and mounts it; every step is idempotent. owned says the staging
// path was ours before this call, so a mount of another device there is stale and replaced.
func (s *Server) stage(ctx context.Context, r *record, owned bool) error {
	if err := s.expose(ctx, r); err != nil {
		return err
	}
	if r.AccessType == accessBlock {
		return nil
	}
	return s.mountStaging(r, owned, false)
}

// expose exposes r's volume through the frontend and records the device.
func (s *Server) expose(ctx context.Context, r *record) error {
	if r.replicated() {
		return s.exposeReplicated(ctx, r)
	}
	b, size, err := s.volumes.Backend(ctx, r.StoreUUID, r.VolumeUID)
	if err != nil {
		return s.volumeStatus(err, r)
	}
	return s.exposeBackend(ctx, r, size, b)
}

// exposeBackend exposes b as r's device of size bytes and records the device.
func (s *Server) exposeBackend(ctx context.Context, r *record, size int64, b frontend.Backend) error {
	dev, err := s.frontend.Expose(ctx, r.VolumeUID, size, b)
	if err != nil {
		return internal(err, "expose volume %s as a block device", r.VolumeID)
	}
	if r.Device != dev.Path {
		r.Device = dev.Path
		if err := s.records.save(r); err != nil {
			return internal(err, "volume %s", r.VolumeID)
		}
	}
	return nil
}

// mountStaging mounts r's device at its staging path, formatting it only if it carries no file
// system (never when recovering). A mount of another device at the staging path is replaced
// when the path is owned (stale: a device of a previous daemon) and refused otherwise.
func (s *Server) mountStaging(r *record, owned, recovering bool) error {
	cur, err := s.mountedDevice(r.StagingPath)
	if err != nil {
		return internal(err, "volume %s", r.VolumeID)
	}
	if cur == r.Device {
		return nil
	}
	replacing := cur != ""
	if replacing {
		if !owned {
			return status.Errorf(codes.FailedPrecondition, "staging path %s already has %s mounted, which is not volume %s's device", r.StagingPath, cur, r.VolumeID)
		}
		s.log.Info("replacing a stale staging mount", "volume", r.VolumeID, "stagingPath", r.StagingPath, "staleDevice", cur, "device", r.Device)
		if err := detach(r.StagingPath); err != nil {
			return internal(err, "volume %s", r.VolumeID)
		}
	}
	if err := os.MkdirAll(r.StagingPath, 0o750); err != nil {
		return internal(err, "create staging path of volume %s", r.VolumeID)
	}
	existing, err := s.mounter.GetDiskFormat(r.Device)
	if err != nil {
		return internal(err, "read the file system signature of volume %s on %s", r.VolumeID, r.Device)
	}
	if existing != "" && existing != r.FsType {
		return status.Errorf(codes.FailedPrecondition,
			"volume %s already carries a %s file system and the request asks for %s: Cobalt never re-formats a volume; set fsType %s in the StorageClass or PersistentVolume",
			r.VolumeID, existing, r.FsType, existing)
	}
	opts := append([]string(nil), r.MountFlags...)
	if replacing && r.FsType == "xfs" {
		// The detached mount of the dead device may still hold the same XFS UUID.
		opts = append(opts, "nouuid")
	}
	switch {
	case existing == "" && recovering:
		return status.Errorf(codes.FailedPrecondition, "volume %s: no file system found on %s while re-serving it; not formatting during recovery", r.VolumeID, r.Device)
	case recovering:
		err = s.mounter.Mount(r.Device, r.StagingPath, r.FsType, opts)
	default:
		// SafeFormatAndMount formats only a device without a file system.
		err = s.mounter.FormatAndMount(r.Device, r.StagingPath, r.FsType, opts)
	}
	if err != nil {
		return internal(err, "mount volume %s (%s, %s) at %s", r.VolumeID, r.Device, r.FsType, r.StagingPath)
	}
	return nil
}

// unwindStage undoes a stage that failed part way, so that a retry starts from nothing.
func (s *Server) unwindStage(ctx context.Context, r *record) {
	var errs []error
	if r.AccessType == accessMount && r.Device != "" {
		if cur, err := s.mountedDevice(r.StagingPath); err != nil || cur == r.Device {
			errs = append(errs, s.cleanup(r.StagingPath))
		}
	}
	rerr := s.frontend.Remove(ctx, r.VolumeUID)
	if rerr == nil {
		s.closeReplica(ctx, r.VolumeID)
	}
	errs = append(errs, rerr)
	if err := errors.Join(errs...); err != nil {
		s.log.Error(err, "undoing a failed stage; its record stays for NodeUnstageVolume", "volume", r.VolumeID)
		return
	}
	if err := s.records.remove(r.VolumeID); err != nil {
		s.log.Error(err, "undoing a failed stage", "volume", r.VolumeID)
	}
}

// NodeUnstageVolume unmounts the staging path, flushes and removes the volume's device, and
// forgets the volume. Unstaging a volume that is not staged succeeds.
func (s *Server) NodeUnstageVolume(ctx context.Context, req *csi.NodeUnstageVolumeRequest) (*csi.NodeUnstageVolumeResponse, error) {
	id := req.GetVolumeId()
	if err := required("NodeUnstageVolume", "volume_id", id, "staging_target_path", req.GetStagingTargetPath()); err != nil {
		return nil, err
	}
	release, err := s.inflight.acquire(id, "NodeUnstageVolume")
	if err != nil {
		return nil, err
	}
	defer release()
	path := filepath.Clean(req.GetStagingTargetPath())
	r, err := s.records.load(id)
	if err != nil {
		return nil, internal(err, "volume %s", id)
	}
	if r == nil {
		s.log.V(1).Info("unstage of a volume that is not staged", "volume", id, "stagingPath", path)
		return &csi.NodeUnstageVolumeResponse{}, nil
	}
	if r.StagingPath != path {
		return nil, status.Errorf(codes.FailedPrecondition, "volume %s is staged at %s, not at %s", id, r.StagingPath, path)
	}
	for _, tp := range r.targetPaths() {
		mnt, err := s.isMountPoint(tp)
		if err != nil {
			return nil, internal(err, "volume %s", id)
		}
		if mnt {
			return nil, status.Errorf(codes.FailedPrecondition, "volume %s is still published at %s; unpublish it first", id, tp)
		}
	}
	if r.AccessType == accessMount {
		if err := s.cleanup(r.StagingPath); err != nil {
			return nil, internal(err, "unmount volume %s from %s", id, r.StagingPath)
		}
	}
	if err := s.frontend.Remove(ctx, r.VolumeUID); err != nil {
		return nil, internal(err, "flush and remove the device of volume %s", id)
	}
	s.closeReplica(ctx, id)
	if err := s.records.remove(id); err != nil {
		return nil, internal(err, "volume %s", id)
	}
	s.log.Info("volume unstaged", "volume", id, "device", r.Device)
	return &csi.NodeUnstageVolumeResponse{}, nil
}
