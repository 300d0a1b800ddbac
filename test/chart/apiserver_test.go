package chart

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/cobaltstore/cobalt/test/testenv"
)

// apiServer is the envtest API server shared by the package's tests; TestMain starts it once with
// the chart's CRDs (and ServiceMonitor and PodMonitor stand-ins) installed.
type apiServer struct {
	env *testenv.Env
	// client validates fields strictly.
	client client.Client
}

// server is set by TestMain before any test runs and never changed afterwards.
var server *apiServer

func TestMain(m *testing.M) {
	os.Exit(testenv.Main(m, testenv.Options{CRDPaths: []string{
		filepath.Join("charts", "cobalt", "crds"),
		filepath.Join("test", "chart", "testdata", "servicemonitor-crd.yaml"),
		filepath.Join("test", "chart", "testdata", "podmonitor-crd.yaml"),
	}}, func(ctx context.Context, env *testenv.Env) error {
		ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: releaseNamespace}}
		if err := env.Client.Create(ctx, ns); err != nil {
			return fmt.Errorf("create namespace %s: %w", releaseNamespace, err)
		}
		server = &apiServer{env: env, client: client.WithFieldValidation(env.Client, metav1.FieldValidationStrict)}
		return nil
	}))
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
