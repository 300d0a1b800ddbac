package controllers

import (
	"slices"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	appsv1ac "k8s.io/client-go/applyconfigurations/apps/v1"
	"k8s.io/utils/ptr"

	"github.com/cobaltstore/cobalt/api/v1alpha1"
)

func TestBoundedName(t *testing.T) {
	if got := boundedName("short", 63); got != "short" {
		t.Errorf("boundedName(short) = %q", got)
	}
	long1 := strings.Repeat("a", 70) + "-one"
	long2 := strings.Repeat("a", 70) + "-two"
	b1, b2 := boundedName(long1, 63), boundedName(long2, 63)
	if len(b1) > 63 || len(b2) > 63 {
		t.Errorf("bounded names too long: %d, %d", len(b1), len(b2))
	}
	if b1 == b2 {
		t.Errorf("distinct long names collapsed to %q", b1)
	}
	if boundedName(long1, 63) != b1 {
		t.Error("boundedName is not deterministic")
	}
}

func TestNodeDaemonImage(t *testing.T) {
	c := &v1alpha1.StorageCluster{}
	if _, err := nodeDaemonImage(c, ""); err == nil || !strings.Contains(err.Error(), "--node-daemon-image") {
		t.Errorf("want an error naming the flag, got %v", err)
	}
	if img, _ := nodeDaemonImage(c, "default:1"); img != "default:1" {
		t.Errorf("fallback image = %q", img)
	}
	c.Spec.NodeDaemon.Image = "own:2"
	if img, _ := nodeDaemonImage(c, "default:1"); img != "own:2" {
		t.Errorf("cluster image = %q", img)
	}
}

// TestNodeDaemonArgs: the command line names the cluster (by name and UID), the node and the state directory, and
// carries no device or engine setting, whatever the spec says: the daemon reads those from the
// StorageCluster.
func TestNodeDaemonArgs(t *testing.T) {
	c := &v1alpha1.StorageCluster{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "c", UID: "0f3c2a9e-5b1d-4e7a-9c8b-2d6f1e0a7b34"}}
	c.Spec.Devices = v1alpha1.DeviceSelection{Paths: []string{"/dev/a", "/dev/b"}, AllowWipe: true}
	c.Spec.NodeDaemon.StateDir = "/srv/cobalt"
	c.Spec.Engine = v1alpha1.EngineSettings{CacheType: v1alpha1.CacheTypeLRU, CacheShards: intstr.FromInt32(12),
		MemoryTarget: resource.MustParse("2Gi"), MinAllocSize: 65536, DeferredWriteThreshold: ptr.To[int64](0),
		ChecksumType: v1alpha1.ChecksumCRC32C}
	want := []string{"--cluster-namespace=ns", "--cluster-name=c", "--cluster-uid=0f3c2a9e-5b1d-4e7a-9c8b-2d6f1e0a7b34", "--node-name=$(NODE_NAME)",
		"--state-dir=/srv/cobalt", "--ca-secret=" + CASecretName}
	if got := nodeDaemonArgs(c); !slices.Equal(got, want) {
		t.Errorf("args = %v, want %v", got, want)
	}
	c.Spec.NodeDaemon.StateDir = ""
	if got := nodeDaemonArgs(c); !slices.Contains(got, "--state-dir=/var/lib/cobalt") {
		t.Errorf("args %v lack the API default state directory", got)
	}
}

// Without the CSI node plugin, privilege follows the devices.
func TestDesiredDaemonSetPrivilegeFollowsDevices(t *testing.T) {
	c := &v1alpha1.StorageCluster{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "c", UID: "u"}}
	c.Spec.Devices.Paths = []string{"/dev/a"}
	ctr := mustDaemonSet(t, c, "img", "0123456789abcdef").Spec.Template.Spec.Containers[0]
	if ctr.SecurityContext == nil || !ptr.Deref(ctr.SecurityContext.Privileged, false) {
		t.Error("block devices: want a privileged container")
	}
	c.Spec.Devices = v1alpha1.DeviceSelection{File: &v1alpha1.FileDevice{Size: resource.MustParse("1Gi")}}
	ds := mustDaemonSet(t, c, "img", "0123456789abcdef")
	ctr = ds.Spec.Template.Spec.Containers[0]
	if ptr.Deref(ctr.SecurityContext.Privileged, true) || ptr.Deref(ctr.SecurityContext.AllowPrivilegeEscalation, true) {
		t.Error("file device: want an unprivileged container without privilege escalation")
	}
	for _, v := range ds.Spec.Template.Spec.Volumes {
		if ptr.Deref(v.Name, "") == "dev" {
			t.Error("file device: /dev must not be mounted")
		}
	}
	if got := ptr.Deref(ds.OwnerReferences[0].UID, ""); got != "u" {
		t.Errorf("owner UID = %q", got)
	}
}

func TestDesiredDaemonSetCarriesTheCAHash(t *testing.T) {
	c := &v1alpha1.StorageCluster{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "c", UID: "u"}}
	c.Spec.Devices.Paths = []string{"/dev/a"}
	a, b := caHash([]byte("CA one")), caHash([]byte("CA two"))
	if a == b || len(a) != 16 || a != caHash([]byte("CA one")) {
		t.Fatalf("caHash: %q and %q; want 16 stable hex characters that differ between CAs", a, b)
	}
	for _, h := range []string{a, b} {
		if got := mustDaemonSet(t, c, "img", h).Spec.Template.Annotations[caHashAnnotation]; got != h {
			t.Errorf("pod template annotation %s = %q, want %q", caHashAnnotation, got, h)
		}
	}
}

// mustDaemonSet renders the DaemonSet without the CSI node plugin (storagecluster_csi_test.go
// covers it with the plugin on).
func mustDaemonSet(t *testing.T, c *v1alpha1.StorageCluster, image, ca string) *appsv1ac.DaemonSetApplyConfiguration {
	t.Helper()
	return mustDaemonSetWith(t, c, image, ca, CSINodePlugin{})
}

func mustDaemonSetWith(t *testing.T, c *v1alpha1.StorageCluster, image, ca string, csi CSINodePlugin) *appsv1ac.DaemonSetApplyConfiguration {
	t.Helper()
	ds, err := desiredDaemonSet(c, image, ca, csi)
	if err != nil {
		t.Fatalf("desiredDaemonSet: %v", err)
	}
	return ds
}

// TestDesiredDaemonSetRollsOnDevicesAndEngine: the node daemon reads spec.devices and spec.engine
// from the StorageCluster when it starts, so every change of them must change the pod template
// (the spec hash annotation), and nothing else in the spec may change that hash.
func TestDesiredDaemonSetRollsOnDevicesAndEngine(t *testing.T) {
	base := func() *v1alpha1.StorageCluster {
		c := &v1alpha1.StorageCluster{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "c", UID: "u"}}
		c.Spec.Devices.Paths = []string{"/dev/a"}
		c.Spec.Engine = v1alpha1.EngineSettings{CacheType: v1alpha1.CacheType2Q, CacheShards: intstr.FromString("auto"),
			MemoryTarget: resource.MustParse("1Gi"), MinAllocSize: 4096, DeferredWriteThreshold: ptr.To[int64](65536),
			ChecksumType: v1alpha1.ChecksumCRC32C}
		return c
	}
	hashOf := func(c *v1alpha1.StorageCluster) string {
		t.Helper()
		h := mustDaemonSet(t, c, "img", "ca").Spec.Template.Annotations[specHashAnnotation]
		if len(h) != 16 {
			t.Fatalf("spec hash %q: want 16 hex characters", h)
		}
		return h
	}
	want := hashOf(base())
	changes := map[string]func(*v1alpha1.StorageCluster){
		"cacheType":              func(c *v1alpha1.StorageCluster) { c.Spec.Engine.CacheType = v1alpha1.CacheTypeLRU },
		"cacheShards":            func(c *v1alpha1.StorageCluster) { c.Spec.Engine.CacheShards = intstr.FromInt32(5) },
		"memoryTarget":           func(c *v1alpha1.StorageCluster) { c.Spec.Engine.MemoryTarget = resource.MustParse("2Gi") },
		"minAllocSize":           func(c *v1alpha1.StorageCluster) { c.Spec.Engine.MinAllocSize = 65536 },
		"deferredWriteThreshold": func(c *v1alpha1.StorageCluster) { c.Spec.Engine.DeferredWriteThreshold = ptr.To[int64](0) },
		"paths":                  func(c *v1alpha1.StorageCluster) { c.Spec.Devices.Paths = []string{"/dev/a", "/dev/b"} },
		"allowWipe":              func(c *v1alpha1.StorageCluster) { c.Spec.Devices.AllowWipe = true },
		"nameFilter": func(c *v1alpha1.StorageCluster) {
			c.Spec.Devices = v1alpha1.DeviceSelection{NameFilter: "^nvme"}
		},
		"file device": func(c *v1alpha1.StorageCluster) {
			c.Spec.Devices = v1alpha1.DeviceSelection{File: &v1alpha1.FileDevice{Size: resource.MustParse("1Gi")}}
		},
	}
	seen := map[string]string{want: "base"}
	for name, change := range changes {
		c := base()
		change(c)
		got := hashOf(c)
		if other, dup := seen[got]; dup {
			t.Errorf("changing %s gives the spec hash of %s (%s): the DaemonSet would not roll", name, other, got)
		}
		seen[got] = name
	}
	same := map[string]func(*v1alpha1.StorageCluster){
		"the same quantity written in bytes": func(c *v1alpha1.StorageCluster) {
			c.Spec.Engine.MemoryTarget = resource.MustParse("1073741824")
		},
		"the image (in the pod spec itself)": func(c *v1alpha1.StorageCluster) { c.Spec.NodeDaemon.Image = "other:1" },
		"the node selector (in the pod spec itself)": func(c *v1alpha1.StorageCluster) {
			c.Spec.NodeSelector = map[string]string{"storage": "yes"}
		},
	}
	fileOf := func(size string) func(*v1alpha1.StorageCluster) {
		return func(c *v1alpha1.StorageCluster) {
			c.Spec.Devices = v1alpha1.DeviceSelection{File: &v1alpha1.FileDevice{Size: resource.MustParse(size)}}
		}
	}
	file1G, file2G := base(), base()
	fileOf("1Gi")(file1G)
	fileOf("2Gi")(file2G)
	if hashOf(file1G) == hashOf(file2G) {
		t.Error("a new file device size does not change the spec hash")
	}
	fileBytes := base()
	fileOf("1073741824")(fileBytes)
	if hashOf(fileBytes) != hashOf(file1G) {
		t.Error("the same file device size written in bytes changed the spec hash")
	}
	for name, change := range same {
		c := base()
		change(c)
		if got := hashOf(c); got != want {
			t.Errorf("%s changed the spec hash: %s, want %s", name, got, want)
		}
	}
}

// TestDesiredCARoleGrantsOnlyNamedObjects: the node daemon's Role in the cluster's namespace
// lets it get the CA Secret and its own StorageCluster by name, and nothing else.
func TestDesiredCARoleGrantsOnlyNamedObjects(t *testing.T) {
	c := &v1alpha1.StorageCluster{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "prod", UID: "u"}}
	role := desiredCARole(c)
	if ptr.Deref(role.Namespace, "") != "ns" {
		t.Fatalf("role namespace = %q", ptr.Deref(role.Namespace, ""))
	}
	type rule struct{ group, resource, name, verbs string }
	var got []rule
	for _, r := range role.Rules {
		if len(r.APIGroups) != 1 || len(r.Resources) != 1 || len(r.ResourceNames) != 1 {
			t.Fatalf("rule %+v: want one group, one resource and one resource name", r)
		}
		got = append(got, rule{r.APIGroups[0], r.Resources[0], r.ResourceNames[0], strings.Join(r.Verbs, ",")})
	}
	want := []rule{{"", "secrets", CASecretName, "get"}, {"storage.cobalt.io", "storageclusters", "prod", "get"}}
	if !slices.Equal(got, want) {
		t.Errorf("rules = %+v, want %+v", got, want)
	}
}
