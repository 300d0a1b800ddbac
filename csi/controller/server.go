package controller

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/container-storage-interface/spec/lib/go/csi"
	"github.com/go-logr/logr"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/cobaltstore/cobalt/api/v1alpha1"
)

// Defaults of Options.
const (
	DefaultPollInterval = time.Second
	DefaultMaxWait      = 2 * time.Minute
)

// Options configure a Server.
type Options struct {
	// Client creates, patches and deletes Volumes. In the operator it is the manager's client.
	Client client.Client
	// APIReader reads Volumes and Stores straight from the API server (the manager's
	// GetAPIReader), so that waits see every change as soon as it is made.
	APIReader client.Reader
	// Namespace holds the Volume objects: the operator's namespace.
	Namespace string
	// PollInterval is how often waits read the Volume again; zero means DefaultPollInterval.
	PollInterval time.Duration
	// MaxWait bounds every wait when the call's context has a later deadline or none (csi-sanity
	// and hand-made calls); zero means DefaultMaxWait.
	MaxWait time.Duration
	// Log receives what the plugin does to Volumes.
	Log logr.Logger
}

// Server is the CSI controller service. It is safe for concurrent use.
type Server struct {
	csi.UnimplementedControllerServer

	client       client.Client
	reader       client.Reader
	namespace    string
	pollInterval time.Duration
	maxWait      time.Duration
	log          logr.Logger
	inflight     inflight
}

// +kubebuilder:rbac:groups=storage.cobalt.io,resources=volumes,verbs=get;list;watch;create;delete;patch
// +kubebuilder:rbac:groups=storage.cobalt.io,resources=stores,verbs=get;list;watch
// +kubebuilder:rbac:groups=storage.cobalt.io,resources=snapshots,verbs=get;list;watch;create;delete

// New returns a controller server working on the Volumes of opts.Namespace.
func New(opts Options) (*Server, error) {
	switch {
	case opts.Client == nil:
		return nil, errors.New("CSI controller: Options.Client is required")
	case opts.APIReader == nil:
		return nil, errors.New("CSI controller: Options.APIReader is required")
	case opts.Namespace == "":
		return nil, errors.New("CSI controller: Options.Namespace (where Volumes live) is required")
	case opts.PollInterval < 0 || opts.MaxWait < 0:
		return nil, fmt.Errorf("CSI controller: PollInterval (%s) and MaxWait (%s) cannot be negative", opts.PollInterval, opts.MaxWait)
	}
	s := &Server{
		client: opts.Client, reader: opts.APIReader, namespace: opts.Namespace,
		pollInterval: opts.PollInterval, maxWait: opts.MaxWait, log: opts.Log,
	}
	if s.pollInterval == 0 {
		s.pollInterval = DefaultPollInterval
	}
	if s.maxWait == 0 {
		s.maxWait = DefaultMaxWait
	}
	return s, nil
}

// Ready is the controller plugin's readiness (driver.Identity.Ready): nil when the API server
// answers a cheap list of Volumes.
func (s *Server) Ready(ctx context.Context) error {
	var list v1alpha1.VolumeList
	if err := s.reader.List(ctx, &list, client.InNamespace(s.namespace), client.Limit(1)); err != nil {
		return fmt.Errorf("listing Volumes in namespace %s: %w", s.namespace, err)
	}
	return nil
}

// ControllerGetCapabilities returns the controller RPCs the plugin serves. PUBLISH_UNPUBLISH_VOLUME
// moves a volume's attachment and its fencing generation (publish.go, unpublish.go), and
// ListVolumes says where each volume is published (LIST_VOLUMES_PUBLISHED_NODES). Snapshots (CREATE_DELETE_SNAPSHOT,
// LIST_SNAPSHOTS, GET_SNAPSHOT) and clones (CLONE_VOLUME) live on their source's Store.
func (s *Server) ControllerGetCapabilities(context.Context, *csi.ControllerGetCapabilitiesRequest) (*csi.ControllerGetCapabilitiesResponse, error) {
	var caps []*csi.ControllerServiceCapability
	for _, t := range []csi.ControllerServiceCapability_RPC_Type{
		csi.ControllerServiceCapability_RPC_CREATE_DELETE_VOLUME,
		csi.ControllerServiceCapability_RPC_PUBLISH_UNPUBLISH_VOLUME,
		csi.ControllerServiceCapability_RPC_EXPAND_VOLUME,
		csi.ControllerServiceCapability_RPC_LIST_VOLUMES,
		csi.ControllerServiceCapability_RPC_LIST_VOLUMES_PUBLISHED_NODES,
		csi.ControllerServiceCapability_RPC_GET_CAPACITY,
		csi.ControllerServiceCapability_RPC_SINGLE_NODE_MULTI_WRITER,
		csi.ControllerServiceCapability_RPC_CREATE_DELETE_SNAPSHOT,
		csi.ControllerServiceCapability_RPC_LIST_SNAPSHOTS,
		csi.ControllerServiceCapability_RPC_GET_SNAPSHOT,
		csi.ControllerServiceCapability_RPC_CLONE_VOLUME,
	} {
		caps = append(caps, &csi.ControllerServiceCapability{
			Type: &csi.ControllerServiceCapability_Rpc{Rpc: &csi.ControllerServiceCapability_RPC{Type: t}},
		})
	}
	return &csi.ControllerGetCapabilitiesResponse{Capabilities: caps}, nil
}

// begin marks an operation on the Volume named name as in flight, or returns Aborted when one
// already is. Call the returned function when the operation ends.
func (s *Server) begin(name string) (func(), error) {
	return s.beginKey(name, "volume "+name)
}

// beginSnapshot is begin for the Snapshot named name. Its key cannot collide with a Volume's:
// "/" never occurs in an object name.
func (s *Server) beginSnapshot(name string) (func(), error) {
	return s.beginKey("snapshot/"+name, "snapshot "+name)
}

func (s *Server) beginKey(key, what string) (func(), error) {
	if !s.inflight.begin(key) {
		return nil, status.Errorf(codes.Aborted, "an operation on %s is already in progress", what)
	}
	return func() { s.inflight.end(key) }, nil
}

// readTimeout bounds one API read inside a wait.
const readTimeout = 30 * time.Second

// pollVolume reads the Volume named name every PollInterval until done says so, the Volume is
// gone, a read fails, or ctx ends (bounded by MaxWait); see poll.
func (s *Server) pollVolume(ctx context.Context, name string, gone error, done func(*v1alpha1.Volume) bool) (*v1alpha1.Volume, error) {
	return poll(ctx, s, "Volume "+s.namespace+"/"+name, func(ctx context.Context) (*v1alpha1.Volume, error) {
		return s.getVolume(ctx, name)
	}, gone, done)
}

// pollSnapshot is pollVolume for the Snapshot named name.
func (s *Server) pollSnapshot(ctx context.Context, name string, gone error, done func(*v1alpha1.Snapshot) bool) (*v1alpha1.Snapshot, error) {
	return poll(ctx, s, "Snapshot "+s.namespace+"/"+name, func(ctx context.Context) (*v1alpha1.Snapshot, error) {
		return s.getSnapshot(ctx, name)
	}, gone, done)
}

// poll reads an object with get (nil, nil when it does not exist) every PollInterval until done
// says so, the object is gone, a read fails, or ctx ends (bounded by MaxWait); it returns the
// last object read (nil once gone; on an error, the last one read before it, or nil). When the
// object is gone, gone is the result: nil ends the wait successfully (waiting for a deletion), a
// status error ends it with that error. A read that fails is Internal, unless ctx ended
// meanwhile: then the context's error, which waitError turns into DeadlineExceeded. what names
// the object in errors.
func poll[T any](ctx context.Context, s *Server, what string, get func(context.Context) (*T, error), gone error, done func(*T) bool) (*T, error) {
	ctx, cancel := context.WithTimeout(ctx, s.maxWait)
	defer cancel()
	t := time.NewTicker(s.pollInterval)
	defer t.Stop()
	var last *T
	for {
		// A read inside a wait is not cut short by the wait's deadline: client-go's rate limiter
		// refuses a request that might not finish before it, which would turn a timeout into an
		// Internal error. Each read gets readTimeout of its own; the deadline is checked between.
		rctx, rcancel := context.WithTimeout(context.WithoutCancel(ctx), readTimeout)
		obj, err := get(rctx)
		rcancel()
		switch {
		case err != nil && ctx.Err() != nil:
			return last, ctx.Err()
		case err != nil:
			return last, internal(err, "read "+what)
		case obj == nil:
			return nil, gone
		case done(obj):
			return obj, nil
		}
		last = obj
		select {
		case <-ctx.Done():
			return last, ctx.Err()
		case <-t.C:
		}
	}
}

// waitError is the status of a wait that ended with err: DeadlineExceeded (or Canceled) saying
// what the plugin waited for, so the sidecar retries; Internal for other errors.
func waitError(err error, waitedFor string) error {
	switch {
	case errors.Is(err, context.DeadlineExceeded):
		return status.Errorf(codes.DeadlineExceeded, "timed out waiting for %s; the call will be retried", waitedFor)
	case errors.Is(err, context.Canceled):
		return status.Errorf(codes.Canceled, "canceled while waiting for %s", waitedFor)
	case status.Code(err) != codes.Unknown:
		return err
	}
	return status.Errorf(codes.Internal, "waiting for %s: %v", waitedFor, err)
}

// internal turns an unexpected error (API server unreachable, ...) into an Internal status.
func internal(err error, doing string) error {
	return status.Errorf(codes.Internal, "%s: %v", doing, err)
}
