package driver

import (
	"context"

	"github.com/container-storage-interface/spec/lib/go/csi"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/wrapperspb"
)

// ProbeFunc reports whether a plugin can do its job now: nil when ready, otherwise an error
// saying what it is waiting for (the controller plugin: the API server; the node plugin: the node
// daemon's stores).
type ProbeFunc func(ctx context.Context) error

// Identity is the CSI Identity service both plugins serve. GetPluginCapabilities describes the
// driver as a whole (as the CSI spec asks of a plugin split into a controller and a node part,
// and as csi-sanity reads it from the node endpoint): the controller service, volume
// accessibility constraints, online expansion. Each endpoint serves only its own service.
type Identity struct {
	csi.UnimplementedIdentityServer

	// Version is the plugin's version, reported by GetPluginInfo.
	Version string
	// Ready says whether the plugin can do its job; nil means always ready.
	Ready ProbeFunc
}

// GetPluginInfo returns the driver's name and version.
func (i *Identity) GetPluginInfo(context.Context, *csi.GetPluginInfoRequest) (*csi.GetPluginInfoResponse, error) {
	v := i.Version
	if v == "" {
		v = "dev"
	}
	return &csi.GetPluginInfoResponse{Name: Name, VendorVersion: v}, nil
}

// GetPluginCapabilities returns what the driver offers.
func (i *Identity) GetPluginCapabilities(context.Context, *csi.GetPluginCapabilitiesRequest) (*csi.GetPluginCapabilitiesResponse, error) {
	caps := []*csi.PluginCapability{{
		Type: &csi.PluginCapability_VolumeExpansion_{VolumeExpansion: &csi.PluginCapability_VolumeExpansion{
			Type: csi.PluginCapability_VolumeExpansion_ONLINE,
		}},
	}}
	for _, t := range []csi.PluginCapability_Service_Type{
		csi.PluginCapability_Service_CONTROLLER_SERVICE,
		csi.PluginCapability_Service_VOLUME_ACCESSIBILITY_CONSTRAINTS,
	} {
		caps = append(caps, &csi.PluginCapability{
			Type: &csi.PluginCapability_Service_{Service: &csi.PluginCapability_Service{Type: t}},
		})
	}
	return &csi.GetPluginCapabilitiesResponse{Capabilities: caps}, nil
}

// Probe answers ready when the plugin's Ready function returns nil. A plugin that is not ready yet
// answers ready=false; the error's text is returned as FailedPrecondition so that a liveness
// probe (csi-sanity, the node plugin's own probe) sees why.
func (i *Identity) Probe(ctx context.Context, _ *csi.ProbeRequest) (*csi.ProbeResponse, error) {
	if i.Ready == nil {
		return &csi.ProbeResponse{Ready: wrapperspb.Bool(true)}, nil
	}
	if err := i.Ready(ctx); err != nil {
		return nil, status.Errorf(codes.FailedPrecondition, "%s is not ready: %v", Name, err)
	}
	return &csi.ProbeResponse{Ready: wrapperspb.Bool(true)}, nil
}
