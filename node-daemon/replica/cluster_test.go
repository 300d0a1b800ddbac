package replica_test

import (
	"context"
	"crypto/tls"
	"errors"
	"net"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/go-logr/logr"
	"github.com/google/uuid"

	"github.com/cobaltstore/cobalt/node-daemon/app"
	"github.com/cobaltstore/cobalt/node-daemon/client"
	"github.com/cobaltstore/cobalt/node-daemon/engine"
	"github.com/cobaltstore/cobalt/node-daemon/pki"
	nodepb "github.com/cobaltstore/cobalt/node-daemon/proto"
	"github.com/cobaltstore/cobalt/node-daemon/replica"
	"github.com/cobaltstore/cobalt/node-daemon/server"
	"github.com/cobaltstore/cobalt/node-daemon/volume"
)

// cluster is a set of node daemon servers on loopback, each serving one file-backed engine store
// over mutual TLS with certificates of one CA, as a real cluster's daemons do.
type cluster struct {
	ca    *pki.CA
	nodes []*node
}

// node is one daemon of a cluster.
type node struct {
	name      string
	addr      string
	storeUUID string
	srv       *server.Server
	vols      *volume.Manager
	// stop stops the server at once (as a killed daemon), idempotent.
	stop func()
}

// newCluster starts n nodes with a storeSize-byte store each; everything stops at test cleanup.
func newCluster(t testing.TB, n int, storeSize int64) *cluster {
	t.Helper()
	ca, err := pki.NewCA("replica-test-ca", time.Now(), time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	c := &cluster{ca: ca}
	for i := range n {
		c.nodes = append(c.nodes, c.startNode(t, "node-"+string(rune('a'+i)), storeSize))
	}
	return c
}

func (c *cluster) startNode(t testing.TB, name string, storeSize int64) *node {
	t.Helper()
	ctx := context.Background()
	e := engine.New(engine.Settings{EngineConfig: app.EngineConfig{CacheType: "2q", MinAllocSize: 4096}})
	dev, id := filepath.Join(t.TempDir(), "dev.img"), uuid.NewString()
	clusterID := [16]byte(uuid.New()) // the store's label names its cluster, as the daemon's do
	if err := e.Mkfs(ctx, app.MkfsRequest{DevicePath: dev, UUID: id, CreateSize: storeSize, ClusterID: clusterID}); err != nil {
		t.Fatalf("mkfs %s: %v", name, err)
	}
	st, err := e.Open(ctx, app.OpenRequest{DevicePath: dev, ClusterID: clusterID})
	if err != nil {
		t.Fatalf("open store of %s: %v", name, err)
	}
	vm, err := volume.Open(ctx, st)
	if err != nil {
		t.Fatal(err)
	}
	stores := server.NewStores()
	if err := stores.Add(&server.Mounted{Store: st, Volumes: vm, DevicePath: dev}); err != nil {
		t.Fatal(err)
	}
	cert, err := c.ca.IssueServing(pki.ServingRequest{CommonName: name, DNSNames: []string{name}, IPs: []net.IP{net.ParseIP("127.0.0.1")}, Now: time.Now(), Validity: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	tlsCfg, err := pki.ServerTLSConfig(cert, c.ca.Pool())
	if err != nil {
		t.Fatal(err)
	}
	srv, err := server.New(stores, tlsCfg, logr.Discard())
	if err != nil {
		t.Fatal(err)
	}
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	sctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = srv.Serve(sctx, lis) // Serve reports the Stop of a killed node as an error
	}()
	var once sync.Once
	nd := &node{name: name, addr: lis.Addr().String(), storeUUID: id, srv: srv, vols: vm}
	nd.stop = func() {
		once.Do(func() {
			srv.Stop()
			cancel()
			<-done
		})
	}
	t.Cleanup(func() {
		nd.stop()
		if err := st.Close(); err != nil {
			t.Errorf("close store of %s: %v", name, err)
		}
	})
	return nd
}

// clientTLS issues a client certificate of the CA for a coordinator named name.
func (c *cluster) clientTLS(t testing.TB, name string) *tls.Config {
	t.Helper()
	cert, err := c.ca.IssueClient(name, time.Now(), time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := pki.ClientTLSConfig(cert, c.ca.Pool(), "")
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

// createVolume creates volume id on every node's store.
func (c *cluster) createVolume(t testing.TB, id string, size, stripe int64) {
	t.Helper()
	for _, n := range c.nodes {
		if _, err := n.vols.Create(context.Background(), id, size, stripe); err != nil {
			t.Fatalf("create %s on %s: %v", id, n.name, err)
		}
	}
}

// coordinate opens a coordinator of generation gen for volume id on node local, with the other
// listed nodes as remote replicas reached over mTLS.
func (c *cluster) coordinate(t testing.TB, id string, gen uint64, rec replica.InSyncRecorder, local *node, remotes ...*node) (*replica.Coordinator, error) {
	t.Helper()
	ctx := context.Background()
	tlsCfg := c.clientTLS(t, "coordinator-"+local.name)
	var rs []replica.Replica
	for _, r := range remotes {
		cl, err := client.Dial(r.addr, tlsCfg)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { cl.Close() })
		rem, err := replica.OpenRemote(ctx, cl.Replicas, r.name, &nodepb.VolumeRef{StoreUuid: r.storeUUID, VolumeId: id})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = rem.Close() })
		rs = append(rs, rem)
	}
	return replica.Open(ctx, replica.Config{
		Generation:     gen,
		Local:          replica.NewLocal(local.srv.Replicas(), local.name, local.storeUUID, id),
		Remotes:        rs,
		Recorder:       rec,
		ReplicaTimeout: 10 * time.Second,
	})
}

// recorder is an InSyncRecorder that keeps what it was told.
type recorder struct {
	mu      sync.Mutex
	dropped map[string]string
}

func (r *recorder) DropReplica(_ context.Context, name, reason string) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.dropped == nil {
		r.dropped = make(map[string]string)
	}
	if _, ok := r.dropped[name]; ok {
		return errors.New("dropped twice: " + name)
	}
	r.dropped[name] = reason
	return nil
}

func (r *recorder) drops() map[string]string {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make(map[string]string)
	for k, v := range r.dropped {
		out[k] = v
	}
	return out
}
