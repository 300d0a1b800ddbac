package fuseloop

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

func TestDirectIOReachesBackend(t *testing.T) {
	f := newTestFrontend(t, Options{})
	const size = 16 * MiB
	b := newMemBackend(size)
	dev, err := f.Expose(t.Context(), "vol-io", size, b)
	if err != nil {
		t.Fatalf("Expose: %v", err)
	}
	d := openDirect(t, dev.Path)

	var ssz int
	if ssz, err = unix.IoctlGetInt(int(d.Fd()), unix.BLKSSZGET); err != nil || ssz != 4096 {
		t.Fatalf("logical block size = %d, %v; want 4096", ssz, err)
	}

	for i, tc := range []struct {
		name string
		off  int64
		n    int
	}{
		{"4KiB at 0", 0, 4096},
		{"4KiB in the middle", 5*MiB + 8192, 4096},
		{"1MiB aligned", 2 * MiB, MiB},
		{"1MiB+12KiB crossing request boundaries", 3*MiB - 12288, MiB + 12288},
		{"8KiB across a 1MiB boundary", 7*MiB - 4096, 8192},
		{"last block", size - 4096, 4096},
	} {
		t.Run(tc.name, func(t *testing.T) {
			want := pattern(tc.n, tc.off, byte(i+1))
			if n, err := d.WriteAt(want, tc.off); err != nil || n != tc.n {
				t.Fatalf("pwrite %d at %d: n=%d err=%v", tc.n, tc.off, n, err)
			}
			if got := b.bytes(tc.off, int64(tc.n)); !bytes.Equal(got, want) {
				t.Fatalf("backend does not have the write at %d", tc.off)
			}
			got := alignedBuf(tc.n)
			if n, err := d.ReadAt(got, tc.off); err != nil || n != tc.n {
				t.Fatalf("pread %d at %d: n=%d err=%v", tc.n, tc.off, n, err)
			}
			if !bytes.Equal(got, want) {
				t.Fatalf("device reads back other bytes at %d", tc.off)
			}
		})
	}
	// The loop device splits bios at 128 segments of at most 64 KiB, so a 1 MiB write from
	// scattered pages arrives in two or three requests; above go-fuse's default of 128 KiB shows
	// that MaxWrite was raised.
	if m := b.maxWrite.Load(); m <= 128<<10 || m > MiB {
		t.Errorf("largest WRITE the backend saw = %d bytes, want more than 128 KiB and at most 1 MiB", m)
	}

	// Bytes the backend has (written by the engine, not through the device) read through.
	if err := b.WriteAt(t.Context(), bytes.Repeat([]byte{0xab}, 4096), 9*MiB); err != nil {
		t.Fatal(err)
	}
	got := alignedBuf(4096)
	if _, err := d.ReadAt(got, 9*MiB); err != nil || !bytes.Equal(got, bytes.Repeat([]byte{0xab}, 4096)) {
		t.Fatalf("read of backend bytes: err=%v, first byte %#x", err, got[0])
	}

	// A write past the end fails (the device ends where the volume does).
	if _, err := d.WriteAt(alignedBuf(4096), size); err == nil {
		t.Fatal("write past the end of the device succeeded")
	}
}

func TestFsyncFlushesBackendAfterAcknowledgedWrites(t *testing.T) {
	f := newTestFrontend(t, Options{})
	b := newMemBackend(8 * MiB)
	dev, err := f.Expose(t.Context(), "vol-fsync", 8*MiB, b)
	if err != nil {
		t.Fatal(err)
	}
	d := openDirect(t, dev.Path)
	before := b.flushCount()
	if _, err := d.WriteAt(pattern(65536, 4096, 7), 4096); err != nil {
		t.Fatal(err)
	}
	if err := d.Sync(); err != nil {
		t.Fatalf("fsync device: %v", err)
	}
	if b.flushCount() <= before {
		t.Fatalf("fsync of %s did not call Backend.Flush", dev.Path)
	}
	ops := b.opLog()
	w, fl := -1, -1
	for i, op := range ops {
		if op == "write@4096+65536" && w < 0 {
			w = i
		}
		if op == "flush" && w >= 0 && fl < 0 {
			fl = i
		}
	}
	if w < 0 || fl < 0 {
		t.Fatalf("want the acknowledged write, then a flush; backend saw %v", ops)
	}
}

func TestBackendWriteErrorIsEIO(t *testing.T) {
	f := newTestFrontend(t, Options{})
	b := newMemBackend(4 * MiB)
	dev, err := f.Expose(t.Context(), "vol-eio", 4*MiB, b)
	if err != nil {
		t.Fatal(err)
	}
	d := openDirect(t, dev.Path)
	b.failWrites.Store(true)
	_, err = d.WriteAt(pattern(4096, 0, 1), 0)
	if !errors.Is(err, unix.EIO) {
		t.Fatalf("write with a failing backend: err=%v, want EIO", err)
	}
	b.failWrites.Store(false)
	if _, err := d.WriteAt(pattern(4096, 0, 1), 0); err != nil {
		t.Fatalf("write after the backend recovered: %v", err)
	}
}

func TestConcurrentIOReachesBackendInParallel(t *testing.T) {
	f := newTestFrontend(t, Options{})
	b := newMemBackend(8 * MiB)
	b.gate, b.gateWait = 4, 2*time.Second
	dev, err := f.Expose(t.Context(), "vol-par", 8*MiB, b)
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for i := range 8 {
		wg.Go(func() {
			d, err := os.OpenFile(dev.Path, os.O_RDWR|unix.O_DIRECT, 0)
			if err != nil {
				errs <- err
				return
			}
			defer d.Close()
			off := int64(i) * MiB
			if _, err := d.WriteAt(pattern(4096, off, 3), off); err != nil {
				errs <- fmt.Errorf("write at %d: %w", off, err)
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if p := b.peak.Load(); p < 4 {
		t.Fatalf("at most %d backend writes were in flight at once, want 4: I/O is serialized", p)
	}
}
