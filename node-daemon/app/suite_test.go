package app

import (
	"context"
	"os"
	"testing"

	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/cobaltstore/cobalt/test/testenv"
)

// The package's integration tests share one envtest API server (testenv). k8sClient reads the
// server directly, not a cache.
var (
	restConfig *rest.Config
	k8sClient  client.Client
)

func TestMain(m *testing.M) {
	os.Exit(testenv.Main(m, testenv.Options{}, func(_ context.Context, env *testenv.Env) error {
		restConfig, k8sClient = env.Config, env.Client
		return nil
	}))
}
