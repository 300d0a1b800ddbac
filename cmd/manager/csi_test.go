package main

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/container-storage-interface/spec/lib/go/csi"
	. "github.com/onsi/gomega"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/cobaltstore/cobalt/csi/driver"
)

// TestCSIPluginServesWithoutLeadership runs the manager with --csi-endpoint while another replica
// holds the leader election Lease: the CSI controller plugin serves anyway (Probe, capabilities,
// and a CreateVolume that reaches the controller service).
func TestCSIPluginServesWithoutLeadership(t *testing.T) {
	g := NewWithT(t)
	ctx := t.Context()
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{GenerateName: "manager-csi-"}}
	g.Expect(testClient.Create(ctx, ns)).To(Succeed())
	now := metav1.NewMicroTime(time.Now())
	g.Expect(testClient.Create(ctx, &coordinationv1.Lease{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns.Name, Name: leaderElectionID},
		Spec: coordinationv1.LeaseSpec{HolderIdentity: ptr.To("another-replica"), LeaseDurationSeconds: ptr.To[int32](3600),
			AcquireTime: &now, RenewTime: &now},
	})).To(Succeed())

	sa := &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: ns.Name, Name: "cobalt-controller-manager"}}
	g.Expect(testClient.Create(ctx, sa)).To(Succeed())

	endpoint := "unix://" + filepath.Join(t.TempDir(), "csi.sock")
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() {
		done <- run(runCtx, testConfig, options{metricsAddr: "0", probeAddr: "0", heartbeatTimeout: time.Minute, replicaReplacementDelay: time.Minute,
			caSecret: ns.Name + "/cobalt-ca", leaderElect: true, leaderElectionNamespace: ns.Name,
			csiEndpoint: endpoint, csiNamespace: ns.Name, skipControllerNameValidation: true,
			owner: client.ObjectKeyFromObject(sa)})
	}()

	conn, err := grpc.NewClient(endpoint, grpc.WithTransportCredentials(insecure.NewCredentials()))
	g.Expect(err).NotTo(HaveOccurred())
	defer conn.Close()
	g.Eventually(func() error {
		_, err := csi.NewIdentityClient(conn).Probe(ctx, &csi.ProbeRequest{})
		return err
	}, 20*time.Second, 100*time.Millisecond).Should(Succeed(), "the plugin is ready once the API server answers")

	caps, err := csi.NewControllerClient(conn).ControllerGetCapabilities(ctx, &csi.ControllerGetCapabilitiesRequest{})
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(caps.GetCapabilities()).To(ContainElement(HaveField("GetRpc().GetType()", csi.ControllerServiceCapability_RPC_CREATE_DELETE_VOLUME)))
	_, err = csi.NewControllerClient(conn).CreateVolume(ctx, &csi.CreateVolumeRequest{Name: "pvc-1",
		VolumeCapabilities: []*csi.VolumeCapability{{
			AccessType: &csi.VolumeCapability_Mount{Mount: &csi.VolumeCapability_MountVolume{}},
			AccessMode: &csi.VolumeCapability_AccessMode{Mode: csi.VolumeCapability_AccessMode_SINGLE_NODE_WRITER}}},
		Parameters: map[string]string{"flavor": "x"}})
	g.Expect(status.Code(err)).To(Equal(codes.InvalidArgument), "the controller service answers: %v", err)
	info, err := csi.NewIdentityClient(conn).GetPluginInfo(ctx, &csi.GetPluginInfoRequest{})
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(info.GetName()).To(Equal(driver.Name))

	var lease coordinationv1.Lease
	g.Expect(testClient.Get(ctx, client.ObjectKey{Namespace: ns.Name, Name: leaderElectionID}, &lease)).To(Succeed())
	g.Expect(ptr.Deref(lease.Spec.HolderIdentity, "")).To(Equal("another-replica"), "this replica is not the leader")
	// The sidecars' Leases exist, owned by the ServiceAccount, so uninstalling removes them.
	for _, name := range driver.SidecarLeaseNames() {
		var l coordinationv1.Lease
		g.Expect(testClient.Get(ctx, client.ObjectKey{Namespace: ns.Name, Name: name}, &l)).To(Succeed(), "sidecar Lease %s", name)
		g.Expect(l.OwnerReferences).To(ContainElement(And(HaveField("Kind", "ServiceAccount"), HaveField("Name", sa.Name))), "owner of Lease %s", name)
	}

	stop()
	g.Eventually(done, 40*time.Second).Should(Receive(BeNil()), "the manager stops cleanly when its context ends")
}

func TestRunRefusesABadCSIEndpoint(t *testing.T) {
	for _, opts := range []options{
		{csiEndpoint: "tcp://0.0.0.0:10000", csiNamespace: "default"},
		{csiEndpoint: "unix:///csi/csi.sock"},
	} {
		opts.heartbeatTimeout, opts.replicaReplacementDelay, opts.caSecret = time.Minute, time.Minute, "default/cobalt-ca"
		err := run(t.Context(), nil, opts)
		if err == nil || !strings.Contains(err.Error(), "--csi-") {
			t.Errorf("run(%+v) = %v, want an error naming the CSI flag", opts, err)
		}
	}
}
