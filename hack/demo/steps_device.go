package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
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
