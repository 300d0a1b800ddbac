package controller

import (
	"context"
	"fmt"
	"slices"

	"github.com/container-storage-interface/spec/lib/go/csi"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"k8s.io/apimachinery/pkg/api/resource"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/cobaltstore/cobalt/api/v1alpha1"
	"github.com/cobaltstore/cobalt/controllers"
)

// A CreateVolume request's volume_content_source becomes the Volume's spec.source: a snapshot ID
// is a Snapshot's name, a volume ID a Volume's, both in Options.Namespace. The operator places
// the new volume on its source's Store (it shares the source's data there), so the plugin checks
// up front what it can: the source exists and is ready, the requested size holds it, and the
// request's topology allows the source's node.

// requestedSource is the Volume source a request's volume_content_source names, nil for none.
// A content source naming neither a snapshot nor a volume, or an empty ID, is InvalidArgument.
func requestedSource(cs *csi.VolumeContentSource) (*v1alpha1.VolumeSource, error) {
	if cs == nil {
		return nil, nil
	}
	switch {
	case cs.GetSnapshot() != nil:
		if cs.GetSnapshot().GetSnapshotId() == "" {
			return nil, status.Error(codes.InvalidArgument, "volume_content_source.snapshot.snapshot_id is required")
		}
		return &v1alpha1.VolumeSource{SnapshotName: cs.GetSnapshot().GetSnapshotId()}, nil
	case cs.GetVolume() != nil:
		if cs.GetVolume().GetVolumeId() == "" {
			return nil, status.Error(codes.InvalidArgument, "volume_content_source.volume.volume_id is required")
		}
		return &v1alpha1.VolumeSource{VolumeName: cs.GetVolume().GetVolumeId()}, nil
	}
	return nil, status.Error(codes.InvalidArgument, "volume_content_source names neither a snapshot nor a volume")
}

// describeSource names a Volume source in messages: `snapshot "x"` or `volume "y"`.
func describeSource(src *v1alpha1.VolumeSource) string {
	if src.SnapshotName != "" {
		return fmt.Sprintf("snapshot %q", src.SnapshotName)
	}
	return fmt.Sprintf("volume %q", src.VolumeName)
}

// csiContentSource is a Volume's source as the CO names it, nil for none.
func csiContentSource(vol *v1alpha1.Volume) *csi.VolumeContentSource {
	switch src := vol.Spec.Source; {
	case src == nil:
		return nil
	case src.SnapshotName != "":
		return &csi.VolumeContentSource{Type: &csi.VolumeContentSource_Snapshot{
			Snapshot: &csi.VolumeContentSource_SnapshotSource{SnapshotId: src.SnapshotName}}}
	default:
		return &csi.VolumeContentSource{Type: &csi.VolumeContentSource_Volume{
			Volume: &csi.VolumeContentSource_VolumeSource{VolumeId: src.VolumeName}}}
	}
}

// sourceInfo is what placing and sizing a restore or clone needs to know of its source.
type sourceInfo struct {
	// Size is the smallest volume that holds the source: a snapshot's restore size, a volume's
	// size (the larger of requested and allocated).
	Size int64
	// Store and Node are where the source lives, and so where the new volume will.
	Store, Node string
}

// resolveSource reads a Volume source from the API server: NotFound when it does not exist,
// FailedPrecondition when it is being deleted or not ready yet (a snapshot not taken, a volume
// not created on its node).
func (s *Server) resolveSource(ctx context.Context, src *v1alpha1.VolumeSource) (sourceInfo, error) {
	what := describeSource(src)
	if src.SnapshotName != "" {
		if !validVolumeID(src.SnapshotName) {
			return sourceInfo{}, status.Errorf(codes.NotFound, "source %s does not exist", what)
		}
		snap, err := s.getSnapshot(ctx, src.SnapshotName)
		switch {
		case err != nil:
			return sourceInfo{}, internal(err, "look up the source snapshot")
		case snap == nil:
			return sourceInfo{}, status.Errorf(codes.NotFound, "source %s does not exist in namespace %s", what, s.namespace)
		case !snap.DeletionTimestamp.IsZero():
			return sourceInfo{}, status.Errorf(codes.FailedPrecondition, "source %s is being deleted", what)
		case !isTaken(snap) || snap.Status.Placement == nil || snap.Status.RestoreSize == nil:
			return sourceInfo{}, status.Errorf(codes.FailedPrecondition, "source %s is not ready to use yet (%s); retry once it is", what, snapshotState(snap))
		}
		return sourceInfo{Size: snap.Status.RestoreSize.Value(), Store: snap.Status.Placement.Store, Node: snap.Status.Placement.Node}, nil
	}
	if !validVolumeID(src.VolumeName) {
		return sourceInfo{}, status.Errorf(codes.NotFound, "source %s does not exist", what)
	}
	vol, err := s.getVolume(ctx, src.VolumeName)
	switch {
	case err != nil:
		return sourceInfo{}, internal(err, "look up the source volume")
	case vol == nil:
		return sourceInfo{}, status.Errorf(codes.NotFound, "source %s does not exist in namespace %s", what, s.namespace)
	case !vol.DeletionTimestamp.IsZero():
		return sourceInfo{}, status.Errorf(codes.FailedPrecondition, "source %s is being deleted", what)
	case vol.Status.Placement == nil || vol.Status.AllocatedSize == nil:
		return sourceInfo{}, status.Errorf(codes.FailedPrecondition, "source %s is not created on its node yet (%s); retry once it is", what, readyState(vol))
	}
	return sourceInfo{Size: controllers.ReservedBytes(vol), Store: vol.Status.Placement.Store, Node: vol.Status.Placement.Node}, nil
}

// sourcedSize is the size of a volume made from a source of info.Size bytes for a capacity
// range: required_bytes rounded up to a whole MiB, or the source's size (rounded up) when the
// range has no required bytes. A size smaller than the source, or a limit under it, is
// OutOfRange naming both sizes.
func sourcedSize(r *csi.CapacityRange, src *v1alpha1.VolumeSource, info sourceInfo) (int64, error) {
	if _, err := VolumeSize(r); err != nil { // negative bytes, past MaxSize, no whole MiB
		return 0, err
	}
	required, limit := r.GetRequiredBytes(), r.GetLimitBytes()
	if limit > 0 && limit < info.Size {
		return 0, status.Errorf(codes.OutOfRange, "capacity_range: the limit %s is smaller than source %s, which needs %s",
			bytesString(limit), describeSource(src), bytesString(info.Size))
	}
	if required == 0 {
		size := roundUp(info.Size)
		if limit > 0 && size > limit {
			size = info.Size // not a whole MiB, but within the range; the node takes any 4 KiB multiple
		}
		return size, nil
	}
	size := roundUp(required)
	if size < info.Size {
		return 0, status.Errorf(codes.OutOfRange, "capacity_range: required %s is smaller than source %s, which needs %s: ask for at least that much",
			bytesString(required), describeSource(src), bytesString(info.Size))
	}
	return size, nil
}

// checkSourceTopology refuses, with ResourceExhausted, a request whose requisite topology does
// not include the source's node: the new volume can only live there.
func checkSourceTopology(req *csi.TopologyRequirement, src *v1alpha1.VolumeSource, info sourceInfo) error {
	if len(req.GetRequisite()) == 0 {
		return nil
	}
	nodes, err := topologyNodes(&csi.TopologyRequirement{Requisite: req.GetRequisite()})
	if err != nil {
		return err
	}
	if slices.Contains(nodes, info.Node) {
		return nil
	}
	return status.Errorf(codes.ResourceExhausted,
		"a volume made from source %s lives on its Store %s on node %s, but the accessibility requirements allow only nodes %v",
		describeSource(src), info.Store, info.Node, nodes)
}

// applySource fits want, a Volume about to be created from a source, to that source: its size
// (sourcedSize, then the file system's minimum) and a storeSelector for the source's node, where
// the operator places it. The StorageClass's device class must be the source Store's.
func (s *Server) applySource(ctx context.Context, req *csi.CreateVolumeRequest, want *v1alpha1.Volume, deviceClass v1alpha1.DeviceClass) error {
	src := want.Spec.Source
	info, err := s.resolveSource(ctx, src)
	if err != nil {
		return err
	}
	if err := checkSourceTopology(req.GetAccessibilityRequirements(), src, info); err != nil {
		return err
	}
	size, err := sourcedSize(req.GetCapacityRange(), src, info)
	if err != nil {
		return err
	}
	if size, err = FileSystemMinimum(size, req.GetCapacityRange(), req.GetVolumeCapabilities()); err != nil {
		return err
	}
	if deviceClass != "" {
		store := &v1alpha1.Store{}
		if err := s.reader.Get(ctx, client.ObjectKey{Name: info.Store}, store); err != nil {
			return internal(err, "get Store "+info.Store+" of source "+describeSource(src))
		}
		if store.Spec.DeviceClass != deviceClass {
			return status.Errorf(codes.InvalidArgument,
				"the StorageClass asks for device class %s, but source %s is on Store %s of class %s, where a volume made from it must live",
				deviceClass, describeSource(src), info.Store, store.Spec.DeviceClass)
		}
	}
	want.Spec.Size = *resource.NewQuantity(size, resource.BinarySI)
	want.Spec.StoreSelector = storeSelector(deviceClass, []string{info.Node})
	return nil
}

// refuseIfRestoring returns FailedPrecondition when a Volume not yet created on its node is made
// from the snapshot or volume named id (of kind "snapshot" or "volume"; match tells its
// spec.source): the restore or clone needs its source until then.
func (s *Server) refuseIfRestoring(ctx context.Context, kind, id string, match func(*v1alpha1.VolumeSource) bool) error {
	var list v1alpha1.VolumeList
	if err := s.reader.List(ctx, &list, client.InNamespace(s.namespace)); err != nil {
		return internal(err, "list the Volumes that may be made from "+kind+" "+id)
	}
	for _, v := range list.Items {
		if v.Spec.Source != nil && match(v.Spec.Source) && v.Status.AllocatedSize == nil && v.DeletionTimestamp.IsZero() {
			return status.Errorf(codes.FailedPrecondition,
				"Volume %s/%s is being made from %s %s and its node has not created it yet (%s); retry once it has",
				v.Namespace, v.Name, kind, id, readyState(&v))
		}
	}
	return nil
}
