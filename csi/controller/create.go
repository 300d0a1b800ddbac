package controller

import (
	"context"
	"errors"
	"fmt"

	"github.com/container-storage-interface/spec/lib/go/csi"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/cobaltstore/cobalt/api/v1alpha1"
	"github.com/cobaltstore/cobalt/csi/driver"
)

// CreateVolume creates the Volume for a request, or finds the one an earlier attempt created,
// and waits until the operator has placed it and its node has created it. A Volume that no Store
// can hold is deleted and reported as ResourceExhausted with the operator's reason. A request
// with a volume_content_source makes a restore or clone (content_source.go): it lives on its
// source's Store, and is as large as its source when the request names no size.
func (s *Server) CreateVolume(ctx context.Context, req *csi.CreateVolumeRequest) (*csi.CreateVolumeResponse, error) {
	want, err := volumeForRequest(req, s.namespace)
	if err != nil {
		return nil, err
	}
	done, err := s.begin(want.Name)
	if err != nil {
		return nil, err
	}
	defer done()

	var prepare func(*v1alpha1.Volume) error
	if want.Spec.Source != nil {
		deviceClass := v1alpha1.DeviceClass(req.GetParameters()[ParamDeviceClass])
		prepare = func(v *v1alpha1.Volume) error { return s.applySource(ctx, req, v, deviceClass) }
	}
	vol, err := s.ensureVolume(ctx, req, want, prepare)
	if err != nil {
		return nil, err
	}
	vol, err = s.waitPlaced(ctx, vol)
	if err != nil {
		return nil, err
	}
	if isReplicationUnavailable(vol) {
		return nil, s.abandonUnplaced(ctx, vol, codes.FailedPrecondition)
	}
	if isUnschedulable(vol) {
		return nil, s.abandonUnplaced(ctx, vol, codes.ResourceExhausted)
	}
	if isSourceTooLarge(vol) {
		return nil, s.abandonUnplaced(ctx, vol, codes.OutOfRange)
	}
	store := &v1alpha1.Store{}
	if err := s.reader.Get(ctx, client.ObjectKey{Name: vol.Status.Placement.Store}, store); err != nil {
		return nil, internal(err, fmt.Sprintf("get Store %s of Volume %s/%s", vol.Status.Placement.Store, vol.Namespace, vol.Name))
	}
	return &csi.CreateVolumeResponse{Volume: s.csiVolume(vol, store)}, nil
}

// volumeForRequest validates a CreateVolume request and returns the Volume it asks for. Errors
// are gRPC statuses the CO can act on (InvalidArgument, OutOfRange). A Volume with a source is
// sized and placed by applySource before it is created.
func volumeForRequest(req *csi.CreateVolumeRequest, namespace string) (*v1alpha1.Volume, error) {
	if req.GetName() == "" {
		return nil, status.Error(codes.InvalidArgument, "name is required")
	}
	source, err := requestedSource(req.GetVolumeContentSource())
	if err != nil {
		return nil, err
	}
	mode, err := volumeModeFor(req.GetVolumeCapabilities())
	if err != nil {
		return nil, err
	}
	size, err := VolumeSize(req.GetCapacityRange())
	if err != nil {
		return nil, err
	}
	if size, err = FileSystemMinimum(size, req.GetCapacityRange(), req.GetVolumeCapabilities()); err != nil {
		return nil, err
	}
	params, err := parseParameters(req.GetParameters())
	if err != nil {
		return nil, err
	}
	if err := refuseReplicatedSource(req); err != nil {
		return nil, err
	}
	nodes, err := topologyNodes(req.GetAccessibilityRequirements())
	if err != nil {
		return nil, err
	}
	vol := &v1alpha1.Volume{
		ObjectMeta: metav1.ObjectMeta{
			Namespace:   namespace,
			Name:        VolumeName(req.GetName()),
			Labels:      params.Labels,
			Annotations: params.Annotations,
		},
		Spec: v1alpha1.VolumeSpec{
			Size:          *resource.NewQuantity(size, resource.BinarySI),
			VolumeMode:    mode,
			Replicas:      1,
			StoreSelector: storeSelector(params.DeviceClass, nodes),
			Source:        source,
		},
	}
	vol.Labels[v1alpha1.LabelCSIDriver] = driver.Name
	vol.Annotations[v1alpha1.AnnotationCSIName] = req.GetName()
	applyReplicas(&vol.Spec, params)
	return vol, nil
}

// ensureVolume creates want, after prepare (when not nil) has adjusted it, or returns the Volume
// of that name when it exists and fits the request. An unplaced existing Volume gets want's
// storeSelector: the Pod may have been scheduled to another node since the earlier attempt; not
// one with a source, which follows its source.
func (s *Server) ensureVolume(ctx context.Context, req *csi.CreateVolumeRequest, want *v1alpha1.Volume, prepare func(*v1alpha1.Volume) error) (*v1alpha1.Volume, error) {
	key := want.Namespace + "/" + want.Name
	existing, err := s.getVolume(ctx, want.Name)
	if err != nil {
		return nil, internal(err, "look for an existing Volume")
	}
	if existing == nil {
		if prepare != nil {
			if err := prepare(want); err != nil {
				return nil, err
			}
		}
		err := s.client.Create(ctx, want)
		switch {
		case err == nil:
			s.log.Info("created Volume", "volume", key, "size", want.Spec.Size.String(), "mode", want.Spec.VolumeMode, "csiName", req.GetName())
			return want, nil
		case apierrors.IsInvalid(err):
			return nil, status.Errorf(codes.InvalidArgument, "the API server refused Volume %s: %v", key, err)
		case !apierrors.IsAlreadyExists(err):
			return nil, internal(err, "create Volume "+key)
		}
		// Another replica of the plugin created it meanwhile.
		if existing, err = s.getVolume(ctx, want.Name); err != nil || existing == nil {
			return nil, status.Errorf(codes.Aborted, "Volume %s was created and deleted concurrently; retry", key)
		}
	}
	if err := checkExisting(existing, req); err != nil {
		return nil, err
	}
	if existing.Spec.StoreName == "" && existing.Spec.Source == nil && !apiequality.Semantic.DeepEqual(existing.Spec.StoreSelector, want.Spec.StoreSelector) {
		cp := existing.DeepCopy()
		cp.Spec.StoreSelector = want.Spec.StoreSelector
		if err := s.client.Patch(ctx, cp, client.MergeFromWithOptions(existing, client.MergeFromWithOptimisticLock{})); err != nil {
			if apierrors.IsConflict(err) {
				return nil, status.Errorf(codes.Aborted, "Volume %s changed while its storeSelector was updated; retry", key)
			}
			return nil, internal(err, "update the storeSelector of Volume "+key)
		}
		s.log.Info("updated the storeSelector of an unplaced Volume", "volume", key)
		return cp, nil
	}
	return existing, nil
}

// checkExisting refuses an existing Volume that a request cannot be answered with: one made for
// another request name (or not through CSI), one being deleted, or one of another mode, of
// another source or of a size outside the request's range.
func checkExisting(vol *v1alpha1.Volume, req *csi.CreateVolumeRequest) error {
	key := vol.Namespace + "/" + vol.Name
	if got := vol.Annotations[v1alpha1.AnnotationCSIName]; got != req.GetName() {
		if got == "" {
			return status.Errorf(codes.AlreadyExists, "Volume %s exists and was not created through CSI; it is not handed out for request %q", key, req.GetName())
		}
		return status.Errorf(codes.AlreadyExists, "Volume %s belongs to CSI request %q, not %q: their names map to the same Volume; choose another name", key, got, req.GetName())
	}
	if !vol.DeletionTimestamp.IsZero() {
		return status.Errorf(codes.Aborted, "Volume %s from an earlier attempt is being deleted; retry", key)
	}
	if want, _ := volumeModeFor(req.GetVolumeCapabilities()); want != volumeMode(vol) {
		return status.Errorf(codes.AlreadyExists, "Volume %s exists with volume mode %s, the request asks for %s", key, volumeMode(vol), want)
	}
	if want, _ := requestedSource(req.GetVolumeContentSource()); !apiequality.Semantic.DeepEqual(want, vol.Spec.Source) {
		return status.Errorf(codes.AlreadyExists, "Volume %s exists %s, the request asks for %s", key, sourcePhrase(vol.Spec.Source), sourcePhrase(want))
	}
	if size := vol.Spec.Size.Value(); !sizeInRange(size, req.GetCapacityRange()) {
		return status.Errorf(codes.AlreadyExists, "Volume %s exists with size %s, outside the requested range (required %d, limit %d bytes)",
			key, vol.Spec.Size.String(), req.GetCapacityRange().GetRequiredBytes(), req.GetCapacityRange().GetLimitBytes())
	}
	return checkExistingReplicas(vol, req)
}

// sourcePhrase says what a Volume is made from, for messages.
func sourcePhrase(src *v1alpha1.VolumeSource) string {
	if src == nil {
		return "empty (no content source)"
	}
	return "made from " + describeSource(src)
}

// waitPlaced polls vol until its node created it, or the operator found no Store for it, or
// found its source too large for it.
func (s *Server) waitPlaced(ctx context.Context, vol *v1alpha1.Volume) (*v1alpha1.Volume, error) {
	key := vol.Namespace + "/" + vol.Name
	gone := status.Errorf(codes.Aborted, "Volume %s was deleted while waiting for it to be created; retry", key)
	last, err := s.pollVolume(ctx, vol.Name, gone, func(v *v1alpha1.Volume) bool {
		return isProvisioned(v) || isUnschedulable(v) || isSourceTooLarge(v) || isReplicationUnavailable(v)
	})
	if err != nil {
		if last == nil {
			last = vol
		}
		return nil, waitError(err, fmt.Sprintf("Volume %s to be created on a Store (%s)", key, readyState(last)))
	}
	return last, nil
}

// abandonUnplaced deletes a Volume the operator could not place (or whose source is too large for
// it) and returns the status to answer with: code, with the operator's reason. The delete is
// conditional on the Volume being the one read, so a Volume placed or created in the meantime is
// kept (and the call is Aborted, to be retried).
func (s *Server) abandonUnplaced(ctx context.Context, vol *v1alpha1.Volume, code codes.Code) error {
	key := vol.Namespace + "/" + vol.Name
	c := readyCondition(vol)
	uid, rv := vol.UID, vol.ResourceVersion
	err := s.client.Delete(ctx, vol, client.Preconditions{UID: &uid, ResourceVersion: &rv})
	switch {
	case apierrors.IsConflict(err):
		return status.Errorf(codes.Aborted, "Volume %s changed while being deleted as impossible to create; retry", key)
	case err != nil && !apierrors.IsNotFound(err):
		return internal(err, "delete uncreated Volume "+key)
	}
	s.log.Info("deleted a Volume that could not be created", "volume", key, "reason", c.Message)
	// Wait until it is gone (its finalizer is removed at once: there is nothing to free), so that
	// the next attempt creates it afresh instead of finding it being deleted.
	if err := s.waitGone(ctx, vol.Name); err != nil && !errors.Is(err, context.DeadlineExceeded) && !errors.Is(err, context.Canceled) {
		s.log.Error(err, "waiting for an unplaced Volume to be gone", "volume", key)
	}
	return status.Errorf(code, "%s (Volume %s was not created)", c.Message, key)
}
