package main

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestDownUndoesWhatADeadDemoLeft: a demo killed with -9 leaves a state file and a running
// child; `down` stops the child (its executable matches), skips a loop device that is not
// attached to the recorded file, removes the control-plane and node directories, the manifests,
// the data and the kubeconfig, and then the state file: only the logs are left.
func TestDownUndoesWhatADeadDemoLeft(t *testing.T) {
	paths, err := newDemoPaths(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range []string{paths.dir, paths.logs, paths.controlPlane, paths.nodeState, paths.manifests, paths.data} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for _, f := range []string{filepath.Join(paths.data, "in.bin"), filepath.Join(paths.manifests, "cobalt-install.yaml"), paths.kubeconfig} {
		if err := os.WriteFile(f, []byte("x"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	child, err := startProcess("leftover", sleepPath(t), []string{"60"}, nil, filepath.Join(paths.logs, "leftover.log"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = child.stop(5 * time.Second) })
	st := State{
		PID:         1 << 22, // no such process: the demo is dead
		Exe:         "/nonexistent/cobalt-demo",
		Mode:        "local",
		Processes:   []Process{{Name: "leftover", PID: child.cmd.Process.Pid, Exe: sleepPath(t)}},
		LoopDevices: []LoopDevice{{Device: "/dev/loop-not-there", BackingFile: filepath.Join(paths.dir, "img")}},
	}
	if _, err := newStateFile(paths.state, st); err != nil {
		t.Fatal(err)
	}
	var out strings.Builder
	if err := down(t.Context(), config{stateDir: paths.dir}, &out); err != nil {
		t.Fatalf("down: %v\n%s", err, out.String())
	}
	select {
	case <-child.done:
	case <-time.After(10 * time.Second):
		t.Fatal("down did not stop the leftover process")
	}
	for _, p := range []string{paths.state, paths.controlPlane, paths.nodeState, paths.manifests, paths.data, paths.kubeconfig} {
		if _, err := os.Stat(p); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s still exists after down (%v)", p, err)
		}
	}
	if entries, err := os.ReadDir(paths.dir); err != nil || len(entries) != 1 || entries[0].Name() != "logs" {
		t.Errorf("after down, %s holds %v (%v), want only logs", paths.dir, entries, err)
	}
	if !strings.Contains(out.String(), "leftover (pid") {
		t.Errorf("down's output does not mention the process:\n%s", out.String())
	}
	// A second down has nothing to do.
	out.Reset()
	if err := down(t.Context(), config{stateDir: paths.dir}, &out); err != nil || !strings.Contains(out.String(), "nothing to stop") {
		t.Errorf("second down: %v, %q", err, out.String())
	}
}
