package controllers

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	corev1ac "k8s.io/client-go/applyconfigurations/core/v1"
	"k8s.io/utils/ptr"

	"github.com/cobaltstore/cobalt/api/v1alpha1"
)

func TestCSINodePluginValidate(t *testing.T) {
	for _, tc := range []struct {
		plugin CSINodePlugin
		ok     bool
	}{
		{CSINodePlugin{Enabled: true, KubeletDir: "/var/lib/kubelet"}, true},
		{CSINodePlugin{Enabled: true, KubeletDir: "/tmp/cobalt-e2e/shared/kubelet"}, true},
		{CSINodePlugin{Enabled: true, KubeletDir: ""}, false},
		{CSINodePlugin{Enabled: true, KubeletDir: "var/lib/kubelet"}, false},
		{CSINodePlugin{Enabled: true, KubeletDir: "/var/lib/kubelet/"}, false},
		{CSINodePlugin{Enabled: true, KubeletDir: "/var/lib/../kubelet"}, false},
		{CSINodePlugin{Enabled: true, KubeletDir: "/"}, false},
		// Off, the directory is not used.
		{CSINodePlugin{Enabled: false, KubeletDir: ""}, true},
	} {
		err := tc.plugin.Validate()
		if (err == nil) != tc.ok {
			t.Errorf("Validate(%+v) = %v, want ok=%v", tc.plugin, err, tc.ok)
		}
		if err != nil && !strings.Contains(err.Error(), "kubelet directory") {
			t.Errorf("Validate(%+v) = %q: want an error naming the kubelet directory", tc.plugin, err)
		}
	}
}

// TestDesiredDaemonSetServesTheCSINodePlugin: with the node plugin on, the node daemon gets the
// plugin's flags under the kubelet directory, that directory at the same path with Bidirectional
// propagation, the host's /dev, and privilege, whatever its devices; with it off, none of that.
func TestDesiredDaemonSetServesTheCSINodePlugin(t *testing.T) {
	blockDevices := func() *v1alpha1.StorageCluster {
		c := &v1alpha1.StorageCluster{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "c", UID: "u"}}
		c.Spec.Devices.Paths = []string{"/dev/a"}
		return c
	}
	fileDevice := func() *v1alpha1.StorageCluster {
		c := blockDevices()
		c.Spec.Devices = v1alpha1.DeviceSelection{File: &v1alpha1.FileDevice{Size: resource.MustParse("1Gi")}}
		return c
	}
	for _, tc := range []struct {
		name           string
		cluster        *v1alpha1.StorageCluster
		csi            CSINodePlugin
		wantPrivileged bool
		wantArgs       []string
	}{
		{"block devices, default kubelet directory", blockDevices(), CSINodePlugin{Enabled: true, KubeletDir: "/var/lib/kubelet"}, true, []string{
			"--csi-endpoint=unix:///var/lib/kubelet/plugins/csi.cobalt.io/csi.sock",
			"--kubelet-registration-dir=/var/lib/kubelet/plugins_registry",
			"--csi-state-dir=/var/lib/kubelet/plugins/csi.cobalt.io/state",
		}},
		{"file device: mounting for Pods still needs privilege", fileDevice(), CSINodePlugin{Enabled: true, KubeletDir: "/srv/kubelet"}, true, []string{
			"--csi-endpoint=unix:///srv/kubelet/plugins/csi.cobalt.io/csi.sock",
			"--kubelet-registration-dir=/srv/kubelet/plugins_registry",
			"--csi-state-dir=/srv/kubelet/plugins/csi.cobalt.io/state",
		}},
		{"plugin off, block devices", blockDevices(), CSINodePlugin{KubeletDir: "/var/lib/kubelet"}, true, nil},
		{"plugin off, file device", fileDevice(), CSINodePlugin{KubeletDir: "/var/lib/kubelet"}, false, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ds := mustDaemonSetWith(t, tc.cluster, "img", "ca", tc.csi)
			pod := ds.Spec.Template.Spec
			ctr := pod.Containers[0]

			var csiArgs []string
			for _, a := range ctr.Args {
				if strings.HasPrefix(a, "--csi-") || strings.HasPrefix(a, "--kubelet-") {
					csiArgs = append(csiArgs, a)
				}
			}
			if !slices.Equal(csiArgs, tc.wantArgs) {
				t.Errorf("CSI args = %v, want %v", csiArgs, tc.wantArgs)
			}
			if got := ptr.Deref(ctr.SecurityContext.Privileged, false); got != tc.wantPrivileged {
				t.Errorf("privileged = %v, want %v", got, tc.wantPrivileged)
			}
			if got := hostPathOf(pod.Volumes, "dev"); tc.wantPrivileged != (got == "/dev") {
				t.Errorf("/dev hostPath = %q with privileged %v: the two go together", got, tc.wantPrivileged)
			}

			kubelet := mountOf(ctr.VolumeMounts, kubeletDirVolume)
			if !tc.csi.Enabled {
				if kubelet != nil || hostPathOf(pod.Volumes, kubeletDirVolume) != "" {
					t.Error("plugin off: the kubelet directory must not be mounted")
				}
				return
			}
			if kubelet == nil {
				t.Fatal("no mount of the kubelet directory")
			}
			if got := ptr.Deref(kubelet.MountPath, ""); got != tc.csi.KubeletDir {
				t.Errorf("kubelet directory mounted at %q, want the node's path %q", got, tc.csi.KubeletDir)
			}
			if got := ptr.Deref(kubelet.MountPropagation, ""); got != corev1.MountPropagationBidirectional {
				t.Errorf("kubelet directory propagation %q, want Bidirectional", got)
			}
			if got := hostPathOf(pod.Volumes, kubeletDirVolume); got != tc.csi.KubeletDir {
				t.Errorf("kubelet directory hostPath %q, want %q", got, tc.csi.KubeletDir)
			}
			// No other mount may sit inside the Bidirectional one: it would propagate back to
			// the node and pile up there on every restart.
			for _, m := range ctr.VolumeMounts {
				p := ptr.Deref(m.MountPath, "")
				if ptr.Deref(m.Name, "") != kubeletDirVolume && strings.HasPrefix(p+"/", tc.csi.KubeletDir+"/") {
					t.Errorf("mount %s at %s is nested in the Bidirectional kubelet directory", ptr.Deref(m.Name, ""), p)
				}
			}
		})
	}
}

// TestDesiredDaemonSetRollsOnTheKubeletDirectory: the CSI settings are in the pod template
// itself, so changing them rolls the daemons, and the spec hash stays about the spec.
func TestDesiredDaemonSetRollsOnTheKubeletDirectory(t *testing.T) {
	c := &v1alpha1.StorageCluster{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "c", UID: "u"}}
	c.Spec.Devices.Paths = []string{"/dev/a"}
	a := mustDaemonSetWith(t, c, "img", "ca", CSINodePlugin{Enabled: true, KubeletDir: "/var/lib/kubelet"})
	b := mustDaemonSetWith(t, c, "img", "ca", CSINodePlugin{Enabled: true, KubeletDir: "/srv/kubelet"})
	if equalJSONValue(a.Spec.Template, b.Spec.Template) {
		t.Error("a new kubelet directory leaves the pod template as it was: the daemons would not roll")
	}
	if a.Spec.Template.Annotations[specHashAnnotation] != b.Spec.Template.Annotations[specHashAnnotation] {
		t.Error("the kubelet directory changed the spec hash, which covers the StorageCluster's spec only")
	}
	off := mustDaemonSetWith(t, c, "img", "ca", CSINodePlugin{KubeletDir: "/var/lib/kubelet"})
	if equalJSONValue(a.Spec.Template, off.Spec.Template) {
		t.Error("turning the node plugin off leaves the pod template as it was")
	}
}

// equalJSONValue says whether two pod templates encode alike, as the API server would store them.
func equalJSONValue(a, b *corev1ac.PodTemplateSpecApplyConfiguration) bool {
	ja, errA := json.Marshal(a)
	jb, errB := json.Marshal(b)
	return errA == nil && errB == nil && string(ja) == string(jb)
}

func mountOf(mounts []corev1ac.VolumeMountApplyConfiguration, name string) *corev1ac.VolumeMountApplyConfiguration {
	for i := range mounts {
		if ptr.Deref(mounts[i].Name, "") == name {
			return &mounts[i]
		}
	}
	return nil
}

func hostPathOf(volumes []corev1ac.VolumeApplyConfiguration, name string) string {
	for _, v := range volumes {
		if ptr.Deref(v.Name, "") == name && v.HostPath != nil {
			return ptr.Deref(v.HostPath.Path, "")
		}
	}
	return ""
}
