package fuseloop

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
	"unsafe"

	"github.com/go-logr/logr/testr"
	"github.com/moby/sys/mountinfo"
	"golang.org/x/sys/unix"
)

const MiB = 1 << 20

// requireHost skips, saying why, when the test cannot attach loop devices or mount FUSE.
// Cobalt's CI and dev machines run these tests as root, so they do run there.
func requireHost(t testing.TB) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root: mounts FUSE and attaches loop devices")
	}
	for _, p := range []string{"/dev/fuse", "/dev/loop-control"} {
		if _, err := os.Stat(p); err != nil {
			t.Skipf("needs %s: %v", p, err)
		}
	}
}

// newTestFrontend starts a Frontend on a fresh directory. At cleanup it closes it and checks
// that nothing of it is left on the host: no mount at its directory, no loop device bound to a
// file in it.
func newTestFrontend(t testing.TB, opts Options) *Frontend {
	t.Helper()
	requireHost(t)
	if opts.MountDir == "" {
		opts.MountDir = filepath.Join(t.TempDir(), "mnt")
	}
	opts.Log = testr.NewWithInterface(t, testr.Options{})
	f, err := New(t.Context(), opts)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	dir := f.MountDir()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := f.Close(ctx); err != nil {
			t.Errorf("Close: %v", err)
		}
		assertNothingLeft(t, dir)
	})
	return f
}

// assertNothingLeft fails the test if a mount at dir or a loop device bound under dir remains,
// and cleans them up so the shared host does not keep them.
func assertNothingLeft(t testing.TB, dir string) {
	t.Helper()
	mounted, err := mountinfo.GetMounts(mountinfo.SingleEntryFilter(dir))
	if err != nil {
		t.Errorf("read mountinfo: %v", err)
	}
	if len(mounted) > 0 {
		t.Errorf("%s is still mounted (%s)", dir, mounted[0].FSType)
	}
	for _, d := range sweep(t, dir) {
		t.Errorf("loop device %s still bound to volume %s", d.Path, d.VolumeID)
	}
}

// sweep detaches whatever loop devices and mounts are left at dir (after a failed test) and
// returns the devices it found.
func sweep(t testing.TB, dir string) []StaleDevice {
	t.Helper()
	backing, err := backingFiles()
	if err != nil {
		t.Errorf("list loop devices: %v", err)
		return nil
	}
	var found []StaleDevice
	for n, p := range backing {
		if id, ok := strings.CutPrefix(p, dir+"/"); ok {
			found = append(found, StaleDevice{Path: loopPath(n), VolumeID: id})
			if _, err := releaseStale(context.Background(), n, p, time.Second); err != nil {
				t.Errorf("release %s: %v", loopPath(n), err)
			}
		}
	}
	for {
		if err := unix.Unmount(dir, unix.MNT_DETACH); err != nil {
			break
		}
	}
	return found
}

// alignedBuf returns n bytes aligned for O_DIRECT.
func alignedBuf(n int) []byte {
	const align = 4096
	b := make([]byte, n+align)
	off := int(uintptr(unsafe.Pointer(&b[0])) & (align - 1))
	if off != 0 {
		off = align - off
	}
	return b[off : off+n : off+n]
}

// pattern fills an aligned buffer with bytes that differ per offset and seed.
func pattern(n int, off int64, seed byte) []byte {
	b := alignedBuf(n)
	for i := range b {
		x := off + int64(i)
		b[i] = byte(x) ^ byte(x>>12) ^ byte(x>>20) ^ seed
	}
	return b
}

func openDirect(t testing.TB, path string) *os.File {
	t.Helper()
	f, err := os.OpenFile(path, os.O_RDWR|unix.O_DIRECT|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Fatalf("open %s O_DIRECT: %v", path, err)
	}
	t.Cleanup(func() { f.Close() })
	return f
}

// loopBacking returns the backing file of loop device path, or "" if it is free.
func loopBacking(t testing.TB, path string) string {
	t.Helper()
	name := filepath.Base(path)
	b, err := os.ReadFile(filepath.Join("/sys/block", name, "loop", "backing_file"))
	if errors.Is(err, os.ErrNotExist) {
		return ""
	}
	if err != nil {
		t.Fatalf("read backing file of %s: %v", path, err)
	}
	return strings.TrimSpace(string(b))
}
