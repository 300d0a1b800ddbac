package main

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"sigs.k8s.io/controller-runtime/pkg/envtest"
	ctrllog "sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"

	"github.com/cobaltstore/cobalt/test/testenv/assets"
)

// controlPlane is a local kube-apiserver and etcd from the envtest assets. Nothing else runs:
// no scheduler, no kubelet and no controller-manager, so the demo runs the operator and the node
// daemon itself, as processes.
type controlPlane struct {
	env  *envtest.Environment
	host string // the API server's URL
	logs []io.Closer
}

// startControlPlane starts etcd and kube-apiserver from assetsDir, keeps their data and
// certificates under dir and their output in logsDir, and writes an admin kubeconfig to
// kubeconfigPath.
func startControlPlane(assetsDir, dir, logsDir, kubeconfigPath string) (*controlPlane, error) {
	if err := assets.Check(assetsDir); err != nil {
		return nil, err
	}
	etcdDir := filepath.Join(dir, "etcd")
	certDir := filepath.Join(dir, "apiserver-certs")
	for _, d := range []string{etcdDir, certDir} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return nil, fmt.Errorf("create %s: %w", d, err)
		}
	}
	// kube-apiserver and etcd are started through stand-ins for this binary (see detach.go).
	binDir, err := standInDir(filepath.Join(dir, "bin"))
	if err != nil {
		return nil, err
	}
	if err := os.Setenv(assetsEnv, assetsDir); err != nil {
		return nil, fmt.Errorf("set %s: %w", assetsEnv, err)
	}
	cp := &controlPlane{}
	etcdLog, err := os.OpenFile(filepath.Join(logsDir, "etcd.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, fmt.Errorf("open etcd log: %w", err)
	}
	apiLog, err := os.OpenFile(filepath.Join(logsDir, "kube-apiserver.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		_ = etcdLog.Close()
		return nil, fmt.Errorf("open kube-apiserver log: %w", err)
	}
	cp.logs = []io.Closer{etcdLog, apiLog}
	// envtest logs through controller-runtime's logger; keep that with the API server's output.
	ctrllog.SetLogger(zap.New(zap.WriteTo(apiLog)))
	env := &envtest.Environment{
		ControlPlaneStartTimeout: 2 * time.Minute,
		ControlPlaneStopTimeout:  30 * time.Second,
	}
	// Explicit paths, so a KUBEBUILDER_ASSETS in the user's environment cannot redirect them.
	env.ControlPlane.Etcd = &envtest.Etcd{Path: filepath.Join(binDir, "etcd"), DataDir: etcdDir, Out: etcdLog, Err: etcdLog}
	env.ControlPlane.APIServer = &envtest.APIServer{Path: filepath.Join(binDir, "kube-apiserver"), CertDir: certDir, Out: apiLog, Err: apiLog}
	env.ControlPlane.KubectlPath = filepath.Join(assetsDir, assets.Kubectl)
	cp.env = env
	cfg, err := env.Start()
	if err != nil {
		cp.closeLogs()
		return nil, fmt.Errorf("start kube-apiserver and etcd: %w", err)
	}
	cp.host = cfg.Host
	user, err := env.AddUser(envtest.User{Name: "demo-admin", Groups: []string{"system:masters"}}, nil)
	if err != nil {
		_ = cp.stop()
		return nil, fmt.Errorf("create the demo's admin user: %w", err)
	}
	kubeconfig, err := user.KubeConfig()
	if err != nil {
		_ = cp.stop()
		return nil, fmt.Errorf("build kubeconfig: %w", err)
	}
	if err := os.WriteFile(kubeconfigPath, kubeconfig, 0o600); err != nil {
		_ = cp.stop()
		return nil, fmt.Errorf("write kubeconfig: %w", err)
	}
	return cp, nil
}

// stop stops kube-apiserver and etcd; their data directory is removed by the caller.
func (cp *controlPlane) stop() error {
	err := cp.env.Stop()
	cp.closeLogs()
	if err != nil {
		return fmt.Errorf("stop kube-apiserver and etcd: %w", err)
	}
	return nil
}

func (cp *controlPlane) closeLogs() {
	for _, c := range cp.logs {
		_ = c.Close()
	}
}
