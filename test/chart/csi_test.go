package chart

import (
	"maps"
	"slices"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

// csiObjects are what csi.enabled adds (with the default storageClasses and
// volumeSnapshotClasses).
var csiObjects = []string{
	"CSIDriver/csi.cobalt.io",
	"ClusterRole/cobalt-csi-attacher-role",
	"ClusterRole/cobalt-csi-provisioner-role",
	"ClusterRole/cobalt-csi-resizer-role",
	"ClusterRole/cobalt-csi-snapshotter-role",
	"ClusterRoleBinding/cobalt-csi-attacher-rolebinding",
	"ClusterRoleBinding/cobalt-csi-provisioner-rolebinding",
	"ClusterRoleBinding/cobalt-csi-resizer-rolebinding",
	"ClusterRoleBinding/cobalt-csi-snapshotter-rolebinding",
	"Role/cobalt-system/cobalt-csi-leader-election-role",
	"RoleBinding/cobalt-system/cobalt-csi-leader-election-rolebinding",
	"StorageClass/cobalt",
	"StorageClass/cobalt-xfs",
	"VolumeSnapshotClass/cobalt",
}

// TestCSIDriverDefaults: the CSIDriver says what kubelet and the scheduler need to know about
// csi.cobalt.io: every volume is attached (ControllerPublish) before the node stages it.
func TestCSIDriverDefaults(t *testing.T) {
	d := find(t, mustRender(t, nil).objects, "CSIDriver", "csi.cobalt.io")
	want := map[string]any{
		"attachRequired":       true,
		"podInfoOnMount":       false,
		"volumeLifecycleModes": []any{"Persistent"},
		"fsGroupPolicy":        "File",
		"requiresRepublish":    false,
		"storageCapacity":      false,
	}
	if spec := nested(t, d, "spec"); !equalJSON(spec, want) {
		t.Errorf("CSIDriver spec = %v, want %v", spec, want)
	}
}

// TestDefaultStorageClasses: ext4 and xfs classes, created where the first Pod runs, growable,
// deleted with their claims, and neither the cluster's default.
func TestDefaultStorageClasses(t *testing.T) {
	r := mustRender(t, nil)
	for name, fs := range map[string]string{"cobalt": "ext4", "cobalt-xfs": "xfs"} {
		sc := find(t, r.objects, "StorageClass", name)
		for field, want := range map[string]any{
			"provisioner":          "csi.cobalt.io",
			"parameters":           map[string]any{"csi.storage.k8s.io/fstype": fs},
			"reclaimPolicy":        "Delete",
			"volumeBindingMode":    "WaitForFirstConsumer",
			"allowVolumeExpansion": true,
		} {
			if !equalJSON(sc.Object[field], want) {
				t.Errorf("StorageClass %s %s = %v, want %v", name, field, sc.Object[field], want)
			}
		}
		if _, ok := sc.GetAnnotations()["storageclass.kubernetes.io/is-default-class"]; ok {
			t.Errorf("StorageClass %s is marked the default class", name)
		}
	}
}

// TestStorageClassValues: classes come from the storageClasses list, with its settings.
func TestStorageClassValues(t *testing.T) {
	r := mustRender(t, map[string]any{"storageClasses": []any{
		map[string]any{"name": "fast", "fsType": "xfs", "isDefault": true, "reclaimPolicy": "Retain",
			"volumeBindingMode": "Immediate", "allowVolumeExpansion": false, "mountOptions": []any{"noatime"}},
		map[string]any{"name": "plain"},
		map[string]any{"name": "mirrored", "replicas": 3, "allowSameNode": false},
	}})
	mirrored := find(t, r.objects, "StorageClass", "mirrored")
	if want := map[string]any{"csi.storage.k8s.io/fstype": "ext4", "replicas": "3", "allowSameNode": "false"}; !equalJSON(mirrored.Object["parameters"], want) {
		t.Errorf("StorageClass mirrored parameters = %v, want %v", mirrored.Object["parameters"], want)
	}
	fast := find(t, r.objects, "StorageClass", "fast")
	for field, want := range map[string]any{
		"parameters":           map[string]any{"csi.storage.k8s.io/fstype": "xfs"},
		"reclaimPolicy":        "Retain",
		"volumeBindingMode":    "Immediate",
		"allowVolumeExpansion": false,
		"mountOptions":         []any{"noatime"},
	} {
		if !equalJSON(fast.Object[field], want) {
			t.Errorf("StorageClass fast %s = %v, want %v", field, fast.Object[field], want)
		}
	}
	if fast.GetAnnotations()["storageclass.kubernetes.io/is-default-class"] != "true" {
		t.Errorf("StorageClass fast: isDefault did not mark it the default class: %v", fast.GetAnnotations())
	}
	// An entry with only a name gets the defaults of the shipped classes.
	plain := find(t, r.objects, "StorageClass", "plain")
	for field, want := range map[string]any{
		"parameters":           map[string]any{"csi.storage.k8s.io/fstype": "ext4"},
		"reclaimPolicy":        "Delete",
		"volumeBindingMode":    "WaitForFirstConsumer",
		"allowVolumeExpansion": true,
	} {
		if !equalJSON(plain.Object[field], want) {
			t.Errorf("StorageClass plain %s = %v, want %v", field, plain.Object[field], want)
		}
	}
	for _, k := range keys(r.objects) {
		if strings.HasPrefix(k, "StorageClass/cobalt") {
			t.Errorf("storageClasses replaced the defaults, yet %s is rendered", k)
		}
	}

	none := mustRender(t, map[string]any{"storageClasses": []any{}})
	for _, k := range keys(none.objects) {
		if strings.HasPrefix(k, "StorageClass/") {
			t.Errorf("storageClasses: [] renders %s", k)
		}
	}
}

// TestOperatorRunsTheCSIControllerPlugin: the operator serves the controller plugin on the socket
// its sidecars dial, and passes the kubelet directory on to the node daemons.
func TestOperatorRunsTheCSIControllerPlugin(t *testing.T) {
	r := mustRender(t, map[string]any{"csi": map[string]any{"kubeletDir": "/var/lib/k0s/kubelet"}})
	args := managerArgs(t, r)
	for _, want := range []string{"--csi-endpoint=unix:///csi/csi.sock", "--kubelet-dir=/var/lib/k0s/kubelet"} {
		if !slices.Contains(args, want) {
			t.Errorf("manager args %v lack %s", args, want)
		}
	}
	dep := find(t, r.objects, "Deployment", "cobalt-controller-manager")
	containers := containersByName(t, dep)
	if got := slices.Sorted(maps.Keys(containers)); !slices.Equal(got, []string{"csi-attacher", "csi-provisioner", "csi-resizer", "csi-snapshotter", "manager"}) {
		t.Fatalf("operator pod containers %v, want manager, csi-provisioner, csi-attacher, csi-resizer and csi-snapshotter", got)
	}
	for name, image := range map[string]string{
		"csi-provisioner": "registry.k8s.io/sig-storage/csi-provisioner:v6.4.0",
		"csi-attacher":    "registry.k8s.io/sig-storage/csi-attacher:v4.13.0",
		"csi-resizer":     "registry.k8s.io/sig-storage/csi-resizer:v2.3.0",
		"csi-snapshotter": "registry.k8s.io/sig-storage/csi-snapshotter:" + snapshotterVersion,
	} {
		c := containers[name]
		if c["image"] != image {
			t.Errorf("%s image %v, want %s", name, c["image"], image)
		}
		args := stringsOf(c["args"])
		for _, want := range []string{"--csi-address=/csi/csi.sock", "--leader-election", "--leader-election-namespace=$(POD_NAMESPACE)", "--timeout=60s"} {
			if !slices.Contains(args, want) {
				t.Errorf("%s args %v lack %s", name, args, want)
			}
		}
		if !equalJSON(c["volumeMounts"], []any{map[string]any{"name": "socket-dir", "mountPath": "/csi"}}) {
			t.Errorf("%s volumeMounts %v, want socket-dir at /csi", name, c["volumeMounts"])
		}
		res, _ := c["resources"].(map[string]any)
		requests, _ := res["requests"].(map[string]any)
		limits, _ := res["limits"].(map[string]any)
		if requests["cpu"] == nil || requests["memory"] == nil || limits["memory"] == nil {
			t.Errorf("%s resources = %v, want cpu and memory requests and a memory limit", name, res)
		}
	}
	prov := stringsOf(containers["csi-provisioner"]["args"])
	for _, want := range []string{"--feature-gates=Topology=true", "--strict-topology", "--extra-create-metadata", "--default-fstype=ext4"} {
		if !slices.Contains(prov, want) {
			t.Errorf("csi-provisioner args %v lack %s", prov, want)
		}
	}
	if !slices.Contains(stringsOf(containers["csi-resizer"]["args"]), "--handle-volume-inuse-error=false") {
		t.Error("csi-resizer must run with --handle-volume-inuse-error=false: its RBAC has no Pods")
	}
	snap := stringsOf(containers["csi-snapshotter"]["args"])
	for _, want := range []string{"--extra-create-metadata", "--feature-gates=CSIVolumeGroupSnapshot=false"} {
		if !slices.Contains(snap, want) {
			t.Errorf("csi-snapshotter args %v lack %s (its RBAC has no VolumeGroupSnapshot kinds)", snap, want)
		}
	}
	if !hasMount(containers["manager"], "socket-dir", "/csi") {
		t.Error("the manager container does not mount socket-dir at /csi")
	}
	volumes, _, _ := unstructured.NestedSlice(dep.Object, "spec", "template", "spec", "volumes")
	if !equalJSON(volumes, []any{map[string]any{"name": "socket-dir", "emptyDir": map[string]any{}}}) {
		t.Errorf("operator pod volumes %v, want the emptyDir socket-dir", volumes)
	}

	pulled := mustRender(t, map[string]any{"csi": map[string]any{
		"provisioner": map[string]any{"image": map[string]any{"repository": "mirror.example/csi-provisioner", "tag": "v6.4.0", "pullPolicy": "Never"}},
		"attacher":    map[string]any{"image": map[string]any{"repository": "mirror.example/csi-attacher", "tag": "v4.13.0", "pullPolicy": "Never"}},
	}})
	pulledContainers := containersByName(t, find(t, pulled.objects, "Deployment", "cobalt-controller-manager"))
	for _, name := range []string{"csi-provisioner", "csi-attacher"} {
		p := pulledContainers[name]
		if !strings.HasPrefix(p["image"].(string), "mirror.example/"+name+":") || p["imagePullPolicy"] != "Never" {
			t.Errorf("%s image %v pull policy %v, want the values' mirror and Never", name, p["image"], p["imagePullPolicy"])
		}
	}
}

// TestCSIOff: csi.enabled=false installs no CSI object or sidecar, and the operator's node
// daemons do not serve the node plugin.
func TestCSIOff(t *testing.T) {
	r := mustRender(t, map[string]any{"csi": map[string]any{"enabled": false}})
	got := keys(r.objects)
	for _, k := range csiObjects {
		if slices.Contains(got, k) {
			t.Errorf("csi.enabled=false renders %s", k)
		}
	}
	args := managerArgs(t, r)
	if !slices.Contains(args, "--csi-node-plugin=false") {
		t.Errorf("manager args %v lack --csi-node-plugin=false", args)
	}
	for _, a := range args {
		if strings.HasPrefix(a, "--csi-endpoint") || strings.HasPrefix(a, "--kubelet-dir") {
			t.Errorf("csi.enabled=false passes %s", a)
		}
	}
	dep := find(t, r.objects, "Deployment", "cobalt-controller-manager")
	if cs := containersByName(t, dep); len(cs) != 1 {
		t.Errorf("csi.enabled=false: operator pod containers %v, want the manager alone", slices.Sorted(maps.Keys(cs)))
	}
	if v, found, _ := unstructured.NestedFieldNoCopy(dep.Object, "spec", "template", "spec", "volumes"); found {
		t.Errorf("csi.enabled=false: operator pod volumes %v", v)
	}
}

// TestCSISidecarRBAC: the sidecars' roles are bound to the operator's ServiceAccount, grant what
// each sidecar uses, and nothing the driver never makes them use.
func TestCSISidecarRBAC(t *testing.T) {
	r := mustRender(t, nil)
	type grant struct{ group, resource, verb string }
	grants := func(kind, name string) []grant {
		role := find(t, r.objects, kind, name)
		rules, _, _ := unstructured.NestedSlice(role.Object, "rules")
		var out []grant
		for _, rule := range rules {
			m := rule.(map[string]any)
			for _, g := range stringsOf(m["apiGroups"]) {
				for _, res := range stringsOf(m["resources"]) {
					for _, v := range stringsOf(m["verbs"]) {
						out = append(out, grant{g, res, v})
					}
				}
			}
		}
		return out
	}
	prov := grants("ClusterRole", "cobalt-csi-provisioner-role")
	for _, want := range []grant{
		{"", "persistentvolumes", "create"}, {"", "persistentvolumes", "delete"}, {"", "persistentvolumeclaims", "update"},
		{"storage.k8s.io", "storageclasses", "watch"}, {"storage.k8s.io", "csinodes", "list"}, {"", "nodes", "get"}, {"", "events", "create"},
	} {
		if !slices.Contains(prov, want) {
			t.Errorf("csi-provisioner may not %s %s (group %q)", want.verb, want.resource, want.group)
		}
	}
	// Restoring a claim from a VolumeSnapshot: the provisioner reads it and its content, and
	// holds a finalizer on the VolumeSnapshot meanwhile; it never changes a content.
	for _, want := range []grant{
		{snapshotGroup, "volumesnapshots", "get"}, {snapshotGroup, "volumesnapshots", "watch"}, {snapshotGroup, "volumesnapshots", "update"},
		{snapshotGroup, "volumesnapshotcontents", "get"},
	} {
		if !slices.Contains(prov, want) {
			t.Errorf("csi-provisioner may not %s %s (group %q)", want.verb, want.resource, want.group)
		}
	}
	res := grants("ClusterRole", "cobalt-csi-resizer-role")
	for _, want := range []grant{{"", "persistentvolumes", "patch"}, {"", "persistentvolumeclaims/status", "patch"}, {"", "persistentvolumeclaims", "watch"}} {
		if !slices.Contains(res, want) {
			t.Errorf("csi-resizer may not %s %s (group %q)", want.verb, want.resource, want.group)
		}
	}
	att := grants("ClusterRole", "cobalt-csi-attacher-role")
	for _, want := range []grant{
		{"storage.k8s.io", "volumeattachments", "get"}, {"storage.k8s.io", "volumeattachments", "list"},
		{"storage.k8s.io", "volumeattachments", "watch"}, {"storage.k8s.io", "volumeattachments", "patch"},
		{"storage.k8s.io", "volumeattachments/status", "patch"}, {"storage.k8s.io", "csinodes", "get"},
		{"", "persistentvolumes", "watch"}, {"", "persistentvolumes", "patch"},
	} {
		if !slices.Contains(att, want) {
			t.Errorf("csi-attacher may not %s %s (group %q)", want.verb, want.resource, want.group)
		}
	}
	// The provisioner deletes a volume only once no VolumeAttachment names it; it never changes one.
	for _, want := range []grant{{"storage.k8s.io", "volumeattachments", "get"}, {"storage.k8s.io", "volumeattachments", "list"}, {"storage.k8s.io", "volumeattachments", "watch"}} {
		if !slices.Contains(prov, want) {
			t.Errorf("csi-provisioner may not %s %s (group %q)", want.verb, want.resource, want.group)
		}
	}
	snap := grants("ClusterRole", "cobalt-csi-snapshotter-role")
	for _, want := range []grant{
		{snapshotGroup, "volumesnapshotclasses", "watch"}, {snapshotGroup, "volumesnapshotcontents", "watch"},
		{snapshotGroup, "volumesnapshotcontents", "update"}, {snapshotGroup, "volumesnapshotcontents", "patch"},
		{snapshotGroup, "volumesnapshotcontents/status", "update"}, {snapshotGroup, "volumesnapshotcontents/status", "patch"},
		{"", "events", "create"},
	} {
		if !slices.Contains(snap, want) {
			t.Errorf("csi-snapshotter may not %s %s (group %q)", want.verb, want.resource, want.group)
		}
	}
	for _, g := range slices.Concat(prov, att, res, snap) {
		switch {
		case g.resource == "volumeattachments" && !slices.Contains(att, g) && !slices.Contains([]string{"get", "list", "watch"}, g.verb):
			t.Errorf("a CSI sidecar other than the attacher may %s volumeattachments", g.verb)
		case g.resource == "volumeattachments/status" && !slices.Contains(att, g):
			t.Errorf("a CSI sidecar other than the attacher may %s volumeattachments/status", g.verb)
		case g.resource == "nodes" && slices.Contains(att, g):
			t.Errorf("csi-attacher may %s nodes: it reads node IDs from CSINodes", g.verb)
		case g.resource == "csistoragecapacities", g.resource == "volumeattributesclasses",
			g.resource == "pods", g.resource == "secrets", g.group == "groupsnapshot.storage.k8s.io":
			t.Errorf("a CSI sidecar may %s %s, which Cobalt's driver never makes it use", g.verb, g.resource)
		case g.group == snapshotGroup && slices.Contains([]string{"create", "delete"}, g.verb):
			t.Errorf("a CSI sidecar may %s %s: only the snapshot-controller creates and deletes snapshot objects", g.verb, g.resource)
		case g.resource == "volumesnapshots" && !slices.Contains(prov, g):
			t.Errorf("a CSI sidecar other than the provisioner may %s volumesnapshots", g.verb)
		}
		if g.resource == "events" && !slices.Contains([]string{"create", "update", "patch"}, g.verb) {
			t.Errorf("a CSI sidecar may %s events: it only records them", g.verb)
		}
	}
	if got := grants("Role", "cobalt-csi-leader-election-role"); !equalJSON(got, []grant{
		{"coordination.k8s.io", "leases", "get"}, {"coordination.k8s.io", "leases", "create"}, {"coordination.k8s.io", "leases", "update"}}) {
		t.Errorf("csi leader election grants %v, want get, create and update on leases", got)
	}
	for _, b := range []string{"cobalt-csi-provisioner-rolebinding", "cobalt-csi-attacher-rolebinding", "cobalt-csi-resizer-rolebinding", "cobalt-csi-snapshotter-rolebinding"} {
		binding := find(t, r.objects, "ClusterRoleBinding", b)
		subjects, _, _ := unstructured.NestedSlice(binding.Object, "subjects")
		if !equalJSON(subjects, []any{map[string]any{"kind": "ServiceAccount", "name": "cobalt-controller-manager", "namespace": releaseNamespace}}) {
			t.Errorf("%s subjects %v, want the operator's ServiceAccount", b, subjects)
		}
	}
}

// TestCSIObjectsDryRunApply: the API server accepts the CSIDriver and StorageClasses the chart
// renders for non-default values too, and refuses a StorageClass the schema would let through if
// it were wrong (showing the dry run validates).
func TestCSIObjectsDryRunApply(t *testing.T) {
	r := mustRender(t, map[string]any{
		"csi": map[string]any{"kubeletDir": "/var/snap/microk8s/common/var/lib/kubelet"},
		"storageClasses": []any{
			map[string]any{"name": "cobalt-retained", "fsType": "xfs", "isDefault": true, "reclaimPolicy": "Retain",
				"volumeBindingMode": "Immediate", "mountOptions": []any{"noatime", "nodiscard"}},
		},
	})
	applied := 0
	for _, o := range r.objects {
		if o.GetKind() != "CSIDriver" && o.GetKind() != "StorageClass" {
			continue
		}
		applied++
		if err := server.dryRunApply(t.Context(), o); err != nil {
			t.Errorf("dry-run apply %s: %v", objectKey(o), err)
		}
	}
	if applied != 2 {
		t.Errorf("applied %d CSI objects, want the CSIDriver and one StorageClass", applied)
	}
	bad := find(t, r.objects, "StorageClass", "cobalt-retained").DeepCopy()
	bad.Object["reclaimPolicy"] = "Recycle"
	if err := server.dryRunApply(t.Context(), bad); err == nil || !strings.Contains(err.Error(), "reclaimPolicy") {
		t.Errorf("the API server accepted reclaimPolicy Recycle on a CSI StorageClass: %v", err)
	}
}

func stringsOf(v any) []string {
	list, _ := v.([]any)
	out := make([]string, 0, len(list))
	for _, x := range list {
		if s, ok := x.(string); ok {
			out = append(out, s)
		}
	}
	return out
}

func hasMount(container map[string]any, name, path string) bool {
	mounts, _ := container["volumeMounts"].([]any)
	for _, m := range mounts {
		if mm, ok := m.(map[string]any); ok && mm["name"] == name && mm["mountPath"] == path {
			return true
		}
	}
	return false
}
