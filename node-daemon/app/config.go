package app

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/pflag"

	"github.com/cobaltstore/cobalt/node-daemon/devices"
)

// EngineConfig are the storage engine settings of the StorageCluster.
type EngineConfig struct {
	CacheType              string
	CacheShards            int // 0 = auto
	MemoryTarget           int64
	MinAllocSize           int
	DeferredWriteThreshold int64
	Checksum               string
}

// Config is the daemon's configuration. The operator renders it from the StorageCluster spec as
// command-line flags (its contract with the daemon); the node name comes from the downward API.
type Config struct {
	ClusterNamespace, ClusterName string
	NodeName                      string
	StateDir                      string
	Devices                       devices.Selection
	Engine                        EngineConfig

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
	// SysRoot and MountInfo locate sysfs and the mount table (tests point them elsewhere).
	SysRoot, MountInfo string
}

// DefaultConfig returns the defaults the flags start from.
func DefaultConfig() Config {
	return Config{
		StateDir:          "/var/lib/cobalt",
		Devices:           devices.Selection{MinSize: 64 << 20},
		Engine:            EngineConfig{CacheType: "2q", MemoryTarget: 1 << 30, MinAllocSize: 4096, DeferredWriteThreshold: 64 << 10, Checksum: "crc32c"},
		GRPCAddr:          ":9443",
		AdvertiseAddr:     os.Getenv("POD_IP"),
		MetricsAddr:       ":8080",
		ProbeAddr:         ":8081",
		HeartbeatInterval: 10 * time.Second,
		ShutdownGrace:     30 * time.Second,
		CASecret:          "cobalt-ca",
		SysRoot:           "/sys",
		MountInfo:         "/proc/self/mountinfo",
	}
}

// BindFlags binds c to flags; the names are the operator's (controllers.nodeDaemonArgs).
func (c *Config) BindFlags(fs *pflag.FlagSet) {
	fs.StringVar(&c.ClusterNamespace, "cluster-namespace", c.ClusterNamespace, "namespace of the StorageCluster")
	fs.StringVar(&c.ClusterName, "cluster-name", c.ClusterName, "name of the StorageCluster")
	fs.StringVar(&c.NodeName, "node-name", os.Getenv("NODE_NAME"), "this node's name (downward API)")
	fs.StringVar(&c.StateDir, "state-dir", c.StateDir, "host directory for store metadata and the file-backed device")
	fs.StringSliceVar(&c.Devices.Paths, "device-paths", nil, "device paths to use")
	fs.StringVar(&c.Devices.NameFilter, "device-filter", "", "RE2 expression over block device names")
	fs.Int64Var(&c.Devices.FileSize, "file-device-size", 0, "size of the development file-backed device in bytes")
	fs.BoolVar(&c.Devices.AllowWipe, "allow-wipe", false, "format devices that carry a filesystem or a foreign store")
	fs.Int64Var(&c.Devices.MinSize, "min-device-size", c.Devices.MinSize, "smallest usable device in bytes")
	fs.StringVar(&c.Engine.CacheType, "cache-type", c.Engine.CacheType, "cache policy: 2q or lru")
	fs.Var(&shardsFlag{&c.Engine.CacheShards}, "cache-shards", "cache shards, or auto (8 on SSD, 5 on HDD)")
	fs.Int64Var(&c.Engine.MemoryTarget, "memory-target", c.Engine.MemoryTarget, "memory target of the caches in bytes")
	fs.IntVar(&c.Engine.MinAllocSize, "min-alloc-size", c.Engine.MinAllocSize, "allocation unit of new stores in bytes")
	fs.Int64Var(&c.Engine.DeferredWriteThreshold, "deferred-write-threshold", c.Engine.DeferredWriteThreshold, "overwrites below this size are deferred")
	fs.StringVar(&c.Engine.Checksum, "checksum", c.Engine.Checksum, "checksum type (crc32c)")
	fs.StringVar(&c.GRPCAddr, "grpc-address", c.GRPCAddr, "listen address of the mTLS gRPC API")
	fs.StringVar(&c.AdvertiseAddr, "advertise-address", c.AdvertiseAddr, "host clients dial (default $POD_IP)")
	fs.StringVar(&c.MetricsAddr, "metrics-bind-address", c.MetricsAddr, "Prometheus metrics address (0 disables)")
	fs.StringVar(&c.ProbeAddr, "health-probe-bind-address", c.ProbeAddr, "liveness/readiness probe address")
	fs.StringVar(&c.HealthSocket, "health-socket", "", "unix socket of the local health service (default <state-dir>/node-daemon.sock)")
	fs.DurationVar(&c.HeartbeatInterval, "heartbeat-interval", c.HeartbeatInterval, "how often Store objects are updated")
	fs.DurationVar(&c.ShutdownGrace, "shutdown-grace", c.ShutdownGrace, "how long in-flight calls may finish after SIGTERM")
	fs.StringVar(&c.CASecret, "ca-secret", c.CASecret, "name of the cluster CA Secret in the cluster namespace")
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
	if _, err := c.Devices.Candidates(c.SysRoot, c.StateDir); err != nil && !errors.Is(err, os.ErrNotExist) {
		errs = append(errs, err)
	}
	if c.Engine.CacheType != "2q" && c.Engine.CacheType != "lru" {
		errs = append(errs, fmt.Errorf("--cache-type %q must be 2q or lru", c.Engine.CacheType))
	}
	if c.HeartbeatInterval <= 0 || c.ShutdownGrace <= 0 {
		errs = append(errs, errors.New("--heartbeat-interval and --shutdown-grace must be positive"))
	}
	if c.CASecret == "" {
		errs = append(errs, errors.New("--ca-secret is required"))
	}
	if c.HealthSocket == "" {
		c.HealthSocket = filepath.Join(c.StateDir, "node-daemon.sock")
	}
	return errors.Join(errs...)
}

// StoresDir is where stores' metadata directories live: StoresDir/<uuid>/db.
func (c *Config) StoresDir() string { return filepath.Join(c.StateDir, "stores") }

// shardsFlag parses "auto" or a positive number of cache shards.
type shardsFlag struct{ v *int }

func (f *shardsFlag) String() string {
	if f.v == nil || *f.v == 0 {
		return "auto"
	}
	return strconv.Itoa(*f.v)
}

func (f *shardsFlag) Set(s string) error {
	if strings.EqualFold(s, "auto") {
		*f.v = 0
		return nil
	}
	n, err := strconv.Atoi(s)
	if err != nil || n <= 0 || n > 64 {
		return fmt.Errorf("cache shards %q must be auto or 1-64", s)
	}
	*f.v = n
	return nil
}

func (f *shardsFlag) Type() string { return "shards" }
