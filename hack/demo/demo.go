package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"
	"time"
)

// demo is one run of `cobalt-demo up`: its settings, what it has started so far, and how to undo
// each of those things.
type demo struct {
	cfg   config
	paths demoPaths
	out   io.Writer
	state *stateFile
	kc    kubectl

	mu       sync.Mutex
	undo     []undoAction // guarded by mu; run in reverse order
	cp       *controlPlane
	operator *proc
	node     *proc
	device   string // the device path given to the StorageCluster, or "" for a file-backed device
	// operatorDeployment is config/default's Deployment, which the demo runs as a process.
	operatorDeployment *manifest
	// csiSkip says why the CSI steps cannot run here ("" when they can).
	csiSkip string
	// csi is the demo's part of kubelet and csi-provisioner, once the node plugin serves.
	csi *csiRun
}

// undoAction undoes one thing the demo set up.
type undoAction struct {
	what string
	fn   func(ctx context.Context) error
}

func (d *demo) onExit(what string, fn func(ctx context.Context) error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.undo = append(d.undo, undoAction{what: what, fn: fn})
}

// up runs every step, then waits for a signal if asked to stay up, then undoes everything.
func up(ctx context.Context, cfg config, out io.Writer) (err error) {
	paths, err := newDemoPaths(cfg.stateDir)
	if err != nil {
		return err
	}
	if err := prepareStateDir(ctx, paths, out); err != nil {
		return err
	}
	mode := "local"
	if cfg.useKubeconfig {
		mode = "kubeconfig"
	}
	exe, _ := os.Executable()
	st, err := newStateFile(paths.state, State{PID: os.Getpid(), Exe: exe, Mode: mode, Kubeconfig: paths.kubeconfig})
	if err != nil {
		return err
	}
	d := &demo{
		cfg: cfg, paths: paths, out: out, state: st,
		kc: kubectl{bin: filepath.Join(cfg.assets, "kubectl"), kubeconfig: paths.kubeconfig, logPath: filepath.Join(paths.logs, "kubectl.log")},
	}
	if ok, why := csiNodePluginUsable(); !ok {
		d.csiSkip = why
	}
	defer func() {
		// Undo with a fresh context: the run's context is canceled by the very Ctrl-C that
		// brought us here.
		cleanupCtx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
		defer cancel()
		err = errors.Join(err, d.cleanup(cleanupCtx))
	}()
	fmt.Fprintf(out, "Cobalt demo: state and logs in %s (stop it from another shell with `make demo-down`)\n", paths.dir)
	r := &runner{out: out, logsDir: paths.logs, now: time.Now}
	if err := r.run(ctx, d.steps()); err != nil {
		return err
	}
	if cfg.keepRunning() {
		fmt.Fprintf(out, "\nThe demo stays up. In another shell:\n  export KUBECONFIG=%s\n  %s get storageclusters,stores,volumes -A\n  %s status -n cobalt-demo\nPress Ctrl-C here, or run `make demo-down`, to stop it and clean up.\n",
			paths.kubeconfig, d.kc.bin, cfg.bin("cobalt"))
		<-ctx.Done()
	}
	return nil
}

// prepareStateDir creates the state directory, refusing to run beside a live demo and undoing
// what a dead one left behind.
func prepareStateDir(ctx context.Context, paths demoPaths, out io.Writer) error {
	if prev, err := loadState(paths.state); err == nil {
		if prev.PID != os.Getpid() && prev.Exe != "" && processExe(prev.PID) == prev.Exe {
			return fmt.Errorf("a demo is already running (pid %d, state in %s): stop it with `make demo-down`", prev.PID, paths.dir)
		}
		fmt.Fprintf(out, "A previous demo (pid %d) did not clean up; undoing what it left.\n", prev.PID)
		if err := undoLeftovers(ctx, paths, prev, out); err != nil {
			return err
		}
	} else if !errors.Is(err, os.ErrNotExist) {
		return err
	}
	for _, dir := range []string{paths.dir, paths.logs, paths.manifests, paths.data} {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return fmt.Errorf("create %s: %w", dir, err)
		}
	}
	// Each run starts with empty logs, so what they hold is about this run.
	entries, err := os.ReadDir(paths.logs)
	if err != nil {
		return fmt.Errorf("read %s: %w", paths.logs, err)
	}
	for _, e := range entries {
		if err := os.Remove(filepath.Join(paths.logs, e.Name())); err != nil {
			return fmt.Errorf("clear old log: %w", err)
		}
	}
	return nil
}

// cleanup undoes everything in reverse order, then removes every file of the demo but its logs,
// and the state file last.
func (d *demo) cleanup(ctx context.Context) error {
	d.mu.Lock()
	undo := d.undo
	d.undo = nil
	d.mu.Unlock()
	if len(undo) == 0 {
		if err := removeAllButLogs(d.paths); err != nil {
			return err
		}
		return d.state.remove()
	}
	fmt.Fprintln(d.out, "==> Cleaning up")
	var errs []error
	for i := len(undo) - 1; i >= 0; i-- {
		u := undo[i]
		if err := u.fn(ctx); err != nil {
			fmt.Fprintf(d.out, "    %s: FAILED: %v\n", u.what, err)
			errs = append(errs, fmt.Errorf("%s: %w", u.what, err))
			continue
		}
		fmt.Fprintf(d.out, "    %s\n", u.what)
	}
	if len(errs) > 0 {
		fmt.Fprintf(d.out, "    some clean-up failed; the state file %s is kept for `make demo-down`\n", d.paths.state)
		return errors.Join(errs...)
	}
	if err := removeAllButLogs(d.paths); err != nil {
		fmt.Fprintf(d.out, "    removing the demo's files: FAILED: %v\n", err)
		return err
	}
	fmt.Fprintf(d.out, "    removed the demo's files; logs are in %s\n", d.paths.logs)
	return d.state.remove()
}

// steps is the demo, in order.
func (d *demo) steps() []step {
	logs := func(names ...string) []string {
		out := make([]string, len(names))
		for i, n := range names {
			out[i] = filepath.Join(d.paths.logs, n)
		}
		return out
	}
	clusterStep := step{title: "Start a local control plane (kube-apiserver + etcd from the envtest assets)", logs: logs("kube-apiserver.log", "etcd.log"), run: d.startLocalCluster}
	if d.cfg.useKubeconfig {
		clusterStep = step{title: "Use the cluster in $KUBECONFIG (DEMO_USE_KUBECONFIG=1)", logs: logs("kubectl.log"), run: d.useExistingCluster}
	}
	steps := []step{
		{title: "Build the binaries (make build)", logs: logs("build.log"), run: d.build},
		{title: "Prepare kube-apiserver, etcd and kubectl (make envtest)", logs: logs("envtest.log"), run: d.envtestAssets},
		clusterStep,
		{title: "Install Cobalt from config/default (kubectl kustomize): CRDs, namespace, ServiceAccount, RBAC", logs: logs("kubectl.log"), run: d.installCobalt},
		{title: "Start the operator (bin/manager) as config/default's Deployment would", logs: logs("operator.log"), run: d.startOperator},
		{title: "Give node " + d.cfg.nodeName + " a device", logs: logs("kubectl.log"), run: d.prepareDevice},
		{title: "Create StorageCluster " + d.cfg.clusterName, logs: logs("kubectl.log", "operator.log"), run: d.createStorageCluster},
		{title: "Start the node daemon as " + d.cfg.nodeName + " (the DaemonSet's command line)", logs: logs("node-daemon.log", "operator.log"), run: d.startNodeDaemon},
		{title: "Wait until StorageCluster " + d.cfg.clusterName + " is Ready", logs: logs("node-daemon.log", "operator.log"), run: d.waitStorageClusterReady},
		{title: "Create Volume " + d.cfg.volumeName + " and wait until it is Ready", logs: logs("operator.log", "node-daemon.log"), run: d.createVolume},
		{title: fmt.Sprintf("Write %d MiB through the volume API and read them back (sha256)", d.cfg.dataMiB), logs: logs("cobalt-cli.log", "node-daemon.log"), run: d.writeAndReadBack},
	}
	steps = append(steps, d.csiSteps(logs)...)
	return append(steps, step{title: "Show the cluster: kubectl get storageclusters,stores,volumes and cobalt status", logs: logs("kubectl.log", "cobalt-cli.log"), run: d.show})
}
