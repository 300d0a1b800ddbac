package driver

import (
	"context"
	"errors"
	"path/filepath"
	"testing"

	"github.com/container-storage-interface/spec/lib/go/csi"
	"github.com/go-logr/logr"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
)

func TestSocketPath(t *testing.T) {
	for _, tc := range []struct {
		in, want string
		wantErr  bool
	}{
		{in: "unix:///csi/csi.sock", want: "/csi/csi.sock"},
		{in: "unix:/csi/csi.sock", want: "/csi/csi.sock"},
		{in: "/csi/csi.sock", want: "/csi/csi.sock"},
		{in: "tcp://127.0.0.1:10000", wantErr: true},
		{in: "unix://relative.sock", wantErr: true},
		{in: "csi.sock", wantErr: true},
	} {
		got, err := SocketPath(tc.in)
		if (err != nil) != tc.wantErr || got != tc.want {
			t.Errorf("SocketPath(%q) = %q, %v; want %q, error %v", tc.in, got, err, tc.want, tc.wantErr)
		}
	}
}

// TestServeIdentity serves the Identity service on a real unix socket and calls it: the name,
// the driver's capabilities, and Probe turning not-ready into FailedPrecondition.
func TestServeIdentity(t *testing.T) {
	ready := errors.New("waiting for the stores")
	id := &Identity{Version: "v9", Ready: func(context.Context) error { return ready }}
	sock := filepath.Join(t.TempDir(), "csi.sock")
	s := &Server{Endpoint: "unix://" + sock, Identity: id, Log: logr.Discard()}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	lis, err := Listen(s.Endpoint)
	if err != nil {
		t.Fatal(err)
	}
	go func() { done <- s.Serve(ctx, lis) }()
	conn, err := grpc.NewClient("unix://"+sock, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	c := csi.NewIdentityClient(conn)
	info, err := c.GetPluginInfo(ctx, &csi.GetPluginInfoRequest{})
	if err != nil || info.Name != Name || info.VendorVersion != "v9" {
		t.Fatalf("GetPluginInfo = %v, %v", info, err)
	}
	caps, err := c.GetPluginCapabilities(ctx, &csi.GetPluginCapabilitiesRequest{})
	if err != nil {
		t.Fatal(err)
	}
	var service, topology, online bool
	for _, c := range caps.Capabilities {
		switch c.GetService().GetType() {
		case csi.PluginCapability_Service_CONTROLLER_SERVICE:
			service = true
		case csi.PluginCapability_Service_VOLUME_ACCESSIBILITY_CONSTRAINTS:
			topology = true
		}
		if c.GetVolumeExpansion().GetType() == csi.PluginCapability_VolumeExpansion_ONLINE {
			online = true
		}
	}
	if !service || !topology || !online {
		t.Errorf("capabilities: controller service=%v topology=%v online expansion=%v, want all", service, topology, online)
	}
	_, err = c.Probe(ctx, &csi.ProbeRequest{})
	if status.Code(err) != codes.FailedPrecondition {
		t.Errorf("Probe while not ready: %v, want FailedPrecondition", err)
	}
	ready = nil
	p, err := c.Probe(ctx, &csi.ProbeRequest{})
	if err != nil || !p.GetReady().GetValue() {
		t.Errorf("Probe when ready = %v, %v", p, err)
	}
	conn.Close()
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}
