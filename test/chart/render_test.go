package chart

import (
	"encoding/json"
	"fmt"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"testing"

	"helm.sh/helm/v3/pkg/action"
	"helm.sh/helm/v3/pkg/chart"
	"helm.sh/helm/v3/pkg/chart/loader"
	"helm.sh/helm/v3/pkg/chartutil"
	"helm.sh/helm/v3/pkg/releaseutil"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/yaml"
)

// kubeVersion is the Kubernetes version the chart is rendered for: the envtest API server's.
const kubeVersion = "v1.37.2"

// releaseName and releaseNamespace match config/default (namePrefix "cobalt-", namespace
// "cobalt-system"), so that both installs name their objects alike.
const (
	releaseName      = "cobalt"
	releaseNamespace = "cobalt-system"
)

// repoRoot is the repository's root directory, found from this file's path so tests do not depend
// on the working directory.
func repoRoot(t testing.TB) string {
	t.Helper()
	_, file, _, ok := runtime.Caller(0)
	if !ok {
		t.Fatal("cannot find the test's source file")
	}
	return filepath.Join(filepath.Dir(file), "..", "..")
}

func chartDir(t testing.TB) string { return filepath.Join(repoRoot(t), "charts", "cobalt") }

func loadChart(t testing.TB) *chart.Chart {
	t.Helper()
	ch, err := loader.Load(chartDir(t))
	if err != nil {
		t.Fatalf("load chart %s: %v", chartDir(t), err)
	}
	return ch
}

// rendered is the output of `helm template --include-crds` split into objects.
type rendered struct {
	crds    []*unstructured.Unstructured
	objects []*unstructured.Unstructured
	notes   string
}

// render runs what `helm template cobalt charts/cobalt -n cobalt-system --include-crds -f values`
// runs, schema validation included, and returns its error unchanged.
func render(t testing.TB, values map[string]any) (*rendered, error) {
	t.Helper()
	return renderFor(t, kubeVersion, values)
}

// renderFor renders as for a cluster of Kubernetes version version.
func renderFor(t testing.TB, version string, values map[string]any) (*rendered, error) {
	t.Helper()
	kv, err := chartutil.ParseKubeVersion(version)
	if err != nil {
		t.Fatalf("parse kube version: %v", err)
	}
	cfg := &action.Configuration{Log: func(format string, v ...any) { t.Logf(format, v...) }}
	install := action.NewInstall(cfg)
	install.DryRun = true
	install.ClientOnly = true
	install.Replace = true
	install.IncludeCRDs = true
	install.ReleaseName = releaseName
	install.Namespace = releaseNamespace
	install.KubeVersion = kv
	rel, err := install.Run(loadChart(t), values)
	if err != nil {
		return nil, err
	}
	out := &rendered{notes: rel.Info.Notes}
	for name, doc := range releaseutil.SplitManifests(rel.Manifest) {
		if strings.TrimSpace(doc) == "" {
			continue
		}
		data, err := yaml.YAMLToJSON([]byte(doc))
		if err != nil {
			t.Fatalf("rendered document %s is not YAML: %v\n%s", name, err, doc)
		}
		if string(data) == "null" {
			continue
		}
		obj := &unstructured.Unstructured{}
		if err := obj.UnmarshalJSON(data); err != nil {
			t.Fatalf("rendered document %s is not a Kubernetes object: %v\n%s", name, err, doc)
		}
		if obj.GetKind() == "CustomResourceDefinition" {
			out.crds = append(out.crds, obj)
		} else {
			out.objects = append(out.objects, obj)
		}
	}
	return out, nil
}

// mustRender renders values and fails the test on any error.
func mustRender(t testing.TB, values map[string]any) *rendered {
	t.Helper()
	r, err := render(t, values)
	if err != nil {
		t.Fatalf("helm template: %v", err)
	}
	return r
}

// objectKey names an object by kind, namespace and name.
func objectKey(u *unstructured.Unstructured) string {
	if u.GetNamespace() == "" {
		return fmt.Sprintf("%s/%s", u.GetKind(), u.GetName())
	}
	return fmt.Sprintf("%s/%s/%s", u.GetKind(), u.GetNamespace(), u.GetName())
}

// keys lists the objects' keys, sorted.
func keys(objs []*unstructured.Unstructured) []string {
	out := make([]string, 0, len(objs))
	for _, o := range objs {
		out = append(out, objectKey(o))
	}
	sort.Strings(out)
	return out
}

// find returns the object of kind and name, or fails the test.
func find(t testing.TB, objs []*unstructured.Unstructured, kind, name string) *unstructured.Unstructured {
	t.Helper()
	for _, o := range objs {
		if o.GetKind() == kind && o.GetName() == name {
			return o
		}
	}
	t.Fatalf("no %s %q among the rendered objects %v", kind, name, keys(objs))
	return nil
}

// allOptions turns on every optional object of the chart.
func allOptions(t testing.TB) map[string]any {
	t.Helper()
	caPEM, keyPEM := testCA(t)
	return map[string]any{
		"metrics": map[string]any{
			"serviceMonitor":       map[string]any{"enabled": true, "labels": map[string]any{"release": "prometheus"}},
			"nodeDaemonPodMonitor": map[string]any{"enabled": true},
		},
		"nodeAPI": map[string]any{
			"caSecret": map[string]any{"create": true, "certificate": caPEM, "key": keyPEM},
		},
		"storageCluster": map[string]any{
			"enabled": true,
			"spec": map[string]any{
				"devices": map[string]any{"file": map[string]any{"size": "1Gi"}},
			},
		},
		"grafanaDashboard": map[string]any{"enabled": true},
	}
}

// equalJSON reports whether a and b encode to the same JSON (so []any{"x"} equals []string{"x"}).
func equalJSON(a, b any) bool {
	ja, errA := json.Marshal(a)
	jb, errB := json.Marshal(b)
	return errA == nil && errB == nil && string(ja) == string(jb)
}

func unstructuredString(obj map[string]any, fields ...string) (string, bool, error) {
	return unstructured.NestedString(obj, fields...)
}
