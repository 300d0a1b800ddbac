// Command manager runs Cobalt's operator: the StorageCluster, Store and Volume reconcilers in one
// controller-runtime Manager, with metrics, health probes and optional leader election.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"time"

	"k8s.io/apimachinery/pkg/runtime"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/healthz"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	storagev1alpha1 "github.com/cobaltstore/cobalt/api/v1alpha1"
	"github.com/cobaltstore/cobalt/controllers"
)

// options are the manager's command-line settings.
type options struct {
	metricsAddr      string
	probeAddr        string
	leaderElect      bool
	nodeDaemonImage  string
	heartbeatTimeout time.Duration
}

func main() {
	var opts options
	flag.StringVar(&opts.metricsAddr, "metrics-bind-address", ":8080", "Address the metrics endpoint binds to; \"0\" disables it.")
	flag.StringVar(&opts.probeAddr, "health-probe-bind-address", ":8081", "Address the /healthz and /readyz probes bind to.")
	flag.BoolVar(&opts.leaderElect, "leader-elect", false, "Elect a leader so that only one manager replica reconciles at a time.")
	flag.StringVar(&opts.nodeDaemonImage, "node-daemon-image", "", "Node daemon image for StorageClusters that do not set spec.nodeDaemon.image.")
	flag.DurationVar(&opts.heartbeatTimeout, "heartbeat-timeout", controllers.DefaultHeartbeatTimeout, "How old a Store's heartbeat may get before the Store is not Ready.")
	zapOpts := zap.Options{}
	zapOpts.BindFlags(flag.CommandLine)
	flag.Parse()
	ctrl.SetLogger(zap.New(zap.UseFlagOptions(&zapOpts)))

	if err := run(ctrl.SetupSignalHandler(), opts); err != nil {
		ctrl.Log.Error(err, "manager stopped")
		os.Exit(1)
	}
}

func run(ctx context.Context, opts options) error {
	if opts.heartbeatTimeout <= 0 {
		return fmt.Errorf("--heartbeat-timeout must be positive, got %s", opts.heartbeatTimeout)
	}
	scheme := runtime.NewScheme()
	utilruntime.Must(clientgoscheme.AddToScheme(scheme))
	utilruntime.Must(storagev1alpha1.AddToScheme(scheme))

	cfg, err := ctrl.GetConfig()
	if err != nil {
		return fmt.Errorf("load kubeconfig: %w", err)
	}
	mgr, err := ctrl.NewManager(cfg, ctrl.Options{
		Scheme:                 scheme,
		Metrics:                metricsserver.Options{BindAddress: opts.metricsAddr},
		HealthProbeBindAddress: opts.probeAddr,
		LeaderElection:         opts.leaderElect,
		LeaderElectionID:       "cobalt-operator.storage.cobalt.io",
	})
	if err != nil {
		return fmt.Errorf("create manager: %w", err)
	}
	if err := controllers.SetupIndexes(ctx, mgr); err != nil {
		return err
	}
	clock := controllers.RealClock{}
	if err := (&controllers.StorageClusterReconciler{
		Client:           mgr.GetClient(),
		Recorder:         mgr.GetEventRecorder("storagecluster-controller"),
		Clock:            clock,
		HeartbeatTimeout: opts.heartbeatTimeout,
		NodeDaemonImage:  opts.nodeDaemonImage,
	}).SetupWithManager(mgr); err != nil {
		return fmt.Errorf("set up storagecluster controller: %w", err)
	}
	if err := (&controllers.StoreReconciler{
		Client:           mgr.GetClient(),
		Recorder:         mgr.GetEventRecorder("store-controller"),
		Clock:            clock,
		HeartbeatTimeout: opts.heartbeatTimeout,
	}).SetupWithManager(mgr); err != nil {
		return fmt.Errorf("set up store controller: %w", err)
	}
	if err := (&controllers.VolumeReconciler{
		Client:           mgr.GetClient(),
		Recorder:         mgr.GetEventRecorder("volume-controller"),
		Nodes:            nodeDaemonUnavailable{},
		Clock:            clock,
		HeartbeatTimeout: opts.heartbeatTimeout,
	}).SetupWithManager(mgr); err != nil {
		return fmt.Errorf("set up volume controller: %w", err)
	}
	if err := mgr.AddHealthzCheck("healthz", healthz.Ping); err != nil {
		return fmt.Errorf("add health check: %w", err)
	}
	if err := mgr.AddReadyzCheck("readyz", healthz.Ping); err != nil {
		return fmt.Errorf("add readiness check: %w", err)
	}
	ctrl.Log.Info("starting manager", "heartbeatTimeout", opts.heartbeatTimeout, "nodeDaemonImage", opts.nodeDaemonImage)
	if err := mgr.Start(ctx); err != nil {
		return fmt.Errorf("run manager: %w", err)
	}
	return nil
}

// errNodeAPIUnavailable is returned for every volume operation until the node daemon's gRPC
// client (node-daemon/client) is wired in here.
var errNodeAPIUnavailable = errors.New("the node daemon volume API client is not wired into the manager yet")

// nodeDaemonUnavailable is the manager's NodeClient until node-daemon/client lands: every call
// fails with errNodeAPIUnavailable, so Volumes are placed but report ProvisioningFailed instead of
// pretending to exist.
type nodeDaemonUnavailable struct{}

func (nodeDaemonUnavailable) CreateVolume(context.Context, *storagev1alpha1.Store, *storagev1alpha1.Volume) (controllers.VolumeAllocation, error) {
	return controllers.VolumeAllocation{}, errNodeAPIUnavailable
}

func (nodeDaemonUnavailable) ResizeVolume(context.Context, *storagev1alpha1.Store, *storagev1alpha1.Volume) (controllers.VolumeAllocation, error) {
	return controllers.VolumeAllocation{}, errNodeAPIUnavailable
}

func (nodeDaemonUnavailable) DeleteVolume(context.Context, *storagev1alpha1.Store, *storagev1alpha1.Volume) error {
	return errNodeAPIUnavailable
}
