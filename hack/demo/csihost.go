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

	"golang.org/x/sys/unix"
	"k8s.io/mount-utils"
)

// csiNodePluginUsable reports whether the node daemon can serve the CSI node plugin on this
// machine (a FUSE file served as a loop device, formatted and mounted), and if not, why.
func csiNodePluginUsable() (bool, string) {
	if os.Geteuid() != 0 {
		return false, "the CSI node plugin needs root (loop devices, FUSE, mounts); run `sudo make demo` to see a Pod's view of a volume"
	}
	for _, dev := range []string{"/dev/fuse", "/dev/loop-control"} {
		if _, err := os.Stat(dev); err != nil {
			return false, "the CSI node plugin needs " + dev + ", which this machine lacks"
		}
	}
	for _, prog := range []string{"mkfs.ext4", "blkid", "losetup"} {
		if _, err := exec.LookPath(prog); err != nil {
			return false, "the CSI node plugin needs " + prog + ", which is not installed"
		}
	}
	return true, ""
}

// isUnder reports whether path is dir or below it.
func isUnder(path, dir string) bool {
	rel, err := filepath.Rel(dir, path)
	return err == nil && rel != ".." && !strings.HasPrefix(rel, "../")
}

// mountsUnder lists the mount points at or below any of dirs, deepest first.
func mountsUnder(dirs ...string) ([]string, error) {
	mps, err := mount.New("").List()
	if err != nil {
		return nil, fmt.Errorf("list mounts: %w", err)
	}
	var out []string
	for _, mp := range mps {
		for _, d := range dirs {
			if isUnder(mp.Path, d) && !slices.Contains(out, mp.Path) {
				out = append(out, mp.Path)
			}
		}
	}
	// Deeper paths first, so a bind mount goes before the mount it sits on.
	slices.SortFunc(out, func(a, b string) int { return strings.Count(b, "/") - strings.Count(a, "/") })
	return out, nil
}

// loopsBackedUnder lists the loop devices whose backing file is below dir.
func loopsBackedUnder(ctx context.Context, dir string) ([]LoopDevice, error) {
	out, err := exec.CommandContext(ctx, "losetup", "--list", "--noheadings", "--output", "NAME,BACK-FILE").Output()
	if err != nil {
		return nil, fmt.Errorf("losetup --list: %w", err)
	}
	var loops []LoopDevice
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		dev, back, ok := strings.Cut(strings.TrimSpace(line), " ")
		if !ok {
			continue
		}
		back = strings.TrimSuffix(strings.TrimSpace(back), " (deleted)")
		if isUnder(back, dir) {
			loops = append(loops, LoopDevice{Device: dev, BackingFile: back})
		}
	}
	return loops, nil
}

// cleanupCSIHost undoes what the CSI node plugin left on the host after the node daemon has
// stopped: it unmounts everything under the demo's kubelet directory (publish bind mounts,
// staging mounts), detaches loop devices backed by files under nodeState (the plugin's FUSE
// files), unmounts the FUSE file system, and then removes the kubelet directory. It removes
// nothing while something is still mounted there, so no volume's files are ever deleted. It
// returns what it undid, one line each.
func cleanupCSIHost(ctx context.Context, kubeletDir, nodeState string) ([]string, error) {
	var errs []error
	var done []string
	unmountAll := func(mps []string) {
		for _, mp := range mps {
			if err := unmount(mp); err != nil {
				errs = append(errs, err)
				continue
			}
			done = append(done, "unmounted "+mp)
		}
	}
	mps, err := mountsUnder(kubeletDir)
	if err != nil {
		return nil, err
	}
	unmountAll(mps)
	// Only root can have attached loop devices or mounted FUSE for the node plugin.
	if _, err := os.Stat(nodeState); err == nil && os.Geteuid() == 0 {
		loops, err := loopsBackedUnder(ctx, nodeState)
		if err != nil {
			return done, errors.Join(append(errs, err)...)
		}
		for _, l := range loops {
			if err := detachLoop(ctx, l); err != nil {
				errs = append(errs, err)
				continue
			}
			done = append(done, "detached "+l.Device+" ("+l.BackingFile+")")
		}
		if mps, err = mountsUnder(nodeState); err != nil {
			return done, errors.Join(append(errs, err)...)
		}
		unmountAll(mps)
	}
	if err := errors.Join(errs...); err != nil {
		return done, err
	}
	left, err := mountsUnder(kubeletDir, nodeState)
	if err != nil {
		return done, err
	}
	if len(left) > 0 {
		return done, fmt.Errorf("still mounted after unmounting: %s (not removing %s)", strings.Join(left, ", "), kubeletDir)
	}
	if err := os.RemoveAll(kubeletDir); err != nil {
		return done, fmt.Errorf("remove %s: %w", kubeletDir, err)
	}
	return done, nil
}

// unmount unmounts path, detaching it lazily when it is busy or its FUSE server is gone.
func unmount(path string) error {
	err := unix.Unmount(path, 0)
	if err == nil || errors.Is(err, unix.EINVAL) || errors.Is(err, unix.ENOENT) {
		return nil // unmounted, or not a mount point (any more)
	}
	if err := unix.Unmount(path, unix.MNT_DETACH); err != nil && !errors.Is(err, unix.EINVAL) {
		return fmt.Errorf("unmount %s: %w", path, err)
	}
	return nil
}
