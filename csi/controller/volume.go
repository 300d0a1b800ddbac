package controller

import (
	"context"
	"fmt"
	"strconv"

	"github.com/container-storage-interface/spec/lib/go/csi"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/cobaltstore/cobalt/api/v1alpha1"
	"github.com/cobaltstore/cobalt/csi/driver"
)

// validVolumeID reports whether id can name a Volume at all; a volume ID that cannot does not
// exist.
func validVolumeID(id string) bool {
	return id != "" && len(validation.IsDNS1123Subdomain(id)) == 0
}

// getVolume reads the Volume named name from the API server; nil, nil when there is none.
func (s *Server) getVolume(ctx context.Context, name string) (*v1alpha1.Volume, error) {
	vol := &v1alpha1.Volume{}
	err := s.reader.Get(ctx, client.ObjectKey{Namespace: s.namespace, Name: name}, vol)
	if apierrors.IsNotFound(err) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("get Volume %s/%s: %w", s.namespace, name, err)
	}
	return vol, nil
}

// readyCondition is the Volume's Ready condition when it is about its current spec, else nil.
func readyCondition(vol *v1alpha1.Volume) *metav1.Condition {
	c := meta.FindStatusCondition(vol.Status.Conditions, v1alpha1.ConditionReady)
	if c == nil || c.ObservedGeneration != vol.Generation {
		return nil
	}
	return c
}

// isProvisioned reports whether the node created vol: Ready, placed and allocated.
func isProvisioned(vol *v1alpha1.Volume) bool {
	c := readyCondition(vol)
	return c != nil && c.Status == metav1.ConditionTrue && vol.Status.Placement != nil && vol.Status.AllocatedSize != nil
}

// isUnschedulable reports whether the operator found no Store for vol's current spec.
func isUnschedulable(vol *v1alpha1.Volume) bool {
	c := readyCondition(vol)
	return c != nil && c.Status == metav1.ConditionFalse && c.Reason == v1alpha1.ReasonUnschedulable && vol.Spec.StoreName == ""
}

// isSourceTooLarge reports whether the operator refused to create vol's current spec because its
// source (spec.source) is larger than it: its node has not created it, so it holds no data.
func isSourceTooLarge(vol *v1alpha1.Volume) bool {
	c := readyCondition(vol)
	return c != nil && c.Status == metav1.ConditionFalse && c.Reason == v1alpha1.ReasonSourceTooLarge && vol.Status.AllocatedSize == nil
}

// readyState describes vol's Ready condition for error messages.
func readyState(vol *v1alpha1.Volume) string {
	c := meta.FindStatusCondition(vol.Status.Conditions, v1alpha1.ConditionReady)
	if c == nil {
		return "the operator has not reported on it yet"
	}
	return fmt.Sprintf("Ready=%s, %s: %s", c.Status, c.Reason, c.Message)
}

// capacityBytes is what a Volume offers: its allocation once the node created it, else its
// requested size.
func capacityBytes(vol *v1alpha1.Volume) int64 {
	if vol.Status.AllocatedSize != nil {
		return vol.Status.AllocatedSize.Value()
	}
	return vol.Spec.Size.Value()
}

// csiVolume describes a Volume to the CO, with its content source when it is a restore or clone.
// store is the Store it is placed on (for the volume context's Store UUID), nil when not known.
// A replicated Volume's context names its number of copies (driver.ContextReplicas), which tells
// the node plugin to serve it through the replicated data path; a single-copy one's has no such key.
func (s *Server) csiVolume(vol *v1alpha1.Volume, store *v1alpha1.Store) *csi.Volume {
	v := &csi.Volume{
		VolumeId:      vol.Name,
		CapacityBytes: capacityBytes(vol),
		VolumeContext: map[string]string{
			driver.ContextVolumeUID: vol.NodeVolumeID(),
			driver.ContextVolume:    vol.Namespace + "/" + vol.Name,
		},
		ContentSource: csiContentSource(vol),
	}
	if store != nil {
		v.VolumeContext[driver.ContextStoreUUID] = store.Status.UUID
	}
	if vol.Spec.Replicas > 1 {
		v.VolumeContext[driver.ContextReplicas] = strconv.Itoa(int(vol.Spec.Replicas))
	}
	v.AccessibleTopology = accessibleTopology(vol)
	return v
}
