package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
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

// daemonSetPod is the part of a DaemonSet's pod template the demo needs to run it as a process.
type daemonSetPod struct {
	Spec struct {
		Template struct {
			Spec struct {
				ServiceAccountName string `json:"serviceAccountName"`
				Containers         []struct {
					Name    string   `json:"name"`
					Command []string `json:"command"`
					Args    []string `json:"args"`
					Env     []struct {
						Name      string `json:"name"`
						Value     string `json:"value"`
						ValueFrom *struct {
							FieldRef *struct {
								FieldPath string `json:"fieldPath"`
							} `json:"fieldRef"`
						} `json:"valueFrom"`
					} `json:"env"`
				} `json:"containers"`
			} `json:"spec"`
		} `json:"template"`
	} `json:"spec"`
}

// podCommand is how the demo runs the DaemonSet's container on node demo-node-1.
type podCommand struct {
	args           []string
	env            []string
	serviceAccount string
}

// fieldRefValue is what the downward API would give the pod on the demo's node.
func (d *demo) fieldRefValue(path string) (string, error) {
	switch path {
	case "spec.nodeName":
		return d.cfg.nodeName, nil
	case "metadata.namespace":
		return d.cfg.namespace, nil
	case "metadata.name":
		return "node-daemon-" + d.cfg.nodeName, nil
	case "status.podIP", "status.hostIP":
		return "127.0.0.1", nil
	}
	return "", fmt.Errorf("the DaemonSet uses the downward API field %s, which the demo does not provide", path)
}

var envRef = regexp.MustCompile(`\$\(([A-Za-z_][A-Za-z0-9_]*)\)`)

// daemonSetCommand reads the node DaemonSet and returns how to run its pod on the demo's node.
func (d *demo) daemonSetCommand(ctx context.Context, name string) (podCommand, error) {
	out, err := d.kc.run(ctx, "get", "daemonset", name, "-n", d.cfg.namespace, "-o", "json")
	if err != nil {
		return podCommand{}, err
	}
	cmd, err := parsePodCommand([]byte(out), d.fieldRefValue)
	if err != nil {
		return podCommand{}, fmt.Errorf("DaemonSet %s: %w", name, err)
	}
	return cmd, nil
}

// parsePodCommand returns the first container's arguments (after the image's entrypoint) and
// environment, with downward-API values from fieldRef and $(VAR) references expanded as the
// kubelet would.
func parsePodCommand(daemonSetJSON []byte, fieldRef func(path string) (string, error)) (podCommand, error) {
	var ds daemonSetPod
	if err := json.Unmarshal(daemonSetJSON, &ds); err != nil {
		return podCommand{}, fmt.Errorf("decode: %w", err)
	}
	containers := ds.Spec.Template.Spec.Containers
	if len(containers) == 0 {
		return podCommand{}, fmt.Errorf("no container")
	}
	c := containers[0]
	vars := map[string]string{}
	cmd := podCommand{serviceAccount: ds.Spec.Template.Spec.ServiceAccountName}
	for _, e := range c.Env {
		v := e.Value
		if e.ValueFrom != nil {
			if e.ValueFrom.FieldRef == nil {
				return podCommand{}, fmt.Errorf("env %s: only fieldRef values can be given outside a kubelet", e.Name)
			}
			var err error
			if v, err = fieldRef(e.ValueFrom.FieldRef.FieldPath); err != nil {
				return podCommand{}, fmt.Errorf("env %s: %w", e.Name, err)
			}
		}
		vars[e.Name] = v
		cmd.env = append(cmd.env, e.Name+"="+v)
	}
	// command[0] is the binary the demo runs from bin/; the rest of command, then args, follow.
	for _, a := range append(c.Command[min(len(c.Command), 1):], c.Args...) {
		cmd.args = append(cmd.args, envRef.ReplaceAllStringFunc(a, func(ref string) string {
			if v, ok := vars[envRef.FindStringSubmatch(ref)[1]]; ok {
				return v
			}
			return ref // the kubelet leaves unknown references as they are
		}))
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
	kubeconfig, err := d.serviceAccountKubeconfig(ctx, cmd.serviceAccount)
	if err != nil {
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

// serviceAccountKubeconfig writes a kubeconfig that authenticates as the node daemon's
// ServiceAccount, so the daemon runs with exactly the permissions it has in a real cluster.
func (d *demo) serviceAccountKubeconfig(ctx context.Context, sa string) (string, error) {
	if sa == "" {
		return "", fmt.Errorf("the node DaemonSet names no ServiceAccount")
	}
	token, err := d.kc.run(ctx, "create", "token", sa, "-n", d.cfg.namespace, "--duration=24h")
	if err != nil {
		return "", err
	}
	server, err := d.kc.run(ctx, "config", "view", "--raw", "--minify", "-o", "jsonpath={.clusters[0].cluster.server}")
	if err != nil {
		return "", err
	}
	caData, err := d.kc.run(ctx, "config", "view", "--raw", "--minify", "-o", "jsonpath={.clusters[0].cluster.certificate-authority-data}")
	if err != nil {
		return "", err
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
%scontexts:
- name: node-daemon
  context:
    cluster: demo
    user: node-daemon
    namespace: %s
current-context: node-daemon
users:
- name: node-daemon
  user:
    token: %s
`, cluster, d.cfg.namespace, strings.TrimSpace(token))
	path := d.paths.nodeKubeconfig
	if err := os.WriteFile(path, []byte(kubeconfig), 0o600); err != nil {
		return "", fmt.Errorf("write %s: %w", path, err)
	}
	d.onExit("removed the node daemon's kubeconfig (it holds a ServiceAccount token)", func(context.Context) error { return os.Remove(path) })
	return path, nil
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
	if obj.Kind == "namespace" {
		what = fmt.Sprintf("deleting namespace %s (the cluster's namespace controller finishes it)", obj.Name)
	}
	d.onExit(what, func(ctx context.Context) error {
		return deleteObject(ctx, d.kc, obj)
	})
	return nil
}

func deleteObject(ctx context.Context, kc kubectl, obj KubeObject) error {
	args := []string{"delete", obj.Kind, obj.Name, "--ignore-not-found", "--timeout=60s"}
	if obj.Kind == "namespace" {
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
