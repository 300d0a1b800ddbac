package integration

import (
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/cobaltstore/cobalt/node-daemon/app"
)

// proc is a subprocess of the test: the node-daemon binary, or the test binary as a coordinator.
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
	cmd := exec.Command(daemonBin, args(cfg)...)
	cmd.Env = append(os.Environ(), "KUBECONFIG="+kubeconfig)
	return start(t, cmd, "node-daemon", nil)
}

// start starts cmd (what names it in messages) with its stderr, and its stdout unless read
// consumes it, in a log file; read, when not nil, reads the process's stdout until it closes,
// before the process is waited for. At cleanup the process is killed if still running, and its
// log's tail shown if t failed.
func start(t *testing.T, cmd *exec.Cmd, what string, read func(io.Reader)) *proc {
	t.Helper()
	p := &proc{cmd: cmd, logPath: filepath.Join(t.TempDir(), what+".log"), exited: make(chan struct{})}
	logFile, err := os.Create(p.logPath)
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = logFile
	var stdout io.Reader
	if read == nil {
		cmd.Stdout = logFile
	} else if stdout, err = cmd.StdoutPipe(); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", what, err)
	}
	go func() {
		if read != nil {
			read(stdout)
		}
		p.err = cmd.Wait()
		logFile.Close()
		close(p.exited)
	}()
	t.Cleanup(func() {
		select {
		case <-p.exited:
		default:
			_ = cmd.Process.Kill() // a stopped process dies of SIGKILL too
			<-p.exited
		}
		if t.Failed() {
			if b, err := os.ReadFile(p.logPath); err == nil {
				t.Logf("%s log (pid %d):\n%s", what, cmd.Process.Pid, tail(string(b), 8000))
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

// panicLine returns the first line of the process's log that says why it crashed (a Go panic or
// fatal error), or says there is none.
func (p *proc) panicLine() string {
	b, err := os.ReadFile(p.logPath)
	if err != nil {
		return fmt.Sprintf("no log: %v", err)
	}
	var out []string
	for _, line := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(line, "panic:") || strings.HasPrefix(line, "fatal error:") || strings.Contains(line, "pebble/") && len(out) > 0 && len(out) < 4 {
			out = append(out, strings.TrimSpace(line))
		}
	}
	if len(out) == 0 {
		return "no panic in its log"
	}
	return strings.Join(out, " | ")
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
