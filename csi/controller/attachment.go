package controller

import (
	"context"
	"fmt"
	"strconv"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/cobaltstore/cobalt/api/v1alpha1"
	"github.com/cobaltstore/cobalt/csi/driver"
)

// A Volume's attachment (status.attachment) is written only here, by ControllerPublishVolume and
// ControllerUnpublishVolume:
//   - Publishing to a node records {node, generation}; the generation grows by one each time the
//     node changes (1 for the first attachment) and stays when the same node publishes again, so
//     a retried publish answers the same generation. The publish context carries it to the node
//     (driver.PublishContextGeneration), whose replicated data path fences older generations.
//   - Unpublishing clears the node and keeps the generation: the next attachment, wherever it
//     is, gets a newer one than any node that ever held the volume.
//   - While attached to one node, a publish to another is FailedPrecondition: every access mode
//     Cobalt serves is single-node, and moving the attachment must go through an unpublish.
//   - Every write is a status patch with an optimistic lock (the resourceVersion read): a write
//     that raced another writer (the operator's reconcilers, a concurrent call of another
//     plugin instance) is never merged over it, but read again and decided afresh.

// attachmentRetries bounds how often a publish or unpublish reads the Volume again after its
// status patch met a Conflict; after that the call is Aborted and the sidecar retries it.
const attachmentRetries = 5

// publishContext is what ControllerPublishVolume returns for an attachment.
func publishContext(att *v1alpha1.VolumeAttachmentStatus) map[string]string {
	return map[string]string{driver.PublishContextGeneration: strconv.FormatInt(att.Generation, 10)}
}

// nextAttachment is the attachment of vol to node: the current one when vol is attached there
// already (changed false), a new one with the next generation when vol is attached nowhere, and
// a FailedPrecondition status when it is attached to another node.
func nextAttachment(vol *v1alpha1.Volume, node string) (att *v1alpha1.VolumeAttachmentStatus, changed bool, err error) {
	cur := vol.Status.Attachment
	switch {
	case cur == nil:
		return &v1alpha1.VolumeAttachmentStatus{Node: node, Generation: 1}, true, nil
	case cur.Node == node:
		return cur, false, nil
	case cur.Node != "":
		return nil, false, status.Errorf(codes.FailedPrecondition,
			"volume %s is attached to node %s (generation %d) and can be attached to one node at a time: it must be detached from %s (its Pods there gone, the VolumeAttachment deleted) before node %s can attach it",
			vol.Name, cur.Node, cur.Generation, cur.Node, node)
	}
	return &v1alpha1.VolumeAttachmentStatus{Node: node, Generation: cur.Generation + 1}, true, nil
}

// detachedAttachment is vol's attachment once detached from node ("" means from any node): the
// node cleared, the generation kept. changed is false when vol is not attached there.
func detachedAttachment(vol *v1alpha1.Volume, node string) (att *v1alpha1.VolumeAttachmentStatus, changed bool) {
	cur := vol.Status.Attachment
	if cur == nil || cur.Node == "" || (node != "" && cur.Node != node) {
		return cur, false
	}
	return &v1alpha1.VolumeAttachmentStatus{Generation: cur.Generation}, true
}

// updateAttachment reads the Volume named name, lets decide compute its attachment, and when
// decide says it changed, patches status.attachment under an optimistic lock. A Conflict reads
// the Volume again and decides afresh, up to attachmentRetries times, then answers Aborted. It
// returns the attachment decided, or nil, nil when the Volume does not exist. Errors of decide
// are returned as they are.
func (s *Server) updateAttachment(ctx context.Context, name string,
	decide func(*v1alpha1.Volume) (*v1alpha1.VolumeAttachmentStatus, bool, error)) (*v1alpha1.VolumeAttachmentStatus, error) {
	for range attachmentRetries {
		vol, err := s.getVolume(ctx, name)
		if err != nil {
			return nil, internal(err, "look up the volume")
		}
		if vol == nil {
			return nil, nil
		}
		att, changed, err := decide(vol)
		if err != nil || !changed {
			return att, err
		}
		orig := vol.DeepCopy()
		vol.Status.Attachment = att
		err = s.client.Status().Patch(ctx, vol, client.MergeFromWithOptions(orig, client.MergeFromWithOptimisticLock{}))
		switch {
		case err == nil:
			s.log.Info("Volume attachment changed", "volume", vol.Namespace+"/"+vol.Name,
				"node", att.Node, "generation", att.Generation)
			return att, nil
		case apierrors.IsNotFound(err):
			return nil, nil
		case !apierrors.IsConflict(err):
			return nil, internal(err, fmt.Sprintf("record the attachment of Volume %s/%s", vol.Namespace, vol.Name))
		}
	}
	return nil, status.Errorf(codes.Aborted,
		"the attachment of volume %s changed %d times while being recorded; the call will be retried", name, attachmentRetries)
}

// nodeExists reports whether the Kubernetes Node named name exists (the CSI node ID is the node's
// name, as the node plugin's NodeGetInfo answers).
func (s *Server) nodeExists(ctx context.Context, name string) (bool, error) {
	err := s.reader.Get(ctx, client.ObjectKey{Name: name}, &corev1.Node{})
	if apierrors.IsNotFound(err) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("get Node %s: %w", name, err)
	}
	return true, nil
}
