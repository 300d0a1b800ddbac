package controller

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/go-logr/logr"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/clock"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/cobaltstore/cobalt/api/v1alpha1"
	"github.com/cobaltstore/cobalt/controllers"
	"github.com/cobaltstore/cobalt/test/testenv"
)

// The package's envtest tests share one kube-apiserver and etcd (testenv) and one manager running
// the operator's real Store and Volume reconcilers with an in-memory NodeClient (nodes), and a
// fake Snapshot reconciler (snapshots, snapshotter_test.go) playing the operator's. Each test
// makes its own namespace for Volumes and its own nodes and Stores (Stores are cluster-scoped), so
// tests do not see each other's. testClient reads the API server directly.
var (
	testClient client.Client
	testMgr    ctrl.Manager
	nodes      *memNodeClient
	snapshots  *fakeSnapshotter
	testLog    = logr.Discard()
)

// testCluster is the StorageCluster every test Store belongs to: placement skips Stores whose
// cluster is missing.
var testCluster = v1alpha1.ClusterReference{Namespace: "cobalt-csi-test", Name: "test"}

func TestMain(m *testing.M) {
	os.Exit(testenv.Main(m, testenv.Options{}, startOperator))
}

// startOperator runs the Store and Volume reconcilers, and the fake Snapshot reconciler, against
// the test API server.
func startOperator(ctx context.Context, env *testenv.Env) error {
	testClient = env.Client
	mgr, err := env.NewManager(ctrl.Options{})
	if err != nil {
		return err
	}
	nodes = newMemNodeClient()
	snapshots = newFakeSnapshotter(env.Client)
	const timeout = 10 * time.Minute
	if err := errors.Join(
		controllers.SetupIndexes(ctx, mgr),
		(&controllers.StoreReconciler{Client: mgr.GetClient(), Recorder: mgr.GetEventRecorder("store-controller"),
			Clock: clock.RealClock{}, HeartbeatTimeout: timeout}).SetupWithManager(mgr),
		(&controllers.VolumeReconciler{Client: mgr.GetClient(), Recorder: mgr.GetEventRecorder("volume-controller"),
			Nodes: nodes, Clock: clock.RealClock{}, HeartbeatTimeout: timeout}).SetupWithManager(mgr),
		snapshots.SetupWithManager(mgr),
	); err != nil {
		return err
	}
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: testCluster.Namespace}}
	sc := &v1alpha1.StorageCluster{
		ObjectMeta: metav1.ObjectMeta{Namespace: testCluster.Namespace, Name: testCluster.Name},
		Spec: v1alpha1.StorageClusterSpec{Devices: v1alpha1.DeviceSelection{
			File: &v1alpha1.FileDevice{Size: resource.MustParse("1Gi")}}},
	}
	if err := errors.Join(testClient.Create(ctx, ns), testClient.Create(ctx, sc)); err != nil {
		return err
	}
	if err := env.StartManager(mgr); err != nil {
		return err
	}
	testMgr = mgr
	return nil
}

// newTestServer returns a Server on a fresh namespace, through the manager's clients as the
// operator wires it.
func newTestServer(t *testing.T) (*Server, string) {
	t.Helper()
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{GenerateName: "csi-"}}
	if err := testClient.Create(t.Context(), ns); err != nil {
		t.Fatal(err)
	}
	s, err := New(Options{Client: testMgr.GetClient(), APIReader: testMgr.GetAPIReader(), Namespace: ns.Name,
		PollInterval: 50 * time.Millisecond, MaxWait: 20 * time.Second, Log: testLog})
	if err != nil {
		t.Fatal(err)
	}
	return s, ns.Name
}

// createStore creates a Store of class on node as the node daemon does (labels, the endpoint
// annotation, then a heartbeat with uuid, capacity and used) and waits until it is Schedulable.
func createStore(t *testing.T, name, node string, class v1alpha1.DeviceClass, capacity, used string) *v1alpha1.Store {
	t.Helper()
	g := NewWithT(t)
	ctx := t.Context()
	st := &v1alpha1.Store{
		ObjectMeta: metav1.ObjectMeta{Name: name,
			Labels: map[string]string{
				v1alpha1.LabelClusterName: testCluster.Name, v1alpha1.LabelClusterNamespace: testCluster.Namespace,
				v1alpha1.LabelNodeName: node, v1alpha1.LabelDeviceClass: string(class),
			},
			Annotations: map[string]string{v1alpha1.AnnotationNodeEndpoint: "10.0.0.7:7443"},
		},
		Spec: v1alpha1.StoreSpec{Cluster: testCluster, NodeName: node, DevicePath: "/dev/vdb", DeviceClass: class},
	}
	g.Expect(testClient.Create(ctx, st)).To(Succeed())
	// The heartbeat, retried: the Store reconciler adds its finalizer meanwhile.
	g.Eventually(func() error {
		if err := testClient.Get(ctx, client.ObjectKey{Name: name}, st); err != nil {
			return err
		}
		c, u := resource.MustParse(capacity), resource.MustParse(used)
		st.Status.UUID, st.Status.Capacity, st.Status.Used = "uuid-"+name, &c, &u
		st.Status.LastHeartbeat = &metav1.Time{Time: time.Now()}
		return testClient.Status().Update(ctx, st)
	}, 10*time.Second, 50*time.Millisecond).Should(Succeed())
	g.Eventually(func(g Gomega) {
		g.Expect(testClient.Get(ctx, client.ObjectKey{Name: name}, st)).To(Succeed())
		g.Expect(meta.IsStatusConditionTrue(st.Status.Conditions, v1alpha1.ConditionSchedulable)).To(BeTrue())
	}, 10*time.Second, 50*time.Millisecond).Should(Succeed())
	t.Cleanup(func() {
		// Volumes left on it would keep it (and the reconcilers) busy: the tests delete theirs.
		_ = testClient.Delete(context.Background(), st)
	})
	return st
}

// memNodeClient is an in-memory controllers.NodeClient: volume ID → allocated bytes per Store.
// A Store can be made to fail every call, like an unreachable node.
type memNodeClient struct {
	mu struct {
		sync.Mutex
		volumes map[string]map[string]int64 // store → volume ID → bytes
		failing map[string]error
	}
}

func newMemNodeClient() *memNodeClient {
	f := &memNodeClient{}
	f.mu.volumes = map[string]map[string]int64{}
	f.mu.failing = map[string]error{}
	return f
}

func (f *memNodeClient) CreateVolume(_ context.Context, st *v1alpha1.Store, vol *v1alpha1.Volume, _ controllers.ContentSource) (controllers.VolumeAllocation, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.mu.failing[st.Name]; err != nil {
		return controllers.VolumeAllocation{}, err
	}
	if f.mu.volumes[st.Name] == nil {
		f.mu.volumes[st.Name] = map[string]int64{}
	}
	id := vol.NodeVolumeID()
	if n, ok := f.mu.volumes[st.Name][id]; ok {
		return controllers.VolumeAllocation{AllocatedBytes: n}, nil
	}
	f.mu.volumes[st.Name][id] = vol.Spec.Size.Value()
	return controllers.VolumeAllocation{AllocatedBytes: vol.Spec.Size.Value()}, nil
}

func (f *memNodeClient) ResizeVolume(_ context.Context, st *v1alpha1.Store, vol *v1alpha1.Volume) (controllers.VolumeAllocation, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.mu.failing[st.Name]; err != nil {
		return controllers.VolumeAllocation{}, err
	}
	id := vol.NodeVolumeID()
	n, ok := f.mu.volumes[st.Name][id]
	if !ok {
		return controllers.VolumeAllocation{}, fmt.Errorf("volume %s not found on store %s", id, st.Name)
	}
	n = max(n, vol.Spec.Size.Value())
	f.mu.volumes[st.Name][id] = n
	return controllers.VolumeAllocation{AllocatedBytes: n}, nil
}

func (f *memNodeClient) DeleteVolume(_ context.Context, st *v1alpha1.Store, vol *v1alpha1.Volume) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.mu.failing[st.Name]; err != nil {
		return err
	}
	delete(f.mu.volumes[st.Name], vol.NodeVolumeID())
	return nil
}

// The Snapshot reconciler of these tests is fakeSnapshotter, which never calls the node: the
// snapshot calls exist for the interface, and say so if ever called.
var errNoSnapshots = errors.New("memNodeClient keeps no snapshots: the tests' Snapshot reconciler is fakeSnapshotter")

func (f *memNodeClient) CreateSnapshot(context.Context, *v1alpha1.Store, *v1alpha1.Volume, *v1alpha1.Snapshot) (controllers.SnapshotInfo, error) {
	return controllers.SnapshotInfo{}, errNoSnapshots
}

func (f *memNodeClient) GetSnapshot(context.Context, *v1alpha1.Store, *v1alpha1.Snapshot) (controllers.SnapshotInfo, error) {
	return controllers.SnapshotInfo{}, errNoSnapshots
}

func (f *memNodeClient) DeleteSnapshot(context.Context, *v1alpha1.Store, *v1alpha1.Snapshot) error {
	return errNoSnapshots
}

// Fail makes every call on store return err; nil heals it.
func (f *memNodeClient) Fail(store string, err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.mu.failing[store] = err
}

// Allocated is what store holds for the volume with that UID, and whether it holds it.
func (f *memNodeClient) Allocated(store, uid string) (int64, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	n, ok := f.mu.volumes[store][uid]
	return n, ok
}
