package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"sigs.k8s.io/yaml"
)

// manifest is one object of a rendered kustomization.
type manifest struct {
	kind, namespace, name string
	yaml                  string
	json                  []byte
}

func (m manifest) String() string {
	if m.namespace == "" {
		return m.kind + "/" + m.name
	}
	return m.kind + "/" + m.namespace + "/" + m.name
}

// parseManifests splits a multi-document YAML stream into objects.
func parseManifests(stream string) ([]manifest, error) {
	var out []manifest
	for _, doc := range strings.Split("\n"+stream, "\n---") {
		doc = strings.TrimSpace(strings.TrimPrefix(doc, "\n"))
		if doc == "" {
			continue
		}
		j, err := yaml.YAMLToJSON([]byte(doc))
		if err != nil {
			return nil, fmt.Errorf("parse manifest: %w", err)
		}
		var meta struct {
			Kind     string `json:"kind"`
			Metadata struct {
				Name      string `json:"name"`
				Namespace string `json:"namespace"`
			} `json:"metadata"`
		}
		if err := json.Unmarshal(j, &meta); err != nil {
			return nil, fmt.Errorf("parse manifest: %w", err)
		}
		if meta.Kind == "" || meta.Metadata.Name == "" {
			return nil, fmt.Errorf("manifest without kind or name:\n%s", doc)
		}
		out = append(out, manifest{kind: meta.Kind, namespace: meta.Metadata.Namespace, name: meta.Metadata.Name, yaml: doc, json: j})
	}
	return out, nil
}

// installCobalt applies what `kubectl apply -k config/default` applies, except the operator's
// Deployment: with no kubelet, the demo runs that Deployment's pod itself in the next step.
func (d *demo) installCobalt(ctx context.Context, say sayFunc) error {
	dir := filepath.Join(d.cfg.repo, "config", "default")
	out, err := d.kc.run(ctx, "kustomize", dir)
	if err != nil {
		return err
	}
	objs, err := parseManifests(out)
	if err != nil {
		return fmt.Errorf("kubectl kustomize %s: %w", dir, err)
	}
	var docs, crds, names []string
	var existed []bool
	var apply []manifest
	for _, o := range objs {
		if o.kind == "Deployment" {
			if d.operatorDeployment != nil {
				return fmt.Errorf("config/default has two Deployments: %s and %s", d.operatorDeployment, o)
			}
			o := o
			d.operatorDeployment = &o
			continue
		}
		if o.kind == "CustomResourceDefinition" {
			crds = append(crds, "crd/"+o.name)
		}
		exists := false
		if d.cfg.useKubeconfig {
			args := []string{"get", o.kind, o.name, "-o", "name"}
			if o.namespace != "" {
				args = append(args, "-n", o.namespace)
			}
			_, getErr := d.kc.run(ctx, args...)
			exists = getErr == nil
		}
		apply = append(apply, o)
		existed = append(existed, exists)
		docs = append(docs, o.yaml)
		names = append(names, o.String())
	}
	if d.operatorDeployment == nil {
		return fmt.Errorf("config/default renders no Deployment for the operator")
	}
	if d.cfg.useKubeconfig {
		dep := d.operatorDeployment
		if _, err := d.kc.run(ctx, "get", "deployment", dep.name, "-n", dep.namespace, "-o", "name"); err == nil {
			return fmt.Errorf("the Cobalt operator is already installed in this cluster (%s): the demo runs an operator of its own, and two would fight over the same objects", dep)
		}
	}
	path := filepath.Join(d.paths.manifests, "cobalt-install.yaml")
	if err := os.WriteFile(path, []byte(strings.Join(docs, "\n---\n")+"\n"), 0o644); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if _, err := d.kc.run(ctx, "apply", "--server-side", "--force-conflicts", "--field-manager=cobalt-demo", "-f", path); err != nil {
		return err
	}
	// In a cluster of the user's, what the demo created is deleted on exit; CRDs never are (that
	// would delete every Cobalt object in the cluster).
	for i, o := range apply {
		if existed[i] || o.kind == "CustomResourceDefinition" {
			continue
		}
		if err := d.recordCreated(KubeObject{Kind: o.kind, Namespace: o.namespace, Name: o.name}); err != nil {
			return err
		}
	}
	if _, err := d.kc.run(ctx, append([]string{"wait", "--for=condition=Established", "--timeout=60s"}, crds...)...); err != nil {
		return err
	}
	say("applied %s", path)
	say("  %s", strings.Join(names, ", "))
	say("not applied: %s (no kubelet here: the next step runs its pod as a process)", d.operatorDeployment)
	return nil
}

// startOperator runs the operator Deployment's container as a process, with the Deployment's
// arguments and environment, authenticated as its ServiceAccount.
func (d *demo) startOperator(ctx context.Context, say sayFunc) error {
	dep := d.operatorDeployment
	if dep == nil {
		return fmt.Errorf("no operator Deployment was rendered")
	}
	pod := downwardAPI{node: d.cfg.nodeName, namespace: dep.namespace, name: dep.name + "-demo"}
	cmd, err := parsePodCommand(dep.json, pod.field)
	if err != nil {
		return fmt.Errorf("%s: %w", dep, err)
	}
	if err := d.serviceAccountKubeconfig(ctx, dep.namespace, cmd.serviceAccount, d.paths.operatorKubeconfig); err != nil {
		return err
	}
	metricsPort, err := freePort()
	if err != nil {
		return err
	}
	probePort, err := freePort()
	if err != nil {
		return err
	}
	// The Deployment's fixed ports may be taken on this machine: later flags override earlier ones.
	// There is no /csi directory (the csi-provisioner sidecar's emptyDir): the controller plugin
	// listens in the demo's directory, where the demo plays csi-provisioner. The node DaemonSet
	// keeps the CSI node plugin with the kubelet paths the operator gives it; the demo moves them
	// under .demo/kubelet when it runs the pod. Without root the node plugin cannot serve (loop
	// devices, FUSE, mounts), so the operator leaves it out of the DaemonSet.
	local := []string{
		"--metrics-bind-address=127.0.0.1:" + strconv.Itoa(metricsPort),
		"--health-probe-bind-address=127.0.0.1:" + strconv.Itoa(probePort),
		"--csi-endpoint=unix://" + d.paths.csiSocket,
	}
	if d.csiSkip != "" {
		local = append(local, "--csi-node-plugin=false")
	}
	// Leader election runs as in the cluster: the manager holds its Lease in POD_NAMESPACE,
	// which the Deployment's downward API env gives it here too.
	args := append(append([]string{}, cmd.args...), local...)
	env := append(cmd.env, "KUBECONFIG="+d.paths.operatorKubeconfig)
	p, err := d.startRecorded("operator", d.cfg.bin("manager"), args, env)
	if err != nil {
		return err
	}
	d.operator = p
	say("pid %d: bin/manager %s", p.cmd.Process.Pid, strings.Join(cmd.args, " "))
	say("  with local overrides %s; env %s", strings.Join(local, " "), strings.Join(cmd.env, " "))
	say("it talks to the API server as ServiceAccount %s/%s, with the RBAC config/rbac gives it", dep.namespace, cmd.serviceAccount)
	readyz := fmt.Sprintf("http://127.0.0.1:%d/readyz", probePort)
	err = waitUntil(ctx, say, "the operator's /readyz", 90*time.Second, 500*time.Millisecond, []*proc{p}, func(ctx context.Context) (bool, string, error) {
		return httpOK(ctx, readyz)
	})
	if err != nil {
		return err
	}
	say("ready; metrics http://127.0.0.1:%d/metrics", metricsPort)
	return nil
}
