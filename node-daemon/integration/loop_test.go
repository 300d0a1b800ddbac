package integration

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/cobaltstore/cobalt/node-daemon/internal/eiodev"
)

// newDevice returns a device of size bytes whose first bytes are prefix (at offset at): a loop
// device over a sparse file when running as root with losetup available, else the sparse file
// itself, then named uniquely in the system's temporary directory (the daemon's DevDir: all of a
// test's devices must be in one directory). A loop device is always detached in t.Cleanup.
func newDevice(t *testing.T, size int64, at int64, prefix []byte) string {
	t.Helper()
	dev, _ := newBackedDevice(t, size, at, prefix)
	return dev
}

// newBackedDevice is newDevice that also returns the sparse file: the loop device's backing
// file, or the device itself when it is no loop device.
func newBackedDevice(t *testing.T, size int64, at int64, prefix []byte) (dev, file string) {
	t.Helper()
	dir := t.TempDir()
	if os.Geteuid() != 0 {
		dir = os.TempDir()
	}
	file = filepath.Join(dir, "cobalt-it-"+uuid.NewString()[:8]+".img")
	t.Cleanup(func() { os.Remove(file) })
	f, err := os.Create(file)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Truncate(size); err != nil {
		t.Fatal(err)
	}
	if prefix != nil {
		if _, err := f.WriteAt(prefix, at); err != nil {
			t.Fatal(err)
		}
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	if !loopDevices() {
		return file, file
	}
	out, err := exec.Command("losetup", "-f", "--show", file).CombinedOutput()
	if err != nil {
		t.Fatalf("losetup -f --show %s: %v: %s", file, err, out)
	}
	dev = strings.TrimSpace(string(out))
	t.Cleanup(func() {
		if out, err := exec.Command("losetup", "-d", dev).CombinedOutput(); err != nil {
			t.Errorf("losetup -d %s: %v: %s", dev, err, out)
		}
	})
	return dev, file
}

// failLoopDevice makes loop device dev (backed by file) fail every I/O under whoever holds it
// open: resizeLoopDevice to 0. Writes the loop driver had queued before may still land in file
// and grow it back, and losetup -c would take that size, so it repeats until the device's size is
// 0 and the file is still empty a moment later (every queued write done).
func failLoopDevice(dev, file string) error {
	for range 20 {
		if err := resizeLoopDevice(dev, file, 0); err != nil {
			return err
		}
		time.Sleep(100 * time.Millisecond) // let the writes the loop driver queued before land
		sectors, err := os.ReadFile(filepath.Join("/sys/block", filepath.Base(dev), "size"))
		if err != nil {
			return fmt.Errorf("size of %s: %w", dev, err)
		}
		fi, err := os.Stat(file)
		if err != nil {
			return fmt.Errorf("fail %s: %w", dev, err)
		}
		if strings.TrimSpace(string(sectors)) == "0" && fi.Size() == 0 {
			return nil
		}
	}
	return fmt.Errorf("fail %s: writes in flight kept growing its backing file %s", dev, file)
}

// newEIODevice returns a device of size bytes that fails with a real EIO when its switch is
// flipped (eiodev: a loop device over a FUSE file this test process serves). It is closed in
// t.Cleanup, registered now: after the cleanups of the daemons started on it later (they are
// killed first), and bounded, so a stuck FUSE mount cannot hang the test; Close leaves neither
// the mount nor the loop device behind.
func newEIODevice(t *testing.T, size int64) *eiodev.Device {
	t.Helper()
	d, err := eiodev.New(t.Context(), eiodev.Options{Dir: t.TempDir(), Size: size, CloseTimeout: 30 * time.Second})
	if err != nil {
		t.Fatalf("make an EIO device: %v", err)
	}
	t.Cleanup(func() {
		if err := d.Close(context.Background()); err != nil {
			t.Errorf("close the EIO device %s: %v", d.Path(), err)
		}
	})
	return d
}

// eioDevices reports whether newEIODevice works here: loop devices and FUSE.
func eioDevices() bool {
	return loopDevices() && eiodev.Available() == nil
}

// loopDevices reports whether newDevice attaches loop devices: running as root with losetup.
func loopDevices() bool {
	if os.Geteuid() != 0 {
		return false
	}
	_, err := exec.LookPath("losetup")
	return err == nil
}

// resizeLoopDevice sets the size of loop device dev's backing file to size bytes and has the
// loop driver take it at once (losetup -c), under whoever holds dev open. Shrunk to 0, dev fails
// every I/O, also through a file descriptor opened before (direct I/O included): a write gets
// ENOSPC, a read end of file; the data is gone. Grown back, dev reads zeros: a blank disk at the
// same path. It fails when dev is no loop device.
func resizeLoopDevice(dev, file string, size int64) error {
	if dev == file {
		return fmt.Errorf("resize %s: not a loop device (only root attaches them)", dev)
	}
	if err := os.Truncate(file, size); err != nil {
		return fmt.Errorf("resize the backing file of %s: %w", dev, err)
	}
	if out, err := exec.Command("losetup", "-c", dev).CombinedOutput(); err != nil {
		return fmt.Errorf("losetup -c %s: %w: %s", dev, err, out)
	}
	return nil
}

// mountedDevice returns a loop device carrying an ext4 filesystem that is mounted, or "" when
// not running as root (only root can attach and mount). It is unmounted and detached in
// t.Cleanup.
func mountedDevice(t *testing.T) string {
	t.Helper()
	if os.Geteuid() != 0 {
		return ""
	}
	dev := newDevice(t, 64<<20, 0, nil)
	if out, err := exec.Command("mkfs.ext4", "-q", dev).CombinedOutput(); err != nil {
		t.Fatalf("mkfs.ext4 %s: %v: %s", dev, err, out)
	}
	dir := t.TempDir()
	if out, err := exec.Command("mount", dev, dir).CombinedOutput(); err != nil {
		t.Fatalf("mount %s: %v: %s", dev, err, out)
	}
	t.Cleanup(func() {
		if out, err := exec.Command("umount", dir).CombinedOutput(); err != nil {
			t.Errorf("umount %s: %v: %s", dir, err, out)
		}
	})
	return dev
}
