package csinode

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"time"

	"github.com/go-logr/logr"
	"google.golang.org/grpc"
	registerapi "k8s.io/kubelet/pkg/apis/pluginregistration/v1"

	"github.com/cobaltstore/cobalt/csi/driver"
)

// Registration registers the node plugin with kubelet, as node-driver-registrar would: it
// serves kubelet's plugin registration API on <Dir>/csi.cobalt.io-reg.sock, which kubelet's
// plugin watcher finds, asks GetInfo, and then calls the CSI socket at Endpoint. It is a
// controller-runtime Runnable: the socket exists while Start runs and is removed when it ends.
type Registration struct {
	registerapi.UnimplementedRegistrationServer

	// Dir is kubelet's plugin registration directory (/var/lib/kubelet/plugins_registry).
	Dir string
	// Endpoint is the CSI socket's path as kubelet sees it.
	Endpoint string
	// Log receives the registration status kubelet reports.
	Log logr.Logger
}

// SocketPath is the registration socket.
func (g *Registration) SocketPath() string {
	return filepath.Join(g.Dir, driver.Name+"-reg.sock")
}

// GetInfo implements the registration API.
func (g *Registration) GetInfo(context.Context, *registerapi.InfoRequest) (*registerapi.PluginInfo, error) {
	return &registerapi.PluginInfo{
		Type:              registerapi.CSIPlugin,
		Name:              driver.Name,
		Endpoint:          g.Endpoint,
		SupportedVersions: []string{"1.0.0"},
	}, nil
}

// NotifyRegistrationStatus implements the registration API: kubelet says whether it accepted
// the plugin.
func (g *Registration) NotifyRegistrationStatus(_ context.Context, st *registerapi.RegistrationStatus) (*registerapi.RegistrationStatusResponse, error) {
	if st.GetPluginRegistered() {
		g.Log.Info("registered with kubelet", "driver", driver.Name, "endpoint", g.Endpoint)
	} else {
		g.Log.Error(errors.New(st.GetError()), "kubelet refused the CSI node plugin's registration; Pods on this node cannot use Cobalt volumes",
			"driver", driver.Name, "endpoint", g.Endpoint)
	}
	return &registerapi.RegistrationStatusResponse{}, nil
}

// Start implements manager.Runnable: it serves until ctx ends.
func (g *Registration) Start(ctx context.Context) error {
	path := g.SocketPath()
	if err := os.MkdirAll(g.Dir, 0o750); err != nil {
		return fmt.Errorf("kubelet registration directory: %w", err)
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("remove stale registration socket %s: %w", path, err)
	}
	lis, err := net.Listen("unix", path)
	if err != nil {
		return fmt.Errorf("listen on registration socket %s: %w", path, err)
	}
	srv := grpc.NewServer()
	registerapi.RegisterRegistrationServer(srv, g)
	done := make(chan error, 1)
	go func() { done <- srv.Serve(lis) }()
	g.Log.Info("serving kubelet plugin registration", "socket", path, "endpoint", g.Endpoint)
	var serveErr error
	select {
	case serveErr = <-done:
	case <-ctx.Done():
		stopped := make(chan struct{})
		go func() { srv.GracefulStop(); close(stopped) }()
		select {
		case <-stopped:
		case <-time.After(5 * time.Second):
			srv.Stop()
		}
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		serveErr = errors.Join(serveErr, fmt.Errorf("remove registration socket: %w", err))
	}
	if serveErr != nil {
		return fmt.Errorf("registration server on %s: %w", path, serveErr)
	}
	return nil
}
