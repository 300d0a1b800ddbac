package app

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/go-logr/logr/testr"
	"github.com/google/uuid"
	"github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	ctrlmetrics "sigs.k8s.io/controller-runtime/pkg/metrics"

	storagev1alpha1 "github.com/cobaltstore/cobalt/api/v1alpha1"
	nodeclient "github.com/cobaltstore/cobalt/node-daemon/client"
	"github.com/cobaltstore/cobalt/node-daemon/pki"
	nodepb "github.com/cobaltstore/cobalt/node-daemon/proto"
)

// testCluster is a namespace with a CA Secret, as the operator prepares it.
type testCluster struct {
	namespace string
	ca        *pki.CA
}

func newTestCluster(t *testing.T) *testCluster {
	t.Helper()
	ctx := context.Background()
	ns := "cobalt-" + strings.ToLower(uuid.NewString()[:8])
	if err := k8sClient.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}); err != nil {
		t.Fatal(err)
	}
	ca, err := pki.EnsureCASecret(ctx, k8sClient, types.NamespacedName{Namespace: ns, Name: "cobalt-ca"}, time.Now())
	if err != nil {
		t.Fatalf("EnsureCASecret: %v", err)
	}
	again, err := pki.EnsureCASecret(ctx, k8sClient, types.NamespacedName{Namespace: ns, Name: "cobalt-ca"}, time.Now())
	if err != nil || !again.Cert.Equal(ca.Cert) {
		t.Fatalf("second EnsureCASecret returned another CA (%v)", err)
	}
	return &testCluster{namespace: ns, ca: ca}
}

// testClusterName is the name of the StorageCluster of every test namespace.
const testClusterName = "test"

// applyCluster creates or updates the namespace's StorageCluster with spec, as a user would.
func (tc *testCluster) applyCluster(t *testing.T, spec storagev1alpha1.StorageClusterSpec) *storagev1alpha1.StorageCluster {
	t.Helper()
	ctx := context.Background()
	sc := &storagev1alpha1.StorageCluster{}
	err := k8sClient.Get(ctx, types.NamespacedName{Namespace: tc.namespace, Name: testClusterName}, sc)
	switch {
	case apierrors.IsNotFound(err):
		sc = &storagev1alpha1.StorageCluster{ObjectMeta: metav1.ObjectMeta{Namespace: tc.namespace, Name: testClusterName}, Spec: spec}
		err = k8sClient.Create(ctx, sc)
	case err == nil:
		sc.Spec = spec
		err = k8sClient.Update(ctx, sc)
	}
	if err != nil {
		t.Fatalf("apply StorageCluster: %v", err)
	}
	return sc
}

// config returns a daemon configuration for node and makes the namespace's StorageCluster name
// the given device files, which share one directory: the spec names them under /dev/, and the
// daemon finds them in that directory (Config.DevDir).
func (tc *testCluster) config(t *testing.T, node, stateDir string, paths ...string) *Config {
	t.Helper()
	cfg := tc.baseConfig(node, stateDir)
	var spec storagev1alpha1.StorageClusterSpec
	for _, p := range paths {
		if dir := filepath.Dir(p); spec.Devices.Paths == nil {
			cfg.DevDir = dir
		} else if dir != cfg.DevDir {
			t.Fatalf("device files %v are not in one directory", paths)
		}
		spec.Devices.Paths = append(spec.Devices.Paths, "/dev/"+filepath.Base(p))
	}
	tc.applyCluster(t, spec)
	return cfg
}

// baseConfig is a daemon configuration for node, with local addresses and short intervals.
func (tc *testCluster) baseConfig(node, stateDir string) *Config {
	cfg := DefaultConfig()
	cfg.ClusterNamespace, cfg.ClusterName, cfg.NodeName = tc.namespace, testClusterName, node
	cfg.StateDir = stateDir
	cfg.MinDeviceSize = 32 << 20
	cfg.GRPCAddr, cfg.AdvertiseAddr = "127.0.0.1:0", "127.0.0.1"
	cfg.MetricsAddr, cfg.ProbeAddr = "0", "0"
	cfg.HeartbeatInterval = 200 * time.Millisecond
	cfg.ShutdownGrace = 5 * time.Second
	return &cfg
}

// client dials the daemon serving the Store with the operator's certificate.
func (tc *testCluster) client(t *testing.T, endpoint string) *nodeclient.Client {
	t.Helper()
	cert, err := tc.ca.IssueClient("cobalt-operator", time.Now(), time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := pki.ClientTLSConfig(cert, tc.ca.Pool(), "")
	if err != nil {
		t.Fatal(err)
	}
	c, err := nodeclient.Dial(endpoint, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// running is a daemon started in-process.
type running struct {
	cancel context.CancelFunc
	done   chan error
}

func startDaemon(t *testing.T, cfg *Config, eng Engine) *running {
	t.Helper()
	mgr, err := NewManager(context.Background(), restConfig, cfg, func(EngineConfig) Engine { return eng }, testr.New(t))
	if err != nil {
		t.Fatalf("NewManager: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	r := &running{cancel: cancel, done: make(chan error, 1)}
	go func() { r.done <- mgr.Start(ctx) }()
	t.Cleanup(func() { r.stop(t) })
	return r
}

// stop cancels the daemon (as SIGTERM does) and waits for it; it returns how long that took.
func (r *running) stop(t *testing.T) time.Duration {
	t.Helper()
	start := time.Now()
	r.cancel()
	select {
	case err, ok := <-r.done:
		if ok && err != nil {
			t.Errorf("daemon returned %v", err)
		}
		if ok {
			close(r.done)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("daemon did not stop within 30s")
	}
	return time.Since(start)
}

func getStore(name string) (*storagev1alpha1.Store, error) {
	var st storagev1alpha1.Store
	err := k8sClient.Get(context.Background(), types.NamespacedName{Name: name}, &st)
	return &st, err
}

// readyStore waits until the Store of node/path reports a capacity and an endpoint.
func readyStore(t *testing.T, node, path string) *storagev1alpha1.Store {
	t.Helper()
	var st *storagev1alpha1.Store
	gomega.NewWithT(t).Eventually(func() error {
		var err error
		st, err = getStore(storeName(node, path))
		if err != nil {
			return err
		}
		if st.Status.Capacity == nil || st.Status.UUID == "" || st.Annotations[storagev1alpha1.AnnotationNodeEndpoint] == "" {
			return errors.New("store not reported yet")
		}
		return nil
	}, 20*time.Second, 50*time.Millisecond).Should(gomega.Succeed())
	return st
}

func sparseFile(t *testing.T, dir, name string, size int64, at int64, content []byte) string {
	t.Helper()
	path := filepath.Join(dir, name)
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := f.Truncate(size); err != nil {
		t.Fatal(err)
	}
	if content != nil {
		if _, err := f.WriteAt(content, at); err != nil {
			t.Fatal(err)
		}
	}
	return path
}

func TestDaemonPreparesDevicesReportsStoresAndRestarts(t *testing.T) {
	tc := newTestCluster(t)
	devDir, stateDir := t.TempDir(), t.TempDir()
	ext4 := binary.LittleEndian.AppendUint16(nil, 0xEF53)
	good := sparseFile(t, devDir, "good.img", 128<<20, 0, nil)
	fsDev := sparseFile(t, devDir, "fs.img", 128<<20, 1024+56, ext4)
	small := sparseFile(t, devDir, "small.img", 8<<20, 0, nil)
	eng := newMemEngine()
	cfg := tc.config(t, "node-a", stateDir, good, fsDev, small)
	d := startDaemon(t, cfg, eng)

	st := readyStore(t, "node-a", good)
	if st.Status.Capacity.Value() <= 0 || st.Spec.DevicePath != good || st.Spec.NodeName != "node-a" || st.Labels[storagev1alpha1.LabelNodeName] != "node-a" {
		t.Fatalf("store = %+v", st)
	}
	if st.Status.Cache == nil || st.Status.Cache.Hits != 3 || st.Status.LastHeartbeat == nil {
		t.Fatalf("store status lacks cache stats or heartbeat: %+v", st.Status)
	}
	if m := st.Status.Metadata; m == nil || m.Placement != storagev1alpha1.MetadataOnDevice || !strings.HasPrefix(m.Location, "device region [") {
		t.Fatalf("store status metadata = %+v, want on the device", m)
	}
	for path, want := range map[string]string{fsDev: "carries ext2", small: "too small"} {
		gomega.NewWithT(t).Eventually(func() error {
			s, err := getStore(storeName("node-a", path))
			if err != nil {
				return err
			}
			if !strings.Contains(s.Status.NotUsedReason, want) {
				return errors.New("reason " + s.Status.NotUsedReason)
			}
			if s.Annotations[storagev1alpha1.AnnotationNodeEndpoint] != "" {
				return errors.New("skipped device advertises an endpoint")
			}
			return nil
		}, 10*time.Second, 50*time.Millisecond).Should(gomega.Succeed())
	}
	// The store's engine metrics are exported through the Manager's Prometheus registry.
	gomega.NewWithT(t).Eventually(func() error {
		families, err := ctrlmetrics.Registry.Gather()
		if err != nil {
			return err
		}
		for _, f := range families {
			if f.GetName() != "cobalt_store_capacity_bytes" {
				continue
			}
			for _, m := range f.GetMetric() {
				for _, l := range m.GetLabel() {
					if l.GetName() == "store" && l.GetValue() == st.Status.UUID && m.GetGauge().GetValue() > 0 {
						return nil
					}
				}
			}
		}
		return errors.New("no cobalt_store_capacity_bytes for the store")
	}, 10*time.Second, 50*time.Millisecond).Should(gomega.Succeed())
	// The outcome of each device is an event on its Store.
	for path, reason := range map[string]string{good: "StoreCreated", fsDev: "DeviceNotUsed", small: "DeviceNotUsed"} {
		name := storeName("node-a", path)
		gomega.NewWithT(t).Eventually(func() error {
			var evs eventsv1.EventList
			if err := k8sClient.List(context.Background(), &evs); err != nil {
				return err
			}
			for _, ev := range evs.Items {
				if ev.Regarding.Name == name && ev.Reason == reason {
					return nil
				}
			}
			return fmt.Errorf("no %s event for Store %s", reason, name)
		}, 10*time.Second, 50*time.Millisecond).Should(gomega.Succeed())
	}
	// The heartbeat advances.
	first := st.Status.LastHeartbeat.Time
	gomega.NewWithT(t).Eventually(func() error {
		s, err := getStore(st.Name)
		if err != nil {
			return err
		}
		if !s.Status.LastHeartbeat.After(first) {
			return errors.New("heartbeat did not advance")
		}
		return nil
	}, 10*time.Second, 50*time.Millisecond).Should(gomega.Succeed())

	// Data through the volume API, then a restart: the store is mounted again, not re-made.
	ctx := context.Background()
	c := tc.client(t, st.Annotations[storagev1alpha1.AnnotationNodeEndpoint])
	ref := &nodepb.VolumeRef{StoreUuid: st.Status.UUID, VolumeId: "vol-1"}
	if _, err := c.Volumes.CreateVolume(ctx, &nodepb.CreateVolumeRequest{Ref: ref, SizeBytes: 16 << 20}); err != nil {
		t.Fatalf("CreateVolume: %v", err)
	}
	data := bytes.Repeat([]byte("restart!"), 4096)
	if _, err := c.Volumes.Write(ctx, &nodepb.WriteRequest{Ref: ref, Offset: 12345, Data: data}); err != nil {
		t.Fatalf("Write: %v", err)
	}
	d.stop(t)
	if eng.closed[st.Status.UUID] != 1 {
		t.Fatalf("store closed %d times at shutdown, want 1", eng.closed[st.Status.UUID])
	}

	startDaemon(t, cfg, eng)
	gomega.NewWithT(t).Eventually(func() error {
		s, err := getStore(st.Name)
		if err != nil {
			return err
		}
		if ep := s.Annotations[storagev1alpha1.AnnotationNodeEndpoint]; ep == "" || ep == st.Annotations[storagev1alpha1.AnnotationNodeEndpoint] {
			return errors.New("endpoint not updated after restart")
		}
		st = s
		return nil
	}, 20*time.Second, 50*time.Millisecond).Should(gomega.Succeed())
	gomega.NewWithT(t).Eventually(func() error {
		var evs eventsv1.EventList
		if err := k8sClient.List(context.Background(), &evs); err != nil {
			return err
		}
		for _, ev := range evs.Items {
			if ev.Regarding.Name == st.Name && ev.Reason == "StoreMounted" {
				return nil
			}
		}
		return errors.New("no StoreMounted event after the restart")
	}, 10*time.Second, 50*time.Millisecond).Should(gomega.Succeed())
	if eng.mkfs != 1 {
		t.Fatalf("mkfs ran %d times, want 1 (the restart must mount the existing store)", eng.mkfs)
	}
	c2 := tc.client(t, st.Annotations[storagev1alpha1.AnnotationNodeEndpoint])
	got, err := c2.Volumes.Read(ctx, &nodepb.ReadRequest{Ref: ref, Offset: 12345, Length: int64(len(data))})
	if err != nil || !bytes.Equal(got.GetData(), data) {
		t.Fatalf("data after restart differs (err %v)", err)
	}
}
