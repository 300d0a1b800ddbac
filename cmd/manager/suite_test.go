package main

import (
	"context"
	"os"
	"testing"

	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/cobaltstore/cobalt/test/testenv"
)

// The package's tests share one envtest API server (testenv); each test uses namespaces of its
// own. testClient reads the server directly, not a cache.
var (
	testConfig *rest.Config
	testClient client.Client
)

func TestMain(m *testing.M) {
	os.Exit(testenv.Main(m, testenv.Options{}, func(_ context.Context, env *testenv.Env) error {
		testConfig, testClient = env.Config, env.Client
		return nil
	}))
}
