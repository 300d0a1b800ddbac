package main

import (
	"crypto/sha256"
	"fmt"
	"path/filepath"
	"strings"
)

// kubeletPaths is the layout of a kubelet's root directory (--root-dir) as a CSI driver sees it:
// where kubelet finds plugin registration sockets, and the staging and target paths it passes to
// NodeStageVolume and NodePublishVolume. The demo plays kubelet under .demo/kubelet, never under
// the host's /var/lib/kubelet.
type kubeletPaths struct{ root string }

// pluginRegistry is where kubelet's plugin watcher looks for registration sockets.
func (k kubeletPaths) pluginRegistry() string { return filepath.Join(k.root, "plugins_registry") }

// stagingPath is the staging target path kubelet gives NodeStageVolume for a persistent volume
// of driverName: a directory named after the SHA-256 of the volume handle, so that every PV of
// the driver has its own global mount.
func (k kubeletPaths) stagingPath(driverName, volumeHandle string) string {
	sum := sha256.Sum256([]byte(volumeHandle))
	return filepath.Join(k.root, "plugins", "kubernetes.io", "csi", driverName, fmt.Sprintf("%x", sum), "globalmount")
}

// podDir is the directory of a Pod's volumes and other state.
func (k kubeletPaths) podDir(podUID string) string { return filepath.Join(k.root, "pods", podUID) }

// targetPath is the target path kubelet gives NodePublishVolume for PersistentVolume pvName in
// the Pod podUID.
func (k kubeletPaths) targetPath(podUID, pvName string) string {
	return filepath.Join(k.podDir(podUID), "volumes", "kubernetes.io~csi", pvName, "mount")
}

// rewrittenArg is one argument rewriteKubeletArgs changed.
type rewrittenArg struct{ from, to string }

// rewriteKubeletArgs moves every path in args that is hostDir or below it to the same place
// below demoDir: "--flag=/path", "--flag=unix:///path" and a bare "/path" argument are paths.
// It returns the new arguments and the ones it changed; args is not modified.
func rewriteKubeletArgs(args []string, hostDir, demoDir string) ([]string, []rewrittenArg) {
	out := make([]string, len(args))
	var changed []rewrittenArg
	for i, a := range args {
		out[i] = a
		prefix, value := "", a
		if strings.HasPrefix(a, "-") {
			name, v, ok := strings.Cut(a, "=")
			if !ok {
				continue
			}
			prefix, value = name+"=", v
		}
		if moved, ok := rewriteKubeletPath(value, hostDir, demoDir); ok {
			out[i] = prefix + moved
			changed = append(changed, rewrittenArg{from: a, to: out[i]})
		}
	}
	return out, changed
}

// rewriteKubeletPath moves value to demoDir when it names hostDir or a path below it, keeping a
// "unix://" scheme; ok is false when value is not such a path.
func rewriteKubeletPath(value, hostDir, demoDir string) (string, bool) {
	scheme, path := "", value
	if rest, ok := strings.CutPrefix(value, "unix://"); ok {
		scheme, path = "unix://", rest
	}
	hostDir = filepath.Clean(hostDir)
	if !filepath.IsAbs(path) || !filepath.IsAbs(hostDir) || hostDir == "/" {
		return value, false
	}
	rel, err := filepath.Rel(hostDir, filepath.Clean(path))
	if err != nil || rel == ".." || strings.HasPrefix(rel, "../") {
		return value, false
	}
	return scheme + filepath.Join(demoDir, rel), true
}
