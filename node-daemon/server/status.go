package server

import (
	"context"
	"errors"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/cobaltstore/cobalt/node-daemon/objstore"
	"github.com/cobaltstore/cobalt/node-daemon/volume"
)

// toStatus converts an error of the store, volume or server layers to a gRPC status error.
func toStatus(err error) error {
	if err == nil {
		return nil
	}
	if _, ok := status.FromError(err); ok {
		return err
	}
	return status.Error(codeOf(err), err.Error())
}

func codeOf(err error) codes.Code {
	switch {
	case errors.Is(err, context.Canceled):
		return codes.Canceled
	case errors.Is(err, context.DeadlineExceeded):
		return codes.DeadlineExceeded
	case errors.Is(err, errInFlight):
		return codes.Aborted
	case errors.Is(err, volume.ErrShrink), errors.Is(err, objstore.ErrNotEmpty):
		return codes.FailedPrecondition
	case errors.Is(err, volume.ErrConflict), errors.Is(err, objstore.ErrExists):
		return codes.AlreadyExists
	case errors.Is(err, objstore.ErrNotFound):
		return codes.NotFound
	case errors.Is(err, objstore.ErrInvalid):
		return codes.InvalidArgument
	case errors.Is(err, objstore.ErrNoSpace):
		return codes.ResourceExhausted
	case errors.Is(err, objstore.ErrCorrupt):
		return codes.DataLoss
	case errors.Is(err, objstore.ErrClosed):
		return codes.Unavailable
	default:
		return codes.Internal
	}
}

// invalid returns an InvalidArgument status with msg.
func invalid(msg string) error { return status.Error(codes.InvalidArgument, msg) }
