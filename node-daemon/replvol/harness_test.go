package replvol

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"sync"
	"testing"
	"time"

	"github.com/go-logr/logr/testr"
	"github.com/onsi/gomega"
	"google.golang.org/grpc"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"

	"github.com/cobaltstore/cobalt/api/v1alpha1"
	nodeclient "github.com/cobaltstore/cobalt/node-daemon/client"
	"github.com/cobaltstore/cobalt/node-daemon/csinode"
	"github.com/cobaltstore/cobalt/node-daemon/objstore/memstore"
	nodepb "github.com/cobaltstore/cobalt/node-daemon/proto"
	"github.com/cobaltstore/cobalt/node-daemon/replica"
	"github.com/cobaltstore/cobalt/node-daemon/server/servertest"
)

const (
	testNS      = "apps"
	testVolume  = "data"
	testUID     = "5d1f0c1e-0000-4000-8000-000000000001"
	testVolSize = 8 << 20
	regionSize  = replica.DefaultRegionSize
)

// testNode is one node daemon serving one in-memory store over mTLS on loopback.
type testNode struct {
	name, store, uuid string
	env               *servertest.Env
	rot               *rotStore // the node's store, where a test rots blocks
}

// replicas is the node's fenced replica I/O.
func (n *testNode) replicas() *replica.Node { return n.env.Server.Replicas() }

// read reads the node's copy of the test volume directly at generation gen.
func (n *testNode) read(t *testing.T, gen uint64, off, length int64) []byte {
	t.Helper()
	b, err := n.replicas().Read(context.Background(), replica.Ref{StoreUUID: n.uuid, Volume: testUID}, gen, off, length)
	if err != nil {
		t.Fatalf("read the copy on %s: %v", n.store, err)
	}
	return b
}

// dialer reaches the test nodes; a node set down refuses dials and fails every request sent on
// its streams (as a dead daemon), until set up again.
type dialer struct {
	mu    sync.Mutex
	tls   map[string]*tls.Config
	down  map[string]bool
	dials map[string]int
}

func (d *dialer) setDown(endpoint string, down bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.down[endpoint] = down
}

func (d *dialer) isDown(endpoint string) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.down[endpoint]
}

func (d *dialer) Dial(_ context.Context, endpoint string) (nodepb.ReplicaServiceClient, io.Closer, error) {
	d.mu.Lock()
	cfg, down := d.tls[endpoint], d.down[endpoint]
	d.dials[endpoint]++
	d.mu.Unlock()
	if cfg == nil {
		return nil, nil, fmt.Errorf("no node at %s", endpoint)
	}
	if down {
		return nil, nil, fmt.Errorf("dial %s: connection refused (node down)", endpoint)
	}
	rc, conn, err := NodeAPIDialer{TLS: cfg}.Dial(context.Background(), endpoint)
	if err != nil {
		return nil, nil, err
	}
	return faultClient{ReplicaServiceClient: rc, d: d, endpoint: endpoint}, conn, nil
}

type faultClient struct {
	nodepb.ReplicaServiceClient
	d        *dialer
	endpoint string
}

func (f faultClient) Replicate(ctx context.Context, opts ...grpc.CallOption) (nodepb.ReplicaService_ReplicateClient, error) {
	s, err := f.ReplicaServiceClient.Replicate(ctx, opts...)
	if err != nil {
		return nil, err
	}
	return faultStream{ReplicaService_ReplicateClient: s, d: f.d, endpoint: f.endpoint}, nil
}

type faultStream struct {
	nodepb.ReplicaService_ReplicateClient
	d        *dialer
	endpoint string
}

func (s faultStream) Send(req *nodepb.ReplicaRequest) error {
	if s.d.isDown(s.endpoint) {
		return errors.New("injected: the node is down")
	}
	return s.ReplicaService_ReplicateClient.Send(req)
}

// harness is a cluster of test nodes, the first being the coordinator's, with a fake API server.
type harness struct {
	nodes  []*testNode
	dialer *dialer
	client client.Client
	events *eventLog // what the Volumes of h.volumes write
}

// newHarness starts n nodes, each with the test volume created on its store (size bytes each;
// 0 for testVolSize).
func newHarness(t *testing.T, n int) *harness {
	t.Helper()
	h := &harness{events: &eventLog{}, dialer: &dialer{tls: map[string]*tls.Config{}, down: map[string]bool{}, dials: map[string]int{}}}
	var objs []client.Object
	for i := range n {
		nd := &testNode{name: fmt.Sprintf("node-%c", 'a'+i), store: fmt.Sprintf("store-%c", 'a'+i), uuid: fmt.Sprintf("00000000-0000-4000-8000-00000000000%d", i+1)}
		nd.rot = &rotStore{Store: memstore.New(nd.uuid, 1<<30)}
		nd.env = servertest.Serve(t, nd.rot)
		cfg := nd.env.ClientTLS(t, "coordinator")
		h.dialer.tls[nd.env.Addr] = cfg
		cl, err := nodeclient.Dial(nd.env.Addr, cfg)
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		_, err = cl.Volumes.CreateVolume(ctx, &nodepb.CreateVolumeRequest{Ref: &nodepb.VolumeRef{StoreUuid: nd.uuid, VolumeId: testUID}, SizeBytes: testVolSize})
		cancel()
		if cerr := cl.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			t.Fatalf("create the volume on %s: %v", nd.store, err)
		}
		h.nodes = append(h.nodes, nd)
		objs = append(objs, &v1alpha1.Store{
			ObjectMeta: metav1.ObjectMeta{Name: nd.store, Annotations: map[string]string{v1alpha1.AnnotationNodeEndpoint: nd.env.Addr}},
			Spec:       v1alpha1.StoreSpec{NodeName: nd.name},
			Status:     v1alpha1.StoreStatus{UUID: nd.uuid},
		})
	}
	scheme := runtime.NewScheme()
	if err := v1alpha1.AddToScheme(scheme); err != nil {
		t.Fatal(err)
	}
	h.client = fake.NewClientBuilder().WithScheme(scheme).WithObjects(objs...).WithStatusSubresource(&v1alpha1.Volume{}, &v1alpha1.Store{}).Build()
	return h
}

// copySpec is one copy of the test Volume: its node index, whether the spec places it (false: a
// copy moving away) and its state.
type copySpec struct {
	node   int
	inSpec bool
	state  v1alpha1.ReplicaState
}

// createVolume creates the test Volume with copies and the attachment (node 0, gen).
func (h *harness) createVolume(t *testing.T, gen int64, copies ...copySpec) {
	t.Helper()
	vol := &v1alpha1.Volume{
		ObjectMeta: metav1.ObjectMeta{Namespace: testNS, Name: testVolume, UID: types.UID(testUID)},
		Spec:       v1alpha1.VolumeSpec{Size: resource.MustParse("8Mi"), Replicas: int32(len(copies))},
	}
	var reps []v1alpha1.VolumeReplica
	for _, c := range copies {
		nd := h.nodes[c.node]
		if c.inSpec {
			if vol.Spec.StoreName == "" {
				vol.Spec.StoreName = nd.store
			} else {
				vol.Spec.ReplicaStoreNames = append(vol.Spec.ReplicaStoreNames, nd.store)
			}
		}
		size := resource.MustParse("8Mi")
		reps = append(reps, v1alpha1.VolumeReplica{Store: nd.store, Node: nd.name, State: c.state, AllocatedSize: &size})
	}
	ctx := context.Background()
	if err := h.client.Create(ctx, vol); err != nil {
		t.Fatal(err)
	}
	vol.Status = v1alpha1.VolumeStatus{Replicas: reps, InSyncReplicas: countInSync(reps), Attachment: &v1alpha1.VolumeAttachmentStatus{Node: h.nodes[0].name, Generation: gen}}
	if err := h.client.Status().Update(ctx, vol); err != nil {
		t.Fatal(err)
	}
}

// volume reads the test Volume.
func (h *harness) volume(t *testing.T) *v1alpha1.Volume {
	t.Helper()
	var vol v1alpha1.Volume
	if err := h.client.Get(context.Background(), types.NamespacedName{Namespace: testNS, Name: testVolume}, &vol); err != nil {
		t.Fatal(err)
	}
	return &vol
}

// copyStatus returns the status entry of node i's copy.
func (h *harness) copyStatus(t *testing.T, i int) v1alpha1.VolumeReplica {
	t.Helper()
	vol := h.volume(t)
	c := copyOf(&vol.Status, h.nodes[i].store)
	if c == nil {
		t.Fatalf("no status entry for %s", h.nodes[i].store)
	}
	return *c
}

// volumes returns Volumes on node 0 (the coordinator's node).
func (h *harness) volumes(t *testing.T, interval time.Duration) *Volumes {
	t.Helper()
	local := h.nodes[0]
	v, err := New(Options{
		Client:         h.client,
		APIReader:      h.client,
		NodeName:       local.name,
		Node:           local.replicas(),
		Local:          func(uuid string) bool { return uuid == local.uuid },
		Dialer:         h.dialer,
		SyncInterval:   interval,
		ReplicaTimeout: 20 * time.Second,
		Events:         h.events,
		Log:            testr.New(t),
	})
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// open opens the test volume at gen and closes it at cleanup.
func (h *harness) open(t *testing.T, v *Volumes, gen uint64) *backend {
	t.Helper()
	be, _, err := v.Open(context.Background(), openReq(gen))
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	b := be.(*backend)
	t.Cleanup(func() {
		if err := b.Close(context.Background()); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return b
}

func openReq(gen uint64) csinode.ReplicatedOpen {
	return csinode.ReplicatedOpen{Volume: testNS + "/" + testVolume, VolumeUID: testUID, Generation: gen}
}

// pattern is data of length n that depends on seed.
func pattern(seed byte, n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = seed + byte(i*7)
	}
	return b
}

// waitFor polls cond until it holds (a minute at most).
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	gomega.NewWithT(t).Eventually(cond).WithTimeout(time.Minute).WithPolling(20*time.Millisecond).Should(gomega.BeTrue(), what)
}

// checkCopy fails unless node i's copy holds want at off.
func (h *harness) checkCopy(t *testing.T, i int, gen uint64, off int64, want []byte) {
	t.Helper()
	if got := h.nodes[i].read(t, gen, off, int64(len(want))); !bytes.Equal(got, want) {
		t.Fatalf("copy on %s at %d does not hold the written data", h.nodes[i].store, off)
	}
}

// stat returns the ReplicationStat of node i's copy.
func stat(t *testing.T, v *Volumes, store string) ReplicationStat {
	t.Helper()
	for _, s := range v.ReplicationStats() {
		if s.Store == store {
			return s
		}
	}
	t.Fatalf("no ReplicationStat for %s", store)
	return ReplicationStat{}
}
