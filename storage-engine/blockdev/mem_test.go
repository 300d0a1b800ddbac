package blockdev_test

import (
	"bytes"
	"errors"
	"testing"

	"github.com/cobaltstore/cobalt/storage-engine/blockdev"
	"github.com/cobaltstore/cobalt/storage-engine/blockdev/blockdevtest"
)

func TestMemConformance(t *testing.T) {
	for _, bs := range []int{512, 4096} {
		t.Run(map[int]string{512: "bs512", 4096: "bs4096"}[bs], func(t *testing.T) {
			blockdevtest.Run(t, func(t *testing.T) blockdev.Device { return blockdev.NewMem(8<<20, bs) })
		})
	}
}

func TestNewMemNormalises(t *testing.T) {
	cases := []struct {
		size     int64
		bs       int
		wantSize int64
		wantBS   int
	}{
		{1 << 20, 4096, 1 << 20, 4096},
		{1<<20 + 100, 4096, 1 << 20, 4096},
		{-5, 4096, 0, 4096},
		{1 << 20, 1000, 1 << 20, 4096},
		{1 << 20, 0, 1 << 20, 4096},
		{1 << 20, 128 << 10, 1 << 20, 4096},
		{10240, 512, 10240, 512},
	}
	for _, c := range cases {
		d := blockdev.NewMem(c.size, c.bs)
		if d.Size() != c.wantSize || d.BlockSize() != c.wantBS {
			t.Errorf("NewMem(%d, %d): size %d bs %d, want %d %d", c.size, c.bs, d.Size(), d.BlockSize(), c.wantSize, c.wantBS)
		}
	}
}

func TestMemUnwrittenReadsZero(t *testing.T) {
	d := blockdev.NewMem(1<<30, 4096) // sparse: costs nothing until written
	buf := blockdev.AlignedBuffer(8192)
	for i := range buf {
		buf[i] = 0xff
	}
	if _, err := d.ReadAt(buf, 1<<29); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(buf, make([]byte, 8192)) {
		t.Fatal("unwritten space did not read as zeros")
	}
}

func TestMemReopenCloneStats(t *testing.T) {
	d := blockdev.NewMem(1<<20, 4096)
	w := blockdev.AlignedBuffer(4096)
	blockdevtest.Pattern(w, 7)
	if _, err := d.WriteAt(w, 65536-4096); err != nil {
		t.Fatal(err)
	}
	clone := d.Clone()
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
	if err := d.Close(); !errors.Is(err, blockdev.ErrClosed) {
		t.Fatalf("second Close: %v, want ErrClosed", err)
	}
	re := d.Reopen()
	r := blockdev.AlignedBuffer(4096)
	if _, err := re.ReadAt(r, 65536-4096); err != nil || !bytes.Equal(r, w) {
		t.Fatalf("Reopen lost data: %v", err)
	}
	// The clone is independent: writing to the original does not change it.
	z := blockdev.AlignedBuffer(4096)
	if _, err := re.WriteAt(z, 65536-4096); err != nil {
		t.Fatal(err)
	}
	if _, err := clone.ReadAt(r, 65536-4096); err != nil || !bytes.Equal(r, w) {
		t.Fatalf("clone changed after writing the original: %v", err)
	}
	if err := re.Flush(); err != nil {
		t.Fatal(err)
	}
	st := re.Stats()
	want := blockdev.MemStats{Reads: 1, Writes: 2, Flushes: 1, BytesRead: 4096, BytesWritten: 8192}
	if st != want {
		t.Fatalf("Stats = %+v, want %+v", st, want)
	}
	if cs := clone.Stats(); cs.Reads != 1 || cs.Writes != 0 {
		t.Fatalf("clone stats = %+v, want fresh counters", cs)
	}
}

func TestMemFlipBitAndRotational(t *testing.T) {
	d := blockdev.NewMem(1<<20, 4096)
	if err := d.FlipBit(4097, 3); err != nil {
		t.Fatal(err)
	}
	buf := blockdev.AlignedBuffer(4096)
	if _, err := d.ReadAt(buf, 4096); err != nil {
		t.Fatal(err)
	}
	if buf[1] != 1<<3 {
		t.Fatalf("byte after flip = %#x, want %#x", buf[1], 1<<3)
	}
	for _, c := range []struct {
		off int64
		bit uint
	}{{-1, 0}, {1 << 20, 0}, {0, 8}} {
		if err := d.FlipBit(c.off, c.bit); !errors.Is(err, blockdev.ErrOutOfRange) {
			t.Errorf("FlipBit(%d, %d) = %v, want ErrOutOfRange", c.off, c.bit, err)
		}
	}
	if d.Rotational() {
		t.Fatal("new mem device reports rotational")
	}
	d.SetRotational(true)
	if !d.Rotational() || !d.Clone().Rotational() {
		t.Fatal("SetRotational(true) not reflected")
	}
}

func TestAlignedBuffer(t *testing.T) {
	for _, n := range []int{-1, 0, 1, 511, 4096, 4097, 8192, 12288, 20480, 36864, 1 << 20} {
		b := blockdev.AlignedBuffer(n)
		if b == nil || len(b) != max(n, 0) || cap(b) != len(b) {
			t.Fatalf("AlignedBuffer(%d): len %d cap %d nil=%v", n, len(b), cap(b), b == nil)
		}
		if !blockdev.IsAligned(b, blockdev.Alignment) {
			t.Fatalf("AlignedBuffer(%d) not aligned", n)
		}
	}
	b := blockdev.AlignedBuffer(8192)
	if blockdev.IsAligned(b[1:], 512) || !blockdev.IsAligned(b[4096:], 4096) {
		t.Fatal("IsAligned wrong on sub-slices")
	}
}
