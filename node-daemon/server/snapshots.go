package server

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"

	nodepb "github.com/cobaltstore/cobalt/node-daemon/proto"
	"github.com/cobaltstore/cobalt/node-daemon/volume"
)

// Snapshots, restores and clones of VolumeService (volume.proto). The volume layer does the work
// (node-daemon/volume/snapshot.go); this file validates requests, guards control operations
// against concurrent duplicates and turns the layer's errors into the codes volume.proto
// documents.

// checkID returns InvalidArgument naming field when id is not a valid volume or snapshot ID.
func checkID(field, id string) error {
	if volume.ValidateID(id) != nil {
		return invalid(fmt.Sprintf("%s %q is invalid: it must be 1-%d characters of [A-Za-z0-9._-]", field, id, volume.MaxIDLength))
	}
	return nil
}

// snapshotManager returns the volume manager of ref's store and the validated snapshot ID.
func (s *volumeService) snapshotManager(ref *nodepb.SnapshotRef) (*volume.Manager, string, error) {
	if ref == nil {
		return nil, "", invalid("ref is missing")
	}
	m, err := s.stores.Get(ref.GetStoreUuid())
	if err != nil {
		return nil, "", toStatus(err)
	}
	if err := checkID("snapshot_id", ref.GetSnapshotId()); err != nil {
		return nil, "", err
	}
	return m.Volumes, ref.GetSnapshotId(), nil
}

// guardSnapshot claims the in-flight slot of a snapshot for a control operation. Its key cannot
// meet a volume's: IDs have no '/'.
func (s *volumeService) guardSnapshot(storeUUID, id, op string) (func(), error) {
	release, err := s.inflight.acquire(storeUUID+"/snapshot/"+id, op)
	return release, toStatus(err)
}

func snapshotInfo(storeUUID string, i volume.SnapshotInfo) *nodepb.SnapshotInfo {
	info := &nodepb.SnapshotInfo{
		Ref:             &nodepb.SnapshotRef{StoreUuid: storeUUID, SnapshotId: i.ID},
		SourceVolumeId:  i.Source,
		SizeBytes:       i.Size,
		StripeSizeBytes: i.StripeSize,
		ReferencedBytes: i.Referenced,
		ExclusiveBytes:  i.Exclusive,
	}
	if !i.Created.IsZero() {
		info.CreationTime = timestamppb.New(i.Created)
	}
	return info
}

// contentSource turns a volume's origin into the API's content source (nil for an empty volume).
func contentSource(origin string) *nodepb.VolumeContentSource {
	if id, ok := strings.CutPrefix(origin, volume.OriginSnapshot); ok {
		return &nodepb.VolumeContentSource{Source: &nodepb.VolumeContentSource_SnapshotId{SnapshotId: id}}
	}
	if id, ok := strings.CutPrefix(origin, volume.OriginVolume); ok {
		return &nodepb.VolumeContentSource{Source: &nodepb.VolumeContentSource_VolumeId{VolumeId: id}}
	}
	return nil
}

func (s *volumeService) CreateSnapshot(ctx context.Context, req *nodepb.CreateSnapshotRequest) (*nodepb.CreateSnapshotResponse, error) {
	if req.GetSource() == nil {
		return nil, invalid("source is missing: name the volume to snapshot")
	}
	m, volID, err := s.manager(req.GetSource())
	if err != nil {
		return nil, err
	}
	snapID := req.GetSnapshotId()
	if err := checkID("snapshot_id", snapID); err != nil {
		return nil, err
	}
	release, err := s.guardSnapshot(req.GetSource().GetStoreUuid(), snapID, "create snapshot")
	if err != nil {
		return nil, err
	}
	defer release()
	info, err := m.Snapshot(ctx, volID, snapID)
	if err != nil {
		return nil, toStatus(err)
	}
	return &nodepb.CreateSnapshotResponse{Snapshot: snapshotInfo(req.GetSource().GetStoreUuid(), info)}, nil
}

func (s *volumeService) DeleteSnapshot(ctx context.Context, req *nodepb.DeleteSnapshotRequest) (*nodepb.DeleteSnapshotResponse, error) {
	m, id, err := s.snapshotManager(req.GetRef())
	if err != nil {
		return nil, err
	}
	release, err := s.guardSnapshot(req.GetRef().GetStoreUuid(), id, "delete snapshot")
	if err != nil {
		return nil, err
	}
	defer release()
	if err := m.DeleteSnapshot(ctx, id); err != nil {
		return nil, toStatus(err)
	}
	return &nodepb.DeleteSnapshotResponse{}, nil
}

func (s *volumeService) GetSnapshot(ctx context.Context, req *nodepb.GetSnapshotRequest) (*nodepb.GetSnapshotResponse, error) {
	m, id, err := s.snapshotManager(req.GetRef())
	if err != nil {
		return nil, err
	}
	info, err := m.GetSnapshot(ctx, id)
	if err != nil {
		return nil, toStatus(err)
	}
	return &nodepb.GetSnapshotResponse{Snapshot: snapshotInfo(req.GetRef().GetStoreUuid(), info)}, nil
}

func (s *volumeService) ListSnapshots(ctx context.Context, req *nodepb.ListSnapshotsRequest) (*nodepb.ListSnapshotsResponse, error) {
	mounted, err := s.stores.Get(req.GetStoreUuid())
	if err != nil {
		return nil, toStatus(err)
	}
	if src := req.GetSourceVolumeId(); src != "" {
		if err := checkID("source_volume_id", src); err != nil {
			return nil, err
		}
	}
	limit := req.GetLimit()
	if limit < 0 || limit > nodepb.MaxListLimit {
		return nil, invalid(fmt.Sprintf("limit %d must be from 0 to %d", limit, nodepb.MaxListLimit))
	}
	if limit == 0 {
		limit = nodepb.DefaultListLimit
	}
	infos, next, err := mounted.Volumes.ListSnapshotsPage(ctx, req.GetSourceVolumeId(), req.GetStart(), int(limit))
	if err != nil {
		return nil, toStatus(err)
	}
	resp := &nodepb.ListSnapshotsResponse{Next: next}
	for _, i := range infos {
		resp.Snapshots = append(resp.Snapshots, snapshotInfo(req.GetStoreUuid(), i))
	}
	return resp, nil
}

// createFrom serves a CreateVolume with a content source: a restore of a snapshot or a clone of a
// volume. REQUIRES: the in-flight slot of volume id.
func (s *volumeService) createFrom(ctx context.Context, m *volume.Manager, id string, req *nodepb.CreateVolumeRequest) (volume.Info, error) {
	src := req.GetContentSource()
	var (
		what       string // the source, for messages
		stripeSize int64
		create     func() (volume.Info, error)
	)
	switch src.GetSource().(type) {
	case *nodepb.VolumeContentSource_SnapshotId:
		snapID := src.GetSnapshotId()
		if err := checkID("content_source.snapshot_id", snapID); err != nil {
			return volume.Info{}, err
		}
		snap, err := m.GetSnapshot(ctx, snapID)
		if err != nil {
			return volume.Info{}, toStatus(err)
		}
		what, stripeSize = fmt.Sprintf("snapshot %q", snapID), snap.StripeSize
		create = func() (volume.Info, error) { return m.CreateFromSnapshot(ctx, snapID, id, req.GetSizeBytes()) }
	case *nodepb.VolumeContentSource_VolumeId:
		srcID := src.GetVolumeId()
		if err := checkID("content_source.volume_id", srcID); err != nil {
			return volume.Info{}, err
		}
		if srcID == id {
			return volume.Info{}, invalid(fmt.Sprintf("content_source.volume_id %q names the volume being created", srcID))
		}
		vol, err := m.Get(ctx, srcID)
		if err != nil {
			return volume.Info{}, toStatus(err)
		}
		what, stripeSize = fmt.Sprintf("volume %q", srcID), vol.StripeSize
		create = func() (volume.Info, error) { return m.CloneVolume(ctx, srcID, id, req.GetSizeBytes()) }
	default:
		return volume.Info{}, invalid("content_source is set but names neither a snapshot_id nor a volume_id")
	}
	if ss := req.GetStripeSizeBytes(); ss != 0 && ss != stripeSize {
		return volume.Info{}, invalid(fmt.Sprintf("stripe_size_bytes %d differs from the %d bytes of %s: a volume made from a source keeps its stripe size (pass 0)",
			ss, stripeSize, what))
	}
	if req.GetSizeBytes() < 0 {
		return volume.Info{}, invalid(fmt.Sprintf("size_bytes %d is negative (0 means the size of %s)", req.GetSizeBytes(), what))
	}
	info, err := create()
	if errors.Is(err, volume.ErrShrink) { // the error names both sizes
		return volume.Info{}, status.Error(codes.OutOfRange, fmt.Sprintf(
			"size_bytes %d: %v; a volume made from %s must be at least as large (0 means the same size)", req.GetSizeBytes(), err, what))
	}
	if err != nil {
		return volume.Info{}, toStatus(err)
	}
	return info, nil
}
