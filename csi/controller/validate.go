package controller

import (
	"context"
	"fmt"

	"github.com/container-storage-interface/spec/lib/go/csi"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// ValidateVolumeCapabilities confirms capabilities the volume can serve: supported access modes,
// of the volume's own mode (mount for a Filesystem volume, block for a Block one). Unsupported
// capabilities or parameters are not an error: the answer is unconfirmed, with a message why.
func (s *Server) ValidateVolumeCapabilities(ctx context.Context, req *csi.ValidateVolumeCapabilitiesRequest) (*csi.ValidateVolumeCapabilitiesResponse, error) {
	id := req.GetVolumeId()
	if id == "" {
		return nil, status.Error(codes.InvalidArgument, "volume_id is required")
	}
	if len(req.GetVolumeCapabilities()) == 0 {
		return nil, status.Error(codes.InvalidArgument, "volume_capabilities are required")
	}
	if !validVolumeID(id) {
		return nil, status.Errorf(codes.NotFound, "volume %q does not exist", id)
	}
	vol, err := s.getVolume(ctx, id)
	if err != nil {
		return nil, internal(err, "look up the volume")
	}
	if vol == nil {
		return nil, status.Errorf(codes.NotFound, "volume %q does not exist in namespace %s", id, s.namespace)
	}
	for _, c := range req.GetVolumeCapabilities() {
		if why := unsupportedCapability(c); why != "" {
			return &csi.ValidateVolumeCapabilitiesResponse{Message: why}, nil
		}
		if m := capabilityMode(c); m != volumeMode(vol) {
			return &csi.ValidateVolumeCapabilitiesResponse{
				Message: fmt.Sprintf("volume %s is a %s volume; a capability asks for %s", id, volumeMode(vol), m),
			}, nil
		}
	}
	if _, err := parseParameters(req.GetParameters()); err != nil {
		return &csi.ValidateVolumeCapabilitiesResponse{Message: status.Convert(err).Message()}, nil
	}
	return &csi.ValidateVolumeCapabilitiesResponse{Confirmed: &csi.ValidateVolumeCapabilitiesResponse_Confirmed{
		VolumeContext:      req.GetVolumeContext(),
		VolumeCapabilities: req.GetVolumeCapabilities(),
		Parameters:         req.GetParameters(),
	}}, nil
}
