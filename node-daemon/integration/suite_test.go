package integration

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/go-logr/logr"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/rest"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/cobaltstore/cobalt/test/testenv"
)

// Shared by the tests of the package: one API server (testenv), a direct (uncached) client, a
// kubeconfig for subprocesses, and the node-daemon binary built from this tree.
var (
	testEnv    *testenv.Env
	restConfig *rest.Config
	scheme     *runtime.Scheme
	k8sClient  client.Client
	kubeconfig string
	daemonBin  string
	cobaltBin  string
)

func TestMain(m *testing.M) {
	if cfg := os.Getenv(coordChildEnv); cfg != "" {
		os.Exit(runCoordinatorChild(cfg)) // this binary run again as a coordinator process
	}
	os.Exit(runSuite(m))
}

func runSuite(m *testing.M) int {
	ctrl.SetLogger(logr.Discard()) // each test logs through its own testr logger
	tmp, err := os.MkdirTemp("", "cobalt-integration-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "temp dir:", err)
		return 1
	}
	defer os.RemoveAll(tmp)
	return testenv.Main(m, testenv.Options{}, func(ctx context.Context, env *testenv.Env) error {
		testEnv, restConfig, scheme, k8sClient = env, env.Config, env.Scheme, env.Client
		daemonBin = filepath.Join(tmp, "node-daemon")
		cobaltBin = filepath.Join(tmp, "cobalt")
		build := exec.CommandContext(ctx, "go", "build", "-o", tmp+"/", "github.com/cobaltstore/cobalt/cmd/node-daemon", "github.com/cobaltstore/cobalt/cmd/cobalt")
		if out, err := build.CombinedOutput(); err != nil {
			return fmt.Errorf("build node-daemon and cobalt: %w\n%s", err, out)
		}
		kc, err := env.AdminKubeconfig("node-daemon-test")
		if err != nil {
			return err
		}
		kubeconfig = filepath.Join(tmp, "kubeconfig")
		if err := os.WriteFile(kubeconfig, kc, 0o600); err != nil {
			return fmt.Errorf("write kubeconfig: %w", err)
		}
		return nil
	})
}
