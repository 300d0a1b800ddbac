package controller

import (
	"context"
	"fmt"

	"github.com/container-storage-interface/spec/lib/go/csi"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/api/resource"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/cobaltstore/cobalt/api/v1alpha1"
)

// ControllerExpandVolume grows the Volume's requested size (rounded up to a whole MiB; a smaller
// request leaves it as it is, volumes never shrink) and waits until its node allocated that
// much. It always answers node_expansion_required: the node presents the volume through a block
// device (a loop device) that must learn the new size, and for a Filesystem volume the file
// system must be grown too; both happen in NodeExpandVolume.
func (s *Server) ControllerExpandVolume(ctx context.Context, req *csi.ControllerExpandVolumeRequest) (*csi.ControllerExpandVolumeResponse, error) {
	id := req.GetVolumeId()
	if id == "" {
		return nil, status.Error(codes.InvalidArgument, "volume_id is required")
	}
	if req.GetCapacityRange() == nil {
		return nil, status.Error(codes.InvalidArgument, "capacity_range is required")
	}
	size, err := VolumeSize(req.GetCapacityRange())
	if err != nil {
		return nil, err
	}
	if req.GetVolumeCapability() != nil {
		if why := unsupportedCapability(req.GetVolumeCapability()); why != "" {
			return nil, status.Error(codes.InvalidArgument, why)
		}
	}
	if !validVolumeID(id) {
		return nil, status.Errorf(codes.NotFound, "volume %q does not exist", id)
	}
	done, err := s.begin(id)
	if err != nil {
		return nil, err
	}
	defer done()

	vol, err := s.getVolume(ctx, id)
	if err != nil {
		return nil, internal(err, "look up the volume")
	}
	if vol == nil {
		return nil, status.Errorf(codes.NotFound, "volume %q does not exist in namespace %s", id, s.namespace)
	}
	key := vol.Namespace + "/" + vol.Name
	if !vol.DeletionTimestamp.IsZero() {
		return nil, status.Errorf(codes.FailedPrecondition, "Volume %s is being deleted", key)
	}
	if size > vol.Spec.Size.Value() {
		cp := vol.DeepCopy()
		cp.Spec.Size = *resource.NewQuantity(size, resource.BinarySI)
		if err := s.client.Patch(ctx, cp, client.MergeFrom(vol)); err != nil {
			return nil, internal(err, "grow Volume "+key)
		}
		s.log.Info("growing Volume", "volume", key, "from", vol.Spec.Size.String(), "to", cp.Spec.Size.String())
		vol = cp
	}
	want := vol.Spec.Size.Value()

	gone := status.Errorf(codes.NotFound, "Volume %s was deleted while it was being expanded", key)
	last, err := s.pollVolume(ctx, id, gone, func(v *v1alpha1.Volume) bool {
		return v.Status.AllocatedSize != nil && v.Status.AllocatedSize.Value() >= want
	})
	if err != nil {
		if last == nil {
			last = vol
		}
		return nil, waitError(err, fmt.Sprintf("Volume %s to grow to %s (%s)", key, bytesString(want), resizingState(last)))
	}
	return &csi.ControllerExpandVolumeResponse{CapacityBytes: last.Status.AllocatedSize.Value(), NodeExpansionRequired: true}, nil
}

// resizingState describes vol's Resizing condition for error messages.
func resizingState(vol *v1alpha1.Volume) string {
	c := meta.FindStatusCondition(vol.Status.Conditions, v1alpha1.ConditionResizing)
	if c == nil {
		if vol.Status.AllocatedSize == nil {
			return "the volume is not created on its node yet: " + readyState(vol)
		}
		return "the operator has not reported on the resize yet"
	}
	return fmt.Sprintf("Resizing=%s, %s: %s", c.Status, c.Reason, c.Message)
}
