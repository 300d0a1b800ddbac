package fuseloop

import (
	"math/rand/v2"
	"testing"
)

// benchDevice exposes a 256 MiB in-memory volume and opens its device with O_DIRECT.
func benchDevice(b *testing.B) (*memBackend, string) {
	f := newTestFrontend(b, Options{})
	const size = 256 * MiB
	mb := newMemBackend(size)
	dev, err := f.Expose(b.Context(), "vol-bench", size, mb)
	if err != nil {
		b.Fatal(err)
	}
	return mb, dev.Path
}

// BenchmarkLoop4KRandWrite measures queue-depth-1 4 KiB O_DIRECT writes at random offsets on
// the loop device: the latency of the whole kernel -> FUSE -> Backend round trip.
func BenchmarkLoop4KRandWrite(b *testing.B) {
	_, path := benchDevice(b)
	d := openDirect(b, path)
	buf := pattern(4096, 0, 1)
	blocks := int64(256 * MiB / 4096)
	b.SetBytes(4096)
	for b.Loop() {
		if _, err := d.WriteAt(buf, rand.Int64N(blocks)*4096); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkLoop4KRandRead is the read counterpart of BenchmarkLoop4KRandWrite.
func BenchmarkLoop4KRandRead(b *testing.B) {
	_, path := benchDevice(b)
	d := openDirect(b, path)
	buf := alignedBuf(4096)
	blocks := int64(256 * MiB / 4096)
	b.SetBytes(4096)
	for b.Loop() {
		if _, err := d.ReadAt(buf, rand.Int64N(blocks)*4096); err != nil {
			b.Fatal(err)
		}
	}
}
