package controllers

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
	logf "sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	"github.com/cobaltstore/cobalt/api/v1alpha1"
)

// The suite starts one kube-apiserver and etcd for the whole package and runs the three
// reconcilers in one manager, with a fake clock and a fake NodeClient. Specs read and write
// through k8sClient, which talks to the API server directly (no cache), so what they see is
// what the server holds.
var (
	testEnv    *envtest.Environment
	cfg        *rest.Config
	k8sClient  client.Client
	testScheme *runtime.Scheme
	clock      *fakeClock
	nodes      *fakeNodeClient
	suiteStop  context.CancelFunc
)

var testCASecret = client.ObjectKey{Namespace: "cobalt-operator", Name: "cobalt-ca"}

const (
	testHeartbeatTimeout = 60 * time.Second
	testNodeDaemonImage  = "registry.example/cobalt/node-daemon:v0.1.0"
	// testKubeletDir is not the default, so a test sees it reach the DaemonSet.
	testKubeletDir = "/srv/kubelet"
)

func TestControllers(t *testing.T) {
	RegisterFailHandler(Fail)
	RunSpecs(t, "Controllers Suite")
}

var _ = BeforeSuite(func() {
	SetDefaultEventuallyTimeout(10 * time.Second)
	SetDefaultEventuallyPollingInterval(50 * time.Millisecond)
	logf.SetLogger(zap.New(zap.WriteTo(GinkgoWriter), zap.UseDevMode(true)))

	assets := os.Getenv("KUBEBUILDER_ASSETS")
	Expect(assets).NotTo(BeEmpty(),
		"KUBEBUILDER_ASSETS is not set: run `make test`, which builds kube-apiserver and etcd into bin/k8s/<version> and sets it")
	for _, bin := range []string{"kube-apiserver", "etcd"} {
		_, err := os.Stat(filepath.Join(assets, bin))
		Expect(err).NotTo(HaveOccurred(), "KUBEBUILDER_ASSETS=%s has no %s: run `make envtest`", assets, bin)
	}

	testScheme = runtime.NewScheme()
	Expect(clientgoscheme.AddToScheme(testScheme)).To(Succeed())
	Expect(v1alpha1.AddToScheme(testScheme)).To(Succeed())

	testEnv = &envtest.Environment{
		CRDDirectoryPaths:     []string{filepath.Join("..", "config", "crd", "bases")},
		ErrorIfCRDPathMissing: true,
		BinaryAssetsDirectory: assets,
		Scheme:                testScheme,
	}
	var err error
	cfg, err = testEnv.Start()
	Expect(err).NotTo(HaveOccurred())

	k8sClient, err = client.New(cfg, client.Options{Scheme: testScheme})
	Expect(err).NotTo(HaveOccurred())

	mgr, err := ctrl.NewManager(cfg, ctrl.Options{
		Scheme:                 testScheme,
		Metrics:                metricsserver.Options{BindAddress: "0"},
		HealthProbeBindAddress: "0",
	})
	Expect(err).NotTo(HaveOccurred())

	ctx, cancel := context.WithCancel(context.Background())
	suiteStop = cancel
	clock = newFakeClock(time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC))
	nodes = newFakeNodeClient()

	// The operator's CA Secret that the StorageCluster reconciler copies into cluster namespaces.
	Expect(k8sClient.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: testCASecret.Namespace}})).To(Succeed())
	Expect(k8sClient.Create(ctx, &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Namespace: testCASecret.Namespace, Name: testCASecret.Name},
		Data:       map[string][]byte{"ca.crt": []byte("test CA certificate"), "ca.key": []byte("test CA key")},
	})).To(Succeed())

	Expect(SetupIndexes(ctx, mgr)).To(Succeed())
	Expect((&StorageClusterReconciler{
		Client: mgr.GetClient(), Recorder: mgr.GetEventRecorder("storagecluster-controller"),
		Clock: clock, HeartbeatTimeout: testHeartbeatTimeout, NodeDaemonImage: testNodeDaemonImage,
		CASecret: testCASecret, APIReader: mgr.GetAPIReader(),
		// The operator's default: the node daemons serve the CSI node plugin.
		CSI: CSINodePlugin{Enabled: true, KubeletDir: testKubeletDir},
	}).SetupWithManager(mgr)).To(Succeed())
	Expect((&StoreReconciler{
		Client: mgr.GetClient(), Recorder: mgr.GetEventRecorder("store-controller"),
		Clock: clock, HeartbeatTimeout: testHeartbeatTimeout,
	}).SetupWithManager(mgr)).To(Succeed())
	Expect((&VolumeReconciler{
		Client: mgr.GetClient(), Recorder: mgr.GetEventRecorder("volume-controller"),
		Nodes: nodes, Clock: clock, HeartbeatTimeout: testHeartbeatTimeout,
	}).SetupWithManager(mgr)).To(Succeed())

	go func() {
		defer GinkgoRecover()
		Expect(mgr.Start(ctx)).To(Succeed())
	}()
})

var _ = AfterSuite(func() {
	if suiteStop != nil {
		suiteStop()
	}
	if testEnv != nil {
		Expect(testEnv.Stop()).To(Succeed())
	}
})
