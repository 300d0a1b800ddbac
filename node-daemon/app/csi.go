package app

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"time"

	"github.com/container-storage-interface/spec/lib/go/csi"
	"github.com/go-logr/logr"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/events"
	"sigs.k8s.io/controller-runtime/pkg/client"

	storagev1alpha1 "github.com/cobaltstore/cobalt/api/v1alpha1"
	"github.com/cobaltstore/cobalt/csi/driver"
	"github.com/cobaltstore/cobalt/node-daemon/csinode"
	"github.com/cobaltstore/cobalt/node-daemon/frontend/fuseloop"
	"github.com/cobaltstore/cobalt/node-daemon/metrics"
	"github.com/cobaltstore/cobalt/node-daemon/replica"
	"github.com/cobaltstore/cobalt/node-daemon/replvol"
)

// probeTimeout bounds the liveness check's call of the CSI Probe.
const probeTimeout = 5 * time.Second

// csiPlugin is the Runnable that serves the CSI node plugin (package csinode) on
// Config.CSIEndpoint and registers it with kubelet. Start order: it waits until the node has
// prepared and registered its stores and serves the node API (replicated volumes need the
// node's replica side and peer certificate, package replvol), starts the FUSE + loop frontend
// (which cleans up after a daemon that died), re-serves every staged volume
// (csinode.Server.Recover), and only then serves CSI. It stops serving before the node closes
// its stores (node.acquireStores).
type csiPlugin struct {
	cfg  *Config
	node *node
	// client writes the status of the replicated Volumes this node serves; apiReader reads
	// Volumes and Stores uncached.
	client    client.Client
	apiReader client.Reader
	recorder  events.EventRecorder
	log       logr.Logger
	// serving is true while the CSI socket accepts calls.
	serving atomic.Bool
	// replicated serves the replicated volumes staged here, once the node API serves.
	replicated atomic.Pointer[replvol.Volumes]
}

// Start implements manager.Runnable.
func (p *csiPlugin) Start(ctx context.Context) error {
	// Replicated volumes need this node's replica side and its peer credentials, which exist
	// once the node API serves (after the stores are prepared).
	select {
	case <-p.node.published:
	case <-ctx.Done():
		return nil
	}
	stopping, ok := p.node.acquireStores()
	if !ok {
		return nil
	}
	defer p.node.releaseStores()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() {
		select {
		case <-stopping:
			cancel()
		case <-ctx.Done():
		}
	}()

	for _, dir := range []string{p.cfg.CSIStateDir, filepath.Dir(p.cfg.CSIFuseDir)} {
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return fmt.Errorf("CSI node plugin: %w", err)
		}
	}
	// Deferred first, so it runs last: the replicated volumes' coordinators close (a last flush,
	// the streams to other nodes) after the frontend's own last flush.
	var ns *csinode.Server
	defer func() {
		if ns == nil {
			return
		}
		cctx, ccancel := context.WithTimeout(context.Background(), p.cfg.ShutdownGrace)
		defer ccancel()
		if err := ns.Close(cctx); err != nil {
			p.log.Error(err, "close the replicated volumes served here (the next daemon serves them again)")
		}
	}()
	fe, err := fuseloop.New(ctx, fuseloop.Options{MountDir: p.cfg.CSIFuseDir, Log: p.log.WithName("frontend")})
	if err != nil {
		return fmt.Errorf("CSI node plugin: block-device frontend at %s: %w", p.cfg.CSIFuseDir, err)
	}
	defer func() {
		// Volumes still mounted stay served until this process exits; the next daemon re-serves them.
		cctx, ccancel := context.WithTimeout(context.Background(), p.cfg.ShutdownGrace)
		defer ccancel()
		if err := fe.Close(cctx); err != nil {
			p.log.Info("block-device frontend closed with devices in use (re-served by the next daemon)", "error", err.Error())
		}
	}()
	replicated, err := p.newReplicated()
	if err != nil {
		return fmt.Errorf("CSI node plugin: %w", err)
	}
	vols := &csinode.StoreVolumes{Stores: p.node.stores, ReadyFunc: p.node.ready}
	ns, err = csinode.New(csinode.Options{NodeName: p.cfg.NodeName, Volumes: vols, Replicated: replicated, Frontend: fe, StateDir: p.cfg.CSIStateDir, Log: p.log})
	if err != nil {
		return err
	}
	p.replicated.Store(replicated)
	defer p.replicated.Store(nil)
	for _, f := range ns.Recover(ctx) {
		p.reportRecoveryFailure(f)
	}
	lis, err := driver.Listen(p.cfg.CSIEndpoint)
	if err != nil {
		return err
	}
	srv := &driver.Server{
		Endpoint:    p.cfg.CSIEndpoint,
		Identity:    &driver.Identity{Ready: func(context.Context) error { return vols.Ready() }},
		Node:        ns,
		Log:         p.log.WithName("grpc"),
		StopTimeout: p.cfg.ShutdownGrace,
	}
	regDone := make(chan error, 1)
	if p.cfg.KubeletRegistrationDir != "" {
		sock, _ := driver.SocketPath(p.cfg.CSIEndpoint) // validated by Config.Validate
		reg := &csinode.Registration{Dir: p.cfg.KubeletRegistrationDir, Endpoint: sock, Log: p.log.WithName("registration")}
		go func() { regDone <- reg.Start(ctx) }()
	} else {
		regDone <- nil
	}
	p.serving.Store(true)
	err = srv.Serve(ctx, lis)
	p.serving.Store(false)
	cancel()
	return errors.Join(err, <-regDone)
}

// newReplicated builds what serves replicated volumes on this node: their copies here through
// the node's replica side, on other nodes through the node API with the daemon's peer
// certificate, their state in the Volumes' status.
func (p *csiPlugin) newReplicated() (*replvol.Volumes, error) {
	replicas, peerTLS := p.node.peers()
	var limiter replica.Limiter
	if p.cfg.ReplicaSyncRate > 0 {
		limiter = replica.NewByteLimiter(p.cfg.ReplicaSyncRate)
	}
	return replvol.New(replvol.Options{
		Client:    p.client,
		APIReader: p.apiReader,
		NodeName:  p.cfg.NodeName,
		Node:      replicas,
		Local: func(storeUUID string) bool {
			_, err := p.node.stores.Get(storeUUID)
			return err == nil
		},
		Dialer:        replvol.NodeAPIDialer{TLS: peerTLS},
		SyncInterval:  p.cfg.ReplicaSyncInterval,
		ScrubInterval: p.cfg.ReplicaScrubInterval,
		Limiter:       limiter,
		Events:        p.recorder,
		Log:           p.log.WithName("replicated"),
	})
}

// replicationStats is the replication collector's source: the copies of the replicated
// volumes this node serves now.
func (p *csiPlugin) replicationStats() []metrics.ReplicaStat {
	v := p.replicated.Load()
	if v == nil {
		return nil
	}
	stats := v.ReplicationStats()
	out := make([]metrics.ReplicaStat, 0, len(stats))
	for _, s := range stats {
		out = append(out, metrics.ReplicaStat{Volume: s.Volume, Store: s.Store, Node: s.Node, State: s.State, Generation: s.Generation,
			DirtyBytes: s.DirtyBytes, SyncedBytes: s.SyncedBytes, ComparedBytes: s.ComparedBytes,
			ScrubbedBytes: s.ScrubbedBytes, ScrubMismatches: s.ScrubMismatches, ScrubRepairedBytes: s.ScrubRepairedBytes, LastScrub: s.LastScrub})
	}
	return out
}

// reportRecoveryFailure logs (csinode did) and records an event on the Volume whose staged
// volume could not be served again.
func (p *csiPlugin) reportRecoveryFailure(f csinode.RecoveryFailure) {
	if p.recorder == nil || f.Volume == "" {
		return
	}
	ns, name, ok := strings.Cut(f.Volume, "/")
	if !ok || ns == "" || name == "" {
		return
	}
	v := &storagev1alpha1.Volume{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}}
	p.recorder.Eventf(v, nil, corev1.EventTypeWarning, "NotReServed", "Recover",
		"node daemon on %s restarted and could not serve CSI volume %s again; Pods using it get I/O errors until it is staged again: %v",
		p.cfg.NodeName, f.VolumeID, f.Err)
}

// healthz is the daemon's liveness check of the CSI node plugin: once it serves, its Identity
// Probe must answer ready on its own socket (the node daemon answers its liveness probe itself,
// with no livenessprobe sidecar). Before it serves — the stores are being prepared — it passes;
// readiness reports that phase.
func (p *csiPlugin) healthz(req *http.Request) error {
	if !p.serving.Load() {
		return nil
	}
	path, err := driver.SocketPath(p.cfg.CSIEndpoint)
	if err != nil {
		return err
	}
	conn, err := grpc.NewClient("unix://"+path, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return fmt.Errorf("CSI socket %s: %w", path, err)
	}
	defer conn.Close()
	ctx, cancel := context.WithTimeout(req.Context(), probeTimeout)
	defer cancel()
	resp, err := csi.NewIdentityClient(conn).Probe(ctx, &csi.ProbeRequest{})
	if err != nil {
		return fmt.Errorf("CSI Probe on %s: %w", path, err)
	}
	if !resp.GetReady().GetValue() {
		return fmt.Errorf("CSI Probe on %s: not ready", path)
	}
	return nil
}

// readyz reports whether the CSI node plugin serves.
func (p *csiPlugin) readyz(*http.Request) error {
	if !p.serving.Load() {
		return errors.New("CSI node plugin is not serving yet (stores being prepared, or staged volumes being re-served)")
	}
	return nil
}
