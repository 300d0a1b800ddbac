package main

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/cobaltstore/cobalt/test/testenv/assets"
)

// runLogged runs a command in the repository with its output appended to logPath.
func runLogged(ctx context.Context, dir, logPath string, name string, args ...string) error {
	logFile, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return fmt.Errorf("open %s: %w", logPath, err)
	}
	defer logFile.Close()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Dir = dir
	cmd.Stdout = logFile
	cmd.Stderr = logFile
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("%s %s: %w (output in %s)", name, strings.Join(args, " "), err, logPath)
	}
	return nil
}

func (d *demo) build(ctx context.Context, say sayFunc) error {
	if _, err := os.Stat(d.cfg.bin("manager")); err != nil {
		say("first build: compiling the operator, node daemon, CLI and cobalt-bench takes a few minutes (output in %s)", filepath.Join(d.paths.logs, "build.log"))
	}
	if err := runLogged(ctx, d.cfg.repo, filepath.Join(d.paths.logs, "build.log"), "make", "--no-print-directory", "build"); err != nil {
		return err
	}
	var built []string
	for _, b := range []string{"manager", "node-daemon", "cobalt", "kubectl-cobalt", "cobalt-bench"} {
		if _, err := os.Stat(d.cfg.bin(b)); err == nil {
			built = append(built, "bin/"+b)
		}
	}
	say("built: %s", strings.Join(built, ", "))
	if _, err := os.Stat(d.cfg.bin("manager")); err != nil {
		return fmt.Errorf("make build did not produce bin/manager: %w", err)
	}
	return nil
}

func (d *demo) envtestAssets(ctx context.Context, say sayFunc) error {
	if assets.Check(d.cfg.assets) != nil {
		say("first run: kube-apiserver, etcd and kubectl are downloaded, or built from Go modules when that fails (a cold build takes minutes to over an hour, by cores and load; progress in %s)", filepath.Join(d.paths.logs, "envtest.log"))
	}
	if err := runLogged(ctx, d.cfg.repo, filepath.Join(d.paths.logs, "envtest.log"), "make", "--no-print-directory", "envtest", "ENVTEST_ASSETS="+d.cfg.assets); err != nil {
		return err
	}
	if err := assets.CheckFor(d.cfg.assets, assets.KubeAPIServer, assets.Etcd, assets.Kubectl); err != nil {
		return fmt.Errorf("after make envtest: %w", err)
	}
	say("assets in %s", d.cfg.assets)
	return nil
}

func (d *demo) startLocalCluster(ctx context.Context, say sayFunc) error {
	before, err := childrenOf(os.Getpid())
	if err != nil {
		return err
	}
	cp, err := startControlPlane(d.cfg.assets, d.paths.controlPlane, d.paths.logs, d.paths.kubeconfig)
	if err != nil {
		return err
	}
	d.cp = cp
	d.onExit("stopped kube-apiserver and etcd", func(context.Context) error {
		err := cp.stop()
		for _, p := range []string{d.paths.controlPlane, d.paths.kubeconfig} {
			if rmErr := os.RemoveAll(p); rmErr != nil && err == nil {
				err = fmt.Errorf("remove %s: %w", p, rmErr)
			}
		}
		return err
	})
	// Record kube-apiserver and etcd (the new children) so `down` can stop them if this process
	// is killed before it can.
	after, err := childrenOf(os.Getpid())
	if err != nil {
		return err
	}
	var started []Process
	for _, pid := range after {
		if !slices.Contains(before, pid) {
			exe := processExe(pid)
			started = append(started, Process{Name: filepath.Base(exe), PID: pid, Exe: exe})
		}
	}
	if err := d.state.update(func(s *State) { s.Processes = append(s.Processes, started...) }); err != nil {
		return err
	}
	say("API server %s; kubeconfig %s", cp.host, d.paths.kubeconfig)
	return nil
}

func (d *demo) useExistingCluster(ctx context.Context, say sayFunc) error {
	if os.Getenv("KUBECONFIG") == "" {
		home, _ := os.UserHomeDir()
		if _, err := os.Stat(filepath.Join(home, ".kube", "config")); err != nil {
			return fmt.Errorf("DEMO_USE_KUBECONFIG=1 but neither $KUBECONFIG nor ~/.kube/config exists")
		}
	}
	// Flatten the user's current context into the demo's own kubeconfig, so every later step
	// talks to exactly that cluster even if the user switches context meanwhile.
	user := kubectl{bin: d.kc.bin, kubeconfig: os.Getenv("KUBECONFIG"), logPath: d.kc.logPath}
	if user.kubeconfig == "" {
		home, _ := os.UserHomeDir()
		user.kubeconfig = filepath.Join(home, ".kube", "config")
	}
	flat, err := user.run(ctx, "config", "view", "--flatten", "--minify")
	if err != nil {
		return err
	}
	if err := os.WriteFile(d.paths.kubeconfig, []byte(flat), 0o600); err != nil {
		return fmt.Errorf("write kubeconfig: %w", err)
	}
	server, err := d.kc.run(ctx, "config", "view", "-o", "jsonpath={.clusters[0].cluster.server}")
	if err != nil {
		return err
	}
	if _, err := d.kc.run(ctx, "get", "--raw", "/readyz"); err != nil {
		return fmt.Errorf("the cluster at %s is not reachable: %w", server, err)
	}
	say("API server %s (objects the demo creates are deleted on exit; CRDs are left installed)", server)
	return nil
}

// startRecorded starts a long-running child, records it in the state file and stops it on exit.
func (d *demo) startRecorded(name, exe string, args, env []string) (*proc, error) {
	if _, err := os.Stat(exe); err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	logPath := filepath.Join(d.paths.logs, name+".log")
	p, err := startProcess(name, exe, args, env, logPath)
	if err != nil {
		return nil, err
	}
	d.onExit("stopped the "+name, func(context.Context) error { return p.stop(30 * time.Second) })
	rec := Process{Name: name, PID: p.cmd.Process.Pid, Exe: exe, Log: logPath}
	if err := d.state.update(func(s *State) { s.Processes = append(s.Processes, rec) }); err != nil {
		return p, err
	}
	return p, nil
}

func httpOK(ctx context.Context, url string) (bool, string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return false, "", err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return false, "not listening yet", nil
	}
	resp.Body.Close()
	return resp.StatusCode == http.StatusOK, resp.Status, nil
}

// freePort asks the kernel for a free TCP port on the loopback interface.
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("find a free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}
