package controller

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/container-storage-interface/spec/lib/go/csi"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/cobaltstore/cobalt/api/v1alpha1"
)

// DeleteVolume deletes the Volume and returns once it is gone, that is once its node freed its
// space (the Volume's finalizer). A volume that does not exist is deleted already. A volume that
// another is still being cloned from is FailedPrecondition: the clone needs it until its node has
// created it. Snapshots of the volume do not hold it up: they keep their data without it.
func (s *Server) DeleteVolume(ctx context.Context, req *csi.DeleteVolumeRequest) (*csi.DeleteVolumeResponse, error) {
	id := req.GetVolumeId()
	if id == "" {
		return nil, status.Error(codes.InvalidArgument, "volume_id is required")
	}
	if !validVolumeID(id) {
		return &csi.DeleteVolumeResponse{}, nil
	}
	done, err := s.begin(id)
	if err != nil {
		return nil, err
	}
	defer done()

	err = deleteAndWait(ctx, s, "Volume", id, s.getVolume, readyState, s.waitGone,
		func(src *v1alpha1.VolumeSource) bool { return src.VolumeName == id })
	if err != nil {
		return nil, err
	}
	return &csi.DeleteVolumeResponse{}, nil
}

// deleteAndWait is DeleteVolume's and DeleteSnapshot's common part, for the kind ("Volume" or
// "Snapshot") named id: get reads it (nil when it does not exist, which is success), state says
// what its conditions say, waitGone waits until it no longer exists, and isSource tells a
// Volume being made from it. It refuses (FailedPrecondition) while a Volume made from it is not
// created yet, deletes it, and waits until it is gone: its finalizer runs once its node freed
// it. A timeout says what holds it up, from one last read past the call's end.
func deleteAndWait[T any, PT interface {
	*T
	client.Object
}](ctx context.Context, s *Server, kind, id string, get func(context.Context, string) (PT, error),
	state func(PT) string, waitGone func(context.Context, string) error, isSource func(*v1alpha1.VolumeSource) bool) error {
	lower := strings.ToLower(kind)
	obj, err := get(ctx, id)
	if err != nil {
		return internal(err, "look up the "+lower)
	}
	if obj == nil {
		return nil
	}
	key := obj.GetNamespace() + "/" + obj.GetName()
	if obj.GetDeletionTimestamp().IsZero() {
		if err := s.refuseIfRestoring(ctx, lower, id, isSource); err != nil {
			return err
		}
		if err := s.client.Delete(ctx, obj); err != nil && !apierrors.IsNotFound(err) {
			return internal(err, "delete "+kind+" "+key)
		}
		s.log.Info("deleted "+kind, lower, key)
	}
	if err := waitGone(ctx, id); err != nil {
		readCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		held := "it is gone"
		if o, _ := get(readCtx, id); o != nil {
			held = state(o)
		}
		return waitError(err, fmt.Sprintf("%s %s to be freed on its node (%s)", kind, key, held))
	}
	return nil
}

// waitGone polls until the Volume named name no longer exists.
func (s *Server) waitGone(ctx context.Context, name string) error {
	_, err := s.pollVolume(ctx, name, nil, func(*v1alpha1.Volume) bool { return false })
	return err
}
