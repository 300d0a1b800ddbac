package assets

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// tree makes a module in a temporary directory: go.mod, a nested package directory, and the
// given files under it (mode 0o755 unless the name ends in ":ro", then 0o644).
func tree(t *testing.T, files ...string) (root, nested string) {
	t.Helper()
	root = t.TempDir()
	nested = filepath.Join(root, "a", "b")
	if err := os.MkdirAll(nested, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, "go.mod"), []byte("module example.test\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, f := range files {
		mode := os.FileMode(0o755)
		if name, ok := strings.CutSuffix(f, ":ro"); ok {
			f, mode = name, 0o644
		}
		path := filepath.Join(root, f)
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte("#!/bin/sh\n"), mode); err != nil {
			t.Fatal(err)
		}
	}
	return root, nested
}

func TestFind(t *testing.T) {
	inRepo := filepath.Join("bin", "k8s", Version)
	for _, tc := range []struct {
		name     string
		files    []string
		explicit string // relative to the module root; "" means unset
		want     string // relative to the module root; "" means an error
		wantErr  string
	}{
		{name: "found in bin/k8s by walking up to go.mod",
			files: []string{inRepo + "/kube-apiserver", inRepo + "/etcd"}, want: inRepo},
		{name: "the variable wins over bin/k8s",
			files:    []string{inRepo + "/kube-apiserver", inRepo + "/etcd", "other/kube-apiserver", "other/etcd"},
			explicit: "other", want: "other"},
		{name: "nothing built yet",
			wantErr: "no kube-apiserver in"},
		{name: "etcd missing",
			files: []string{inRepo + "/kube-apiserver"}, wantErr: "no etcd in"},
		{name: "the variable points at an empty directory, bin/k8s is not consulted",
			files:    []string{inRepo + "/kube-apiserver", inRepo + "/etcd", "empty/.keep"},
			explicit: "empty", wantErr: "no kube-apiserver in"},
		{name: "a binary that cannot run",
			files: []string{inRepo + "/kube-apiserver:ro", inRepo + "/etcd"}, wantErr: "is not an executable file"},
		{name: "other versions are not picked up",
			files: []string{"bin/k8s/1.0.0/kube-apiserver", "bin/k8s/1.0.0/etcd"}, wantErr: "no kube-apiserver in"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			root, nested := tree(t, tc.files...)
			explicit := ""
			if tc.explicit != "" {
				explicit = filepath.Join(root, tc.explicit)
			}
			got, err := Find(explicit, nested)
			if tc.wantErr != "" {
				if err == nil {
					t.Fatalf("Find = %s, want an error saying %q", got, tc.wantErr)
				}
				for _, want := range []string{tc.wantErr, "make envtest"} {
					if !strings.Contains(err.Error(), want) {
						t.Errorf("error %q does not say %q", err, want)
					}
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if want := filepath.Join(root, tc.want); got != want {
				t.Errorf("Find = %s, want %s", got, want)
			}
		})
	}
}

func TestFindOutsideAModule(t *testing.T) {
	_, err := Find("", t.TempDir())
	if err == nil || !strings.Contains(err.Error(), EnvVar+" is not set") || !strings.Contains(err.Error(), "no go.mod") {
		t.Errorf("Find outside a module = %v, want it to say %s is not set and there is no go.mod", err, EnvVar)
	}
}

func TestCheckForKubectl(t *testing.T) {
	root, _ := tree(t, "x/kube-apiserver", "x/etcd")
	dir := filepath.Join(root, "x")
	if err := Check(dir); err != nil {
		t.Errorf("Check: %v", err)
	}
	if err := CheckFor(dir, KubeAPIServer, Etcd, Kubectl); err == nil || !strings.Contains(err.Error(), "no kubectl in") {
		t.Errorf("CheckFor with kubectl = %v, want it to say kubectl is missing", err)
	}
}

// TestVersionIsTheMakefiles keeps Version equal to what `make envtest` builds.
func TestVersionIsTheMakefiles(t *testing.T) {
	root, err := ModuleRoot(".")
	if err != nil {
		t.Fatal(err)
	}
	mk, err := os.ReadFile(filepath.Join(root, "Makefile"))
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?m)^ENVTEST_K8S_VERSION \?= (\S+)$`).FindSubmatch(mk)
	if m == nil {
		t.Fatal("no ENVTEST_K8S_VERSION in the Makefile")
	}
	if string(m[1]) != Version {
		t.Errorf("the Makefile builds envtest assets %s, Version is %s", m[1], Version)
	}
}
