package app

import (
	"strings"
	"testing"

	"github.com/spf13/pflag"
)

func TestConfigFlagsAndValidation(t *testing.T) {
	parse := func(args ...string) (*Config, error) {
		cfg := DefaultConfig()
		fs := pflag.NewFlagSet("t", pflag.ContinueOnError)
		cfg.BindFlags(fs)
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		return &cfg, cfg.Validate()
	}
	// The operator's command line (controllers.nodeDaemonArgs).
	cfg, err := parse("--cluster-namespace=ns", "--cluster-name=c", "--node-name=n", "--state-dir=/var/lib/cobalt", "--ca-secret=cobalt-ca")
	if err != nil {
		t.Fatalf("operator flags rejected: %v", err)
	}
	if cfg.Cluster().String() != "ns/c" || cfg.HealthSocket != "/var/lib/cobalt/node-daemon.sock" || cfg.DevDir != "/dev" {
		t.Fatalf("config = %+v", cfg)
	}
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"no cluster", []string{"--node-name=n"}, "--cluster-namespace"},
		{"no node", []string{"--cluster-namespace=ns", "--cluster-name=c"}, "--node-name"},
		{"relative state dir", []string{"--cluster-namespace=ns", "--cluster-name=c", "--node-name=n", "--state-dir=x"}, "absolute"},
		{"relative dev dir", []string{"--cluster-namespace=ns", "--cluster-name=c", "--node-name=n", "--dev-dir=dev"}, "absolute"},
		// Devices and engine settings come from the StorageCluster only.
		{"device flag", []string{"--device-paths=/dev/sdb"}, "unknown flag"},
		{"file device flag", []string{"--file-device-size=1073741824"}, "unknown flag"},
		{"engine flag", []string{"--cache-type=lru"}, "unknown flag"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Setenv("NODE_NAME", "")
			_, err := parse(tt.args...)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error = %v, want one containing %q", err, tt.want)
			}
		})
	}
}

func TestStoreName(t *testing.T) {
	tests := []struct{ node, path, want string }{
		{"node-a", "/dev/sdb", "node-a-sdb"},
		{"node-a", "/dev/nvme0n1", "node-a-nvme0n1"},
	}
	for _, tt := range tests {
		if got := storeName(tt.node, tt.path); got != tt.want {
			t.Errorf("storeName(%s, %s) = %s, want %s", tt.node, tt.path, got, tt.want)
		}
	}
	a, b := storeName("Node_A", "/dev/disk/by-id/x.y"), storeName("node-a", "/dev/disk/by-id/x-y")
	if a == b {
		t.Errorf("different devices share the name %s", a)
	}
	long := storeName(strings.Repeat("n", 60), "/dev/sdb")
	if len(long) > 63 || strings.HasSuffix(long, "-") {
		t.Errorf("long name %q is not a valid label-sized name", long)
	}
}
