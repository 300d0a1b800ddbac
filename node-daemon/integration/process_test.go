package integration

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/cobaltstore/cobalt/node-daemon/app"
)

// proc is the node-daemon binary running as a subprocess.
type proc struct {
	cmd     *exec.Cmd
	logPath string
	exited  chan struct{}
	err     error // the process's exit error, valid once exited is closed
}

// args renders cfg as the daemon's command line (the operator's flags plus test settings); the
// devices and engine settings come from the StorageCluster.
func args(cfg *app.Config) []string {
	return []string{
		"--cluster-namespace=" + cfg.ClusterNamespace, "--cluster-name=" + cfg.ClusterName,
		"--node-name=" + cfg.NodeName, "--state-dir=" + cfg.StateDir, "--dev-dir=" + cfg.DevDir,
		"--grpc-address=" + cfg.GRPCAddr, "--advertise-address=" + cfg.AdvertiseAddr,
		"--metrics-bind-address=0", "--health-probe-bind-address=0",
		"--heartbeat-interval=" + cfg.HeartbeatInterval.String(),
		"--shutdown-grace=" + cfg.ShutdownGrace.String(),
	}
}

func startProc(t *testing.T, cfg *app.Config) *proc {
	t.Helper()
	p := &proc{logPath: filepath.Join(t.TempDir(), "daemon.log"), exited: make(chan struct{})}
	logFile, err := os.Create(p.logPath)
	if err != nil {
		t.Fatal(err)
	}
	p.cmd = exec.Command(daemonBin, args(cfg)...)
	p.cmd.Env = append(os.Environ(), "KUBECONFIG="+kubeconfig)
	p.cmd.Stdout, p.cmd.Stderr = logFile, logFile
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("start node-daemon: %v", err)
	}
	go func() {
		p.err = p.cmd.Wait()
		logFile.Close()
		close(p.exited)
	}()
	t.Cleanup(func() {
		select {
		case <-p.exited:
		default:
			_ = p.cmd.Process.Kill()
			<-p.exited
		}
		if t.Failed() {
			if b, err := os.ReadFile(p.logPath); err == nil {
				t.Logf("node-daemon log (pid %d):\n%s", p.cmd.Process.Pid, tail(string(b), 8000))
			}
		}
	})
	return p
}

func tail(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return "..." + s[len(s)-n:]
}

// kill sends SIGKILL and waits for the process to be gone.
func (p *proc) kill(t *testing.T) {
	t.Helper()
	if err := p.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatalf("kill -9: %v", err)
	}
	<-p.exited
}

// terminate sends SIGTERM and returns how long the process took to exit and its exit error.
func (p *proc) terminate(t *testing.T, limit time.Duration) (time.Duration, error) {
	t.Helper()
	start := time.Now()
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatalf("SIGTERM: %v", err)
	}
	select {
	case <-p.exited:
		return time.Since(start), p.err
	case <-time.After(limit):
		return time.Since(start), fmt.Errorf("still running %s after SIGTERM", limit)
	}
}
