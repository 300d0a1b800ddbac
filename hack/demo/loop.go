package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"strings"
)

// createSparseFile makes a file of size bytes that uses no disk space until written.
func createSparseFile(path string, size int64) error {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o600)
	if err != nil {
		return fmt.Errorf("create %s: %w", path, err)
	}
	if err := f.Truncate(size); err != nil {
		_ = f.Close()
		return fmt.Errorf("size %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("close %s: %w", path, err)
	}
	return nil
}

// canUseLoopDevices reports whether this process may attach loop devices, and if not, why.
func canUseLoopDevices() (bool, string) {
	if os.Geteuid() != 0 {
		return false, "not running as root"
	}
	if _, err := os.Stat("/dev/loop-control"); err != nil {
		return false, "no /dev/loop-control"
	}
	if _, err := exec.LookPath("losetup"); err != nil {
		return false, "losetup is not installed"
	}
	return true, ""
}

// attachLoop attaches backing to a free loop device, with direct I/O when the backing file's
// filesystem allows it, and returns the device path.
func attachLoop(ctx context.Context, backing string) (string, error) {
	out, err := exec.CommandContext(ctx, "losetup", "--find", "--show", "--direct-io=on", backing).CombinedOutput()
	if err != nil {
		// Some filesystems (tmpfs, overlayfs) refuse direct I/O on the backing file.
		out, err = exec.CommandContext(ctx, "losetup", "--find", "--show", backing).CombinedOutput()
	}
	if err != nil {
		return "", fmt.Errorf("losetup --find --show %s: %w: %s", backing, err, strings.TrimSpace(string(out)))
	}
	dev := strings.TrimSpace(string(out))
	if !strings.HasPrefix(dev, "/dev/loop") {
		return "", fmt.Errorf("losetup printed %q, want /dev/loopN", dev)
	}
	return dev, nil
}

// loopBackingFile returns the file attached to dev, or "" when dev is not attached.
func loopBackingFile(ctx context.Context, dev string) string {
	out, err := exec.CommandContext(ctx, "losetup", "--noheadings", "--output", "BACK-FILE", dev).Output()
	if err != nil {
		return ""
	}
	return strings.TrimSuffix(strings.TrimSpace(string(out)), " (deleted)")
}

// detachLoop detaches l.Device if it is still attached to l.BackingFile.
func detachLoop(ctx context.Context, l LoopDevice) error {
	if got := loopBackingFile(ctx, l.Device); got != l.BackingFile {
		return nil // already detached, or reused for another file: not ours to touch
	}
	if out, err := exec.CommandContext(ctx, "losetup", "--detach", l.Device).CombinedOutput(); err != nil {
		return fmt.Errorf("losetup --detach %s: %w: %s", l.Device, err, strings.TrimSpace(string(out)))
	}
	return nil
}
