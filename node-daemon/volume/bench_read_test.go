package volume_test

import (
	"bytes"
	"context"
	"testing"

	"github.com/cobaltstore/cobalt/node-daemon/volume"
)

// BenchmarkBackendReadAt measures a block frontend's 4 KiB read (volume.Backend.ReadAt) on a
// file-backed engine store with its data cache, as the node daemon runs it: "cold" reads blocks
// not read before (each one from the device, then into the cache; run it with -benchtime of at
// most 16384x), "cached" reads the same 16 blocks again. allocs/op is what each read costs the
// garbage collector.
func BenchmarkBackendReadAt(b *testing.B) {
	ctx := context.Background()
	const size = 64 << 20
	m, _ := newEngineManager(b, 256<<20)
	if _, err := m.Create(ctx, "v", size, 0); err != nil {
		b.Fatal(err)
	}
	chunk := bytes.Repeat([]byte{7}, 1<<20)
	for off := int64(0); off < size; off += int64(len(chunk)) {
		if err := m.Write(ctx, "v", off, chunk); err != nil {
			b.Fatal(err)
		}
	}
	be := volume.Backend{Manager: m, ID: "v"}
	p := make([]byte, 4096)
	var next int64
	for _, mode := range []string{"cold", "cached"} {
		b.Run(mode, func(b *testing.B) {
			b.SetBytes(4096)
			b.ReportAllocs()
			for i := 0; b.Loop(); i++ {
				off := int64(i%16) * 4096
				if mode == "cold" {
					// 4 KiB blocks in an order that skips around the volume, each read once.
					if next == size/4096 {
						b.Fatalf("cold: every block was read once; run with -benchtime %dx or less", size/4096)
					}
					off = next * 4096 * 7919 % size
					next++
				}
				if err := be.ReadAt(ctx, p, off); err != nil || p[0] != 7 {
					b.Fatalf("ReadAt %d: %v", off, err)
				}
			}
		})
	}
}
