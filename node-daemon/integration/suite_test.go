package integration

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/go-logr/logr"
	"k8s.io/apimachinery/pkg/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"

	storagev1alpha1 "github.com/cobaltstore/cobalt/api/v1alpha1"
)

// Shared by the tests of the package: one API server, a direct (uncached) client, a kubeconfig
// for subprocesses, and the node-daemon binary built from this tree.
var (
	restConfig *rest.Config
	scheme     *runtime.Scheme
	k8sClient  client.Client
	kubeconfig string
	daemonBin  string
	cobaltBin  string
)

func TestMain(m *testing.M) { os.Exit(runSuite(m)) }

func runSuite(m *testing.M) int {
	fail := func(format string, args ...any) int {
		fmt.Fprintf(os.Stderr, format+"\n", args...)
		return 1
	}
	ctrl.SetLogger(logr.Discard()) // each test logs through its own testr logger
	assets := os.Getenv("KUBEBUILDER_ASSETS")
	if assets == "" {
		return fail("KUBEBUILDER_ASSETS is not set: run `make test`, which builds kube-apiserver and etcd into bin/k8s/<version>")
	}
	tmp, err := os.MkdirTemp("", "cobalt-integration-")
	if err != nil {
		return fail("temp dir: %v", err)
	}
	defer os.RemoveAll(tmp)
	daemonBin = filepath.Join(tmp, "node-daemon")
	cobaltBin = filepath.Join(tmp, "cobalt")
	build := exec.Command("go", "build", "-o", tmp+"/", "github.com/cobaltstore/cobalt/cmd/node-daemon", "github.com/cobaltstore/cobalt/cmd/cobalt")
	if out, err := build.CombinedOutput(); err != nil {
		return fail("build node-daemon and cobalt: %v\n%s", err, out)
	}
	scheme = runtime.NewScheme()
	if err := errors.Join(clientgoscheme.AddToScheme(scheme), storagev1alpha1.AddToScheme(scheme)); err != nil {
		return fail("scheme: %v", err)
	}
	env := &envtest.Environment{
		CRDDirectoryPaths:     []string{filepath.Join("..", "..", "config", "crd", "bases")},
		ErrorIfCRDPathMissing: true,
		BinaryAssetsDirectory: assets,
		Scheme:                scheme,
	}
	restConfig, err = env.Start()
	if err != nil {
		return fail("start envtest: %v", err)
	}
	defer func() {
		if err := env.Stop(); err != nil {
			fmt.Fprintln(os.Stderr, "stop envtest:", err)
		}
	}()
	if k8sClient, err = client.New(restConfig, client.Options{Scheme: scheme}); err != nil {
		return fail("client: %v", err)
	}
	user, err := env.AddUser(envtest.User{Name: "node-daemon-test", Groups: []string{"system:masters"}}, nil)
	if err != nil {
		return fail("add user: %v", err)
	}
	kc, err := user.KubeConfig()
	if err != nil {
		return fail("kubeconfig: %v", err)
	}
	kubeconfig = filepath.Join(tmp, "kubeconfig")
	if err := os.WriteFile(kubeconfig, kc, 0o600); err != nil {
		return fail("write kubeconfig: %v", err)
	}
	// Wait until discovery serves the CRDs, as a fresh manager needs them.
	deadline := time.Now().Add(30 * time.Second)
	for k8sClient.List(context.Background(), &storagev1alpha1.StoreList{}) != nil {
		if time.Now().After(deadline) {
			return fail("Store CRD not served")
		}
		time.Sleep(100 * time.Millisecond)
	}
	return m.Run()
}
