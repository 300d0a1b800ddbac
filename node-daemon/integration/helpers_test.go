package integration

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/go-logr/logr/testr"
	"github.com/google/uuid"
	"github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/rest"
	"k8s.io/utils/clock"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/config"

	storagev1alpha1 "github.com/cobaltstore/cobalt/api/v1alpha1"
	"github.com/cobaltstore/cobalt/controllers"
	"github.com/cobaltstore/cobalt/controllers/nodeapi"
	"github.com/cobaltstore/cobalt/node-daemon/app"
	nodeclient "github.com/cobaltstore/cobalt/node-daemon/client"
	"github.com/cobaltstore/cobalt/node-daemon/engine"
	"github.com/cobaltstore/cobalt/node-daemon/pki"
	"github.com/cobaltstore/cobalt/storage-engine/blockdev"
	"github.com/cobaltstore/cobalt/storage-engine/store"
)

// cluster is a namespace prepared as the operator prepares it: the CA Secret in place.
type cluster struct {
	namespace string
	ca        *pki.CA
}

func newCluster(t *testing.T) *cluster {
	t.Helper()
	ctx := context.Background()
	ns := "it-" + uuid.NewString()[:8]
	if err := k8sClient.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}); err != nil {
		t.Fatal(err)
	}
	ca, err := pki.EnsureCASecret(ctx, k8sClient, types.NamespacedName{Namespace: ns, Name: "cobalt-ca"}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	return &cluster{namespace: ns, ca: ca}
}

// daemonConfig is the configuration of node's daemon, and creates the namespace's StorageCluster
// with devices as its paths and a small cache. Loop devices are named as they are; plain files
// (without root) must share one directory, which becomes the daemon's DevDir, and the spec names
// them /dev/<file name>.
func (c *cluster) daemonConfig(t *testing.T, node string, devices ...string) *app.Config {
	t.Helper()
	cfg := app.DefaultConfig()
	cfg.ClusterNamespace, cfg.ClusterName, cfg.NodeName = c.namespace, "test", node
	cfg.StateDir = t.TempDir()
	spec := storagev1alpha1.StorageClusterSpec{Engine: storagev1alpha1.EngineSettings{MemoryTarget: resource.MustParse("64Mi")}}
	for i, d := range devices {
		if dir := filepath.Dir(d); i == 0 {
			cfg.DevDir = dir
		} else if dir != cfg.DevDir {
			t.Fatalf("devices %v are not in one directory", devices)
		}
		spec.Devices.Paths = append(spec.Devices.Paths, "/dev/"+filepath.Base(d))
	}
	sc := &storagev1alpha1.StorageCluster{ObjectMeta: metav1.ObjectMeta{Namespace: c.namespace, Name: cfg.ClusterName}, Spec: spec}
	if err := k8sClient.Create(context.Background(), sc); err != nil {
		t.Fatalf("create StorageCluster: %v", err)
	}
	cfg.GRPCAddr, cfg.AdvertiseAddr = "127.0.0.1:0", "127.0.0.1"
	cfg.MetricsAddr, cfg.ProbeAddr = "0", "0"
	cfg.HeartbeatInterval = 250 * time.Millisecond
	cfg.ShutdownGrace = 5 * time.Second
	return &cfg
}

// clientTLS issues a client certificate named name.
func (c *cluster) client(t *testing.T, addr string) *nodeclient.Client {
	t.Helper()
	cert, err := c.ca.IssueClient("test-client", time.Now(), time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	tlsConfig, err := pki.ClientTLSConfig(cert, c.ca.Pool(), "")
	if err != nil {
		t.Fatal(err)
	}
	cl, err := nodeclient.Dial(addr, tlsConfig)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cl.Close() })
	return cl
}

// inProcess is a daemon run in this process with the real engine.
type inProcess struct {
	cancel context.CancelFunc
	done   chan error
}

func startInProcess(t *testing.T, cfg *app.Config) *inProcess {
	t.Helper()
	return startInProcessAs(t, restConfig, cfg)
}

// startInProcessAs runs the daemon with the API server credentials of as.
func startInProcessAs(t *testing.T, as *rest.Config, cfg *app.Config) *inProcess {
	t.Helper()
	newEngine := func(ec app.EngineConfig) app.Engine { return engine.New(engine.Settings{EngineConfig: ec}) }
	mgr, err := app.NewManager(context.Background(), as, cfg, newEngine, testr.New(t).WithName("daemon"))
	if err != nil {
		t.Fatalf("daemon manager: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	d := &inProcess{cancel: cancel, done: make(chan error, 1)}
	go func() { d.done <- mgr.Start(ctx) }()
	t.Cleanup(func() { d.stop(t) })
	return d
}

// stop shuts the daemon down as SIGTERM does and waits for it (idempotent).
func (d *inProcess) stop(t *testing.T) {
	t.Helper()
	d.cancel()
	select {
	case err, ok := <-d.done:
		if ok {
			close(d.done)
			if err != nil {
				t.Errorf("daemon: %v", err)
			}
		}
	case <-time.After(60 * time.Second):
		t.Fatal("daemon did not stop within 60s")
	}
}

// startOperator runs the operator's Store and Volume reconcilers with the real node client.
func (c *cluster) startOperator(t *testing.T) {
	t.Helper()
	cert, err := c.ca.IssueClient("cobalt-operator", time.Now(), time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	tlsConfig, err := pki.ClientTLSConfig(cert, c.ca.Pool(), "")
	if err != nil {
		t.Fatal(err)
	}
	nodes, err := nodeapi.New(tlsConfig)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = nodes.Close() }) // runs after the manager has stopped (last in, first out)
	runOperator(t, func(mgr ctrl.Manager) error {
		if err := (&controllers.StoreReconciler{Client: mgr.GetClient(), Recorder: mgr.GetEventRecorder("store"), Clock: clock.RealClock{},
			HeartbeatTimeout: 30 * time.Second}).SetupWithManager(mgr); err != nil {
			return err
		}
		if err := (&controllers.SnapshotReconciler{Client: mgr.GetClient(), Recorder: mgr.GetEventRecorder("snapshot"), Nodes: nodes, Clock: clock.RealClock{},
			HeartbeatTimeout: 30 * time.Second, RefreshInterval: controllers.DefaultSnapshotRefreshInterval}).SetupWithManager(mgr); err != nil {
			return err
		}
		return (&controllers.VolumeReconciler{Client: mgr.GetClient(), Recorder: mgr.GetEventRecorder("volume"), Nodes: nodes, Clock: clock.RealClock{},
			HeartbeatTimeout: 30 * time.Second}).SetupWithManager(mgr)
	})
}

// runOperator starts a manager with the operator's indexes and the reconcilers setup adds, and
// stops it when the test ends.
func runOperator(t *testing.T, setup func(ctrl.Manager) error) {
	t.Helper()
	mgr, err := testEnv.NewManager(ctrl.Options{
		Logger:     testr.New(t).WithName("operator"),
		Controller: config.Controller{SkipNameValidation: ptr.To(true)},
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	if err := controllers.SetupIndexes(ctx, mgr); err != nil {
		t.Fatal(err)
	}
	if err := setup(mgr); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- mgr.Start(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("operator: %v", err)
		}
	})
}

// storeOf returns the Store of node's device.
func storeOf(node, device string) (*storagev1alpha1.Store, error) {
	var list storagev1alpha1.StoreList
	if err := k8sClient.List(context.Background(), &list); err != nil {
		return nil, err
	}
	for i := range list.Items {
		if s := &list.Items[i]; s.Spec.NodeName == node && s.Spec.DevicePath == device {
			return s, nil
		}
	}
	return nil, errors.New("no Store for " + node + ":" + device)
}

// servingStore waits until the Store of node's device reports capacity, a UUID and an endpoint
// different from notEndpoint, and returns it.
func servingStore(t *testing.T, node, device, notEndpoint string) *storagev1alpha1.Store {
	t.Helper()
	var st *storagev1alpha1.Store
	gomega.NewWithT(t).Eventually(func() error {
		var err error
		if st, err = storeOf(node, device); err != nil {
			return err
		}
		ep := st.Annotations[storagev1alpha1.AnnotationNodeEndpoint]
		if st.Status.Capacity == nil || st.Status.UUID == "" || ep == "" || ep == notEndpoint {
			return errors.New("store not served yet: " + st.Status.NotUsedReason)
		}
		return nil
	}, 60*time.Second, 100*time.Millisecond).Should(gomega.Succeed())
	return st
}

func isReady(conds []metav1.Condition) bool {
	return meta.IsStatusConditionTrue(conds, storagev1alpha1.ConditionReady)
}

// fsckDevice opens the (unmounted) store on device from the device alone (the daemon keeps every
// store's metadata on its device) and runs a deep fsck; it fails the test on any inconsistency
// and returns the deferred writes replayed at mount.
func fsckDevice(t *testing.T, device string) int64 {
	t.Helper()
	dev, err := blockdev.Open(device, blockdev.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer dev.Close()
	st, err := store.Open(context.Background(), dev, "", store.Options{})
	if err != nil {
		t.Fatalf("mount for fsck: %v", err)
	}
	defer st.Close()
	replayed := st.Metrics().DeferredReplayed
	rep, err := st.Fsck(context.Background(), true)
	if err != nil {
		t.Fatalf("fsck: %v", err)
	}
	if len(rep.Errors) > 0 || rep.LeakedBytes > 0 || rep.CorruptBlocks > 0 {
		t.Fatalf("fsck: %s", strings.Join(rep.Errors, "; "))
	}
	return replayed
}
