package server

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"runtime"
	"runtime/debug"

	"github.com/go-logr/logr"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"

	nodepb "github.com/cobaltstore/cobalt/node-daemon/proto"
	"github.com/cobaltstore/cobalt/node-daemon/replica"
	"github.com/cobaltstore/cobalt/node-daemon/transport"
)

// Server is the node daemon's gRPC server: the four Cobalt services and grpc.health.v1 on one
// mTLS listener.
type Server struct {
	grpc *grpc.Server
	// local serves only grpc.health.v1, without TLS, for exec probes on a unix socket.
	local *grpc.Server
	// replicas is the node's fenced replica I/O, served by ReplicaService and used in-process by a
	// coordinator on this node.
	replicas *replica.Node
	health   *health.Server
	log      logr.Logger
}

// New builds a server for stores. tlsConfig must require and verify client certificates. extra
// options come after the server's own (for example grpc.ChainUnaryInterceptor for metrics).
func New(stores *Stores, tlsConfig *tls.Config, log logr.Logger, extra ...grpc.ServerOption) (*Server, error) {
	if stores == nil {
		return nil, errors.New("server: no store set")
	}
	if tlsConfig == nil || tlsConfig.ClientAuth != tls.RequireAndVerifyClientCert {
		return nil, errors.New("server: TLS configuration must require and verify client certificates")
	}
	s := &Server{health: health.NewServer(), log: log, replicas: replica.NewNode(stores)}
	opts := append([]grpc.ServerOption{
		// Mutual TLS whose records reach the socket in batches, not one system call each.
		grpc.Creds(transport.NewTLS(tlsConfig)),
		// Protobuf, with a large replica write's data decoded once, aligned for direct I/O
		// (requestCodec).
		grpc.ForceServerCodecV2(newRequestCodec()),
		grpc.MaxRecvMsgSize(nodepb.MaxMessageSize),
		grpc.MaxSendMsgSize(nodepb.MaxMessageSize),
		// Fixed, large flow-control windows: a 16 MiB write never waits for window updates, and
		// no BDP-estimation pings run on the I/O path.
		grpc.InitialWindowSize(nodepb.StreamWindow),
		grpc.InitialConnWindowSize(nodepb.ConnWindow),
		// Large socket buffers: a 1 MiB write goes to the TLS connection in one write (whose
		// records then reach the socket in batches: transport.NewTLS), not one per 32 KiB.
		grpc.WriteBufferSize(nodepb.SocketBuffer),
		grpc.ReadBufferSize(nodepb.SocketBuffer),
		// Handle streams on a fixed pool of goroutines instead of one new goroutine per call.
		grpc.NumStreamWorkers(uint32(runtime.GOMAXPROCS(0))),
		grpc.ChainUnaryInterceptor(s.recoverUnary),
		grpc.ChainStreamInterceptor(s.recoverStream),
	}, extra...)
	s.grpc = grpc.NewServer(opts...)
	nodepb.RegisterStoreServiceServer(s.grpc, &storeService{stores: stores})
	nodepb.RegisterObjectServiceServer(s.grpc, &objectService{stores: stores})
	nodepb.RegisterVolumeServiceServer(s.grpc, &volumeService{stores: stores, inflight: newInFlight(), replicas: s.replicas})
	nodepb.RegisterReplicaServiceServer(s.grpc, &replicaService{node: s.replicas})
	healthpb.RegisterHealthServer(s.grpc, s.health)
	s.local = grpc.NewServer()
	healthpb.RegisterHealthServer(s.local, s.health)
	// Not serving until the daemon says its stores are ready.
	s.health.SetServingStatus("", healthpb.HealthCheckResponse_NOT_SERVING)
	return s, nil
}

// Replicas returns the node's fenced replica I/O, for a coordinator on this node (replica.NewLocal):
// it obeys the same fence as ReplicaService.
func (s *Server) Replicas() *replica.Node { return s.replicas }

// SetServing sets the overall health status reported by grpc.health.v1.
func (s *Server) SetServing(serving bool) {
	st := healthpb.HealthCheckResponse_NOT_SERVING
	if serving {
		st = healthpb.HealthCheckResponse_SERVING
	}
	s.health.SetServingStatus("", st)
}

// Serve serves on lis until ctx ends, then stops gracefully: it stops accepting, lets in-flight
// calls finish and returns. It returns the listener's error if serving fails.
func (s *Server) Serve(ctx context.Context, lis net.Listener) error {
	errc := make(chan error, 1)
	go func() { errc <- s.grpc.Serve(lis) }()
	select {
	case err := <-errc:
		if err == nil || errors.Is(err, grpc.ErrServerStopped) {
			return nil // Stop ended it (or came before Serve began)
		}
		return fmt.Errorf("server: serve on %s: %w", lis.Addr(), err)
	case <-ctx.Done():
		s.log.Info("stopping gRPC server gracefully", "addr", lis.Addr().String())
		s.health.Shutdown()
		s.grpc.GracefulStop()
		// Serve returns nil once GracefulStop has run (ErrServerStopped when Stop came before
		// it began); anything else is a serving failure.
		if err := <-errc; err != nil && !errors.Is(err, grpc.ErrServerStopped) {
			return fmt.Errorf("server: serve on %s: %w", lis.Addr(), err)
		}
		return nil
	}
}

// ServeHealth serves only grpc.health.v1, without TLS, on lis (a unix socket that only the
// node's root can reach) until ctx ends. The `health` subcommand of exec probes calls it.
func (s *Server) ServeHealth(ctx context.Context, lis net.Listener) error {
	errc := make(chan error, 1)
	go func() { errc <- s.local.Serve(lis) }()
	select {
	case err := <-errc:
		if err == nil || errors.Is(err, grpc.ErrServerStopped) {
			return nil // Stop ended it (or came before Serve began)
		}
		return fmt.Errorf("server: serve health on %s: %w", lis.Addr(), err)
	case <-ctx.Done():
		s.local.GracefulStop()
		if err := <-errc; err != nil {
			return fmt.Errorf("server: serve health on %s: %w", lis.Addr(), err)
		}
		return nil
	}
}

// Stop stops the server at once, canceling in-flight calls.
func (s *Server) Stop() {
	s.grpc.Stop()
	s.local.Stop()
}

func (s *Server) recoverUnary(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (resp any, err error) {
	defer func() {
		if r := recover(); r != nil {
			s.log.Error(fmt.Errorf("panic: %v", r), "handler panicked", "method", info.FullMethod, "stack", string(debug.Stack()))
			err = status.Errorf(codes.Internal, "internal error in %s", info.FullMethod)
		}
	}()
	return handler(ctx, req)
}

func (s *Server) recoverStream(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) (err error) {
	defer func() {
		if r := recover(); r != nil {
			s.log.Error(fmt.Errorf("panic: %v", r), "stream handler panicked", "method", info.FullMethod, "stack", string(debug.Stack()))
			err = status.Errorf(codes.Internal, "internal error in %s", info.FullMethod)
		}
	}()
	return handler(srv, ss)
}
