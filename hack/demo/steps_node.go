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

func (d *demo) prepareDevice(ctx context.Context, say sayFunc) error {
	if err := d.ensureNode(ctx, say); err != nil {
		return err
	}
	ok, why := canUseLoopDevices()
	if d.cfg.device == "file" {
		ok, why = false, "DEMO_DEVICE=file"
	}
	if !ok {
		if d.cfg.device == "loop" {
			return fmt.Errorf("DEMO_DEVICE=loop, but loop devices cannot be used: %s", why)
		}
		say("%s: no loop device; the node daemon gets a file-backed device (spec.devices.file) in %s", why, d.paths.nodeState)
		return nil
	}
	backing := filepath.Join(d.paths.dir, d.cfg.nodeName+".img")
	if err := createSparseFile(backing, d.cfg.deviceSize); err != nil {
		return err
	}
	d.onExit("removed "+backing, func(context.Context) error { return os.Remove(backing) })
	dev, err := attachLoop(ctx, backing)
	if err != nil {
		return err
	}
	loop := LoopDevice{Device: dev, BackingFile: backing}
	d.onExit("detached "+dev, func(ctx context.Context) error { return detachLoop(ctx, loop) })
	if err := d.state.update(func(s *State) { s.LoopDevices = append(s.LoopDevices, loop) }); err != nil {
		return err
	}
	d.device = dev
	say("%s is backed by the sparse file %s (%d MiB; it uses disk space only as data is written)", dev, backing, d.cfg.deviceSize>>20)
	return nil
}

// ensureNamespace creates namespace ns unless it exists.
func (d *demo) ensureNamespace(ctx context.Context, ns string) error {
	if _, err := d.kc.run(ctx, "get", "namespace", ns, "-o", "name"); err == nil {
		return nil
	}
	if _, err := d.kc.run(ctx, "create", "namespace", ns); err != nil {
		return err
	}
	return d.recordCreated(KubeObject{Kind: "namespace", Name: ns})
}

// ensureNode registers the Node object the node daemon runs on (there is no kubelet to do it).
func (d *demo) ensureNode(ctx context.Context, say sayFunc) error {
	if _, err := d.kc.run(ctx, "get", "node", d.cfg.nodeName, "-o", "name"); err == nil {
		say("node %s exists", d.cfg.nodeName)
		return nil
	}
	manifest := fmt.Sprintf(`apiVersion: v1
kind: Node
metadata:
  name: %s
  labels:
    kubernetes.io/hostname: %s
    kubernetes.io/os: linux
    cobalt.io/demo: "true"
`, d.cfg.nodeName, d.cfg.nodeName)
	if err := d.applyManifest(ctx, "node.yaml", manifest); err != nil {
		return err
	}
	if err := d.recordCreated(KubeObject{Kind: "node", Name: d.cfg.nodeName}); err != nil {
		return err
	}
	say("registered node %s (a Node object: no kubelet runs in the demo)", d.cfg.nodeName)
	return nil
}

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
	args := append(slices.Clone(cmd.args), local...)
	env := append(cmd.env, "KUBECONFIG="+kubeconfig)
	p, err := d.startRecorded("node-daemon", exe, args, env)
	if err != nil {
		return err
	}
	d.node = p
	say("pid %d: bin/node-daemon %s", p.cmd.Process.Pid, strings.Join(cmd.args, " "))
	say("  with local overrides %s", strings.Join(local, " "))
	say("it talks to the API server as ServiceAccount %s/%s, with the RBAC the operator gave it", d.cfg.namespace, cmd.serviceAccount)
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

// serviceAccountKubeconfig writes to path a kubeconfig that authenticates as ServiceAccount
// ns/sa, so a process runs with exactly the permissions it has in a real cluster; the file is
// removed on exit.
func (d *demo) serviceAccountKubeconfig(ctx context.Context, ns, sa, path string) error {
	if sa == "" {
		return fmt.Errorf("the pod template names no ServiceAccount")
	}
	token, err := d.kc.run(ctx, "create", "token", sa, "-n", ns, "--duration=24h")
	if err != nil {
		return err
	}
	server, err := d.kc.run(ctx, "config", "view", "--raw", "--minify", "-o", "jsonpath={.clusters[0].cluster.server}")
	if err != nil {
		return err
	}
	caData, err := d.kc.run(ctx, "config", "view", "--raw", "--minify", "-o", "jsonpath={.clusters[0].cluster.certificate-authority-data}")
	if err != nil {
		return err
	}
	cluster := fmt.Sprintf("    server: %s\n", strings.TrimSpace(server))
	if ca := strings.TrimSpace(caData); ca != "" {
		cluster += fmt.Sprintf("    certificate-authority-data: %s\n", ca)
	}
	kubeconfig := fmt.Sprintf(`apiVersion: v1
kind: Config
clusters:
- name: demo
  cluster:
%[1]scontexts:
- name: %[3]s
  context:
    cluster: demo
    user: %[3]s
    namespace: %[2]s
current-context: %[3]s
users:
- name: %[3]s
  user:
    token: %[4]s
`, cluster, ns, sa, strings.TrimSpace(token))
	if err := os.WriteFile(path, []byte(kubeconfig), 0o600); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	d.onExit("removed "+filepath.Base(path)+" (it holds a ServiceAccount token)", func(context.Context) error { return os.Remove(path) })
	return nil
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

// applyManifest saves a manifest under .demo/manifests and server-side applies it.
func (d *demo) applyManifest(ctx context.Context, file, manifest string) error {
	path := filepath.Join(d.paths.manifests, file)
	if err := os.WriteFile(path, []byte(manifest), 0o644); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	_, err := d.kc.run(ctx, "apply", "--server-side", "--field-manager=cobalt-demo", "-f", path)
	return err
}

// recordCreated remembers an object to delete on exit when the cluster is not the demo's own.
func (d *demo) recordCreated(obj KubeObject) error {
	if !d.cfg.useKubeconfig {
		return nil // the whole local control plane goes away on exit
	}
	if err := d.state.update(func(s *State) { s.Objects = append(s.Objects, obj) }); err != nil {
		return err
	}
	what := fmt.Sprintf("deleted %s %s", obj.Kind, obj.Name)
	if strings.EqualFold(obj.Kind, "namespace") {
		what = fmt.Sprintf("deleting namespace %s (the cluster's namespace controller finishes it)", obj.Name)
	}
	d.onExit(what, func(ctx context.Context) error {
		return deleteObject(ctx, d.kc, obj)
	})
	return nil
}

func deleteObject(ctx context.Context, kc kubectl, obj KubeObject) error {
	args := []string{"delete", obj.Kind, obj.Name, "--ignore-not-found", "--timeout=60s"}
	if strings.EqualFold(obj.Kind, "namespace") {
		// Emptying a namespace is the namespace controller's work and may take a while; the
		// objects the demo made in it are already deleted (they were recorded after it).
		args = append(args, "--wait=false")
	}
	if obj.Namespace != "" {
		args = append(args, "-n", obj.Namespace)
	}
	_, err := kc.run(ctx, args...)
	return err
}
