package fuseloop

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
	"unsafe"

	"github.com/onsi/gomega"
	"golang.org/x/sys/unix"

	"github.com/cobaltstore/cobalt/node-daemon/frontend"
)

func TestDiscardReachesTrim(t *testing.T) {
	f := newTestFrontend(t, Options{})
	b := newMemBackend(8 * MiB)
	dev, err := f.Expose(t.Context(), "vol-discard", 8*MiB, b)
	if err != nil {
		t.Fatal(err)
	}
	d := openDirect(t, dev.Path)
	if _, err := d.WriteAt(pattern(4*MiB, MiB, 9), MiB); err != nil {
		t.Fatal(err)
	}
	rng := [2]uint64{MiB + 4096, 2 * MiB} // start, length
	if _, _, errno := unix.Syscall(unix.SYS_IOCTL, d.Fd(), unix.BLKDISCARD, uintptr(unsafe.Pointer(&rng))); errno != 0 {
		t.Fatalf("BLKDISCARD: %v", errno)
	}
	// The block layer may split a discard; together the trims must cover exactly the range.
	trims := b.trimList()
	slices.SortFunc(trims, func(a, b [2]int64) int { return int(a[0] - b[0]) })
	next := int64(rng[0])
	for _, tr := range trims {
		if tr[0] != next {
			t.Fatalf("trims %v do not cover [%d, %d) exactly", trims, rng[0], rng[0]+rng[1])
		}
		next += tr[1]
	}
	if next != int64(rng[0]+rng[1]) {
		t.Fatalf("trims %v do not cover [%d, %d) exactly", trims, rng[0], rng[0]+rng[1])
	}
	if got := b.bytes(int64(rng[0]), int64(rng[1])); !bytes.Equal(got, make([]byte, rng[1])) {
		t.Fatal("discarded range is not zero in the backend")
	}
	if got, want := b.bytes(MiB, 4096), pattern(4096, MiB, 9); !bytes.Equal(got, want) {
		t.Fatal("the block before the discarded range changed")
	}
}

func TestDiscardCommandReachesTrim(t *testing.T) {
	if _, err := exec.LookPath("blkdiscard"); err != nil {
		t.Skipf("needs blkdiscard (util-linux): %v", err)
	}
	f := newTestFrontend(t, Options{})
	b := newMemBackend(4 * MiB)
	dev, err := f.Expose(t.Context(), "vol-blkdiscard", 4*MiB, b)
	if err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("blkdiscard", "-o", "1048576", "-l", "1048576", dev.Path).CombinedOutput(); err != nil {
		t.Fatalf("blkdiscard: %v: %s", err, out)
	}
	var total int64
	for _, tr := range b.trimList() {
		if tr[0] < MiB || tr[0]+tr[1] > 2*MiB {
			t.Fatalf("trim %v outside [1 MiB, 2 MiB)", tr)
		}
		total += tr[1]
	}
	if total != MiB {
		t.Fatalf("trims %v cover %d bytes, want 1 MiB", b.trimList(), total)
	}
}

func TestResizeIsOnline(t *testing.T) {
	f := newTestFrontend(t, Options{})
	b := newMemBackend(4 * MiB)
	dev, err := f.Expose(t.Context(), "vol-resize", 4*MiB, b)
	if err != nil {
		t.Fatal(err)
	}
	d := openDirect(t, dev.Path) // held open across the resize: online
	b.grow(12 * MiB)
	got, err := f.Resize(t.Context(), "vol-resize", 12*MiB)
	if err != nil {
		t.Fatalf("Resize: %v", err)
	}
	if got.Size != 12*MiB || got.Path != dev.Path {
		t.Fatalf("Resize returned %+v, want %s with 12 MiB", got, dev.Path)
	}
	if size, err := blockDeviceSize(d); err != nil || size != 12*MiB {
		t.Fatalf("BLKGETSIZE64 after resize = %d, %v; want %d", size, err, 12*MiB)
	}
	// The new space is usable at once, through the descriptor opened before.
	if _, err := d.WriteAt(pattern(4096, 12*MiB-4096, 5), 12*MiB-4096); err != nil {
		t.Fatalf("write at the new end: %v", err)
	}
	if dd, _ := f.Device("vol-resize"); dd.Size != 12*MiB {
		t.Fatalf("Device reports %d bytes, want %d", dd.Size, 12*MiB)
	}
	if _, err := f.Resize(t.Context(), "vol-resize", 8*MiB); err == nil {
		t.Fatal("shrinking succeeded")
	}
	if _, err := f.Resize(t.Context(), "vol-none", 8*MiB); !errors.Is(err, frontend.ErrNotExposed) {
		t.Fatalf("Resize of an unexposed volume: %v, want ErrNotExposed", err)
	}
}

func TestExposeRemoveLifecycle(t *testing.T) {
	f := newTestFrontend(t, Options{DetachTimeout: 200 * time.Millisecond})
	b := newMemBackend(4 * MiB)
	dev, err := f.Expose(t.Context(), "vol-life", 4*MiB, b)
	if err != nil {
		t.Fatal(err)
	}
	backing := loopBacking(t, dev.Path)
	if want := filepath.Join(f.MountDir(), "vol-life"); backing != want {
		t.Fatalf("%s backing file = %q, want %q", dev.Path, backing, want)
	}
	if dio, _ := os.ReadFile("/sys/block/" + filepath.Base(dev.Path) + "/loop/dio"); string(bytes.TrimSpace(dio)) != "1" {
		t.Fatalf("%s dio = %q, want 1", dev.Path, dio)
	}

	// Expose again: the same device; the new backend serves from now on.
	b2 := newMemBackend(4 * MiB)
	again, err := f.Expose(t.Context(), "vol-life", 4*MiB, b2)
	if err != nil || again != dev {
		t.Fatalf("second Expose = %+v, %v; want %+v", again, err, dev)
	}
	d := openDirect(t, dev.Path)
	if _, err := d.WriteAt(pattern(4096, 0, 2), 0); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(b2.bytes(0, 4096), pattern(4096, 0, 2)) || bytes.Equal(b.bytes(0, 4096), pattern(4096, 0, 2)) {
		t.Fatal("the write did not go to the backend of the latest Expose")
	}

	// Remove while the device is open elsewhere: busy, still served.
	if err := f.Remove(t.Context(), "vol-life"); !errors.Is(err, frontend.ErrDeviceBusy) {
		t.Fatalf("Remove of an open device: %v, want ErrDeviceBusy", err)
	}
	if _, err := d.ReadAt(alignedBuf(4096), 0); err != nil {
		t.Fatalf("read from a device Remove called busy: %v", err)
	}
	d.Close()
	flushes := b2.flushCount()
	if flushes == 0 {
		t.Fatal("Remove did not flush the backend")
	}

	// Now it goes; the kernel may take a moment after the last close.
	if err := f.Remove(t.Context(), "vol-life"); err != nil {
		t.Fatalf("Remove after close: %v", err)
	}
	if got := loopBacking(t, dev.Path); got != "" {
		t.Fatalf("%s still bound to %q after Remove", dev.Path, got)
	}
	if _, ok := f.Device("vol-life"); ok {
		t.Fatal("Device still reports the removed volume")
	}
	if _, err := os.Stat(filepath.Join(f.MountDir(), "vol-life")); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("volume file still served after Remove: %v", err)
	}
	if err := f.Remove(t.Context(), "vol-life"); err != nil {
		t.Fatalf("second Remove: %v", err)
	}

	// And it can come back.
	dev3, err := f.Expose(t.Context(), "vol-life", 4*MiB, b2)
	if err != nil {
		t.Fatalf("Expose after Remove: %v", err)
	}
	if got := loopBacking(t, dev3.Path); got != backing {
		t.Fatalf("re-exposed device bound to %q", got)
	}
}

func TestExposeRefusesBadInput(t *testing.T) {
	f := newTestFrontend(t, Options{})
	b := newMemBackend(MiB)
	for _, tc := range []struct {
		name string
		id   string
		size int64
		b    frontend.Backend
	}{
		{"empty ID", "", MiB, b},
		{"dot-dot", "..", MiB, b},
		{"slash", "a/b", MiB, b},
		{"zero size", "v", 0, b},
		{"unaligned size", "v", MiB + 512, b},
		{"nil backend", "v", MiB, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if dev, err := f.Expose(t.Context(), tc.id, tc.size, tc.b); err == nil {
				t.Fatalf("Expose(%q, %d) = %+v, want an error", tc.id, tc.size, dev)
			}
		})
	}
	if err := f.Remove(t.Context(), "never-exposed"); err != nil {
		t.Fatalf("Remove of a volume never exposed: %v", err)
	}
}

func TestExt4OnDevice(t *testing.T) {
	mkfs, err := exec.LookPath("mkfs.ext4")
	if err != nil {
		t.Skipf("needs mkfs.ext4 (e2fsprogs): %v", err)
	}
	f := newTestFrontend(t, Options{DetachTimeout: 200 * time.Millisecond})
	const size = 64 * MiB
	b := newMemBackend(size)
	dev, err := f.Expose(t.Context(), "vol-ext4", size, b)
	if err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(mkfs, "-q", "-F", dev.Path).CombinedOutput(); err != nil {
		t.Fatalf("mkfs.ext4: %v: %s", err, out)
	}
	if len(b.trimList()) == 0 {
		t.Error("mkfs.ext4 discarded nothing (its default discard should reach Trim)")
	}
	mnt := t.TempDir()
	if err := unix.Mount(dev.Path, mnt, "ext4", 0, ""); err != nil {
		t.Fatalf("mount: %v", err)
	}
	mounted := true
	t.Cleanup(func() {
		if mounted {
			_ = unix.Unmount(mnt, 0)
		}
	})
	want := bytes.Repeat([]byte("cobalt "), 300_000)
	if err := os.WriteFile(filepath.Join(mnt, "data"), want, 0o600); err != nil {
		t.Fatal(err)
	}
	flushes := b.flushCount()
	unix.Sync()
	if b.flushCount() == flushes {
		t.Error("sync of a mounted ext4 did not reach Backend.Flush")
	}
	if err := f.Remove(t.Context(), "vol-ext4"); !errors.Is(err, frontend.ErrDeviceBusy) {
		t.Fatalf("Remove of a mounted device: %v, want ErrDeviceBusy", err)
	}
	if err := unix.Unmount(mnt, 0); err != nil {
		t.Fatalf("umount: %v", err)
	}
	mounted = false
	if err := f.Remove(t.Context(), "vol-ext4"); err != nil {
		t.Fatalf("Remove after umount: %v", err)
	}

	// The file system is in the backend: expose it again and read the file back.
	dev, err = f.Expose(t.Context(), "vol-ext4", size, b)
	if err != nil {
		t.Fatal(err)
	}
	if err := unix.Mount(dev.Path, mnt, "ext4", unix.MS_RDONLY, ""); err != nil {
		t.Fatalf("mount again: %v", err)
	}
	mounted = true
	got, err := os.ReadFile(filepath.Join(mnt, "data"))
	if err != nil || !bytes.Equal(got, want) {
		t.Fatalf("file after remount: %d bytes, %v; want %d bytes as written", len(got), err, len(want))
	}
	if err := unix.Unmount(mnt, 0); err != nil {
		t.Fatalf("umount: %v", err)
	}
	mounted = false
}

func TestCloseWithBusyDevice(t *testing.T) {
	f := newTestFrontend(t, Options{DetachTimeout: 200 * time.Millisecond})
	idle, err := f.Expose(t.Context(), "vol-idle", MiB, newMemBackend(MiB))
	if err != nil {
		t.Fatal(err)
	}
	busy, err := f.Expose(t.Context(), "vol-busy", MiB, newMemBackend(MiB))
	if err != nil {
		t.Fatal(err)
	}
	d := openDirect(t, busy.Path)
	if err := f.Close(t.Context()); !errors.Is(err, frontend.ErrDeviceBusy) || !strings.Contains(err.Error(), "vol-busy") {
		t.Fatalf("Close with an open device: %v, want ErrDeviceBusy naming vol-busy", err)
	}
	if got := loopBacking(t, idle.Path); got != "" {
		t.Fatalf("Close left the idle device bound to %q", got)
	}
	// The lazily detached mount still serves the open device until its user lets go.
	if _, err := d.WriteAt(pattern(4096, 0, 4), 0); err != nil {
		t.Fatalf("write to the busy device after Close: %v", err)
	}
	d.Close()
	gomega.NewWithT(t).Eventually(func() string { return loopBacking(t, busy.Path) }, 5*time.Second, 10*time.Millisecond).
		Should(gomega.BeEmpty(), busy.Path+" detached after its last user closed it")
	if _, err := f.Expose(t.Context(), "vol-new", MiB, newMemBackend(MiB)); err == nil {
		t.Fatal("Expose after Close succeeded")
	}
}
