// Package blockdevtest is a conformance suite that every blockdev.Device implementation runs: the
// in-memory device, the fault-injecting device with no faults armed, files opened with O_DIRECT and
// loop devices. A Device passes when it honors the contract in package blockdev: aligned I/O only,
// bounds checked with errors (never panics), reads return the last data written, concurrent use is
// safe, and a closed device refuses I/O.
package blockdevtest

import (
	"bytes"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"

	"github.com/cobaltstore/cobalt/storage-engine/blockdev"
)

// Factory opens a fresh device for one subtest. The device must be at least 1 MiB and start with
// arbitrary contents; the suite closes it, and the factory registers any other cleanup on t.
type Factory func(t *testing.T) blockdev.Device

// Run runs the conformance suite as subtests of t.
func Run(t *testing.T, open Factory) {
	t.Run("Geometry", func(t *testing.T) { testGeometry(t, open(t)) })
	t.Run("RoundTrip", func(t *testing.T) { testRoundTrip(t, open(t)) })
	t.Run("Misaligned", func(t *testing.T) { testMisaligned(t, open(t)) })
	t.Run("Bounds", func(t *testing.T) { testBounds(t, open(t)) })
	t.Run("Concurrent", func(t *testing.T) { testConcurrent(t, open(t)) })
	t.Run("Closed", func(t *testing.T) { testClosed(t, open(t)) })
}

// Pattern fills p with bytes derived from seed, so that data written can be recognized on read.
func Pattern(p []byte, seed uint64) {
	r := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	for i := range p {
		p[i] = byte(r.Uint32())
	}
}

func closeDev(t *testing.T, d blockdev.Device) {
	t.Helper()
	if err := d.Close(); err != nil {
		t.Errorf("Close: %v", err)
	}
}

func testGeometry(t *testing.T, d blockdev.Device) {
	defer closeDev(t, d)
	bs := d.BlockSize()
	if bs < 512 || bs&(bs-1) != 0 {
		t.Fatalf("BlockSize() = %d, want a power of two >= 512", bs)
	}
	if d.Size() < 1<<20 || d.Size()%int64(bs) != 0 {
		t.Fatalf("Size() = %d, want >= 1 MiB and a multiple of %d", d.Size(), bs)
	}
}

func testRoundTrip(t *testing.T, d blockdev.Device) {
	defer closeDev(t, d)
	bs := int64(d.BlockSize())
	cases := []struct{ off, n int64 }{
		{0, bs}, {bs, 3 * bs}, {d.Size() - bs, bs}, {d.Size() / 2, 64 * bs}, {5 * bs, 256 << 10},
	}
	for i, c := range cases {
		w := blockdev.AlignedBuffer(int(c.n))
		Pattern(w, uint64(i+1))
		if n, err := d.WriteAt(w, c.off); err != nil || n != len(w) {
			t.Fatalf("WriteAt(%d bytes, %d) = %d, %v", c.n, c.off, n, err)
		}
		r := blockdev.AlignedBuffer(int(c.n))
		if n, err := d.ReadAt(r, c.off); err != nil || n != len(r) {
			t.Fatalf("ReadAt(%d bytes, %d) = %d, %v", c.n, c.off, n, err)
		}
		if !bytes.Equal(w, r) {
			t.Fatalf("case %d: read back differs from data written at %d", i, c.off)
		}
	}
	if err := d.Flush(); err != nil {
		t.Fatalf("Flush: %v", err)
	}
	// An overwrite of the middle of an earlier write leaves the rest intact.
	w := blockdev.AlignedBuffer(int(4 * bs))
	Pattern(w, 100)
	mustWrite(t, d, w, 0)
	mid := blockdev.AlignedBuffer(int(bs))
	Pattern(mid, 101)
	mustWrite(t, d, mid, bs)
	copy(w[bs:2*bs], mid)
	r := blockdev.AlignedBuffer(int(4 * bs))
	if _, err := d.ReadAt(r, 0); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(w, r) {
		t.Fatal("partial overwrite: read back differs")
	}
}

func mustWrite(t *testing.T, d blockdev.Device, p []byte, off int64) {
	t.Helper()
	if _, err := d.WriteAt(p, off); err != nil {
		t.Fatalf("WriteAt(%d bytes, %d): %v", len(p), off, err)
	}
}

func testMisaligned(t *testing.T, d blockdev.Device) {
	defer closeDev(t, d)
	bs := d.BlockSize()
	buf := blockdev.AlignedBuffer(2 * bs)
	cases := []struct {
		name string
		p    []byte
		off  int64
	}{
		{"offset", buf[:bs], 1},
		{"offset-half-block", buf[:bs], int64(bs / 2)},
		{"length", buf[:bs-1], 0},
		{"length-plus-one", buf[:bs+1], 0},
		{"buffer-address", buf[1 : bs+1], 0},
		{"negative-offset", buf[:bs], -int64(bs)},
	}
	for _, c := range cases {
		if _, err := d.WriteAt(c.p, c.off); !errors.Is(err, blockdev.ErrMisaligned) {
			t.Errorf("%s: WriteAt err = %v, want ErrMisaligned", c.name, err)
		}
		if _, err := d.ReadAt(c.p, c.off); !errors.Is(err, blockdev.ErrMisaligned) {
			t.Errorf("%s: ReadAt err = %v, want ErrMisaligned", c.name, err)
		}
	}
}

func testBounds(t *testing.T, d blockdev.Device) {
	defer closeDev(t, d)
	bs := int64(d.BlockSize())
	buf := blockdev.AlignedBuffer(int(2 * bs))
	for _, off := range []int64{d.Size() - bs, d.Size(), d.Size() + bs, 1 << 62} {
		if _, err := d.WriteAt(buf, off); !errors.Is(err, blockdev.ErrOutOfRange) {
			t.Errorf("WriteAt(2 blocks, %d) err = %v, want ErrOutOfRange", off, err)
		}
		if _, err := d.ReadAt(buf, off); !errors.Is(err, blockdev.ErrOutOfRange) {
			t.Errorf("ReadAt(2 blocks, %d) err = %v, want ErrOutOfRange", off, err)
		}
	}
	// Zero-length I/O at the end is legal.
	if _, err := d.ReadAt(buf[:0], d.Size()); err != nil {
		t.Errorf("zero-length ReadAt at end: %v", err)
	}
}

func testConcurrent(t *testing.T, d blockdev.Device) {
	defer closeDev(t, d)
	bs := int64(d.BlockSize())
	const workers, perWorker = 8, 16
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for w := range workers {
		wg.Go(func() {
			buf := blockdev.AlignedBuffer(int(bs))
			got := blockdev.AlignedBuffer(int(bs))
			for i := range perWorker {
				off := int64(w*perWorker+i) * bs
				Pattern(buf, uint64(off))
				if _, err := d.WriteAt(buf, off); err != nil {
					errs <- err
					return
				}
				if _, err := d.ReadAt(got, off); err != nil {
					errs <- err
					return
				}
				if !bytes.Equal(buf, got) {
					errs <- fmt.Errorf("worker %d: block at %d reads back wrong", w, off)
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if err := d.Flush(); err != nil {
		t.Fatalf("Flush: %v", err)
	}
	// Every block still holds its own pattern after all workers finished.
	want := blockdev.AlignedBuffer(int(bs))
	got := blockdev.AlignedBuffer(int(bs))
	for i := range int64(workers * perWorker) {
		Pattern(want, uint64(i*bs))
		if _, err := d.ReadAt(got, i*bs); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(want, got) {
			t.Fatalf("block %d lost its data", i)
		}
	}
}

func testClosed(t *testing.T, d blockdev.Device) {
	bs := d.BlockSize()
	if err := d.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	buf := blockdev.AlignedBuffer(bs)
	if _, err := d.ReadAt(buf, 0); !errors.Is(err, blockdev.ErrClosed) {
		t.Errorf("ReadAt after Close: err = %v, want ErrClosed", err)
	}
	if _, err := d.WriteAt(buf, 0); !errors.Is(err, blockdev.ErrClosed) {
		t.Errorf("WriteAt after Close: err = %v, want ErrClosed", err)
	}
	if err := d.Flush(); !errors.Is(err, blockdev.ErrClosed) {
		t.Errorf("Flush after Close: err = %v, want ErrClosed", err)
	}
}
