package controller

import (
	"context"

	"github.com/container-storage-interface/spec/lib/go/csi"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"k8s.io/apimachinery/pkg/util/validation"

	"github.com/cobaltstore/cobalt/api/v1alpha1"
)

// +kubebuilder:rbac:groups="",resources=nodes,verbs=get
// +kubebuilder:rbac:groups=storage.cobalt.io,resources=volumes/status,verbs=patch

// ControllerPublishVolume attaches the volume to the node (node_id is the node's name) by
// recording status.attachment on the Volume (attachment.go), and answers the attachment's
// generation in the publish context (driver.PublishContextGeneration).
//
// A single-copy volume is reachable only from the node of its Store: publishing it elsewhere is
// FailedPrecondition, and on its node the call only records the attachment. A replicated volume
// may be attached to any node (its data path reaches every copy over the network), one node at a
// time: a publish to another node while it is attached is FailedPrecondition until it is
// unpublished there, and each new node gets a newer generation, which fences the previous one.
// A repeated publish to the same node is idempotent and answers the same generation.
func (s *Server) ControllerPublishVolume(ctx context.Context, req *csi.ControllerPublishVolumeRequest) (*csi.ControllerPublishVolumeResponse, error) {
	id, node := req.GetVolumeId(), req.GetNodeId()
	switch {
	case id == "":
		return nil, status.Error(codes.InvalidArgument, "volume_id is required")
	case node == "":
		return nil, status.Error(codes.InvalidArgument, "node_id is required")
	case req.GetVolumeCapability() == nil:
		return nil, status.Error(codes.InvalidArgument, "volume_capability is required")
	}
	if why := unsupportedCapability(req.GetVolumeCapability()); why != "" {
		return nil, status.Error(codes.InvalidArgument, why)
	}
	if !validVolumeID(id) {
		return nil, status.Errorf(codes.NotFound, "volume %q does not exist", id)
	}
	done, err := s.begin(id)
	if err != nil {
		return nil, err
	}
	defer done()

	if len(validation.IsDNS1123Subdomain(node)) != 0 {
		return nil, status.Errorf(codes.NotFound, "node %q does not exist: a node ID is the name of a Kubernetes Node", node)
	}
	exists, err := s.nodeExists(ctx, node)
	if err != nil {
		return nil, internal(err, "look up the node")
	}
	if !exists {
		return nil, status.Errorf(codes.NotFound, "node %q does not exist: there is no Kubernetes Node of that name", node)
	}
	att, err := s.updateAttachment(ctx, id, func(vol *v1alpha1.Volume) (*v1alpha1.VolumeAttachmentStatus, bool, error) {
		if err := checkPublishable(vol, req.GetVolumeCapability(), node); err != nil {
			return nil, false, err
		}
		return nextAttachment(vol, node)
	})
	if err != nil {
		return nil, err
	}
	if att == nil {
		return nil, status.Errorf(codes.NotFound, "volume %q does not exist in namespace %s", id, s.namespace)
	}
	return &csi.ControllerPublishVolumeResponse{PublishContext: publishContext(att)}, nil
}

// checkPublishable refuses a publish of vol to node with capability c: FailedPrecondition while
// vol is being deleted, or when it has one copy and node does not hold it; InvalidArgument when
// c asks for another access type than vol's mode.
func checkPublishable(vol *v1alpha1.Volume, c *csi.VolumeCapability, node string) error {
	key := vol.Namespace + "/" + vol.Name
	if !vol.DeletionTimestamp.IsZero() {
		return status.Errorf(codes.FailedPrecondition, "Volume %s is being deleted", key)
	}
	if m := capabilityMode(c); m != volumeMode(vol) {
		return status.Errorf(codes.InvalidArgument, "volume %s is a %s volume; the capability asks for %s", vol.Name, volumeMode(vol), m)
	}
	if max(vol.Spec.Replicas, 1) > 1 {
		return nil
	}
	p := vol.Status.Placement
	switch {
	case p == nil || p.Node == "":
		return status.Errorf(codes.FailedPrecondition,
			"Volume %s is not placed on a Store yet (%s): it cannot be attached until its node created it", key, readyState(vol))
	case p.Node != node:
		return status.Errorf(codes.FailedPrecondition,
			"volume %s has one copy, on Store %s of node %s: node %s does not hold it and cannot attach it. Its Pods must run on %s (the PersistentVolume's node affinity says so); delete the Pod so the scheduler places it there, or use a StorageClass with replicas > 1 for volumes that follow their Pods",
			vol.Name, p.Store, p.Node, node, p.Node)
	}
	return nil
}
