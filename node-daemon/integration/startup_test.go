package integration

import (
	"errors"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// TestProcessWithoutItsStorageClusterExitsNonZero: the node-daemon binary whose StorageCluster
// does not exist logs an error naming it and exits non-zero at once (in a pod, the DaemonSet
// restarts it with back-off), having prepared nothing.
func TestProcessWithoutItsStorageClusterExitsNonZero(t *testing.T) {
	c := newCluster(t)
	cfg := c.daemonConfig(t, "node-x", newDevice(t, 64<<20, 0, nil))
	cfg.ClusterName = "missing"
	p := startProc(t, cfg)
	select {
	case <-p.exited:
	case <-time.After(30 * time.Second):
		t.Fatal("the daemon still runs 30s after starting without its StorageCluster")
	}
	var exit *exec.ExitError
	if !errors.As(p.err, &exit) || exit.ExitCode() == 0 {
		t.Fatalf("exit: %v, want a non-zero exit status", p.err)
	}
	log, err := os.ReadFile(p.logPath)
	if err != nil {
		t.Fatal(err)
	}
	want := "StorageCluster " + c.namespace + "/missing does not exist"
	if !strings.Contains(string(log), want) || !strings.Contains(string(log), "cannot start the node daemon") {
		t.Fatalf("log lacks %q:\n%s", want, log)
	}
	if _, err := os.Stat(cfg.StoresDir()); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("the stores directory was made (%v)", err)
	}
}
