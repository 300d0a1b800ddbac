package eiodev

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"
	"unsafe"

	"github.com/go-logr/logr/testr"
	"github.com/moby/sys/mountinfo"
	"golang.org/x/sys/unix"
)

const devSize = 16 << 20

// newTestDevice makes a Device in a fresh directory; at cleanup it closes it (if the test did
// not) and checks that no mount and no loop device of it is left.
func newTestDevice(t *testing.T) *Device {
	t.Helper()
	if err := Available(); err != nil {
		t.Skip(err)
	}
	d, err := New(t.Context(), Options{Dir: t.TempDir(), Size: devSize, CloseTimeout: 10 * time.Second,
		Log: testr.NewWithOptions(t, testr.Options{Verbosity: 1})})
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() {
		if err := d.Close(context.Background()); err != nil {
			t.Errorf("Close: %v", err)
		}
		assertGone(t, d)
	})
	return d
}

// assertGone fails the test if d's mount or loop device is still there.
func assertGone(t *testing.T, d *Device) {
	t.Helper()
	mounts, err := mountinfo.GetMounts(mountinfo.SingleEntryFilter(d.mountDir))
	if err != nil {
		t.Fatal(err)
	}
	if len(mounts) > 0 {
		t.Errorf("%s is still mounted", d.mountDir)
	}
	f, err := os.OpenFile(d.path, os.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return // the node is gone: detached
	}
	defer f.Close()
	if info, err := unix.IoctlLoopGetStatus64(int(f.Fd())); err == nil && info.Device == d.fileDev && info.Inode == d.fileIno {
		t.Errorf("%s is still bound to the device's volume file", d.path)
	}
}

// alignedBuf returns n bytes filled with b, aligned for O_DIRECT.
func alignedBuf(n int, b byte) []byte {
	const align = 4096
	buf := make([]byte, n+align)
	off := 0
	if r := int(uintptr(unsafe.Pointer(&buf[0])) & (align - 1)); r != 0 {
		off = align - r
	}
	p := buf[off : off+n : off+n]
	for i := range p {
		p[i] = b
	}
	return p
}

func openDirect(t *testing.T, path string) *os.File {
	t.Helper()
	f, err := os.OpenFile(path, os.O_RDWR|unix.O_DIRECT|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Fatalf("open %s O_DIRECT: %v", path, err)
	}
	return f
}

// TestSwitchFailsLoopDeviceIOWithEIO: through /dev/loopN with O_DIRECT, on a descriptor opened
// while the device was healthy, FailWrites fails writes and fsync with EIO but reads the data,
// FailAll fails reads too, and once healthy the device reads what was written before the switch.
func TestSwitchFailsLoopDeviceIOWithEIO(t *testing.T) {
	d := newTestDevice(t)
	f := openDirect(t, d.Path())
	defer f.Close()
	if sz, err := unix.IoctlGetInt(int(f.Fd()), unix.BLKGETSIZE64); err != nil || sz != devSize {
		t.Fatalf("size of %s = %d, %v; want %d", d.Path(), sz, err, devSize)
	}
	data := alignedBuf(64<<10, 0x3c)
	if _, err := f.WriteAt(data, 1<<20); err != nil {
		t.Fatalf("healthy write: %v", err)
	}
	if err := f.Sync(); err != nil {
		t.Fatalf("healthy fsync: %v", err)
	}
	got := alignedBuf(64<<10, 0)
	if _, err := f.ReadAt(got, 1<<20); err != nil || !bytes.Equal(got, data) {
		t.Fatalf("healthy read: %v, equal %t", err, bytes.Equal(got, data))
	}
	// The data is in the backing file, not only in some cache.
	raw := make([]byte, len(data))
	if err := d.Backend().ReadAt(t.Context(), raw, 1<<20); err != nil || !bytes.Equal(raw, data) {
		t.Fatalf("backend after the healthy write: %v, equal %t", err, bytes.Equal(raw, data))
	}

	d.Backend().SetMode(FailWrites)
	if _, err := f.WriteAt(alignedBuf(4096, 0xff), 1<<20); !errors.Is(err, unix.EIO) {
		t.Fatalf("write with writes failing: %v, want EIO", err)
	}
	if err := f.Sync(); !errors.Is(err, unix.EIO) {
		t.Fatalf("fsync with writes failing: %v, want EIO", err)
	}
	if _, err := f.ReadAt(got, 1<<20); err != nil || !bytes.Equal(got, data) {
		t.Fatalf("read with writes failing: %v, equal to the data written before %t", err, bytes.Equal(got, data))
	}

	d.Backend().SetMode(FailAll)
	if _, err := f.ReadAt(got, 1<<20); !errors.Is(err, unix.EIO) {
		t.Fatalf("read with every I/O failing: %v, want EIO", err)
	}
	if _, err := f.WriteAt(alignedBuf(4096, 0xff), 0); !errors.Is(err, unix.EIO) {
		t.Fatalf("write with every I/O failing: %v, want EIO", err)
	}
	if err := f.Sync(); !errors.Is(err, unix.EIO) {
		t.Fatalf("fsync with every I/O failing: %v, want EIO", err)
	}
	fl := d.Backend().Failures()
	if fl.Reads < 1 || fl.Writes < 2 || fl.Flushes < 2 {
		t.Fatalf("backend failures %+v: want at least 1 read, 2 writes and 2 flushes failed", fl)
	}

	d.Backend().SetMode(Healthy)
	if _, err := f.ReadAt(got, 1<<20); err != nil || !bytes.Equal(got, data) {
		t.Fatalf("read once healthy: %v, equal to the data written before the switch %t", err, bytes.Equal(got, data))
	}
	if err := f.Sync(); err != nil {
		t.Fatalf("fsync once healthy: %v", err)
	}
}

func TestBlankReadsZerosThroughTheDevice(t *testing.T) {
	d := newTestDevice(t)
	f := openDirect(t, d.Path())
	if _, err := f.WriteAt(alignedBuf(1<<20, 7), 0); err != nil {
		t.Fatal(err)
	}
	// A buffered reader caches the block in the device's page cache; Blank must drop it.
	buffered, err := os.Open(d.Path())
	if err != nil {
		t.Fatal(err)
	}
	cached := make([]byte, 4096)
	if _, err := buffered.ReadAt(cached, 0); err != nil || cached[0] != 7 {
		t.Fatalf("buffered read: %v, first byte %d", err, cached[0])
	}
	buffered.Close()
	f.Close()
	if err := d.Blank(); err != nil {
		t.Fatalf("Blank: %v", err)
	}
	buffered, err = os.Open(d.Path())
	if err != nil {
		t.Fatal(err)
	}
	defer buffered.Close()
	if _, err := buffered.ReadAt(cached, 0); err != nil || !bytes.Equal(cached, make([]byte, 4096)) {
		t.Fatalf("buffered read after Blank: %v, first byte %d; want zeros", err, cached[0])
	}
}

// TestCloseWhileFailingAndHeld: Close of a device whose switch is on and that a process still
// holds open returns (the device busy), and the kernel detaches the loop device at its last close.
func TestCloseWhileFailingAndHeld(t *testing.T) {
	if err := Available(); err != nil {
		t.Skip(err)
	}
	d, err := New(t.Context(), Options{Dir: t.TempDir(), Size: devSize, CloseTimeout: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	f := openDirect(t, d.Path())
	d.Backend().SetMode(FailAll)
	began := time.Now()
	err = d.Close(context.Background())
	if err == nil {
		t.Fatal("Close with the device held open reported nothing")
	}
	if took := time.Since(began); took > 10*time.Second {
		t.Fatalf("Close took %s", took)
	}
	f.Close()
	deadline := time.Now().Add(10 * time.Second)
	for {
		if g, err := os.OpenFile(d.Path(), os.O_RDONLY|unix.O_CLOEXEC, 0); err != nil {
			break
		} else {
			info, err := unix.IoctlLoopGetStatus64(int(g.Fd()))
			g.Close()
			if err != nil || info.Device != d.fileDev || info.Inode != d.fileIno {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s is still bound to the device's file 10s after its last user closed it", d.Path())
		}
		time.Sleep(20 * time.Millisecond)
	}
	assertGone(t, d)
}

// TestCloseAfterAbortedConnection: once the FUSE connection is aborted (what Close does to a
// server that does not answer), Close still returns at once and leaves nothing behind.
func TestCloseAfterAbortedConnection(t *testing.T) {
	if err := Available(); err != nil {
		t.Skip(err)
	}
	d, err := New(t.Context(), Options{Dir: filepath.Join(t.TempDir()), Size: devSize, CloseTimeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	if err := d.abort(); err != nil {
		t.Fatalf("abort: %v", err)
	}
	f, err := os.OpenFile(d.Path(), os.O_RDWR|unix.O_DIRECT|unix.O_CLOEXEC, 0)
	if err == nil {
		_, rerr := f.ReadAt(alignedBuf(4096, 0), 0)
		f.Close()
		if !errors.Is(rerr, unix.EIO) {
			t.Fatalf("read of a device whose connection is aborted: %v, want EIO", rerr)
		}
	}
	began := time.Now()
	_ = d.Close(context.Background()) // reports the failed flush; what counts is what is left
	if took := time.Since(began); took > 5*time.Second {
		t.Fatalf("Close took %s", took)
	}
	assertGone(t, d)
}
