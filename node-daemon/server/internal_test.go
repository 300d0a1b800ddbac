package server

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/go-logr/logr/testr"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/cobaltstore/cobalt/node-daemon/objstore"
	"github.com/cobaltstore/cobalt/node-daemon/volume"
)

func TestInFlightGuard(t *testing.T) {
	f := newInFlight()
	release, err := f.acquire("s/v", "create")
	if err != nil {
		t.Fatal(err)
	}
	_, err = f.acquire("s/v", "delete")
	if status.Code(toStatus(err)) != codes.Aborted {
		t.Fatalf("second acquire = %v, want Aborted", err)
	}
	other, err := f.acquire("s/w", "delete")
	if err != nil {
		t.Fatalf("other volume blocked: %v", err)
	}
	other()
	release()
	if r, err := f.acquire("s/v", "resize"); err != nil {
		t.Fatalf("acquire after release: %v", err)
	} else {
		r()
	}
}

func TestStatusMapping(t *testing.T) {
	tests := []struct {
		err  error
		want codes.Code
	}{
		{fmt.Errorf("x: %w", objstore.ErrNotFound), codes.NotFound},
		{fmt.Errorf("x: %w", objstore.ErrExists), codes.AlreadyExists},
		{fmt.Errorf("x: %w", volume.ErrConflict), codes.AlreadyExists},
		{fmt.Errorf("x: %w", objstore.ErrNotEmpty), codes.FailedPrecondition},
		{fmt.Errorf("x: %w", volume.ErrShrink), codes.FailedPrecondition},
		{fmt.Errorf("x: %w", objstore.ErrNoSpace), codes.ResourceExhausted},
		{fmt.Errorf("x: %w", objstore.ErrInvalid), codes.InvalidArgument},
		{fmt.Errorf("x: %w", objstore.ErrCorrupt), codes.DataLoss},
		{fmt.Errorf("x: %w", objstore.ErrClosed), codes.Unavailable},
		{fmt.Errorf("x: %w", context.Canceled), codes.Canceled},
		{fmt.Errorf("x: %w", context.DeadlineExceeded), codes.DeadlineExceeded},
		{errors.New("disk on fire"), codes.Internal},
		{status.Error(codes.PermissionDenied, "kept"), codes.PermissionDenied},
	}
	for _, tt := range tests {
		got := toStatus(tt.err)
		if status.Code(got) != tt.want {
			t.Errorf("toStatus(%v) = %v, want %v", tt.err, got, tt.want)
		}
	}
	if toStatus(nil) != nil {
		t.Error("toStatus(nil) != nil")
	}
}

func TestPanicsBecomeInternal(t *testing.T) {
	s := &Server{log: testr.New(t)}
	_, err := s.recoverUnary(context.Background(), nil, &grpc.UnaryServerInfo{FullMethod: "/x/Y"},
		func(context.Context, any) (any, error) { panic("boom") })
	if status.Code(err) != codes.Internal {
		t.Fatalf("unary panic = %v, want Internal", err)
	}
	err = s.recoverStream(nil, nil, &grpc.StreamServerInfo{FullMethod: "/x/Z"}, func(any, grpc.ServerStream) error { panic("boom") })
	if status.Code(err) != codes.Internal {
		t.Fatalf("stream panic = %v, want Internal", err)
	}
}
