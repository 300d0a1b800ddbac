package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

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
