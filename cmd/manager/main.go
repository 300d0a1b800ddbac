// Command manager runs Cobalt's operator: the StorageCluster, Store and Volume reconcilers in one
// controller-runtime Manager, with metrics, health probes and optional leader election. With
// --csi-endpoint it also serves the CSI controller plugin (csi/controller) on that socket, on every
// replica whether leader or not. The
// leader election Lease lives in --leader-election-namespace (default: POD_NAMESPACE, else
// cobalt-system), so a manager run outside the cluster elects as one inside does.
//
// At start-up it makes sure the node API's certificate authority exists (a Secret, created on
// first start), issues itself a client certificate from it, and talks to the node daemons over
// mutual TLS through node-daemon/client. The StorageCluster reconciler copies that CA into each
// cluster's namespace, where the node daemons issue their serving certificates from it.
//
// What it creates for itself in its own namespace, the CA Secret and the leader election Lease,
// is owned by the ServiceAccount it runs as (--owner-service-account), so uninstalling the
// operator, which deletes that ServiceAccount, garbage-collects them.
//
// Volumes with replicas > 1 are placed and created only with --enable-replication (default
// off: replication is opt-in while it is new); without the flag such Volumes wait, unplaced,
// with Ready False (ReplicationUnavailable).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	"k8s.io/utils/clock"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/config"
	"sigs.k8s.io/controller-runtime/pkg/healthz"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	storagev1alpha1 "github.com/cobaltstore/cobalt/api/v1alpha1"
	"github.com/cobaltstore/cobalt/controllers"
	"github.com/cobaltstore/cobalt/controllers/nodeapi"
	"github.com/cobaltstore/cobalt/csi/driver"
	"github.com/cobaltstore/cobalt/node-daemon/pki"
)

// options are the manager's command-line settings.
type options struct {
	metricsAddr      string
	probeAddr        string
	leaderElect      bool
	nodeDaemonImage  string
	heartbeatTimeout time.Duration
	caSecret         string
	// leaderElectionNamespace holds the leader election Lease. Set explicitly (never left to
	// controller-runtime's in-cluster guess) so that a manager run outside the cluster elects too.
	leaderElectionNamespace string
	// csi says whether the node daemons serve the CSI node plugin (--csi-node-plugin) and where
	// the kubelet keeps its state on the nodes (--kubelet-dir).
	csi controllers.CSINodePlugin
	// owner is the ServiceAccount that owns what the operator creates for itself in its
	// namespace: the CA Secret and the leader election Lease (ownByServiceAccount); empty name:
	// no owner.
	owner types.NamespacedName
	// csiEndpoint is the unix socket the CSI controller plugin serves on; empty: no CSI plugin.
	csiEndpoint string
	// csiNamespace holds the Volumes the CSI controller plugin creates.
	csiNamespace string
	// enableReplication lets the Volume reconciler place and create Volumes with replicas > 1
	// (--enable-replication); off by default while replication is new.
	enableReplication bool
	// replicaReplacementDelay is how long a copy of a replicated Volume may stay Lost before the
	// operator replaces it on another Store (--replica-replacement-delay).
	replicaReplacementDelay time.Duration
	// skipControllerNameValidation lets tests run the manager more than once in one process
	// (controller-runtime refuses a controller name it has seen before); not a flag.
	skipControllerNameValidation bool
}

// defaultOperatorNamespace is the operator's namespace when POD_NAMESPACE is not set (a manager
// run outside the cluster): the one config/default installs into.
const defaultOperatorNamespace = "cobalt-system"

// operatorNamespace is the namespace the manager runs in: POD_NAMESPACE (set by the Deployment
// through the downward API), else defaultOperatorNamespace.
func operatorNamespace(getenv func(string) string) string {
	if ns := getenv("POD_NAMESPACE"); ns != "" {
		return ns
	}
	return defaultOperatorNamespace
}

// bindFlags registers the manager's flags on fs, with the defaults that depend on the
// environment read through getenv.
func bindFlags(fs *flag.FlagSet, getenv func(string) string) *options {
	opts := &options{}
	ns := operatorNamespace(getenv)
	fs.StringVar(&opts.metricsAddr, "metrics-bind-address", ":8080", "Address the metrics endpoint binds to; \"0\" disables it.")
	fs.StringVar(&opts.probeAddr, "health-probe-bind-address", ":8081", "Address the /healthz and /readyz probes bind to.")
	fs.BoolVar(&opts.leaderElect, "leader-elect", false, "Elect a leader so that only one manager replica reconciles at a time.")
	fs.StringVar(&opts.leaderElectionNamespace, "leader-election-namespace", ns,
		"Namespace of the leader election Lease; defaults to POD_NAMESPACE, else "+defaultOperatorNamespace+".")
	fs.StringVar(&opts.nodeDaemonImage, "node-daemon-image", "", "Node daemon image for StorageClusters that do not set spec.nodeDaemon.image.")
	fs.DurationVar(&opts.heartbeatTimeout, "heartbeat-timeout", controllers.DefaultHeartbeatTimeout, "How old a Store's heartbeat may get before the Store is not Ready.")
	fs.StringVar(&opts.caSecret, "ca-secret", ns+"/"+controllers.CASecretName,
		"namespace/name of the node API's CA Secret; created on first start if missing. Defaults to <POD_NAMESPACE, else "+defaultOperatorNamespace+">/"+controllers.CASecretName+".")
	fs.BoolVar(&opts.csi.Enabled, "csi-node-plugin", true,
		"Run the CSI node plugin of "+driver.Name+" in every node daemon (privileged, with the kubelet directory mounted Bidirectional).")
	fs.StringVar(&opts.csi.KubeletDir, "kubelet-dir", controllers.DefaultKubeletDir,
		"The kubelet's root directory (--root-dir) on the nodes, mounted into the node daemons at the same path for the CSI node plugin.")
	opts.owner.Namespace = ns
	fs.StringVar(&opts.owner.Name, "owner-service-account", "",
		"ServiceAccount in the operator's namespace (the one it runs as) that owns the CA Secret and the leader election Lease the operator creates there, so that uninstalling the operator deletes them; empty: no owner.")
	fs.StringVar(&opts.csiEndpoint, "csi-endpoint", "",
		"Unix socket (unix:///csi/csi.sock) on which to serve the CSI controller plugin, on every replica; empty: do not serve CSI.")
	fs.StringVar(&opts.csiNamespace, "csi-volume-namespace", ns,
		"Namespace of the Volumes the CSI controller plugin creates; defaults to POD_NAMESPACE, else "+defaultOperatorNamespace+".")
	fs.BoolVar(&opts.enableReplication, "enable-replication", false,
		"Place and create Volumes with replicas > 1 (one copy per Store, on distinct nodes). Off by default while replication is new: such Volumes then stay unplaced with Ready False (ReplicationUnavailable).")
	fs.DurationVar(&opts.replicaReplacementDelay, "replica-replacement-delay", controllers.DefaultReplicaReplacementDelay,
		"How long a copy of a replicated Volume may stay Lost (its Store missing or not Ready) before the operator replaces it with a new copy on another Store; a copy whose Store returns sooner catches up instead. Must be positive.")
	return opts
}

func main() {
	opts := bindFlags(flag.CommandLine, os.Getenv)
	zapOpts := zap.Options{}
	zapOpts.BindFlags(flag.CommandLine)
	flag.Parse()
	ctrl.SetLogger(zap.New(zap.UseFlagOptions(&zapOpts)))

	cfg, err := ctrl.GetConfig()
	if err != nil {
		ctrl.Log.Error(err, "load kubeconfig")
		os.Exit(1)
	}
	if err := run(ctrl.SetupSignalHandler(), cfg, *opts); err != nil {
		ctrl.Log.Error(err, "manager stopped")
		os.Exit(1)
	}
}

// leaderElectionID names the Lease the manager replicas compete for.
const leaderElectionID = "cobalt-operator.storage.cobalt.io"

// run runs the manager against the API server of cfg until ctx ends.
func run(ctx context.Context, cfg *rest.Config, opts options) error {
	if opts.heartbeatTimeout <= 0 {
		return fmt.Errorf("--heartbeat-timeout must be positive, got %s", opts.heartbeatTimeout)
	}
	if opts.replicaReplacementDelay <= 0 {
		return fmt.Errorf("--replica-replacement-delay must be positive, got %s", opts.replicaReplacementDelay)
	}
	if opts.leaderElect && opts.leaderElectionNamespace == "" {
		return errors.New("--leader-elect needs --leader-election-namespace (or POD_NAMESPACE)")
	}
	if err := opts.csi.Validate(); err != nil {
		return fmt.Errorf("--kubelet-dir: %w", err)
	}
	caKey, err := parseNamespacedName(opts.caSecret)
	if err != nil {
		return fmt.Errorf("--ca-secret: %w", err)
	}
	if opts.csiEndpoint != "" {
		if _, err := driver.SocketPath(opts.csiEndpoint); err != nil {
			return fmt.Errorf("--csi-endpoint: %w", err)
		}
		if opts.csiNamespace == "" {
			return errors.New("--csi-endpoint needs --csi-volume-namespace (or POD_NAMESPACE)")
		}
	}
	scheme := runtime.NewScheme()
	utilruntime.Must(clientgoscheme.AddToScheme(scheme))
	utilruntime.Must(storagev1alpha1.AddToScheme(scheme))

	mgr, err := ctrl.NewManager(cfg, ctrl.Options{
		Scheme:                  scheme,
		Metrics:                 metricsserver.Options{BindAddress: opts.metricsAddr},
		HealthProbeBindAddress:  opts.probeAddr,
		LeaderElection:          opts.leaderElect,
		LeaderElectionID:        leaderElectionID,
		LeaderElectionNamespace: opts.leaderElectionNamespace,
		// run returns right after the manager stops (nothing reconciles after), so stepping down
		// at once is safe, and a standby takes over without waiting out the lease.
		LeaderElectionReleaseOnCancel: true,
		Controller:                    config.Controller{SkipNameValidation: ptr.To(opts.skipControllerNameValidation)},
	})
	if err != nil {
		return fmt.Errorf("create manager: %w", err)
	}
	// A direct client: the manager's cache does not run yet at start-up, nor any more at the end.
	direct, err := client.New(cfg, client.Options{Scheme: scheme})
	if err != nil {
		return fmt.Errorf("create API client: %w", err)
	}
	nodes, err := newNodeClient(ctx, direct, caKey, opts.owner)
	if err != nil {
		return err
	}
	defer func() {
		if err := nodes.Close(); err != nil {
			ctrl.Log.Error(err, "close node daemon connections")
		}
	}()

	if err := controllers.SetupIndexes(ctx, mgr); err != nil {
		return err
	}
	if err := (&controllers.StorageClusterReconciler{
		Client:           mgr.GetClient(),
		Recorder:         mgr.GetEventRecorder("storagecluster-controller"),
		Clock:            clock.RealClock{},
		HeartbeatTimeout: opts.heartbeatTimeout,
		NodeDaemonImage:  opts.nodeDaemonImage,
		CASecret:         caKey,
		CSI:              opts.csi,
		APIReader:        mgr.GetAPIReader(),
	}).SetupWithManager(mgr); err != nil {
		return fmt.Errorf("set up storagecluster controller: %w", err)
	}
	if err := (&controllers.StoreReconciler{
		Client:           mgr.GetClient(),
		Recorder:         mgr.GetEventRecorder("store-controller"),
		Clock:            clock.RealClock{},
		HeartbeatTimeout: opts.heartbeatTimeout,
	}).SetupWithManager(mgr); err != nil {
		return fmt.Errorf("set up store controller: %w", err)
	}
	if err := (&controllers.VolumeReconciler{
		Client:                  mgr.GetClient(),
		Recorder:                mgr.GetEventRecorder("volume-controller"),
		Nodes:                   nodes,
		Clock:                   clock.RealClock{},
		HeartbeatTimeout:        opts.heartbeatTimeout,
		ReplicationEnabled:      opts.enableReplication,
		ReplicaReplacementDelay: opts.replicaReplacementDelay,
	}).SetupWithManager(mgr); err != nil {
		return fmt.Errorf("set up volume controller: %w", err)
	}
	if err := (&controllers.SnapshotReconciler{
		Client:           mgr.GetClient(),
		Recorder:         mgr.GetEventRecorder("snapshot-controller"),
		Nodes:            nodes,
		Clock:            clock.RealClock{},
		HeartbeatTimeout: opts.heartbeatTimeout,
		RefreshInterval:  controllers.DefaultSnapshotRefreshInterval,
	}).SetupWithManager(mgr); err != nil {
		return fmt.Errorf("set up snapshot controller: %w", err)
	}
	if opts.csiEndpoint != "" {
		if err := addCSIServer(mgr, opts.csiEndpoint, opts.csiNamespace); err != nil {
			return err
		}
	}
	if err := mgr.AddHealthzCheck("healthz", healthz.Ping); err != nil {
		return fmt.Errorf("add health check: %w", err)
	}
	if err := mgr.AddReadyzCheck("readyz", healthz.Ping); err != nil {
		return fmt.Errorf("add readiness check: %w", err)
	}
	ctrl.Log.Info("starting manager", "heartbeatTimeout", opts.heartbeatTimeout, "nodeDaemonImage", opts.nodeDaemonImage,
		"csiNodePlugin", opts.csi.Enabled, "kubeletDir", opts.csi.KubeletDir, "replication", opts.enableReplication,
		"replicaReplacementDelay", opts.replicaReplacementDelay)
	if opts.leaderElect {
		lease := types.NamespacedName{Namespace: opts.leaderElectionNamespace, Name: leaderElectionID}
		if _, err := ensureOwnedLease(ctx, direct, lease, opts.owner); err != nil {
			return err
		}
	}
	if opts.csiEndpoint != "" {
		// The CSI sidecars in this pod elect their leaders with Leases of their own, in this
		// namespace; made owned here, they go with the installation too.
		for _, name := range driver.SidecarLeaseNames() {
			lease := types.NamespacedName{Namespace: opts.leaderElectionNamespace, Name: name}
			if _, err := ensureOwnedLease(ctx, direct, lease, opts.owner); err != nil {
				return err
			}
		}
	}
	if err := mgr.Start(ctx); err != nil {
		return fmt.Errorf("run manager: %w", err)
	}
	return nil
}

// newNodeClient loads (or on first start creates) the CA Secret caKey, makes owner its owner,
// issues the operator a client certificate from it and returns the node daemons' mTLS client. c
// must read the API server directly: the manager's cache does not run yet.
func newNodeClient(ctx context.Context, c client.Client, caKey, owner types.NamespacedName) (*nodeapi.Client, error) {
	now := time.Now()
	ca, err := pki.EnsureCASecret(ctx, c, caKey, now)
	if err != nil {
		return nil, fmt.Errorf("node API CA: %w", err)
	}
	secret := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: caKey.Namespace, Name: caKey.Name}}
	owned, err := ownByServiceAccount(ctx, c, secret, owner)
	if err != nil {
		return nil, fmt.Errorf("node API CA: %w", err)
	}
	if owned {
		ctrl.Log.Info("the node API CA Secret is owned by the operator's ServiceAccount: uninstalling the operator deletes it",
			"secret", caKey.String(), "owner", owner.String())
	}
	cert, err := ca.IssueClient("cobalt-operator", now, pki.DefaultLeafValidity)
	if err != nil {
		return nil, fmt.Errorf("issue the operator's client certificate: %w", err)
	}
	tlsConfig, err := pki.ClientTLSConfig(cert, ca.Pool(), "")
	if err != nil {
		return nil, fmt.Errorf("node API TLS configuration: %w", err)
	}
	nodes, err := nodeapi.New(tlsConfig)
	if err != nil {
		return nil, fmt.Errorf("node daemon client: %w", err)
	}
	return nodes, nil
}

func parseNamespacedName(s string) (types.NamespacedName, error) {
	ns, name, ok := strings.Cut(s, "/")
	if !ok || ns == "" || name == "" || strings.Contains(name, "/") {
		return types.NamespacedName{}, fmt.Errorf("%q is not namespace/name", s)
	}
	return types.NamespacedName{Namespace: ns, Name: name}, nil
}
