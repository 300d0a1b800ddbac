package app

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/spf13/pflag"
	"k8s.io/apimachinery/pkg/types"

	"github.com/cobaltstore/cobalt/csi/driver"
)

// Config is the daemon's own configuration, from its command line: which StorageCluster it
// serves, its node's identity (the downward API), its addresses, state directory and intervals.
// What to store and how — the devices and the engine settings — are not here: the daemon reads
// them from the StorageCluster's spec when it starts (NewManager, ClusterSettings).
type Config struct {
	ClusterNamespace, ClusterName string
	// ClusterUID, when set (the operator sets it), is the UID the StorageCluster must have: a
	// daemon whose StorageCluster was deleted and created again under the same name refuses to
	// start rather than serve the new one with the old one's DaemonSet. The cluster identity the
	// daemon records in store labels is the UID of the StorageCluster it reads.
	ClusterUID string
	NodeName   string
	StateDir   string

	// GRPCAddr is the listen address of the mTLS API; AdvertiseAddr the host (normally the pod IP)
	// published in the Store's endpoint annotation and the serving certificate.
	GRPCAddr, AdvertiseAddr string
	MetricsAddr, ProbeAddr  string
	// HealthSocket is the unix socket for the `health` exec probe ("" = StateDir/node-daemon.sock).
	HealthSocket      string
	HeartbeatInterval time.Duration
	// ShutdownGrace bounds how long in-flight calls may run after SIGTERM before they are cut.
	ShutdownGrace time.Duration
	// CASecret is the name of the cluster CA Secret in ClusterNamespace.
	CASecret string
	// DevDir is where the device paths of the spec, which all start with /dev/, are found: "/dev"
	// in the pod (the host's /dev is mounted there); tests point it at a directory of image files.
	DevDir string
	// MinDeviceSize is the smallest device the daemon uses, in bytes.
	MinDeviceSize int64
	// SysRoot and MountInfo locate sysfs and the mount table (tests point them elsewhere).
	SysRoot, MountInfo string

	// CSIEndpoint is the CSI node plugin's socket ("" = the plugin is off); in production
	// DefaultCSIEndpoint, in kubelet's plugin directory mounted at the same path in the pod.
	CSIEndpoint string
	// KubeletRegistrationDir is kubelet's plugin registration directory ("" = do not register).
	KubeletRegistrationDir string
	// CSIStateDir holds the node plugin's stage records ("" = StateDir/csi); it must survive
	// container restarts.
	CSIStateDir string
	// CSIFuseDir is where the block-device frontend mounts its FUSE file system
	// ("" = StateDir/csi/fuse).
	CSIFuseDir string
	// ReplicaSyncRate bounds, in bytes per second, what the rebuilds and resyncs of the
	// replicated volumes this node serves copy and compare (0 = unbounded), so Pods keep their I/O.
	ReplicaSyncRate int64
	// ReplicaSyncInterval is how often the node looks at each replicated volume it serves for
	// copies to resync or rebuild.
	ReplicaSyncInterval time.Duration
	// ReplicaScrubInterval is how often each replicated volume this node serves has its copies
	// compared and repaired (0 = never), throttled by ReplicaSyncRate.
	ReplicaScrubInterval time.Duration
}

// DefaultCSIEndpoint is the node plugin's socket in production: kubelet's plugin directory for
// the driver, which the node DaemonSet mounts at the same path so that kubelet and the daemon
// name the socket alike.
const DefaultCSIEndpoint = "unix:///var/lib/kubelet/plugins/csi.cobalt.io/csi.sock"

// DefaultConfig returns the defaults the flags start from.
func DefaultConfig() Config {
	return Config{
		StateDir:          "/var/lib/cobalt",
		GRPCAddr:          ":9443",
		AdvertiseAddr:     os.Getenv("POD_IP"),
		MetricsAddr:       ":8080",
		ProbeAddr:         ":8081",
		HeartbeatInterval: 10 * time.Second,
		ShutdownGrace:     30 * time.Second,
		CASecret:          "cobalt-ca",
		DevDir:            "/dev",
		// The API's smallest file-backed device (spec.devices.file.size) is 64Mi as well.
		MinDeviceSize: 64 << 20,
		SysRoot:       "/sys",
		MountInfo:     "/proc/self/mountinfo",
		// A loop device here streams 1.5-2.5 GB/s; a rebuild takes a fraction of a disk's
		// bandwidth and leaves the rest to the Pods.
		ReplicaSyncRate:      256 << 20,
		ReplicaSyncInterval:  10 * time.Second,
		ReplicaScrubInterval: 24 * time.Hour,
	}
}

// BindFlags binds c to flags; the names are the operator's (controllers.nodeDaemonArgs).
func (c *Config) BindFlags(fs *pflag.FlagSet) {
	fs.StringVar(&c.ClusterNamespace, "cluster-namespace", c.ClusterNamespace, "namespace of the StorageCluster, whose spec gives the devices and engine settings")
	fs.StringVar(&c.ClusterName, "cluster-name", c.ClusterName, "name of the StorageCluster, whose spec gives the devices and engine settings")
	fs.StringVar(&c.ClusterUID, "cluster-uid", c.ClusterUID, "UID of the StorageCluster: the daemon refuses to start if the StorageCluster it reads has another one "+
		"(the cluster identity recorded in store labels is the StorageCluster's UID)")
	fs.StringVar(&c.NodeName, "node-name", os.Getenv("NODE_NAME"), "this node's name (downward API)")
	fs.StringVar(&c.StateDir, "state-dir", c.StateDir, "host directory for the health socket, CSI stage records, the file-backed device, mkfs markers and "+
		"the metadata of stores made before label version 2 (stores keep their metadata on their device and mount without it)")
	fs.StringVar(&c.DevDir, "dev-dir", c.DevDir, "directory where the spec's /dev/ device paths are found (development and tests)")
	fs.StringVar(&c.GRPCAddr, "grpc-address", c.GRPCAddr, "listen address of the mTLS gRPC API")
	fs.StringVar(&c.AdvertiseAddr, "advertise-address", c.AdvertiseAddr, "host clients dial (default $POD_IP)")
	fs.StringVar(&c.MetricsAddr, "metrics-bind-address", c.MetricsAddr, "Prometheus metrics address (0 disables)")
	fs.StringVar(&c.ProbeAddr, "health-probe-bind-address", c.ProbeAddr, "liveness/readiness probe address")
	fs.StringVar(&c.HealthSocket, "health-socket", "", "unix socket of the local health service (default <state-dir>/node-daemon.sock)")
	fs.DurationVar(&c.HeartbeatInterval, "heartbeat-interval", c.HeartbeatInterval, "how often Store objects are updated")
	fs.DurationVar(&c.ShutdownGrace, "shutdown-grace", c.ShutdownGrace, "how long in-flight calls may finish after SIGTERM")
	fs.StringVar(&c.CASecret, "ca-secret", c.CASecret, "name of the cluster CA Secret in the cluster namespace")
	fs.StringVar(&c.CSIEndpoint, "csi-endpoint", c.CSIEndpoint, "CSI node plugin socket, as unix:///path (empty: no CSI node plugin; production: "+DefaultCSIEndpoint+")")
	fs.StringVar(&c.KubeletRegistrationDir, "kubelet-registration-dir", c.KubeletRegistrationDir, "kubelet plugin registration directory, e.g. /var/lib/kubelet/plugins_registry (empty: do not register)")
	fs.StringVar(&c.CSIStateDir, "csi-state-dir", c.CSIStateDir, "host directory for the CSI node plugin's stage records (default <state-dir>/csi)")
	fs.StringVar(&c.CSIFuseDir, "csi-fuse-dir", c.CSIFuseDir, "where the CSI block-device frontend mounts its FUSE file system (default <state-dir>/csi/fuse)")
	fs.Int64Var(&c.ReplicaSyncRate, "replica-sync-rate", c.ReplicaSyncRate, "bytes per second the rebuilds and resyncs of the replicated volumes this node serves may copy and compare (0: unbounded)")
	fs.DurationVar(&c.ReplicaSyncInterval, "replica-sync-interval", c.ReplicaSyncInterval, "how often the node looks for copies of the replicated volumes it serves to resync or rebuild")
	fs.DurationVar(&c.ReplicaScrubInterval, "replica-scrub-interval", c.ReplicaScrubInterval, "how often the copies of each replicated volume this node serves are compared and repaired from a good copy (0: never)")
}

// Validate checks c and fills derived defaults.
func (c *Config) Validate() error {
	var errs []error
	if c.ClusterNamespace == "" || c.ClusterName == "" {
		errs = append(errs, errors.New("--cluster-namespace and --cluster-name are required"))
	}
	if c.NodeName == "" {
		errs = append(errs, errors.New("--node-name (or $NODE_NAME) is required"))
	}
	if !filepath.IsAbs(c.StateDir) {
		errs = append(errs, fmt.Errorf("--state-dir %q must be absolute", c.StateDir))
	}
	if !filepath.IsAbs(c.DevDir) {
		errs = append(errs, fmt.Errorf("--dev-dir %q must be absolute", c.DevDir))
	}
	if c.HeartbeatInterval <= 0 || c.ShutdownGrace <= 0 {
		errs = append(errs, errors.New("--heartbeat-interval and --shutdown-grace must be positive"))
	}
	if c.CASecret == "" {
		errs = append(errs, errors.New("--ca-secret is required"))
	}
	if c.ReplicaSyncRate < 0 || c.ReplicaSyncInterval <= 0 || c.ReplicaScrubInterval < 0 {
		errs = append(errs, fmt.Errorf("--replica-sync-rate (%d) and --replica-scrub-interval (%s) must not be negative and --replica-sync-interval (%s) must be positive",
			c.ReplicaSyncRate, c.ReplicaScrubInterval, c.ReplicaSyncInterval))
	}
	if c.HealthSocket == "" {
		c.HealthSocket = filepath.Join(c.StateDir, "node-daemon.sock")
	}
	if c.CSIStateDir == "" {
		c.CSIStateDir = filepath.Join(c.StateDir, "csi")
	}
	if c.CSIFuseDir == "" {
		c.CSIFuseDir = filepath.Join(c.StateDir, "csi", "fuse")
	}
	if c.CSIEndpoint != "" {
		if _, err := driver.SocketPath(c.CSIEndpoint); err != nil {
			errs = append(errs, fmt.Errorf("--csi-endpoint: %w", err))
		}
		if !filepath.IsAbs(c.CSIStateDir) || !filepath.IsAbs(c.CSIFuseDir) {
			errs = append(errs, fmt.Errorf("--csi-state-dir %q and --csi-fuse-dir %q must be absolute", c.CSIStateDir, c.CSIFuseDir))
		}
	}
	if c.KubeletRegistrationDir != "" && (c.CSIEndpoint == "" || !filepath.IsAbs(c.KubeletRegistrationDir)) {
		errs = append(errs, fmt.Errorf("--kubelet-registration-dir %q must be absolute and needs --csi-endpoint", c.KubeletRegistrationDir))
	}
	return errors.Join(errs...)
}

// Cluster is the key of the daemon's StorageCluster.
func (c *Config) Cluster() types.NamespacedName {
	return types.NamespacedName{Namespace: c.ClusterNamespace, Name: c.ClusterName}
}

// StoresDir holds a directory per store being made (its mkfs-pending marker) and the metadata
// directories of stores made before label version 2 (StoresDir/<uuid>/db). A store with its
// metadata on its device needs nothing here once made.
func (c *Config) StoresDir() string { return filepath.Join(c.StateDir, "stores") }
