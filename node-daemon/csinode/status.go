package csinode

import (
	"context"
	"errors"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// volumeStatus converts an error of Volumes.Backend to a status a user can act on.
func (s *Server) volumeStatus(err error, r *record) error {
	switch {
	case errors.Is(err, ErrStoreNotServed):
		return status.Errorf(codes.FailedPrecondition,
			"store %s of volume %s is not served by node %s: is its device still present? (%v)", r.StoreUUID, r.VolumeID, s.nodeName, err)
	case errors.Is(err, ErrVolumeNotFound):
		return status.Errorf(codes.NotFound, "volume %s (uid %s) does not exist on store %s: %v", r.VolumeID, r.VolumeUID, r.StoreUUID, err)
	}
	return internal(err, "volume %s", r.VolumeID)
}

// internal wraps an unexpected error; context errors keep their own codes.
func internal(err error, format string, args ...any) error {
	if _, ok := status.FromError(err); ok {
		return err
	}
	code := codes.Internal
	switch {
	case errors.Is(err, context.Canceled):
		code = codes.Canceled
	case errors.Is(err, context.DeadlineExceeded):
		code = codes.DeadlineExceeded
	}
	return status.Errorf(code, format+": %v", append(args, err)...)
}

// required returns an InvalidArgument status naming the missing fields of a request, or nil.
func required(method string, fields ...string) error {
	for i := 0; i+1 < len(fields); i += 2 {
		if fields[i+1] == "" {
			return status.Errorf(codes.InvalidArgument, "%s: %s is required", method, fields[i])
		}
	}
	return nil
}
