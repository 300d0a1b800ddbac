package app

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-logr/logr"
	"google.golang.org/grpc"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/cobaltstore/cobalt/node-daemon/devices"
	"github.com/cobaltstore/cobalt/node-daemon/metrics"
	"github.com/cobaltstore/cobalt/node-daemon/pki"
	"github.com/cobaltstore/cobalt/node-daemon/replica"
	"github.com/cobaltstore/cobalt/node-daemon/server"
	"github.com/cobaltstore/cobalt/node-daemon/volume"
)

// caPollInterval is how often the daemon looks for the CA Secret until the operator created it.
const caPollInterval = 2 * time.Second

// node is the Runnable that prepares stores, serves them and shuts them down.
type node struct {
	cfg         *Config
	sel         devices.Selection
	clusterID   [16]byte
	engine      Engine
	apiReader   client.Reader
	log         logr.Logger
	grpcMetrics *metrics.GRPC
	stores      *server.Stores

	// prepared is closed once every device was inspected and prepared.
	prepared chan struct{}
	// published is closed once the gRPC server listens and endpoint() returns its address, so the
	// heartbeat publishes it at once instead of at its next tick.
	published chan struct{}
	// serving is true while the gRPC server accepts calls.
	serving atomic.Bool
	// stopping is closed when the node starts closing its stores; users (the CSI node plugin)
	// stop using them then, and the stores are closed only once every user released them.
	stopping chan struct{}
	users    sync.WaitGroup

	// mu guards the fields in this struct.
	mu struct {
		sync.Mutex
		devices  []*device
		endpoint string
		closed   bool
		// stopped is true once stopping is closed: no new user may acquire the stores.
		stopped bool
		// replicas is this node's replica side of replicated volumes, and peerTLS the mTLS client
		// configuration it reaches other nodes' replica sides with; both are set once the gRPC
		// server is made (before published is closed).
		replicas *replica.Node
		peerTLS  *tls.Config
	}
}

func newNode(cfg *Config, sel devices.Selection, clusterID [16]byte, engine Engine, apiReader client.Reader, log logr.Logger, gm *metrics.GRPC) *node {
	return &node{cfg: cfg, sel: sel, clusterID: clusterID, engine: engine, apiReader: apiReader, log: log, grpcMetrics: gm,
		stores: server.NewStores(), prepared: make(chan struct{}), published: make(chan struct{}), stopping: make(chan struct{})}
}

// Start implements manager.Runnable.
func (n *node) Start(ctx context.Context) error {
	guard := formatGuard{reader: n.apiReader, key: n.cfg.Cluster()}
	p := &preparer{cfg: n.cfg, sel: n.sel, clusterID: n.clusterID, engine: n.engine, refuseMkfs: guard.refusal}
	devs, err := p.prepareAll(logr.NewContext(ctx, n.log))
	n.register(ctx, devs)
	close(n.prepared)
	if err != nil {
		n.waitUsers()
		return errors.Join(fmt.Errorf("prepare devices: %w", err), n.closeStores())
	}
	serveErr := n.serve(ctx)
	n.waitUsers()
	return errors.Join(serveErr, n.closeStores())
}

// acquireStores registers a user of the stores (the CSI node plugin) and returns the channel
// closed when it must stop using them, or false when the node is already stopping. The user
// calls releaseStores once it no longer touches any store.
func (n *node) acquireStores() (<-chan struct{}, bool) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.mu.stopped {
		return nil, false
	}
	n.users.Add(1)
	return n.stopping, true
}

func (n *node) releaseStores() { n.users.Done() }

// waitUsers tells the stores' users to stop and waits until they have.
func (n *node) waitUsers() {
	n.mu.Lock()
	if !n.mu.stopped {
		n.mu.stopped = true
		close(n.stopping)
	}
	n.mu.Unlock()
	n.users.Wait()
}

// register opens the volume layer of each mounted store and adds it to the served set.
func (n *node) register(ctx context.Context, devs []*device) {
	for _, d := range devs {
		log := n.log.WithValues("device", d.decision.Path)
		if d.store == nil {
			log.Info("device not used", "reason", d.reason)
			continue
		}
		vm, err := volume.Open(ctx, d.store)
		if err == nil {
			err = n.stores.Add(&server.Mounted{Store: d.store, Volumes: vm, DevicePath: d.decision.Path})
		}
		if err != nil {
			d.reason = "cannot serve the store: " + err.Error()
			if cerr := d.store.Close(); cerr != nil {
				log.Error(cerr, "close store")
			}
			d.store = nil
			log.Error(err, "device not used")
			continue
		}
		snap := d.store.Snapshot()
		log.Info("store mounted", "store", d.store.UUID(), "action", d.decision.Action,
			"metadataOnDevice", snap.MetadataOnDevice, "metadata", snap.MetadataLocation)
	}
	n.mu.Lock()
	n.mu.devices = devs
	n.mu.Unlock()
}

// serve runs the gRPC server until ctx ends, then stops it gracefully within the grace period.
func (n *node) serve(ctx context.Context) error {
	tlsConfig, peerTLS, err := n.serverTLS(ctx)
	if err != nil || ctx.Err() != nil {
		return err
	}
	srv, err := server.New(n.stores, tlsConfig, n.log.WithName("grpc"),
		grpc.ChainUnaryInterceptor(n.grpcMetrics.Unary), grpc.ChainStreamInterceptor(n.grpcMetrics.Stream))
	if err != nil {
		return err
	}
	lis, err := net.Listen("tcp", n.cfg.GRPCAddr)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", n.cfg.GRPCAddr, err)
	}
	if err := os.Remove(n.cfg.HealthSocket); err != nil && !errors.Is(err, os.ErrNotExist) {
		lis.Close()
		return fmt.Errorf("remove stale health socket: %w", err)
	}
	hlis, err := net.Listen("unix", n.cfg.HealthSocket)
	if err != nil {
		lis.Close()
		return fmt.Errorf("listen on %s: %w", n.cfg.HealthSocket, err)
	}
	port := lis.Addr().(*net.TCPAddr).Port
	n.mu.Lock()
	n.mu.endpoint = net.JoinHostPort(n.advertiseHost(), strconv.Itoa(port))
	n.mu.replicas, n.mu.peerTLS = srv.Replicas(), peerTLS
	n.mu.Unlock()

	healthDone := make(chan error, 1)
	go func() { healthDone <- srv.ServeHealth(ctx, hlis) }()
	srv.SetServing(true)
	n.serving.Store(true)
	// The listener accepts connections from here on (Serve picks them up), so the endpoint may be
	// published before Serve is called.
	close(n.published)
	n.log.Info("serving", "address", lis.Addr().String(), "endpoint", n.endpoint())

	// Bound the graceful stop: after ShutdownGrace, cut the remaining calls.
	stopped := make(chan struct{})
	go func() {
		select {
		case <-stopped:
		case <-ctx.Done():
			select {
			case <-stopped:
			case <-time.After(n.cfg.ShutdownGrace):
				n.log.Info("shutdown grace over: canceling in-flight calls")
				srv.Stop()
			}
		}
	}()
	err = srv.Serve(ctx, lis)
	n.serving.Store(false)
	close(stopped)
	return errors.Join(err, <-healthDone)
}

// serverTLS waits for the CA Secret and issues the daemon's serving certificate and its peer
// client certificate ("node-daemon-<node>"), with which the node serving a replicated volume
// reaches the other copies' nodes. Both are nil when ctx ends first.
func (n *node) serverTLS(ctx context.Context) (serving, peer *tls.Config, err error) {
	key := types.NamespacedName{Namespace: n.cfg.ClusterNamespace, Name: n.cfg.CASecret}
	for {
		ca, err := pki.LoadCASecret(ctx, n.apiReader, key)
		if err == nil {
			return n.issueTLS(ca)
		}
		if !apierrors.IsNotFound(err) {
			return nil, nil, fmt.Errorf("load CA: %w", err)
		}
		n.log.Info("waiting for the CA Secret", "secret", key.String())
		select {
		case <-ctx.Done():
			return nil, nil, nil
		case <-time.After(caPollInterval):
		}
	}
}

// issueTLS issues the daemon's serving and peer client configurations from ca.
func (n *node) issueTLS(ca *pki.CA) (serving, peer *tls.Config, err error) {
	now := time.Now()
	ips, dns := []net.IP{net.ParseIP("127.0.0.1")}, []string{n.cfg.NodeName, "localhost"}
	if ip := net.ParseIP(n.cfg.AdvertiseAddr); ip != nil {
		ips = append(ips, ip)
	} else if n.cfg.AdvertiseAddr != "" {
		dns = append(dns, n.cfg.AdvertiseAddr)
	}
	cert, err := ca.IssueServing(pki.ServingRequest{CommonName: n.cfg.NodeName, DNSNames: dns, IPs: ips, Now: now, Validity: pki.DefaultLeafValidity})
	if err != nil {
		return nil, nil, fmt.Errorf("issue serving certificate: %w", err)
	}
	if serving, err = pki.ServerTLSConfig(cert, ca.Pool()); err != nil {
		return nil, nil, err
	}
	client, err := ca.IssueClient("node-daemon-"+n.cfg.NodeName, now, pki.DefaultLeafValidity)
	if err != nil {
		return nil, nil, fmt.Errorf("issue peer client certificate: %w", err)
	}
	if peer, err = pki.ClientTLSConfig(client, ca.Pool(), ""); err != nil {
		return nil, nil, err
	}
	return serving, peer, nil
}

// peers returns this node's replica side and the mTLS configuration to reach other nodes'
// (nil until the gRPC server is made: wait for published).
func (n *node) peers() (*replica.Node, *tls.Config) {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.mu.replicas, n.mu.peerTLS
}

func (n *node) advertiseHost() string {
	if n.cfg.AdvertiseAddr != "" {
		return n.cfg.AdvertiseAddr
	}
	return n.cfg.NodeName
}

func (n *node) endpoint() string {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.mu.endpoint
}

// closeStores unregisters and closes every mounted store (flush deferred writes, unmount).
func (n *node) closeStores() error {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.mu.closed = true
	var errs []error
	for _, d := range n.mu.devices {
		if d.retired != nil {
			// Its device failed: closing it fails too (its deferred writes cannot be flushed).
			if err := d.retired.Close(); err != nil {
				n.log.Error(err, "close the store of a failed device", "store", d.retired.UUID(), "device", d.decision.Path)
			}
			continue
		}
		if d.store == nil {
			continue
		}
		n.stores.Remove(d.store.UUID())
		if err := d.store.Close(); err != nil {
			errs = append(errs, fmt.Errorf("close store %s on %s: %w", d.store.UUID(), d.decision.Path, err))
			continue
		}
		n.log.Info("store unmounted cleanly", "store", d.store.UUID(), "device", d.decision.Path)
	}
	return errors.Join(errs...)
}

// retireFailed takes every store whose device failed under it (its snapshot's health reason is
// metrics.HealthReasonDeviceFailed) out of service, as a restart would find it: removed from the
// served set, so new calls for it get NotFound, and its device reported not used with the failure
// as the reason, so the operator turns its Store not Ready and replaces its copies on other Stores
// after the replacement delay. The store stays open (calls in flight may still hold it) until
// closeStores. It returns the devices it retired.
func (n *node) retireFailed() []*device {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.mu.closed {
		return nil
	}
	var out []*device
	for _, d := range n.mu.devices {
		if d.store == nil {
			continue
		}
		snap := d.store.Snapshot()
		if snap.Health != metrics.HealthFailed || snap.HealthReason != metrics.HealthReasonDeviceFailed {
			continue
		}
		n.stores.Remove(d.store.UUID())
		d.retired, d.store = d.store, nil
		d.reason = fmt.Sprintf("store %s is no longer served: %s", d.retired.UUID(), snap.HealthMessage)
		n.log.Error(nil, "device failed: store no longer served", "device", d.decision.Path, "store", d.retired.UUID(), "reason", d.reason)
		out = append(out, d)
	}
	return out
}

// report is one device's state for the heartbeat.
type report struct {
	device *device
	snap   *metrics.StoreSnapshot
}

// reports returns the devices' current state, or nil once the stores are closed.
func (n *node) reports() []report {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.mu.closed {
		return nil
	}
	out := make([]report, 0, len(n.mu.devices))
	for _, d := range n.mu.devices {
		r := report{device: d}
		if d.store != nil {
			s := d.store.Snapshot()
			s.DevicePath = d.decision.Path
			r.snap = &s
		}
		out = append(out, r)
	}
	return out
}

// snapshots feeds the metrics collector.
func (n *node) snapshots() []metrics.StoreSnapshot {
	var out []metrics.StoreSnapshot
	for _, r := range n.reports() {
		if r.snap != nil {
			out = append(out, *r.snap)
		}
	}
	return out
}

// ready reports whether the daemon is serving its stores.
func (n *node) ready() error {
	select {
	case <-n.prepared:
	default:
		return errors.New("devices are being prepared")
	}
	if !n.serving.Load() {
		return errors.New("gRPC server is not serving")
	}
	return nil
}
