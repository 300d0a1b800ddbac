package app

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/container-storage-interface/spec/lib/go/csi"
	"github.com/onsi/gomega"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	registerapi "k8s.io/kubelet/pkg/apis/pluginregistration/v1"

	storagev1alpha1 "github.com/cobaltstore/cobalt/api/v1alpha1"
	"github.com/cobaltstore/cobalt/csi/driver"
	nodepb "github.com/cobaltstore/cobalt/node-daemon/proto"
)

// TestDaemonServesCSINodePlugin runs the daemon with the CSI node plugin on: once its store is
// served, the CSI socket answers Probe ready, a volume created through the volume API stages as
// a block device, the registration socket tells kubelet where the plugin is, and the Manager's
// liveness and readiness include the plugin. Stopping the daemon removes both sockets.
func TestDaemonServesCSINodePlugin(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root: the CSI frontend mounts FUSE and attaches loop devices")
	}
	tc := newTestCluster(t)
	devDir, stateDir, regDir := t.TempDir(), t.TempDir(), t.TempDir()
	dev := sparseFile(t, devDir, "disk.img", 256<<20, 0, nil)
	cfg := tc.config(t, "node-csi", stateDir, dev)
	sock := filepath.Join(stateDir, "csi.sock")
	cfg.CSIEndpoint, cfg.KubeletRegistrationDir = "unix://"+sock, regDir
	cfg.ProbeAddr = freeAddr(t)
	d := startDaemon(t, cfg, newMemEngine())

	st := readyStore(t, "node-csi", dev)
	conn, err := grpc.NewClient("unix://"+sock, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ctx := t.Context()
	gomega.NewWithT(t).Eventually(func() error {
		p, err := csi.NewIdentityClient(conn).Probe(ctx, &csi.ProbeRequest{})
		if err != nil {
			return fmt.Errorf("Probe: %w", err)
		}
		if !p.GetReady().GetValue() {
			return fmt.Errorf("Probe = %v, not ready", p)
		}
		return nil
	}, 20*time.Second, 50*time.Millisecond).Should(gomega.Succeed())
	for _, path := range []string{"/healthz", "/readyz"} {
		gomega.NewWithT(t).Eventually(func() error { return httpOK("http://" + cfg.ProbeAddr + path) }, 10*time.Second, 50*time.Millisecond).Should(gomega.Succeed())
	}

	// A volume of the served store stages through the node plugin as a block device.
	api := tc.client(t, st.Annotations[storagev1alpha1.AnnotationNodeEndpoint])
	ref := &nodepb.VolumeRef{StoreUuid: st.Status.UUID, VolumeId: "vol-uid-1"}
	if _, err := api.Volumes.CreateVolume(ctx, &nodepb.CreateVolumeRequest{Ref: ref, SizeBytes: 16 << 20}); err != nil {
		t.Fatal(err)
	}
	node := csi.NewNodeClient(conn)
	staging := filepath.Join(stateDir, "staging")
	_, err = node.NodeStageVolume(ctx, &csi.NodeStageVolumeRequest{
		VolumeId: "vol-1", StagingTargetPath: staging,
		VolumeCapability: &csi.VolumeCapability{
			AccessType: &csi.VolumeCapability_Block{Block: &csi.VolumeCapability_BlockVolume{}},
			AccessMode: &csi.VolumeCapability_AccessMode{Mode: csi.VolumeCapability_AccessMode_SINGLE_NODE_WRITER},
		},
		VolumeContext: map[string]string{driver.ContextStoreUUID: ref.StoreUuid, driver.ContextVolumeUID: ref.VolumeId},
	})
	if err != nil {
		t.Fatalf("NodeStageVolume through the daemon: %v", err)
	}
	if _, err := os.Stat(filepath.Join(stateDir, "csi", "vol-1.json")); err != nil {
		t.Errorf("no stage record in the default --csi-state-dir: %v", err)
	}
	if _, err := node.NodeUnstageVolume(ctx, &csi.NodeUnstageVolumeRequest{VolumeId: "vol-1", StagingTargetPath: staging}); err != nil {
		t.Fatalf("NodeUnstageVolume: %v", err)
	}

	regSock := filepath.Join(regDir, driver.Name+"-reg.sock")
	rconn, err := grpc.NewClient("unix://"+regSock, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer rconn.Close()
	info, err := registerapi.NewRegistrationClient(rconn).GetInfo(ctx, &registerapi.InfoRequest{})
	if err != nil || info.Type != registerapi.CSIPlugin || info.Name != driver.Name || info.Endpoint != sock || len(info.SupportedVersions) != 1 || info.SupportedVersions[0] != "1.0.0" {
		t.Fatalf("registration GetInfo = %v, %v", info, err)
	}
	if _, err := registerapi.NewRegistrationClient(rconn).NotifyRegistrationStatus(ctx, &registerapi.RegistrationStatus{PluginRegistered: true}); err != nil {
		t.Errorf("NotifyRegistrationStatus: %v", err)
	}

	d.stop(t)
	for _, p := range []string{sock, regSock} {
		if _, err := os.Stat(p); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("socket %s after stop: %v", p, err)
		}
	}
}

// freeAddr returns a local address nothing listens on.
func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

func httpOK(url string) error {
	resp, err := http.Get(url)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s: %s", url, resp.Status)
	}
	return nil
}

// TestCSIConfigDefaultsAndValidation: the CSI flags default to the state directory and are
// checked only when the plugin is on.
func TestCSIConfigDefaultsAndValidation(t *testing.T) {
	cfg := DefaultConfig()
	cfg.ClusterNamespace, cfg.ClusterName, cfg.NodeName = "ns", "c", "n"
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	if cfg.CSIEndpoint != "" || cfg.CSIStateDir != "/var/lib/cobalt/csi" || cfg.CSIFuseDir != "/var/lib/cobalt/csi/fuse" {
		t.Errorf("CSI defaults: endpoint %q, state %q, fuse %q", cfg.CSIEndpoint, cfg.CSIStateDir, cfg.CSIFuseDir)
	}
	for _, bad := range []func(*Config){
		func(c *Config) { c.CSIEndpoint = "tcp://127.0.0.1:1" },
		func(c *Config) { c.KubeletRegistrationDir = "/var/lib/kubelet/plugins_registry" }, // without an endpoint
		func(c *Config) { c.CSIEndpoint, c.KubeletRegistrationDir = DefaultCSIEndpoint, "relative" },
	} {
		c := DefaultConfig()
		c.ClusterNamespace, c.ClusterName, c.NodeName = "ns", "c", "n"
		bad(&c)
		if err := c.Validate(); err == nil {
			t.Errorf("Validate accepted %+v", c)
		}
	}
}
