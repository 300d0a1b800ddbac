package controllers

import (
	"context"
	"testing"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	clocktesting "k8s.io/utils/clock/testing"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	logf "sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"

	"github.com/cobaltstore/cobalt/test/testenv"
)

// The suite starts one kube-apiserver and etcd for the whole package (testenv) and runs the
// four reconcilers in one manager, with a fake clock and a fake NodeClient, and replication
// enabled. Specs read and write through k8sClient, which talks to the API server directly (no
// cache), so what they see is what the server holds.
var (
	testEnv   *testenv.Env
	k8sClient client.Client
	testClock *clocktesting.FakeClock
	nodes     *fakeNodeClient
)

var testCASecret = client.ObjectKey{Namespace: "cobalt-operator", Name: "cobalt-ca"}

const (
	testHeartbeatTimeout = 60 * time.Second
	testNodeDaemonImage  = "registry.example/cobalt/node-daemon:v0.1.0"
	// testKubeletDir is not the default, so a test sees it reach the DaemonSet.
	testKubeletDir = "/srv/kubelet"
	// testSnapshotRefresh is short so a spec sees a snapshot's sizes refreshed.
	testSnapshotRefresh = time.Second
	// testReplacementDelay is how long a copy stays Lost before it is replaced; specs step the
	// fake clock past it.
	testReplacementDelay = 10 * time.Minute
)

func TestControllers(t *testing.T) {
	RegisterFailHandler(Fail)
	RunSpecs(t, "Controllers Suite")
}

var _ = BeforeSuite(func(ctx context.Context) {
	// 30s: on a shared 2-core machine at load 18 the API server and the controllers took over 10s
	// for steps that take well under one second when it is quiet.
	SetDefaultEventuallyTimeout(30 * time.Second)
	SetDefaultEventuallyPollingInterval(50 * time.Millisecond)
	logf.SetLogger(zap.New(zap.WriteTo(GinkgoWriter), zap.UseDevMode(true)))

	// Stopped (managers first) after the suite, by GinkgoT's cleanup.
	testEnv = testenv.Setup(GinkgoT(), testenv.Options{})
	k8sClient = testEnv.Client

	mgr, err := testEnv.NewManager(ctrl.Options{})
	Expect(err).NotTo(HaveOccurred())
	testClock = clocktesting.NewFakeClock(time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC))
	nodes = newFakeNodeClient()

	// The operator's CA Secret that the StorageCluster reconciler copies into cluster namespaces.
	Expect(k8sClient.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: testCASecret.Namespace}})).To(Succeed())
	Expect(k8sClient.Create(ctx, &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Namespace: testCASecret.Namespace, Name: testCASecret.Name},
		Data:       map[string][]byte{"ca.crt": []byte("test CA certificate"), "ca.key": []byte("test CA key")},
	})).To(Succeed())

	// SetupIndexes registers the indexes; the context only bounds that registration.
	Expect(SetupIndexes(ctx, mgr)).To(Succeed())
	Expect((&StorageClusterReconciler{
		Client: mgr.GetClient(), Recorder: mgr.GetEventRecorder("storagecluster-controller"),
		Clock: testClock, HeartbeatTimeout: testHeartbeatTimeout, NodeDaemonImage: testNodeDaemonImage,
		CASecret: testCASecret, APIReader: mgr.GetAPIReader(),
		// The operator's default: the node daemons serve the CSI node plugin.
		CSI: CSINodePlugin{Enabled: true, KubeletDir: testKubeletDir},
	}).SetupWithManager(mgr)).To(Succeed())
	Expect((&StoreReconciler{
		Client: mgr.GetClient(), Recorder: mgr.GetEventRecorder("store-controller"),
		Clock: testClock, HeartbeatTimeout: testHeartbeatTimeout,
	}).SetupWithManager(mgr)).To(Succeed())
	Expect((&VolumeReconciler{
		Client: mgr.GetClient(), Recorder: mgr.GetEventRecorder("volume-controller"),
		Nodes: nodes, Clock: testClock, HeartbeatTimeout: testHeartbeatTimeout,
		// Replicated Volumes are placed and created here; cmd/manager's tests cover the default
		// (off) end to end, and TestReplicationGate the reconciler's gate.
		ReplicationEnabled:      true,
		ReplicaReplacementDelay: testReplacementDelay,
	}).SetupWithManager(mgr)).To(Succeed())
	Expect((&SnapshotReconciler{
		Client: mgr.GetClient(), Recorder: mgr.GetEventRecorder("snapshot-controller"),
		Nodes: nodes, Clock: testClock, HeartbeatTimeout: testHeartbeatTimeout, RefreshInterval: testSnapshotRefresh,
	}).SetupWithManager(mgr)).To(Succeed())
	Expect(testEnv.StartManager(mgr)).To(Succeed())
})
