package chart

import (
	"maps"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/kustomize/api/krusty"
	"sigs.k8s.io/kustomize/kyaml/filesys"
)

// chartOnly are objects the chart renders and config/default does not, each with the reason. The
// test fails when kustomize starts rendering one of them, so the list only ever shrinks. It is
// empty: both installs render the same objects.
var chartOnly = map[string]string{}

// kustomizeOnly are objects config/default renders that Helm does not own, with the reason.
var kustomizeOnly = map[string]string{
	"Namespace/cobalt-system": "Helm installs into a namespace it does not own (helm install --create-namespace)",
}

// kustomizeBuild renders config/<name> as `kubectl kustomize config/<name>` does.
func kustomizeBuild(t testing.TB, name string) (crds, objects []*unstructured.Unstructured) {
	t.Helper()
	dir := filepath.Join(repoRoot(t), "config", name)
	resMap, err := krusty.MakeKustomizer(krusty.MakeDefaultOptions()).Run(filesys.MakeFsOnDisk(), dir)
	if err != nil {
		t.Fatalf("kustomize build %s: %v", dir, err)
	}
	for _, res := range resMap.Resources() {
		data, err := res.MarshalJSON()
		if err != nil {
			t.Fatalf("kustomize resource %s: %v", res.CurId(), err)
		}
		u := &unstructured.Unstructured{}
		if err := u.UnmarshalJSON(data); err != nil {
			t.Fatalf("kustomize resource %s: %v", res.CurId(), err)
		}
		if u.GetKind() == "CustomResourceDefinition" {
			crds = append(crds, u)
		} else {
			objects = append(objects, u)
		}
	}
	return crds, objects
}

// TestChartMatchesKustomize: the Helm release "cobalt" in namespace cobalt-system and
// `kubectl apply -k config/default` install the same objects.
func TestChartMatchesKustomize(t *testing.T) {
	kCRDs, kObjs := kustomizeBuild(t, "default")
	r := mustRender(t, nil)

	t.Run("CRDs", func(t *testing.T) {
		if got, want := keys(r.crds), keys(kCRDs); !slices.Equal(got, want) {
			t.Fatalf("chart CRDs %v, kustomize CRDs %v", got, want)
		}
		for _, k := range kCRDs {
			c := find(t, r.crds, k.GetKind(), k.GetName())
			if !equalJSON(c.Object["spec"], k.Object["spec"]) {
				t.Errorf("CRD %s: the chart's spec differs from kustomize's", k.GetName())
			}
		}
	})

	t.Run("object set", func(t *testing.T) {
		chartKeys, kustKeys := keys(r.objects), keys(kObjs)
		for _, k := range chartKeys {
			if !slices.Contains(kustKeys, k) && chartOnly[k] == "" {
				t.Errorf("the chart renders %s, kustomize does not", k)
			}
		}
		for _, k := range kustKeys {
			if !slices.Contains(chartKeys, k) && kustomizeOnly[k] == "" {
				t.Errorf("kustomize renders %s, the chart does not", k)
			}
		}
		for k, why := range chartOnly {
			if slices.Contains(kustKeys, k) {
				t.Errorf("kustomize now renders %s: remove it from chartOnly (%s) and compare it", k, why)
			}
			if !slices.Contains(chartKeys, k) {
				t.Errorf("chartOnly lists %s, which the chart does not render", k)
			}
		}
		for k, why := range kustomizeOnly {
			if !slices.Contains(kustKeys, k) {
				t.Errorf("kustomizeOnly lists %s (%s), which kustomize does not render", k, why)
			}
		}
	})

	t.Run("RBAC", func(t *testing.T) {
		compared := 0
		for _, k := range kObjs {
			var fields []string
			switch k.GetKind() {
			case "Role", "ClusterRole":
				fields = []string{"rules"}
			case "RoleBinding", "ClusterRoleBinding":
				fields = []string{"roleRef", "subjects"}
			default:
				continue
			}
			compared++
			c := find(t, r.objects, k.GetKind(), k.GetName())
			for _, f := range fields {
				if !equalJSON(c.Object[f], k.Object[f]) {
					t.Errorf("%s %s: the chart's %s differ from kustomize's:\nchart:     %v\nkustomize: %v", k.GetKind(), k.GetName(), f, c.Object[f], k.Object[f])
				}
			}
		}
		if compared < 4 {
			t.Errorf("compared %d RBAC objects, want the manager and leader election roles and bindings", compared)
		}
	})

	t.Run("metrics Service", func(t *testing.T) {
		const name = "cobalt-controller-manager-metrics-service"
		k, c := find(t, kObjs, "Service", name), find(t, r.objects, "Service", name)
		for _, path := range [][]string{{"spec", "type"}, {"spec", "ports"}} {
			kv, _, _ := unstructured.NestedFieldNoCopy(k.Object, path...)
			cv, _, _ := unstructured.NestedFieldNoCopy(c.Object, path...)
			if !equalJSON(cv, kv) {
				t.Errorf("Service %s: chart %v, kustomize %v", strings.Join(path, "."), cv, kv)
			}
		}
		// Each selects its own operator pods, whose container has the port the Service targets.
		for _, in := range []struct {
			what string
			svc  *unstructured.Unstructured
			objs []*unstructured.Unstructured
		}{{"kustomize", k, kObjs}, {"chart", c, r.objects}} {
			dep := find(t, in.objs, "Deployment", "cobalt-controller-manager")
			sel, _, _ := unstructured.NestedStringMap(in.svc.Object, "spec", "selector")
			podLabels, _, _ := unstructured.NestedStringMap(dep.Object, "spec", "template", "metadata", "labels")
			if len(sel) == 0 {
				t.Errorf("%s: the metrics Service has no selector", in.what)
			}
			for key, v := range sel {
				if podLabels[key] != v {
					t.Errorf("%s: the metrics Service selects %s=%s, the operator's pods have %q", in.what, key, v, podLabels[key])
				}
			}
			if !hasPort(firstContainer(t, dep), "metrics") {
				t.Errorf("%s: the operator's container has no port named metrics for the Service to target", in.what)
			}
		}
	})

	t.Run("operator Deployment", func(t *testing.T) {
		k := find(t, kObjs, "Deployment", "cobalt-controller-manager")
		c := find(t, r.objects, "Deployment", "cobalt-controller-manager")
		for _, path := range [][]string{
			{"spec", "replicas"},
			{"spec", "template", "spec", "serviceAccountName"},
			{"spec", "template", "spec", "terminationGracePeriodSeconds"},
			{"spec", "template", "spec", "securityContext", "runAsNonRoot"},
			{"spec", "template", "spec", "securityContext", "seccompProfile"},
		} {
			kv, _, _ := unstructured.NestedFieldNoCopy(k.Object, path...)
			cv, _, _ := unstructured.NestedFieldNoCopy(c.Object, path...)
			if !equalJSON(cv, kv) {
				t.Errorf("Deployment %s: chart %v, kustomize %v", strings.Join(path, "."), cv, kv)
			}
		}
		kc, cc := firstContainer(t, k), firstContainer(t, c)
		for _, f := range []string{"name", "env", "ports", "livenessProbe", "readinessProbe", "securityContext", "resources", "volumeMounts"} {
			if !equalJSON(cc[f], kc[f]) {
				t.Errorf("manager container %s: chart %v, kustomize %v", f, cc[f], kc[f])
			}
		}
		// The CSI sidecars: the same containers, images (tags included: both pin the versions
		// hack/cluster/build-csi-sidecars.sh builds), arguments and settings; the same volumes.
		sameContainers(t, "operator pod", k, c, "manager")
		kv, _, _ := unstructured.NestedFieldNoCopy(k.Object, "spec", "template", "spec", "volumes")
		cv, _, _ := unstructured.NestedFieldNoCopy(c.Object, "spec", "template", "spec", "volumes")
		if !equalJSON(cv, kv) {
			t.Errorf("operator pod volumes: chart %v, kustomize %v", cv, kv)
		}
		if repo(cc["image"]) != repo(kc["image"]) {
			t.Errorf("manager image: chart %v, kustomize %v (tags may differ, repositories may not)", cc["image"], kc["image"])
		}
		if got, want := flagsOf(cc["args"]), flagsOf(kc["args"]); !slices.Equal(got, want) {
			t.Errorf("manager flags: chart %v, kustomize %v", got, want)
		}
		// The owner of what the operator creates for itself is the ServiceAccount it runs as (kustomize's namePrefix
		// does not rewrite arguments, so config/manager spells the prefixed name out).
		for what, dep := range map[string]*unstructured.Unstructured{"kustomize": k, "chart": c} {
			sa, _, _ := unstructured.NestedString(dep.Object, "spec", "template", "spec", "serviceAccountName")
			args, _ := firstContainer(t, dep)["args"].([]any)
			if want := "--owner-service-account=" + sa; sa == "" || !slices.Contains(args, any(want)) {
				t.Errorf("%s: manager args %v lack %s", what, args, want)
			}
		}
	})

	t.Run("CSI driver, StorageClasses and VolumeSnapshotClass", func(t *testing.T) {
		compared := 0
		for _, k := range kObjs {
			var fields []string
			switch k.GetKind() {
			case "CSIDriver":
				fields = []string{"spec"}
			case "StorageClass":
				fields = []string{"provisioner", "parameters", "reclaimPolicy", "volumeBindingMode", "allowVolumeExpansion", "mountOptions"}
			case "VolumeSnapshotClass":
				fields = []string{"driver", "deletionPolicy", "parameters"}
			default:
				continue
			}
			compared++
			c := find(t, r.objects, k.GetKind(), k.GetName())
			for _, f := range fields {
				if !equalJSON(c.Object[f], k.Object[f]) {
					t.Errorf("%s %s: the chart's %s differs from kustomize's:\nchart:     %v\nkustomize: %v", k.GetKind(), k.GetName(), f, c.Object[f], k.Object[f])
				}
			}
			for _, a := range []string{"storageclass.kubernetes.io/is-default-class", "snapshot.storage.kubernetes.io/is-default-class"} {
				if !equalJSON(c.GetAnnotations()[a], k.GetAnnotations()[a]) {
					t.Errorf("%s %s: the annotation %s differs", k.GetKind(), k.GetName(), a)
				}
			}
		}
		if compared != 4 {
			t.Errorf("compared %d CSI objects, want the CSIDriver, two StorageClasses and a VolumeSnapshotClass", compared)
		}
	})

	t.Run("snapshot-controller Deployment", func(t *testing.T) {
		k := find(t, kObjs, "Deployment", "cobalt-snapshot-controller")
		c := find(t, r.objects, "Deployment", "cobalt-snapshot-controller")
		for _, path := range [][]string{
			{"spec", "replicas"},
			{"spec", "template", "spec", "serviceAccountName"},
			{"spec", "template", "spec", "terminationGracePeriodSeconds"},
			{"spec", "template", "spec", "securityContext"},
		} {
			kv, _, _ := unstructured.NestedFieldNoCopy(k.Object, path...)
			cv, _, _ := unstructured.NestedFieldNoCopy(c.Object, path...)
			if !equalJSON(cv, kv) {
				t.Errorf("Deployment %s: chart %v, kustomize %v", strings.Join(path, "."), cv, kv)
			}
		}
		sameContainers(t, "snapshot-controller pod", k, c)
	})
}

// sameContainers compares the containers of two renderings of a Deployment, but those named in
// skip: the same names, images (tags included), arguments and settings, and the same volumes.
func sameContainers(t *testing.T, what string, k, c *unstructured.Unstructured, skip ...string) {
	t.Helper()
	kSide, cSide := containersByName(t, k), containersByName(t, c)
	if got, want := slices.Sorted(maps.Keys(cSide)), slices.Sorted(maps.Keys(kSide)); !slices.Equal(got, want) {
		t.Errorf("%s containers: chart %v, kustomize %v", what, got, want)
	}
	for name, kctr := range kSide {
		if slices.Contains(skip, name) || cSide[name] == nil {
			continue
		}
		for _, f := range []string{"image", "imagePullPolicy", "args", "env", "volumeMounts", "securityContext", "resources"} {
			if !equalJSON(cSide[name][f], kctr[f]) {
				t.Errorf("%s container %s %s: chart %v, kustomize %v", what, name, f, cSide[name][f], kctr[f])
			}
		}
	}
	kv, _, _ := unstructured.NestedFieldNoCopy(k.Object, "spec", "template", "spec", "volumes")
	cv, _, _ := unstructured.NestedFieldNoCopy(c.Object, "spec", "template", "spec", "volumes")
	if !equalJSON(cv, kv) {
		t.Errorf("%s volumes: chart %v, kustomize %v", what, cv, kv)
	}
}

// TestWithoutSnapshotControllerMatchesChart: for a cluster that already runs a snapshot-controller,
// config/without-snapshot-controller installs what the chart does with
// snapshotController.enabled=false, and neither touches the snapshot.storage.k8s.io CRDs the
// cluster has (kustomize applies none; Helm creates its crds/ only where absent).
func TestWithoutSnapshotControllerMatchesChart(t *testing.T) {
	kCRDs, kObjs := kustomizeBuild(t, "without-snapshot-controller")
	r := mustRender(t, map[string]any{"snapshotController": map[string]any{"enabled": false}})
	var cobaltCRDs []string
	for _, k := range wantCRDs {
		if !strings.HasSuffix(k, "."+snapshotGroup) {
			cobaltCRDs = append(cobaltCRDs, k)
		}
	}
	if got := keys(kCRDs); !slices.Equal(got, cobaltCRDs) {
		t.Errorf("config/without-snapshot-controller CRDs %v, want Cobalt's only %v", got, cobaltCRDs)
	}
	kustKeys := slices.DeleteFunc(keys(kObjs), func(k string) bool { return kustomizeOnly[k] != "" })
	if got := keys(r.objects); !slices.Equal(got, kustKeys) {
		t.Errorf("objects:\n chart (snapshotController.enabled=false) %v\n config/without-snapshot-controller     %v", got, kustKeys)
	}
	for _, k := range snapshotControllerObjects {
		if slices.Contains(kustKeys, k) {
			t.Errorf("config/without-snapshot-controller renders %s", k)
		}
	}
	_, def := kustomizeBuild(t, "default")
	sameContainers(t, "operator pod", find(t, def, "Deployment", "cobalt-controller-manager"), find(t, kObjs, "Deployment", "cobalt-controller-manager"))
}

// containersByName maps the names of a Deployment's containers to the containers.
func containersByName(t testing.TB, dep *unstructured.Unstructured) map[string]map[string]any {
	t.Helper()
	cs, _, _ := unstructured.NestedSlice(dep.Object, "spec", "template", "spec", "containers")
	out := map[string]map[string]any{}
	for _, c := range cs {
		m := c.(map[string]any)
		out[m["name"].(string)] = m
	}
	return out
}

func firstContainer(t testing.TB, dep *unstructured.Unstructured) map[string]any {
	t.Helper()
	cs, _, _ := unstructured.NestedSlice(dep.Object, "spec", "template", "spec", "containers")
	if len(cs) == 0 {
		t.Fatalf("%s has no containers", objectKey(dep))
	}
	return cs[0].(map[string]any)
}

// hasPort says whether container declares a port called name.
func hasPort(container map[string]any, name string) bool {
	ports, _ := container["ports"].([]any)
	for _, p := range ports {
		if m, ok := p.(map[string]any); ok && m["name"] == name {
			return true
		}
	}
	return false
}

// repo strips the tag from an image reference.
func repo(image any) string {
	s, _ := image.(string)
	if i := strings.LastIndex(s, ":"); i > strings.LastIndex(s, "/") {
		return s[:i]
	}
	return s
}

// flagsOf returns the sorted arguments, with image tags cut off (the chart uses its appVersion,
// kustomize the dev tag).
func flagsOf(args any) []string {
	list, _ := args.([]any)
	out := make([]string, 0, len(list))
	for _, a := range list {
		s, _ := a.(string)
		if strings.HasPrefix(s, "--node-daemon-image=") {
			s = "--node-daemon-image=" + repo(strings.TrimPrefix(s, "--node-daemon-image="))
		}
		out = append(out, s)
	}
	slices.Sort(out)
	return out
}
