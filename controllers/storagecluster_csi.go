package controllers

import (
	"fmt"
	"path"

	corev1 "k8s.io/api/core/v1"
	corev1ac "k8s.io/client-go/applyconfigurations/core/v1"

	"github.com/cobaltstore/cobalt/csi/driver"
)

// DefaultKubeletDir is the kubelet's --root-dir on most distributions.
const DefaultKubeletDir = "/var/lib/kubelet"

// kubeletDirVolume names the node daemon's hostPath volume of the kubelet's root directory.
const kubeletDirVolume = "kubelet-dir"

// CSINodePlugin says whether the node daemons serve the node plugin of Cobalt's CSI driver, and
// where the kubelet keeps its state on the nodes.
type CSINodePlugin struct {
	// Enabled runs the node plugin in every node daemon.
	Enabled bool
	// KubeletDir is the kubelet's root directory (--root-dir) on the nodes: the staging and
	// target paths of CSI calls, the plugin socket and the plugin registry are under it.
	KubeletDir string
}

// Validate refuses a kubelet directory that is not a clean absolute path when the plugin is on:
// the kubelet hands the plugin absolute paths under it, and the pod mounts it at the same path.
func (p CSINodePlugin) Validate() error {
	if !p.Enabled {
		return nil
	}
	if !path.IsAbs(p.KubeletDir) || path.Clean(p.KubeletDir) != p.KubeletDir || p.KubeletDir == "/" {
		return fmt.Errorf("kubelet directory %q: want a clean absolute path below /, such as %s", p.KubeletDir, DefaultKubeletDir)
	}
	return nil
}

// pluginDir is the node plugin's directory: its socket and its state.
func (p CSINodePlugin) pluginDir() string { return path.Join(p.KubeletDir, "plugins", driver.Name) }

// registrationDir is where the kubelet's plugin watcher looks for registration sockets.
func (p CSINodePlugin) registrationDir() string { return path.Join(p.KubeletDir, "plugins_registry") }

// args are the node daemon's flags that start the node plugin. Every path is the node's own
// path: the kubelet directory is mounted at the same path in the container, and the kubelet
// dials the socket the plugin registers at that path.
func (p CSINodePlugin) args() []string {
	if !p.Enabled {
		return nil
	}
	return []string{
		"--csi-endpoint=unix://" + path.Join(p.pluginDir(), "csi.sock"),
		"--kubelet-registration-dir=" + p.registrationDir(),
		"--csi-state-dir=" + path.Join(p.pluginDir(), "state"),
	}
}

// volumes are the node plugin's hostPath volume and mount: the kubelet directory, at the same
// path and with Bidirectional propagation, so that what the plugin mounts at the kubelet's
// staging and target paths is seen by the kubelet and by the Pods using the volume.
//
// The plugin and registration directories are not mounted on their own: they are under the
// kubelet directory already, and a hostPath mounted inside a Bidirectional mount propagates back
// to the node and is never unmounted, so every restart of the daemon would stack another copy.
// The plugin creates its own directory (driver.Listen); the kubelet creates plugins_registry.
func (p CSINodePlugin) volumes() ([]*corev1ac.VolumeMountApplyConfiguration, []*corev1ac.VolumeApplyConfiguration) {
	if !p.Enabled {
		return nil, nil
	}
	mount := corev1ac.VolumeMount().WithName(kubeletDirVolume).WithMountPath(p.KubeletDir).
		WithMountPropagation(corev1.MountPropagationBidirectional)
	// Directory, not DirectoryOrCreate: a wrong --kubelet-dir stops the pod with a message
	// naming the path instead of serving a directory no kubelet reads.
	volume := corev1ac.Volume().WithName(kubeletDirVolume).WithHostPath(
		corev1ac.HostPathVolumeSource().WithPath(p.KubeletDir).WithType(corev1.HostPathDirectory))
	return []*corev1ac.VolumeMountApplyConfiguration{mount}, []*corev1ac.VolumeApplyConfiguration{volume}
}
