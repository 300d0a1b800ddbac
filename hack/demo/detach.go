package main

import (
	"fmt"
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"
)

// The demo starts kube-apiserver and etcd through envtest, which gives no way to set their
// process attributes. So envtest is pointed at symlinks to this very binary named after them;
// started under such a name, cobalt-demo moves itself into its own process group (the terminal's
// Ctrl-C then reaches only the demo, which stops the operator and node daemon while the API server
// is still up, and the control plane last), asks for SIGTERM if the demo dies, and executes the
// real binary from the assets directory with the same arguments.

// assetsEnv names the real binaries' directory for the symlinked control-plane processes.
const assetsEnv = "COBALT_DEMO_REAL_ASSETS"

// controlPlaneBinaries are the names under which cobalt-demo stands in for a control-plane binary.
var controlPlaneBinaries = []string{"kube-apiserver", "etcd"}

// isControlPlaneStandIn reports whether this process was started as one of those binaries.
func isControlPlaneStandIn(argv0 string) bool {
	base := filepath.Base(argv0)
	for _, b := range controlPlaneBinaries {
		if base == b {
			return true
		}
	}
	return false
}

// execControlPlaneBinary replaces this process with the real binary; it only returns on error.
func execControlPlaneBinary(args []string) error {
	dir := os.Getenv(assetsEnv)
	if dir == "" {
		return fmt.Errorf("%s is not set", assetsEnv)
	}
	real := filepath.Join(dir, filepath.Base(args[0]))
	if err := unix.Setpgid(0, 0); err != nil {
		return fmt.Errorf("own process group: %w", err)
	}
	if err := unix.Prctl(unix.PR_SET_PDEATHSIG, uintptr(unix.SIGTERM), 0, 0, 0); err != nil {
		return fmt.Errorf("parent-death signal: %w", err)
	}
	env := make([]string, 0, len(os.Environ()))
	for _, e := range os.Environ() {
		if len(e) < len(assetsEnv)+1 || e[:len(assetsEnv)+1] != assetsEnv+"=" {
			env = append(env, e)
		}
	}
	if err := unix.Exec(real, append([]string{real}, args[1:]...), env); err != nil {
		return fmt.Errorf("exec %s: %w", real, err)
	}
	return nil
}

// standInDir makes dir hold symlinks named after the control-plane binaries that point at this
// executable, and returns dir.
func standInDir(dir string) (string, error) {
	self, err := os.Executable()
	if err != nil {
		return "", fmt.Errorf("find the demo's executable: %w", err)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", fmt.Errorf("create %s: %w", dir, err)
	}
	for _, b := range controlPlaneBinaries {
		link := filepath.Join(dir, b)
		_ = os.Remove(link)
		if err := os.Symlink(self, link); err != nil {
			return "", fmt.Errorf("link %s: %w", link, err)
		}
	}
	return dir, nil
}
