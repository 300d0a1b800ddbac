package chart

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
)

// apiServer is the envtest API server shared by the package's tests; TestMain starts it once with
// the chart's CRDs (and ServiceMonitor and PodMonitor stand-ins) installed.
type apiServer struct {
	env    *envtest.Environment
	cfg    *rest.Config
	client client.Client
}

// server is set by TestMain before any test runs and never changed afterwards.
var server *apiServer

func TestMain(m *testing.M) {
	os.Exit(runWithAPIServer(m))
}

func runWithAPIServer(m *testing.M) int {
	_, file, _, _ := runtime.Caller(0)
	dir := filepath.Dir(file)
	if os.Getenv("KUBEBUILDER_ASSETS") == "" {
		fmt.Fprintln(os.Stderr, "KUBEBUILDER_ASSETS is not set: run the tests with `make test` (it builds kube-apiserver and etcd into bin/k8s)")
		return 1
	}
	env := &envtest.Environment{
		CRDDirectoryPaths: []string{
			filepath.Join(dir, "..", "..", "charts", "cobalt", "crds"),
			filepath.Join(dir, "testdata", "servicemonitor-crd.yaml"),
			filepath.Join(dir, "testdata", "podmonitor-crd.yaml"),
		},
		ErrorIfCRDPathMissing: true,
	}
	cfg, err := env.Start()
	if err != nil {
		fmt.Fprintf(os.Stderr, "start envtest API server (KUBEBUILDER_ASSETS=%s): %v\n", os.Getenv("KUBEBUILDER_ASSETS"), err)
		return 1
	}
	defer func() {
		if err := env.Stop(); err != nil {
			fmt.Fprintf(os.Stderr, "stop envtest API server: %v\n", err)
		}
	}()
	c, err := client.New(cfg, client.Options{})
	if err != nil {
		fmt.Fprintf(os.Stderr, "API client: %v\n", err)
		return 1
	}
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: releaseNamespace}}
	if err := c.Create(context.Background(), ns); err != nil {
		fmt.Fprintf(os.Stderr, "create namespace %s: %v\n", releaseNamespace, err)
		return 1
	}
	server = &apiServer{env: env, cfg: cfg, client: client.WithFieldValidation(c, metav1.FieldValidationStrict)}
	return m.Run()
}

// dryRunApply server-side applies obj with dryRun=All and strict field validation: the API server
// runs defaulting, OpenAPI and CEL validation and admission, and stores nothing.
func (s *apiServer) dryRunApply(ctx context.Context, obj *unstructured.Unstructured) error {
	return s.client.Apply(ctx, client.ApplyConfigurationFromUnstructured(obj.DeepCopy()),
		client.DryRunAll, client.FieldOwner("cobalt-chart-test"), client.ForceOwnership)
}

// TestRenderedObjectsDryRunApply applies every object the chart renders, with default values and
// with every option on, to the API server in dry-run mode.
func TestRenderedObjectsDryRunApply(t *testing.T) {
	for _, tc := range []struct {
		name   string
		values map[string]any
	}{
		{"defaults", nil},
		{"all options", allOptions(t)},
		{"StorageCluster on explicit paths that may be wiped", map[string]any{"storageCluster": map[string]any{
			"enabled": true,
			"spec":    map[string]any{"devices": map[string]any{"paths": []any{"/dev/sdb", "/dev/sdc"}, "allowWipe": true}},
		}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := mustRender(t, tc.values)
			for _, obj := range append(r.crds, r.objects...) {
				if err := server.dryRunApply(t.Context(), obj); err != nil {
					t.Errorf("dry-run apply %s: %v", objectKey(obj), err)
				}
			}
		})
	}
}

// TestDryRunApplyRefusesABadStorageCluster makes sure the dry run validates: a StorageCluster the
// schema lets through but the CRD's CEL rules refuse is rejected with the CRD's message.
func TestDryRunApplyRefusesABadStorageCluster(t *testing.T) {
	values := allOptions(t)
	values["storageCluster"] = map[string]any{"enabled": true, "spec": map[string]any{
		"devices": map[string]any{"file": map[string]any{"size": "1Mi"}},
	}}
	r := mustRender(t, values)
	sc := find(t, r.objects, "StorageCluster", "cobalt")
	err := server.dryRunApply(t.Context(), sc)
	if err == nil {
		t.Fatal("the API server accepted a 1Mi file device")
	}
	if want := "file size must be at least 64Mi"; !strings.Contains(err.Error(), want) {
		t.Errorf("error %q does not say %q", err, want)
	}
}
