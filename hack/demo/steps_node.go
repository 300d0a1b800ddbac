package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"
)

func (d *demo) createStorageCluster(ctx context.Context, say sayFunc) error {
	if err := d.ensureNamespace(ctx, d.cfg.namespace); err != nil {
		return err
	}
	devices := "    file:\n      size: 512Mi\n"
	if d.device != "" {
		devices = fmt.Sprintf("    paths:\n      - %s\n", d.device)
	}
	manifest := fmt.Sprintf(`apiVersion: storage.cobalt.io/v1alpha1
kind: StorageCluster
metadata:
  name: %s
  namespace: %s
spec:
  nodeSelector:
    kubernetes.io/hostname: %s
  devices:
%s  engine:
    cacheType: 2q
    cacheShards: auto
    memoryTarget: 256Mi
  nodeDaemon:
    stateDir: %s
`, d.cfg.clusterName, d.cfg.namespace, d.cfg.nodeName, devices, d.paths.nodeState)
	if err := d.applyManifest(ctx, "storagecluster.yaml", manifest); err != nil {
		return err
	}
	if err := d.recordCreated(KubeObject{Kind: "storagecluster", Namespace: d.cfg.namespace, Name: d.cfg.clusterName}); err != nil {
		return err
	}
	say("applied %s", filepath.Join(d.paths.manifests, "storagecluster.yaml"))
	var ds string
	err := waitUntil(ctx, say, "the operator to create the node DaemonSet", 60*time.Second, time.Second, []*proc{d.operator}, func(ctx context.Context) (bool, string, error) {
		out, err := d.kc.run(ctx, "get", "storagecluster", d.cfg.clusterName, "-n", d.cfg.namespace, "-o", "jsonpath={.status.nodeDaemon}")
		if err != nil {
			return false, "", err
		}
		ds = strings.TrimSpace(out)
		return ds != "", "status.nodeDaemon not set yet", nil
	})
	if err != nil {
		return err
	}
	say("the operator created DaemonSet %s/%s (no kubelet here: the next step runs its pod's command as a process)", d.cfg.namespace, ds)
	return nil
}

// daemonSetCommand reads the node DaemonSet and returns how to run its pod on the demo's node.
func (d *demo) daemonSetCommand(ctx context.Context, name string) (podCommand, error) {
	out, err := d.kc.run(ctx, "get", "daemonset", name, "-n", d.cfg.namespace, "-o", "json")
	if err != nil {
		return podCommand{}, err
	}
	pod := downwardAPI{node: d.cfg.nodeName, namespace: d.cfg.namespace, name: name + "-" + d.cfg.nodeName}
	cmd, err := parsePodCommand([]byte(out), pod.field)
	if err != nil {
		return podCommand{}, fmt.Errorf("DaemonSet %s: %w", name, err)
	}
	return cmd, nil
}

func (d *demo) startNodeDaemon(ctx context.Context, say sayFunc) error {
	exe := d.cfg.bin("node-daemon")
	if _, err := os.Stat(exe); err != nil {
		return notAvailable("make build produced no bin/node-daemon: the node daemon's main package is not in the repository yet")
	}
	ds, err := d.kc.run(ctx, "get", "storagecluster", d.cfg.clusterName, "-n", d.cfg.namespace, "-o", "jsonpath={.status.nodeDaemon}")
	if err != nil {
		return err
	}
	cmd, err := d.daemonSetCommand(ctx, strings.TrimSpace(ds))
	if err != nil {
		return err
	}
	kubeconfig := d.paths.nodeKubeconfig
	if err := d.serviceAccountKubeconfig(ctx, d.cfg.namespace, cmd.serviceAccount, kubeconfig); err != nil {
		return err
	}
	if err := os.MkdirAll(d.paths.nodeState, 0o755); err != nil {
		return fmt.Errorf("create %s: %w", d.paths.nodeState, err)
	}
	d.onExit("removed the node state directory "+d.paths.nodeState, func(context.Context) error { return os.RemoveAll(d.paths.nodeState) })
	nodeArgs, err := d.nodePluginArgs(cmd, say)
	if err != nil {
		return err
	}
	// The pod's ports become free loopback ports (the DaemonSet's fixed ones may be taken on
	// this machine); later flags override earlier ones.
	var ports [3]int
	for i := range ports {
		if ports[i], err = freePort(); err != nil {
			return err
		}
	}
	local := []string{
		fmt.Sprintf("--grpc-address=127.0.0.1:%d", ports[0]),
		"--advertise-address=127.0.0.1",
		fmt.Sprintf("--metrics-bind-address=127.0.0.1:%d", ports[1]),
		fmt.Sprintf("--health-probe-bind-address=127.0.0.1:%d", ports[2]),
	}
	if d.device == "" && !directIOSupported(d.paths.nodeState) {
		local = append(local, "--buffered-io")
		say("the filesystem of %s refuses O_DIRECT: the file-backed device uses buffered I/O", d.paths.nodeState)
	}
	args := append(slices.Clone(nodeArgs), local...)
	env := append(cmd.env, "KUBECONFIG="+kubeconfig)
	p, err := d.startRecorded("node-daemon", exe, args, env)
	if err != nil {
		return err
	}
	d.node = p
	say("pid %d: bin/node-daemon %s", p.cmd.Process.Pid, strings.Join(nodeArgs, " "))
	say("  with local overrides %s", strings.Join(local, " "))
	say("it talks to the API server as ServiceAccount %s/%s, with the RBAC the operator gave it, and reads its devices and engine settings from StorageCluster %s/%s",
		d.cfg.namespace, cmd.serviceAccount, d.cfg.namespace, d.cfg.clusterName)
	readyz := fmt.Sprintf("http://127.0.0.1:%d/readyz", ports[2])
	if err := waitUntil(ctx, say, "the node daemon's /readyz", 2*time.Minute, 500*time.Millisecond, []*proc{p, d.operator}, func(ctx context.Context) (bool, string, error) {
		return httpOK(ctx, readyz)
	}); err != nil {
		return err
	}
	say("serving the node API on 127.0.0.1:%d (mTLS); metrics http://127.0.0.1:%d/metrics", ports[0], ports[1])
	return nil
}

// directIOSupported reports whether files in dir can be opened with O_DIRECT.
func directIOSupported(dir string) bool {
	f, err := os.CreateTemp(dir, ".odirect-probe-")
	if err != nil {
		return false
	}
	name := f.Name()
	_ = f.Close()
	defer os.Remove(name)
	g, err := os.OpenFile(name, os.O_RDWR|syscall.O_DIRECT, 0)
	if err != nil {
		return false
	}
	_ = g.Close()
	return true
}

func (d *demo) waitStorageClusterReady(ctx context.Context, say sayFunc) error {
	if d.node == nil {
		return notAvailable("needs the node daemon, which is not running")
	}
	err := waitUntil(ctx, say, "StorageCluster "+d.cfg.clusterName, 3*time.Minute, time.Second, []*proc{d.operator, d.node}, func(ctx context.Context) (bool, string, error) {
		c, err := d.kc.readyCondition(ctx, d.cfg.namespace, "storagecluster", d.cfg.clusterName)
		return c.status == "True", c.String(), err
	})
	if err != nil {
		return err
	}
	out, err := d.kc.run(ctx, "get", "stores", "-o", "wide")
	if err != nil {
		return err
	}
	for _, l := range strings.Split(strings.TrimRight(out, "\n"), "\n") {
		say("%s", l)
	}
	return nil
}
