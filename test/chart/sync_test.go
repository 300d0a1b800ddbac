package chart

import (
	"bytes"
	"os"
	"path/filepath"
	"slices"
	"testing"
)

// TestChartCRDsMatchConfig fails when the chart's CRDs drift from the ones controller-gen wrote
// to config/crd/bases and the snapshot.storage.k8s.io ones `make snapshot-crds` wrote to
// config/snapshot-controller/crd: run `make manifests` to sync them.
func TestChartCRDsMatchConfig(t *testing.T) {
	root := repoRoot(t)
	dst := filepath.Join(chartDir(t), "crds")
	srcOf := map[string]string{}
	var srcFiles []string
	for _, src := range []string{filepath.Join(root, "config", "crd", "bases"), filepath.Join(root, "config", "snapshot-controller", "crd")} {
		files := yamlFiles(t, src)
		if len(files) == 0 {
			t.Fatalf("no CRDs in %s", src)
		}
		for _, f := range files {
			srcOf[f] = src
		}
		srcFiles = append(srcFiles, files...)
	}
	slices.Sort(srcFiles)
	if dstFiles := yamlFiles(t, dst); !slices.Equal(srcFiles, dstFiles) {
		t.Fatalf("chart CRDs %v differ from config/crd/bases and config/snapshot-controller/crd %v: run `make manifests`", dstFiles, srcFiles)
	}
	for _, name := range srcFiles {
		sameFile(t, filepath.Join(srcOf[name], name), filepath.Join(dst, name))
	}
}

// TestChartManagerRoleMatchesConfig fails when the chart's copy of the operator's role drifts
// from config/rbac/role.yaml.
func TestChartManagerRoleMatchesConfig(t *testing.T) {
	sameFile(t, filepath.Join(repoRoot(t), "config", "rbac", "role.yaml"), filepath.Join(chartDir(t), "files", "manager-role.yaml"))
}

func yamlFiles(t testing.TB, dir string) []string {
	t.Helper()
	matches, err := filepath.Glob(filepath.Join(dir, "*.yaml"))
	if err != nil {
		t.Fatalf("list %s: %v", dir, err)
	}
	names := make([]string, 0, len(matches))
	for _, m := range matches {
		names = append(names, filepath.Base(m))
	}
	slices.Sort(names)
	return names
}

func sameFile(t testing.TB, want, got string) {
	t.Helper()
	w, err := os.ReadFile(want)
	if err != nil {
		t.Fatalf("read %s: %v", want, err)
	}
	g, err := os.ReadFile(got)
	if err != nil {
		t.Fatalf("read %s: %v (run `make manifests`)", got, err)
	}
	if !bytes.Equal(w, g) {
		t.Errorf("%s differs from %s: run `make manifests` to sync the chart", got, want)
	}
}
