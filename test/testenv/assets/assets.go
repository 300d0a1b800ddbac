package assets

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
)

// Version is the Kubernetes version of the assets `make envtest` prepares (ENVTEST_K8S_VERSION).
const Version = "1.37.2"

// EnvVar names the variable that points at an assets directory explicitly.
const EnvVar = "KUBEBUILDER_ASSETS"

// The binaries in an assets directory: envtest needs the first two, kubectl is optional.
const (
	KubeAPIServer = "kube-apiserver"
	Etcd          = "etcd"
	Kubectl       = "kubectl"
)

// Dir returns the assets directory for a process running in the working directory: see Find.
func Dir() (string, error) {
	wd, err := os.Getwd()
	if err != nil {
		return "", fmt.Errorf("envtest assets: working directory: %w", err)
	}
	return Find(os.Getenv(EnvVar), wd)
}

// Find returns explicit when it is not empty, and otherwise bin/k8s/<Version> of the module
// that holds start; either way only once Check accepts it.
func Find(explicit, start string) (string, error) {
	dir := explicit
	if dir == "" {
		root, err := ModuleRoot(start)
		if err != nil {
			return "", fmt.Errorf("envtest assets: %s is not set and %w", EnvVar, err)
		}
		dir = InRepo(root)
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return "", fmt.Errorf("envtest assets %s: %w", dir, err)
	}
	if err := Check(abs); err != nil {
		return "", err
	}
	return abs, nil
}

// InRepo is where `make envtest` puts the assets in the repository rooted at root.
func InRepo(root string) string {
	return filepath.Join(root, "bin", "k8s", Version)
}

// ModuleRoot returns the nearest directory at or above start that holds a go.mod.
func ModuleRoot(start string) (string, error) {
	dir, err := filepath.Abs(start)
	if err != nil {
		return "", fmt.Errorf("no go.mod above %s: %w", start, err)
	}
	for {
		fi, err := os.Stat(filepath.Join(dir, "go.mod"))
		if err == nil && fi.Mode().IsRegular() {
			return dir, nil
		}
		if err != nil && !errors.Is(err, os.ErrNotExist) {
			return "", fmt.Errorf("look for go.mod in %s: %w", dir, err)
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", fmt.Errorf("no go.mod in %s or above it", start)
		}
		dir = parent
	}
}

// Check returns nil when dir holds kube-apiserver and etcd as executable files, and otherwise an
// error naming the first one missing and saying how to get them.
func Check(dir string) error {
	return CheckFor(dir, KubeAPIServer, Etcd)
}

// CheckFor is Check for the named binaries (hack/demo needs kubectl as well).
func CheckFor(dir string, bins ...string) error {
	for _, bin := range bins {
		path := filepath.Join(dir, bin)
		fi, err := os.Stat(path)
		switch {
		case err != nil:
			return fmt.Errorf("envtest assets: no %s in %s (run `make envtest`, or set %s to a directory with kube-apiserver and etcd): %w", bin, dir, EnvVar, err)
		case !fi.Mode().IsRegular() || fi.Mode().Perm()&0o111 == 0:
			return fmt.Errorf("envtest assets: %s is not an executable file (run `make envtest` again)", path)
		}
	}
	return nil
}
