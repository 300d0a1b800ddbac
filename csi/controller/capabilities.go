package controller

import (
	"fmt"

	"github.com/container-storage-interface/spec/lib/go/csi"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/cobaltstore/cobalt/api/v1alpha1"
)

// capabilityMode is the Volume mode a capability asks for, or "" when it names no access type.
func capabilityMode(c *csi.VolumeCapability) v1alpha1.VolumeMode {
	switch {
	case c.GetBlock() != nil:
		return v1alpha1.VolumeModeBlock
	case c.GetMount() != nil:
		return v1alpha1.VolumeModeFilesystem
	}
	return ""
}

// unsupportedCapability says why c cannot be served, or "" when it can.
func unsupportedCapability(c *csi.VolumeCapability) string {
	if capabilityMode(c) == "" {
		return "a volume capability has no access type: it must ask for mount or block"
	}
	// Every single-node mode is served: a volume lives on one node's Store and is reachable only
	// there.
	switch mode := c.GetAccessMode().GetMode(); mode {
	case csi.VolumeCapability_AccessMode_UNKNOWN:
		return "a volume capability has no access mode"
	case csi.VolumeCapability_AccessMode_SINGLE_NODE_WRITER,
		csi.VolumeCapability_AccessMode_SINGLE_NODE_READER_ONLY,
		csi.VolumeCapability_AccessMode_SINGLE_NODE_SINGLE_WRITER,
		csi.VolumeCapability_AccessMode_SINGLE_NODE_MULTI_WRITER:
		return ""
	case csi.VolumeCapability_AccessMode_MULTI_NODE_READER_ONLY,
		csi.VolumeCapability_AccessMode_MULTI_NODE_SINGLE_WRITER,
		csi.VolumeCapability_AccessMode_MULTI_NODE_MULTI_WRITER:
		return fmt.Sprintf("access mode %s is not supported: a Cobalt volume lives on one node (use ReadWriteOnce or ReadWriteOncePod)", mode)
	default:
		return fmt.Sprintf("access mode %s is not supported", mode)
	}
}

// volumeModeFor validates the capabilities of a new volume and returns the mode they ask for.
// There must be at least one, each supported, and all of one access type (mount or block): one
// volume is either a file system or a raw block device. Errors are InvalidArgument statuses.
func volumeModeFor(caps []*csi.VolumeCapability) (v1alpha1.VolumeMode, error) {
	if len(caps) == 0 {
		return "", status.Error(codes.InvalidArgument, "volume_capabilities are required")
	}
	var mode v1alpha1.VolumeMode
	for _, c := range caps {
		if why := unsupportedCapability(c); why != "" {
			return "", status.Error(codes.InvalidArgument, why)
		}
		m := capabilityMode(c)
		if mode != "" && m != mode {
			return "", status.Error(codes.InvalidArgument,
				"volume_capabilities ask for both mount and block access: a volume is either a file system or a raw block device")
		}
		mode = m
	}
	return mode, nil
}

// volumeMode is a Volume's mode, with the API's default for an empty one.
func volumeMode(vol *v1alpha1.Volume) v1alpha1.VolumeMode {
	if vol.Spec.VolumeMode == "" {
		return v1alpha1.VolumeModeFilesystem
	}
	return vol.Spec.VolumeMode
}
