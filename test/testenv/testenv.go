package testenv

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"time"

	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/wait"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"

	"github.com/cobaltstore/cobalt/api/v1alpha1"
	"github.com/cobaltstore/cobalt/test/testenv/assets"
)

// crdServedTimeout bounds the wait for installed CRDs to be listable.
const crdServedTimeout = 30 * time.Second

// Options says what to install into the API server.
type Options struct {
	// CRDPaths are CRD files or directories of them, relative to the module root unless absolute.
	// Empty means config/crd/bases, Cobalt's generated CRDs.
	CRDPaths []string
}

// Env is a running API server and what a test needs to use it. Its exported fields are set by
// Start and never changed afterwards.
type Env struct {
	// Config is an admin's connection to the API server.
	Config *rest.Config
	// Scheme holds client-go's types and Cobalt's API.
	Scheme *runtime.Scheme
	// Client reads and writes the API server directly, with no cache.
	Client client.Client
	// ModuleRoot is the directory of the module's go.mod.
	ModuleRoot string
	// AssetsDir holds kube-apiserver, etcd and (when built) kubectl.
	AssetsDir string

	env *envtest.Environment

	mu struct {
		sync.Mutex
		managers   []*runningManager
		kubeconfig string // an admin kubeconfig file for Kubectl, written on first use
		tmpDir     string // holds kubeconfig; removed by Stop
		stopped    bool
	}
}

// Start starts kube-apiserver and etcd and installs the CRDs opts names; see the package doc for
// what holds when it returns. The caller must call Stop.
func Start(opts Options) (*Env, error) {
	dir, err := assets.Dir()
	if err != nil {
		return nil, err
	}
	wd, err := os.Getwd()
	if err != nil {
		return nil, fmt.Errorf("testenv: working directory: %w", err)
	}
	root, err := assets.ModuleRoot(wd)
	if err != nil {
		return nil, fmt.Errorf("testenv: %w", err)
	}
	scheme := runtime.NewScheme()
	if err := errors.Join(clientgoscheme.AddToScheme(scheme), v1alpha1.AddToScheme(scheme)); err != nil {
		return nil, fmt.Errorf("testenv: scheme: %w", err)
	}
	crdPaths := opts.CRDPaths
	if len(crdPaths) == 0 {
		crdPaths = []string{filepath.Join("config", "crd", "bases")}
	}
	abs := make([]string, len(crdPaths))
	for i, p := range crdPaths {
		if !filepath.IsAbs(p) {
			p = filepath.Join(root, p)
		}
		abs[i] = p
	}
	env := &envtest.Environment{
		CRDDirectoryPaths:     abs,
		ErrorIfCRDPathMissing: true,
		BinaryAssetsDirectory: dir,
		Scheme:                scheme,
	}
	// Explicit paths, so the binaries are the ones assets checked.
	env.ControlPlane.GetAPIServer().Path = filepath.Join(dir, assets.KubeAPIServer)
	env.ControlPlane.Etcd = &envtest.Etcd{Path: filepath.Join(dir, assets.Etcd)}
	env.ControlPlane.KubectlPath = filepath.Join(dir, assets.Kubectl)
	cfg, err := env.Start()
	if err != nil {
		// Start leaves whatever it started running when a later step fails.
		return nil, errors.Join(fmt.Errorf("testenv: start kube-apiserver and etcd from %s: %w", dir, err), stopEnv(env))
	}
	e := &Env{Config: cfg, Scheme: scheme, ModuleRoot: root, AssetsDir: dir, env: env}
	if e.Client, err = client.New(cfg, client.Options{Scheme: scheme}); err != nil {
		return nil, errors.Join(fmt.Errorf("testenv: client: %w", err), e.Stop())
	}
	if err := waitServed(context.Background(), e.Client, env.CRDs); err != nil {
		return nil, errors.Join(err, e.Stop())
	}
	return e, nil
}

// waitServed waits until every CRD in crds can be listed: discovery serving a CRD (what envtest
// waits for) can come a moment before its storage does.
func waitServed(ctx context.Context, c client.Client, crds []*apiextensionsv1.CustomResourceDefinition) error {
	for _, crd := range crds {
		version := ""
		for _, v := range crd.Spec.Versions {
			if v.Served && (version == "" || v.Storage) {
				version = v.Name
			}
		}
		list := &unstructured.UnstructuredList{}
		list.SetAPIVersion(crd.Spec.Group + "/" + version)
		list.SetKind(crd.Spec.Names.ListKind)
		var last error
		err := wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, crdServedTimeout, true, func(ctx context.Context) (bool, error) {
			last = c.List(ctx, list, client.Limit(1))
			return last == nil, nil
		})
		if err != nil {
			return fmt.Errorf("testenv: CRD %s not served within %s: %w", crd.Name, crdServedTimeout, errors.Join(err, last))
		}
	}
	return nil
}

// Stop stops the managers started by StartManager, then kube-apiserver and etcd. It returns
// what went wrong on the way, including errors the managers returned.
func (e *Env) Stop() error {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.mu.stopped {
		return nil
	}
	e.mu.stopped = true
	var errs []error
	for i := len(e.mu.managers) - 1; i >= 0; i-- {
		errs = append(errs, e.mu.managers[i].stop())
	}
	e.mu.managers = nil
	errs = append(errs, stopEnv(e.env))
	if e.mu.tmpDir != "" {
		if err := os.RemoveAll(e.mu.tmpDir); err != nil {
			errs = append(errs, fmt.Errorf("testenv: remove %s: %w", e.mu.tmpDir, err))
		}
	}
	return errors.Join(errs...)
}

func stopEnv(env *envtest.Environment) error {
	if err := env.Stop(); err != nil {
		return fmt.Errorf("testenv: stop kube-apiserver and etcd: %w", err)
	}
	return nil
}

// AdminKubeconfig adds a user called name in the group system:masters and returns a kubeconfig
// for it, for processes and tools that take a kubeconfig file.
func (e *Env) AdminKubeconfig(name string) ([]byte, error) {
	u, err := e.env.AddUser(envtest.User{Name: name, Groups: []string{"system:masters"}}, nil)
	if err != nil {
		return nil, fmt.Errorf("testenv: add user %s: %w", name, err)
	}
	kc, err := u.KubeConfig()
	if err != nil {
		return nil, fmt.Errorf("testenv: kubeconfig of %s: %w", name, err)
	}
	return kc, nil
}

// Kubectl runs kubectl from the assets directory as an admin of the API server and returns its
// standard output; the error carries its standard error.
func (e *Env) Kubectl(ctx context.Context, args ...string) ([]byte, error) {
	kubectl := filepath.Join(e.AssetsDir, assets.Kubectl)
	if err := assets.CheckFor(e.AssetsDir, assets.Kubectl); err != nil {
		return nil, err
	}
	kubeconfig, err := e.kubectlConfig()
	if err != nil {
		return nil, err
	}
	cmd := exec.CommandContext(ctx, kubectl, append([]string{"--kubeconfig", kubeconfig}, args...)...)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return out, fmt.Errorf("kubectl %s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(stderr.String()))
	}
	return out, nil
}

// kubectlConfig returns the admin kubeconfig file Kubectl uses, writing it on first use.
func (e *Env) kubectlConfig() (string, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.mu.stopped {
		return "", errors.New("testenv: the API server is stopped")
	}
	if e.mu.kubeconfig != "" {
		return e.mu.kubeconfig, nil
	}
	kc, err := e.AdminKubeconfig("testenv-kubectl")
	if err != nil {
		return "", err
	}
	dir, err := os.MkdirTemp("", "cobalt-testenv-")
	if err != nil {
		return "", fmt.Errorf("testenv: kubeconfig directory: %w", err)
	}
	e.mu.tmpDir = dir
	path := filepath.Join(dir, "kubeconfig")
	if err := os.WriteFile(path, kc, 0o600); err != nil {
		return "", fmt.Errorf("testenv: write kubeconfig: %w", err)
	}
	e.mu.kubeconfig = path
	return path, nil
}
