package app

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"time"

	"github.com/go-logr/logr"
	"github.com/prometheus/client_golang/prometheus"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/manager"
	ctrlmetrics "sigs.k8s.io/controller-runtime/pkg/metrics"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	storagev1alpha1 "github.com/cobaltstore/cobalt/api/v1alpha1"
	"github.com/cobaltstore/cobalt/node-daemon/metrics"
)

// NewEngine makes the Engine for the StorageCluster's engine settings.
type NewEngine func(EngineConfig) Engine

// NewManager builds the node daemon's Manager for cfg (validated). It reads the StorageCluster
// that cfg names from the API server, once: its spec gives the devices and, through newEngine,
// the engine. A StorageCluster that is missing or cannot be read is an error (the daemon exits;
// its DaemonSet restarts it), and so is a spec the daemon cannot use. The settings are fixed for
// the daemon's life: the operator rolls the DaemonSet when they change. Start the Manager with
// mgr.Start(ctx); canceling that context shuts the daemon down cleanly.
func NewManager(ctx context.Context, restConfig *rest.Config, cfg *Config, newEngine NewEngine, log logr.Logger) (manager.Manager, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	scheme := runtime.NewScheme()
	if err := errors.Join(clientgoscheme.AddToScheme(scheme), storagev1alpha1.AddToScheme(scheme)); err != nil {
		return nil, fmt.Errorf("build scheme: %w", err)
	}
	grace := cfg.ShutdownGrace + 10*time.Second
	mgr, err := manager.New(restConfig, manager.Options{
		Scheme:                  scheme,
		Logger:                  log,
		Metrics:                 metricsserver.Options{BindAddress: cfg.MetricsAddr},
		HealthProbeBindAddress:  cfg.ProbeAddr,
		GracefulShutdownTimeout: &grace,
		Cache: cache.Options{ByObject: map[client.Object]cache.ByObject{
			// Only this node's Stores: the daemon never needs another node's.
			&storagev1alpha1.Store{}: {Label: labels.SelectorFromSet(labels.Set{storagev1alpha1.LabelNodeName: cfg.NodeName})},
		}},
	})
	if err != nil {
		return nil, fmt.Errorf("create manager: %w", err)
	}
	settings, err := loadSettings(ctx, mgr.GetAPIReader(), cfg, log)
	if err != nil {
		return nil, err
	}
	gm := metrics.NewGRPC()
	n := newNode(cfg, settings.Devices, settings.ClusterID, newEngine(settings.Engine), mgr.GetAPIReader(), log.WithName("node"), gm)
	if err := registerMetrics(ctrlmetrics.Registry, gm, metrics.NewCollector(n.snapshots)); err != nil {
		return nil, err
	}
	hb := &heartbeat{cfg: cfg, client: mgr.GetClient(), recorder: mgr.GetEventRecorder("cobalt-node-daemon"), node: n, now: time.Now, log: log.WithName("heartbeat")}
	if err := errors.Join(mgr.Add(n), mgr.Add(hb)); err != nil {
		return nil, fmt.Errorf("add runnables: %w", err)
	}
	if err := mgr.AddHealthzCheck("ping", func(*http.Request) error { return nil }); err != nil {
		return nil, fmt.Errorf("add liveness check: %w", err)
	}
	if err := mgr.AddReadyzCheck("stores", func(*http.Request) error { return n.ready() }); err != nil {
		return nil, fmt.Errorf("add readiness check: %w", err)
	}
	if cfg.CSIEndpoint != "" {
		p := &csiPlugin{cfg: cfg, node: n, client: mgr.GetClient(), apiReader: mgr.GetAPIReader(),
			recorder: mgr.GetEventRecorder("cobalt-node-daemon"), log: log.WithName("csi")}
		if err := registerMetrics(ctrlmetrics.Registry, nil, metrics.NewReplicationCollector(p.replicationStats)); err != nil {
			return nil, err
		}
		if err := errors.Join(mgr.Add(p), mgr.AddHealthzCheck("csi", p.healthz), mgr.AddReadyzCheck("csi", p.readyz)); err != nil {
			return nil, fmt.Errorf("add the CSI node plugin: %w", err)
		}
	}
	return mgr, nil
}

// loadSettings reads the daemon's StorageCluster and converts its spec (SettingsFromSpec).
func loadSettings(ctx context.Context, r client.Reader, cfg *Config, log logr.Logger) (ClusterSettings, error) {
	sc, err := readCluster(ctx, r, cfg.Cluster())
	if err != nil {
		return ClusterSettings{}, err
	}
	if cfg.ClusterUID != "" && string(sc.UID) != cfg.ClusterUID {
		return ClusterSettings{}, fmt.Errorf("StorageCluster %s has UID %s, but this daemon was started for UID %s (--cluster-uid): "+
			"the StorageCluster was deleted and created again, and this daemon's DaemonSet belongs to the old one; it is not used", cfg.Cluster(), sc.UID, cfg.ClusterUID)
	}
	clusterID, err := ParseClusterID(string(sc.UID))
	if err != nil {
		return ClusterSettings{}, fmt.Errorf("StorageCluster %s: %w", cfg.Cluster(), err)
	}
	settings, err := SettingsFromSpec(&sc.Spec, cfg.DevDir, cfg.MinDeviceSize)
	if err != nil {
		return ClusterSettings{}, fmt.Errorf("StorageCluster %s (generation %d): %w", cfg.Cluster(), sc.Generation, err)
	}
	settings.ClusterID = clusterID
	if _, err := settings.Devices.Candidates(cfg.SysRoot, cfg.StateDir); err != nil && !errors.Is(err, os.ErrNotExist) {
		return ClusterSettings{}, fmt.Errorf("StorageCluster %s (generation %d): %w", cfg.Cluster(), sc.Generation, err)
	}
	log.Info("configuration from the StorageCluster", "cluster", cfg.Cluster().String(), "clusterID", sc.UID, "generation", sc.Generation,
		"deleting", !sc.DeletionTimestamp.IsZero(),
		"devicePaths", settings.Devices.Paths, "deviceFilter", settings.Devices.NameFilter, "fileDeviceSize", settings.Devices.FileSize,
		"allowWipe", settings.Devices.AllowWipe, "engine", fmt.Sprintf("%+v", settings.Engine))
	return settings, nil
}

// registerMetrics registers the gRPC metrics (when gm is not nil) and collector, replacing ones a previous daemon in the same process
// (tests restart the daemon in-process) registered.
func registerMetrics(reg prometheus.Registerer, gm *metrics.GRPC, collector prometheus.Collector) error {
	register := func(c prometheus.Collector) error {
		err := reg.Register(c)
		var are prometheus.AlreadyRegisteredError
		if errors.As(err, &are) {
			reg.Unregister(are.ExistingCollector)
			err = reg.Register(c)
		}
		if err != nil {
			return fmt.Errorf("register metrics: %w", err)
		}
		return nil
	}
	if gm == nil {
		return register(collector)
	}
	return errors.Join(gm.Register(replacing{reg, register}), register(collector))
}

// replacing is a Registerer whose Register replaces an already registered equal collector.
type replacing struct {
	prometheus.Registerer
	register func(prometheus.Collector) error
}

func (r replacing) Register(c prometheus.Collector) error { return r.register(c) }
