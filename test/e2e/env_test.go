//go:build e2e

package e2e

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
)

// suiteEnv is the suite's configuration, from the environment that hack/cluster/e2e.sh sets.
type suiteEnv struct {
	// kubeconfig of a cluster admin (E2E_KUBECONFIG).
	kubeconfig string
	// dir is the harness's work directory (E2E_DIR); device images go under dir/devices and the
	// node daemon's state under dir/state, so that teardown finds them.
	dir string
	// cli is the cobalt CLI binary (E2E_CLI).
	cli string
	// imageTag of cobalt/manager and cobalt/node-daemon loaded into the node (E2E_IMAGE_TAG).
	imageTag string
	// chartDir is the Helm chart under test.
	chartDir string
	// node is the cluster's one node (E2E_NODE_NAME, default this machine's host name, as
	// hack/cluster/env.sh names it).
	node string
	// kubeletDir is the kubelet's --root-dir (E2E_KUBELET_DIR, default dir/shared/kubelet as
	// hack/cluster/env.sh sets it), the chart's csi.kubeletDir.
	kubeletDir string
}

func loadEnv() (suiteEnv, error) {
	e := suiteEnv{
		kubeconfig: os.Getenv("E2E_KUBECONFIG"),
		dir:        os.Getenv("E2E_DIR"),
		cli:        os.Getenv("E2E_CLI"),
		imageTag:   os.Getenv("E2E_IMAGE_TAG"),
		chartDir:   filepath.Join("..", "..", "charts", "cobalt"),
		kubeletDir: os.Getenv("E2E_KUBELET_DIR"),
	}
	if e.imageTag == "" {
		e.imageTag = "e2e"
	}
	if e.node = os.Getenv("E2E_NODE_NAME"); e.node == "" {
		host, err := os.Hostname()
		if err != nil {
			return e, fmt.Errorf("host name (the node's name): %w", err)
		}
		e.node = host
	}
	if e.kubeletDir == "" && e.dir != "" {
		e.kubeletDir = filepath.Join(e.dir, "shared", "kubelet")
	}
	var errs []error
	for name, v := range map[string]string{"E2E_KUBECONFIG": e.kubeconfig, "E2E_DIR": e.dir, "E2E_CLI": e.cli} {
		if v == "" {
			errs = append(errs, fmt.Errorf("%s is not set (run the suite with `make e2e`)", name))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return e, err
	}
	for _, p := range []*string{&e.kubeconfig, &e.dir, &e.cli, &e.chartDir, &e.kubeletDir} {
		abs, err := filepath.Abs(*p)
		if err != nil {
			return e, fmt.Errorf("absolute path of %s: %w", *p, err)
		}
		*p = abs
	}
	if _, err := os.Stat(e.cli); err != nil {
		return e, fmt.Errorf("E2E_CLI: %w", err)
	}
	return e, nil
}

// nodeName is the name of the cluster's node.
func (e suiteEnv) nodeName() string { return e.node }
