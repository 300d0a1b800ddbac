package main

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// demoFiles lays out what a demo run writes under its state directory and returns the paths.
func demoFiles(t *testing.T) demoPaths {
	t.Helper()
	paths, err := newDemoPaths(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range []string{paths.logs, paths.manifests, paths.data, paths.controlPlane, paths.nodeState, filepath.Join(paths.kubelet, "plugins")} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for _, f := range []string{
		filepath.Join(paths.logs, "operator.log"), filepath.Join(paths.manifests, "cobalt-install.yaml"),
		filepath.Join(paths.data, "in.bin"), filepath.Join(paths.data, "out.bin"),
		paths.kubeconfig, paths.nodeKubeconfig, paths.csiSocket, filepath.Join(paths.dir, "device.img"),
	} {
		if err := os.WriteFile(f, []byte("x"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return paths
}

// left lists what is under dir, relative to it.
func left(t *testing.T, dir string) []string {
	t.Helper()
	var out []string
	err := filepath.WalkDir(dir, func(p string, _ os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if rel, _ := filepath.Rel(dir, p); rel != "." {
			out = append(out, rel)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(out)
	return out
}

// TestCleanupLeavesOnlyTheLogs: a demo whose undo actions all succeed removes every file it
// wrote but the logs (data, manifests, kubeconfigs, socket, state file); when one fails it
// removes nothing, so `make demo-down` can finish the job from the state file.
func TestCleanupLeavesOnlyTheLogs(t *testing.T) {
	for _, tc := range []struct {
		name    string
		undoErr error
		want    []string // nil: everything is still there
	}{
		{name: "everything undone", want: []string{"logs", "logs/operator.log"}},
		{name: "nothing to undo", want: []string{"logs", "logs/operator.log"}},
		{name: "an undo failed", undoErr: errors.New("device busy")},
	} {
		t.Run(tc.name, func(t *testing.T) {
			paths := demoFiles(t)
			st, err := newStateFile(paths.state, State{PID: os.Getpid(), Mode: "local"})
			if err != nil {
				t.Fatal(err)
			}
			before := left(t, paths.dir)
			var out strings.Builder
			d := &demo{paths: paths, out: &out, state: st}
			if tc.name != "nothing to undo" {
				d.onExit("stopped something", func(context.Context) error { return tc.undoErr })
			}
			err = d.cleanup(t.Context())
			if (err != nil) != (tc.undoErr != nil) {
				t.Fatalf("cleanup: %v, want error %v\n%s", err, tc.undoErr, out.String())
			}
			want := tc.want
			if want == nil {
				want = before
			}
			if got := left(t, paths.dir); !slices.Equal(got, want) {
				t.Errorf("left under .demo: %q, want %q\n%s", got, want, out.String())
			}
		})
	}
}

// TestRemoveAllButLogsKeepsTheStateFile: the state file goes last, by its owner, only after
// every other file is gone.
func TestRemoveAllButLogsKeepsTheStateFile(t *testing.T) {
	paths := demoFiles(t)
	if _, err := newStateFile(paths.state, State{Mode: "local"}); err != nil {
		t.Fatal(err)
	}
	if err := removeAllButLogs(paths); err != nil {
		t.Fatal(err)
	}
	if got, want := left(t, paths.dir), []string{"logs", "logs/operator.log", "state.json"}; !slices.Equal(got, want) {
		t.Errorf("left under .demo: %q, want %q", got, want)
	}
}
