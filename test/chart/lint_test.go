package chart

import (
	"strings"
	"testing"

	"helm.sh/helm/v3/pkg/chartutil"
	"helm.sh/helm/v3/pkg/lint"
	"helm.sh/helm/v3/pkg/lint/support"
)

// TestHelmLint runs `helm lint` (schema validation included) with the default values and with
// every option on; a warning fails the test like an error.
func TestHelmLint(t *testing.T) {
	kv, err := chartutil.ParseKubeVersion(kubeVersion)
	if err != nil {
		t.Fatalf("parse kube version: %v", err)
	}
	for _, tc := range []struct {
		name   string
		values map[string]any
	}{
		{"defaults", map[string]any{}},
		{"all options", allOptions(t)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			linter := lint.AllWithKubeVersionAndSchemaValidation(chartDir(t), tc.values, releaseNamespace, kv, false)
			for _, msg := range linter.Messages {
				if msg.Severity >= support.WarningSev {
					t.Errorf("helm lint: %s", msg)
				} else {
					t.Logf("helm lint: %s", msg)
				}
			}
		})
	}
}

// TestHelmLintCatchesABrokenChart makes sure the lint test can fail: a value of the wrong type is
// reported as an error.
func TestHelmLintCatchesABrokenChart(t *testing.T) {
	kv, err := chartutil.ParseKubeVersion(kubeVersion)
	if err != nil {
		t.Fatalf("parse kube version: %v", err)
	}
	linter := lint.AllWithKubeVersionAndSchemaValidation(chartDir(t), map[string]any{"operator": map[string]any{"replicas": "two"}}, releaseNamespace, kv, false)
	if linter.HighestSeverity < support.ErrorSev {
		t.Fatalf("helm lint accepted operator.replicas=\"two\": %v", linter.Messages)
	}
	found := false
	for _, m := range linter.Messages {
		found = found || (m.Severity == support.ErrorSev && strings.Contains(m.Err.Error(), "/operator/replicas"))
	}
	if !found {
		t.Errorf("no lint error names /operator/replicas: %v", linter.Messages)
	}
}
