//go:build e2e

package e2e

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// loopDevice is a loop device the suite attached to a sparse file it created. /dev/loop* is
// shared with everyone on the machine: the suite only ever detaches its own.
type loopDevice struct {
	path string // /dev/loopN
	file string // backing file under E2E_DIR/devices
}

// attachLoop creates a sparse file of size bytes in dir and attaches the first free loop device
// to it.
func attachLoop(ctx context.Context, dir, name string, size int64) (loopDevice, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return loopDevice{}, fmt.Errorf("device dir: %w", err)
	}
	file := filepath.Join(dir, name+".img")
	f, err := os.OpenFile(file, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
	if err != nil {
		return loopDevice{}, fmt.Errorf("create %s: %w", file, err)
	}
	if err := f.Truncate(size); err != nil {
		_ = f.Close()
		return loopDevice{}, fmt.Errorf("size %s: %w", file, err)
	}
	if err := f.Close(); err != nil {
		return loopDevice{}, fmt.Errorf("close %s: %w", file, err)
	}
	out, err := run(ctx, "losetup", "--find", "--show", "--direct-io=on", file)
	if err != nil {
		return loopDevice{}, err
	}
	return loopDevice{path: strings.TrimSpace(out), file: file}, nil
}

// detach detaches the loop device (if it is still attached to our file) and removes the file.
func (l loopDevice) detach(ctx context.Context) error {
	out, err := run(ctx, "losetup", "--associated", l.file, "--noheadings", "--output", "NAME")
	if err != nil {
		return err
	}
	for _, dev := range strings.Fields(out) {
		if _, err := run(ctx, "losetup", "--detach", dev); err != nil {
			return err
		}
	}
	if err := os.Remove(l.file); err != nil && !os.IsNotExist(err) {
		return fmt.Errorf("remove %s: %w", l.file, err)
	}
	return nil
}

// headSum is the SHA-256 of the device's first MiB, read with O_DIRECT so that no page cache
// hides what is on the device.
func headSum(ctx context.Context, dev string) (string, error) {
	cmd := exec.CommandContext(ctx, "dd", "if="+dev, "bs=1M", "count=1", "iflag=direct", "status=none")
	out, err := cmd.Output()
	if err != nil {
		return "", fmt.Errorf("read first MiB of %s: %w", dev, err)
	}
	if len(out) != 1<<20 {
		return "", fmt.Errorf("read first MiB of %s: got %d bytes", dev, len(out))
	}
	sum := sha256.Sum256(out)
	return hex.EncodeToString(sum[:]), nil
}

// run runs a host command and returns its stdout; the error carries stderr.
func run(ctx context.Context, name string, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, name, args...)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return string(out), fmt.Errorf("%s %s: %w: %s", name, strings.Join(args, " "), err, strings.TrimSpace(stderr.String()))
	}
	return string(out), nil
}
