package controller

import (
	"context"

	"github.com/container-storage-interface/spec/lib/go/csi"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/cobaltstore/cobalt/api/v1alpha1"
)

// ControllerUnpublishVolume detaches the volume from the node (node_id; empty means from
// whichever node holds it): it clears status.attachment.node and keeps the generation, so the
// next attachment gets a newer one (attachment.go). It succeeds when there is nothing to do: the
// volume does not exist (as the CSI spec asks), is not attached, or is attached to another node.
func (s *Server) ControllerUnpublishVolume(ctx context.Context, req *csi.ControllerUnpublishVolumeRequest) (*csi.ControllerUnpublishVolumeResponse, error) {
	id := req.GetVolumeId()
	if id == "" {
		return nil, status.Error(codes.InvalidArgument, "volume_id is required")
	}
	if !validVolumeID(id) {
		return &csi.ControllerUnpublishVolumeResponse{}, nil
	}
	done, err := s.begin(id)
	if err != nil {
		return nil, err
	}
	defer done()

	if _, err := s.updateAttachment(ctx, id, func(vol *v1alpha1.Volume) (*v1alpha1.VolumeAttachmentStatus, bool, error) {
		att, changed := detachedAttachment(vol, req.GetNodeId())
		return att, changed, nil
	}); err != nil {
		return nil, err
	}
	return &csi.ControllerUnpublishVolumeResponse{}, nil
}
