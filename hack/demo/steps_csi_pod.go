package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"

	"github.com/container-storage-interface/spec/lib/go/csi"
	"k8s.io/apimachinery/pkg/util/uuid"
	"k8s.io/mount-utils"

	"github.com/cobaltstore/cobalt/csi/driver"
)

// csiStageAndPublish stages the volume and publishes it for a first Pod.
func (d *demo) csiStageAndPublish(ctx context.Context, say sayFunc) error {
	if err := d.csiStage(ctx, say); err != nil {
		return err
	}
	_, err := d.csiPublish(ctx, say)
	return err
}

// csiStage calls NodeStageVolume with kubelet's staging path for the volume.
func (d *demo) csiStage(ctx context.Context, say sayFunc) error {
	c := d.csi
	if !c.unstageOnExit {
		// Registered at the first stage (before the call, which may be interrupted), so it runs
		// before DeleteVolume.
		c.unstageOnExit = true
		d.onExit("made sure CSI volume "+c.claim.pvName+" is unpublished and unstaged", func(ctx context.Context) error {
			return d.csiUnpublishAndUnstage(ctx, func(string, ...any) {})
		})
	}
	staging := c.kubelet.stagingPath(driver.Name, c.vol.GetVolumeId())
	// kubelet creates the volume's directory (its vol_data.json lives there); the plugin
	// creates globalmount in it.
	if err := os.MkdirAll(filepath.Dir(staging), 0o750); err != nil {
		return fmt.Errorf("create the staging directory: %w", err)
	}
	c.staging = staging
	req := &csi.NodeStageVolumeRequest{
		VolumeId: c.vol.GetVolumeId(), StagingTargetPath: staging,
		VolumeCapability: c.capability, VolumeContext: c.vol.GetVolumeContext(),
	}
	if _, err := csiCall(ctx, c.log, "NodeStageVolume", req, csi.NewNodeClient(c.node).NodeStageVolume); err != nil {
		return err
	}
	mp, err := mountAt(staging)
	if err != nil {
		return err
	}
	say("NodeStageVolume: %s (%s) mounted at %s", mp.Device, mp.Type, staging)
	return nil
}

// csiPublish calls NodePublishVolume with kubelet's target path for a new Pod and returns it.
func (d *demo) csiPublish(ctx context.Context, say sayFunc) (string, error) {
	c := d.csi
	podUID := string(uuid.NewUUID())
	target := c.kubelet.targetPath(podUID, c.claim.pvName)
	// kubelet creates the PV's directory in the Pod's; the plugin creates mount in it.
	if err := os.MkdirAll(filepath.Dir(target), 0o750); err != nil {
		return "", fmt.Errorf("create the Pod's volume directory: %w", err)
	}
	c.targets = append(c.targets, target)
	req := &csi.NodePublishVolumeRequest{
		VolumeId: c.vol.GetVolumeId(), StagingTargetPath: c.staging, TargetPath: target,
		VolumeCapability: c.capability, VolumeContext: c.vol.GetVolumeContext(),
	}
	if _, err := csiCall(ctx, c.log, "NodePublishVolume", req, csi.NewNodeClient(c.node).NodePublishVolume); err != nil {
		return "", err
	}
	mp, err := mountAt(target)
	if err != nil {
		return "", err
	}
	say("NodePublishVolume: Pod %s sees %s (%s, bind mount of the staging mount)", podUID, target, mp.Type)
	return target, nil
}

// csiUnpublishAndUnstage unpublishes every target and unstages the volume, as kubelet does
// when a Pod is deleted and no other Pod on the node uses the volume; then it removes the
// directories kubelet would.
func (d *demo) csiUnpublishAndUnstage(ctx context.Context, say sayFunc) error {
	c := d.csi
	if c == nil || c.node == nil || c.vol == nil {
		return nil
	}
	node := csi.NewNodeClient(c.node)
	id := c.vol.GetVolumeId()
	for len(c.targets) > 0 {
		target := c.targets[0]
		req := &csi.NodeUnpublishVolumeRequest{VolumeId: id, TargetPath: target}
		if err := retryAborted(ctx, func(ctx context.Context) error {
			_, err := csiCall(ctx, c.log, "NodeUnpublishVolume", req, node.NodeUnpublishVolume)
			return err
		}); err != nil {
			return err
		}
		podDir := filepath.Dir(filepath.Dir(filepath.Dir(filepath.Dir(target)))) // pods/<uid>
		if err := removeUnmounted(podDir); err != nil {
			return err
		}
		c.targets = c.targets[1:]
		say("NodeUnpublishVolume: %s unmounted, Pod directory removed", target)
	}
	if c.staging == "" {
		return nil
	}
	req := &csi.NodeUnstageVolumeRequest{VolumeId: id, StagingTargetPath: c.staging}
	if err := retryAborted(ctx, func(ctx context.Context) error {
		_, err := csiCall(ctx, c.log, "NodeUnstageVolume", req, node.NodeUnstageVolume)
		return err
	}); err != nil {
		return err
	}
	if err := removeUnmounted(filepath.Dir(c.staging)); err != nil {
		return err
	}
	say("NodeUnstageVolume: %s unmounted, its device removed", c.staging)
	c.staging = ""
	return nil
}

// csiWriteFiles writes files on the first Pod's mount, as an application would.
func (d *demo) csiWriteFiles(_ context.Context, say sayFunc) error {
	c := d.csi
	if len(c.targets) == 0 {
		return fmt.Errorf("the volume is not published")
	}
	sums, err := writeFilesSynced(c.targets[0])
	if err != nil {
		return err
	}
	c.files = sums
	for _, s := range sums {
		say("%-26s %9d bytes  sha256 %s", s.name, s.size, s.sha256)
	}
	say("every file and directory fsync'd: the data is on the node daemon's store, not only in the page cache")
	return nil
}

// csiTearDown unpublishes and unstages the volume and checks that its device is gone.
func (d *demo) csiTearDown(ctx context.Context, say sayFunc) error {
	c := d.csi
	mp, err := mountAt(c.staging)
	if err != nil {
		return err
	}
	if err := d.csiUnpublishAndUnstage(ctx, say); err != nil {
		return err
	}
	if back := loopBackingFile(ctx, mp.Device); back != "" && isUnder(back, d.paths.nodeState) {
		return fmt.Errorf("%s is still attached to %s after NodeUnstageVolume", mp.Device, back)
	}
	return d.csiCheckNodeClean(ctx, say)
}

// csiStageAndReadBack stages and publishes the volume again, for a new Pod, and checks the files.
func (d *demo) csiStageAndReadBack(ctx context.Context, say sayFunc) error {
	if err := d.csiStage(ctx, say); err != nil {
		return err
	}
	target, err := d.csiPublish(ctx, say)
	if err != nil {
		return err
	}
	if err := verifyFiles(target, d.csi.files); err != nil {
		return fmt.Errorf("the files read back differ from those written: %w", err)
	}
	for _, s := range d.csi.files {
		say("%-26s sha256 %s  matches", s.name, s.sha256)
	}
	return nil
}

// csiShow runs what a user would run to see the volume on the node and in the cluster.
func (d *demo) csiShow(ctx context.Context, say sayFunc) error {
	c := d.csi
	if len(c.targets) == 0 {
		return fmt.Errorf("the volume is not published")
	}
	mp, err := mountAt(c.staging)
	if err != nil {
		return err
	}
	target := c.targets[len(c.targets)-1]
	ns, _, _ := strings.Cut(c.vol.GetVolumeContext()[driver.ContextVolume], "/")
	cmds := [][]string{
		{"lsblk", mp.Device},
		{"df", "-h", target},
		{d.kc.bin, "get", "volumes", "-A"},
	}
	if _, err := os.Stat(d.cfg.bin("cobalt")); err == nil {
		cmds = append(cmds, []string{d.cfg.bin("cobalt"), "status", "-n", ns})
	}
	for _, args := range cmds {
		out, err := runOutput(ctx, d.paths.kubeconfig, args...)
		if err != nil {
			return err
		}
		shown := slices.Clone(args)
		shown[0] = filepath.Base(shown[0])
		fmt.Fprintf(d.out, "\n$ %s\n%s", strings.Join(shown, " "), out)
	}
	fmt.Fprintln(d.out)
	say("the Pod's mount %s is ext4 on %s, served by the node daemon from Volume %s", target, mp.Device, c.vol.GetVolumeContext()[driver.ContextVolume])
	return nil
}

// runOutput runs a command with KUBECONFIG set and returns its combined output.
func runOutput(ctx context.Context, kubeconfig string, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, args[0], args[1:]...)
	cmd.Env = append(os.Environ(), "KUBECONFIG="+kubeconfig)
	out, err := cmd.CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("%s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return string(out), nil
}

// mountAt returns the mount at path.
func mountAt(path string) (mount.MountPoint, error) {
	mps, err := mount.New("").List()
	if err != nil {
		return mount.MountPoint{}, fmt.Errorf("list mounts: %w", err)
	}
	// The last entry is the one on top.
	for i := len(mps) - 1; i >= 0; i-- {
		if mps[i].Path == path {
			return mps[i], nil
		}
	}
	return mount.MountPoint{}, fmt.Errorf("nothing is mounted at %s", path)
}

// removeUnmounted removes dir and what is in it, but only when nothing is mounted there.
func removeUnmounted(dir string) error {
	mps, err := mountsUnder(dir)
	if err != nil {
		return err
	}
	if len(mps) > 0 {
		return fmt.Errorf("not removing %s: %s still mounted", dir, strings.Join(mps, ", "))
	}
	if err := os.RemoveAll(dir); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("remove %s: %w", dir, err)
	}
	return nil
}
