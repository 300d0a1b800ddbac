package controller

import (
	"context"
	"fmt"
	"time"

	"github.com/container-storage-interface/spec/lib/go/csi"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	apierrors "k8s.io/apimachinery/pkg/api/errors"

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

	vol, err := s.getVolume(ctx, id)
	if err != nil {
		return nil, internal(err, "look up the volume")
	}
	if vol == nil {
		return &csi.DeleteVolumeResponse{}, nil
	}
	key := vol.Namespace + "/" + vol.Name
	if vol.DeletionTimestamp.IsZero() {
		if err := s.refuseIfRestoring(ctx, "volume", id, func(src *v1alpha1.VolumeSource) bool { return src.VolumeName == id }); err != nil {
			return nil, err
		}
		if err := s.client.Delete(ctx, vol); err != nil && !apierrors.IsNotFound(err) {
			return nil, internal(err, "delete Volume "+key)
		}
		s.log.Info("deleted Volume", "volume", key)
	}
	if err := s.waitGone(ctx, id); err != nil {
		// One last read, past the call's end, to say what holds the Volume up.
		readCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		state := "it is gone"
		if v, _ := s.getVolume(readCtx, id); v != nil {
			state = readyState(v)
		}
		return nil, waitError(err, fmt.Sprintf("Volume %s to be freed on its node (%s)", key, state))
	}
	return &csi.DeleteVolumeResponse{}, nil
}

// waitGone polls until the Volume named name no longer exists.
func (s *Server) waitGone(ctx context.Context, name string) error {
	_, err := s.pollVolume(ctx, name, nil, func(*v1alpha1.Volume) bool { return false })
	return err
}
