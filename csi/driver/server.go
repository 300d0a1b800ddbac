package driver

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"runtime/debug"
	"strings"
	"time"

	"github.com/container-storage-interface/spec/lib/go/csi"
	"github.com/go-logr/logr"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// Server serves CSI services on a unix socket. It is a controller-runtime Runnable: Start
// serves until its context ends, then stops gracefully (in-flight calls finish, bounded by
// StopTimeout) and removes the socket.
type Server struct {
	// Endpoint is the socket, as "unix:///path/csi.sock" or a plain path.
	Endpoint string
	// Identity is served by every plugin.
	Identity csi.IdentityServer
	// Controller and Node are served when not nil.
	Controller csi.ControllerServer
	Node       csi.NodeServer
	// Log receives one line per call that fails, and every call at V(1).
	Log logr.Logger
	// StopTimeout bounds the graceful stop; after it the server stops hard. Zero means 30s.
	StopTimeout time.Duration
}

// SocketPath returns the file system path of a CSI endpoint: "unix:///csi/csi.sock",
// "unix:/csi/csi.sock" and "/csi/csi.sock" all name /csi/csi.sock.
func SocketPath(endpoint string) (string, error) {
	if strings.HasPrefix(endpoint, "/") {
		return endpoint, nil
	}
	u, err := url.Parse(endpoint)
	if err != nil {
		return "", fmt.Errorf("CSI endpoint %q: %w", endpoint, err)
	}
	if u.Scheme != "unix" {
		return "", fmt.Errorf("CSI endpoint %q: only unix sockets are supported (unix:///path)", endpoint)
	}
	p := u.Path
	if p == "" {
		p = u.Opaque
	}
	if !filepath.IsAbs(p) {
		return "", fmt.Errorf("CSI endpoint %q: the socket path must be absolute", endpoint)
	}
	return p, nil
}

// Listen removes a stale socket file at the endpoint and listens on it.
func Listen(endpoint string) (net.Listener, error) {
	path, err := SocketPath(endpoint)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o750); err != nil {
		return nil, fmt.Errorf("CSI socket directory: %w", err)
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("removing stale CSI socket %s: %w", path, err)
	}
	lis, err := net.Listen("unix", path)
	if err != nil {
		return nil, fmt.Errorf("listening on CSI socket %s: %w", path, err)
	}
	return lis, nil
}

// NewGRPCServer returns a gRPC server with the plugin's services registered, logging and
// panic recovery installed.
func (s *Server) NewGRPCServer() *grpc.Server {
	g := grpc.NewServer(grpc.ChainUnaryInterceptor(s.intercept))
	csi.RegisterIdentityServer(g, s.Identity)
	if s.Controller != nil {
		csi.RegisterControllerServer(g, s.Controller)
	}
	if s.Node != nil {
		csi.RegisterNodeServer(g, s.Node)
	}
	return g
}

// Start listens on the endpoint and serves until ctx ends.
func (s *Server) Start(ctx context.Context) error {
	lis, err := Listen(s.Endpoint)
	if err != nil {
		return err
	}
	return s.Serve(ctx, lis)
}

// Serve serves on lis until ctx ends, then stops gracefully and closes lis.
func (s *Server) Serve(ctx context.Context, lis net.Listener) error {
	g := s.NewGRPCServer()
	done := make(chan error, 1)
	go func() { done <- g.Serve(lis) }()
	s.Log.Info("serving CSI", "endpoint", s.Endpoint, "controller", s.Controller != nil, "node", s.Node != nil)
	select {
	case err := <-done:
		return fmt.Errorf("CSI server on %s: %w", s.Endpoint, err)
	case <-ctx.Done():
	}
	timeout := s.StopTimeout
	if timeout == 0 {
		timeout = 30 * time.Second
	}
	stopped := make(chan struct{})
	go func() { g.GracefulStop(); close(stopped) }()
	select {
	case <-stopped:
	case <-time.After(timeout):
		g.Stop()
	}
	if path, err := SocketPath(s.Endpoint); err == nil {
		_ = os.Remove(path)
	}
	return nil
}

// intercept logs calls and turns a panic into an Internal error, so one bad request never
// takes the plugin (and, for the node plugin, the node daemon) down.
func (s *Server) intercept(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (resp any, err error) {
	start := time.Now()
	defer func() {
		if r := recover(); r != nil {
			s.Log.Error(fmt.Errorf("panic: %v", r), "CSI call panicked", "method", info.FullMethod, "stack", string(debug.Stack()))
			resp, err = nil, status.Errorf(codes.Internal, "%s: internal error (panic), see the plugin's log", info.FullMethod)
		}
		method := info.FullMethod[strings.LastIndex(info.FullMethod, "/")+1:]
		if err != nil {
			s.Log.Info("CSI call failed", "method", method, "code", status.Code(err).String(), "error", status.Convert(err).Message(), "duration", time.Since(start))
		} else {
			s.Log.V(1).Info("CSI call", "method", method, "duration", time.Since(start))
		}
	}()
	return handler(ctx, req)
}
