package csinode

import (
	"github.com/container-storage-interface/spec/lib/go/csi"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// defaultFsType is the file system of a mount volume whose capability names none.
const defaultFsType = "ext4"

// fsTypes are the file systems the node plugin formats, mounts and grows.
var fsTypes = map[string]bool{"ext4": true, "xfs": true}

// capability is a validated volume capability.
type capability struct {
	accessType string // accessMount or accessBlock
	mode       csi.VolumeCapability_AccessMode_Mode
	fsType     string // accessMount only
	mountFlags []string
}

// readOnlyMode reports whether the access mode allows reading only.
func (c capability) readOnlyMode() bool {
	return c.mode == csi.VolumeCapability_AccessMode_SINGLE_NODE_READER_ONLY
}

// parseCapability validates a request's volume capability. Errors are InvalidArgument statuses.
func parseCapability(volumeID string, c *csi.VolumeCapability) (capability, error) {
	if c == nil {
		return capability{}, status.Errorf(codes.InvalidArgument, "volume_capability is required (volume %s)", volumeID)
	}
	var out capability
	switch mode := c.GetAccessMode().GetMode(); mode {
	case csi.VolumeCapability_AccessMode_SINGLE_NODE_WRITER,
		csi.VolumeCapability_AccessMode_SINGLE_NODE_READER_ONLY,
		csi.VolumeCapability_AccessMode_SINGLE_NODE_SINGLE_WRITER,
		csi.VolumeCapability_AccessMode_SINGLE_NODE_MULTI_WRITER:
		out.mode = mode
	case csi.VolumeCapability_AccessMode_UNKNOWN:
		return capability{}, status.Errorf(codes.InvalidArgument, "volume %s: volume_capability.access_mode is missing", volumeID)
	default:
		return capability{}, status.Errorf(codes.InvalidArgument,
			"volume %s: access mode %s is not supported: a Cobalt volume lives on one node (use ReadWriteOnce, ReadWriteOncePod or ReadOnlyMany on one node)", volumeID, mode)
	}
	switch {
	case c.GetBlock() != nil:
		out.accessType = accessBlock
	case c.GetMount() != nil:
		out.accessType = accessMount
		out.fsType = c.GetMount().GetFsType()
		if out.fsType == "" {
			out.fsType = defaultFsType
		}
		if !fsTypes[out.fsType] {
			return capability{}, status.Errorf(codes.InvalidArgument, "volume %s: file system %q is not supported: use ext4 (the default) or xfs", volumeID, out.fsType)
		}
		out.mountFlags = c.GetMount().GetMountFlags()
	default:
		return capability{}, status.Errorf(codes.InvalidArgument, "volume %s: volume_capability has neither mount nor block access", volumeID)
	}
	return out, nil
}
