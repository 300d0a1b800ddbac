package csinode

import (
	"context"
	"errors"
	"path/filepath"

	"github.com/container-storage-interface/spec/lib/go/csi"
	"github.com/go-logr/logr"
	mount "k8s.io/mount-utils"
	"k8s.io/utils/exec"

	"github.com/cobaltstore/cobalt/csi/driver"
	"github.com/cobaltstore/cobalt/node-daemon/frontend"
)

// Options configure a Server.
type Options struct {
	// NodeName is this node's name: the CSI node ID and the value of the topology key.
	NodeName string
	// Volumes finds volumes on the daemon's stores.
	Volumes Volumes
	// Replicated opens replicated volumes (volume context driver.ContextReplicas above 1); nil
	// means this node serves none: staging one fails with FailedPrecondition.
	Replicated ReplicatedVolumes
	// Frontend exposes volumes as block devices.
	Frontend frontend.Frontend
	// StateDir holds the stage records; it must survive restarts of the daemon's container (a
	// hostPath in production).
	StateDir string
	// Mounter mounts, formats and inspects devices; nil means the host's mount, blkid and mkfs
	// (mount-utils without systemd scopes).
	Mounter *mount.SafeFormatAndMount
	// Log receives what the server does.
	Log logr.Logger
}

// Server is the CSI node service. It is safe for concurrent use; calls on the same volume are
// serialized (a concurrent call gets Aborted).
type Server struct {
	csi.UnimplementedNodeServer

	nodeName   string
	volumes    Volumes
	replicated ReplicatedVolumes
	open       *openReplicas
	frontend   frontend.Frontend
	records    records
	mounter    *mount.SafeFormatAndMount
	resizer    *mount.ResizeFs
	log        logr.Logger
	inflight   *inflight
}

var _ csi.NodeServer = (*Server)(nil)

// New returns a Server for opts.
func New(opts Options) (*Server, error) {
	var errs []error
	if opts.NodeName == "" {
		errs = append(errs, errors.New("csinode: NodeName is required"))
	}
	if opts.Volumes == nil || opts.Frontend == nil {
		errs = append(errs, errors.New("csinode: Volumes and Frontend are required"))
	}
	if !filepath.IsAbs(opts.StateDir) {
		errs = append(errs, errors.New("csinode: StateDir must be an absolute path"))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	m := opts.Mounter
	if m == nil {
		m = mount.NewSafeFormatAndMount(mount.NewWithoutSystemd(""), exec.New())
	}
	return &Server{
		nodeName:   opts.NodeName,
		volumes:    opts.Volumes,
		replicated: opts.Replicated,
		open:       newOpenReplicas(),
		frontend:   opts.Frontend,
		records:    records{dir: opts.StateDir},
		mounter:    m,
		resizer:    mount.NewResizeFs(m.Exec),
		log:        opts.Log,
		inflight:   newInflight(),
	}, nil
}

// Ready is the node plugin's readiness for the Identity service's Probe: the daemon's stores
// are mounted and served.
func (s *Server) Ready(context.Context) error { return s.volumes.Ready() }

// NodeGetInfo returns the node's name as its ID and its topology segment.
func (s *Server) NodeGetInfo(context.Context, *csi.NodeGetInfoRequest) (*csi.NodeGetInfoResponse, error) {
	return &csi.NodeGetInfoResponse{
		NodeId:             s.nodeName,
		AccessibleTopology: &csi.Topology{Segments: map[string]string{driver.TopologyKeyNode: s.nodeName}},
	}, nil
}

// NodeGetCapabilities returns what the node service offers.
func (s *Server) NodeGetCapabilities(context.Context, *csi.NodeGetCapabilitiesRequest) (*csi.NodeGetCapabilitiesResponse, error) {
	var caps []*csi.NodeServiceCapability
	for _, t := range []csi.NodeServiceCapability_RPC_Type{
		csi.NodeServiceCapability_RPC_STAGE_UNSTAGE_VOLUME,
		csi.NodeServiceCapability_RPC_EXPAND_VOLUME,
		csi.NodeServiceCapability_RPC_GET_VOLUME_STATS,
		csi.NodeServiceCapability_RPC_GET_VOLUME_HEALTH,
		csi.NodeServiceCapability_RPC_SINGLE_NODE_MULTI_WRITER,
	} {
		caps = append(caps, &csi.NodeServiceCapability{
			Type: &csi.NodeServiceCapability_Rpc{Rpc: &csi.NodeServiceCapability_RPC{Type: t}},
		})
	}
	return &csi.NodeGetCapabilitiesResponse{Capabilities: caps}, nil
}
