package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"

	"github.com/cobaltstore/cobalt/test/testenv/assets"
)

// config is the demo's settings, from the environment `make demo` passes through.
type config struct {
	repo          string // repository root; binaries are in repo/bin
	stateDir      string // DEMO_STATE_DIR, default .demo
	assets        string // ENVTEST_ASSETS: kube-apiserver, etcd, kubectl
	useKubeconfig bool   // DEMO_USE_KUBECONFIG=1: the cluster in $KUBECONFIG instead of a local one
	keep          string // DEMO_KEEP: 1 stays up until Ctrl-C, 0 tears down at once, auto: 1 on a terminal
	dataMiB       int    // DEMO_DATA_MIB: how much data goes through the volume API
	device        string // DEMO_DEVICE: loop, file, or auto (a loop device when root)
	namespace     string
	nodeName      string
	clusterName   string
	volumeName    string
	deviceSize    int64
}

func configFromEnv() (config, error) {
	repo, err := os.Getwd()
	if err != nil {
		return config{}, fmt.Errorf("working directory: %w", err)
	}
	c := config{
		repo:          repo,
		stateDir:      envOr("DEMO_STATE_DIR", filepath.Join(repo, ".demo")),
		assets:        envOr("ENVTEST_ASSETS", assets.InRepo(repo)),
		useKubeconfig: os.Getenv("DEMO_USE_KUBECONFIG") == "1",
		keep:          envOr("DEMO_KEEP", "auto"),
		device:        envOr("DEMO_DEVICE", "auto"),
		namespace:     "cobalt-demo",
		nodeName:      "demo-node-1",
		clusterName:   "demo",
		volumeName:    "demo-volume",
		deviceSize:    1 << 30,
	}
	if c.assets, err = filepath.Abs(c.assets); err != nil {
		return c, fmt.Errorf("ENVTEST_ASSETS: %w", err)
	}
	switch c.keep {
	case "0", "1", "auto":
	default:
		return c, fmt.Errorf("DEMO_KEEP=%q: want 0, 1 or auto", c.keep)
	}
	switch c.device {
	case "loop", "file", "auto":
	default:
		return c, fmt.Errorf("DEMO_DEVICE=%q: want loop, file or auto", c.device)
	}
	mib := envOr("DEMO_DATA_MIB", "8")
	if c.dataMiB, err = strconv.Atoi(mib); err != nil || c.dataMiB < 1 || c.dataMiB > 512 {
		return c, fmt.Errorf("DEMO_DATA_MIB=%q: want a number of MiB from 1 to 512", mib)
	}
	return c, nil
}

func envOr(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}

func (c config) bin(name string) string { return filepath.Join(c.repo, "bin", name) }

// keepRunning says whether the demo stays up after its last step.
func (c config) keepRunning() bool {
	switch c.keep {
	case "1":
		return true
	case "0":
		return false
	}
	fi, err := os.Stdin.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}
