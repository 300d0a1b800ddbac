package alloc_test

import (
	"math/rand/v2"
	"testing"

	"github.com/cobaltstore/cobalt/storage-engine/alloc"
)

// BenchmarkAllocRelease measures one Allocate and one Release of random 4-64 KiB requests on a
// 4 GiB device with 4 KiB units, empty or pre-fragmented (3/4 of the space allocated in random
// extents, then a third of them released in random order).
func BenchmarkAllocRelease(b *testing.B) {
	const size, unit = 4 << 30, 4096
	for _, im := range impls {
		for _, fragmented := range []bool{false, true} {
			name := im.name + map[bool]string{false: "/empty", true: "/fragmented"}[fragmented]
			b.Run(name, func(b *testing.B) {
				a, err := im.new(size, unit)
				if err != nil {
					b.Fatal(err)
				}
				rng := rand.New(rand.NewPCG(1, 2))
				if fragmented {
					var held []alloc.Extent
					for a.Free() > size/4 {
						got, err := a.Allocate(int64(1+rng.IntN(16)) * unit)
						if err != nil {
							b.Fatal(err)
						}
						held = append(held, got...)
					}
					rng.Shuffle(len(held), func(i, j int) { held[i], held[j] = held[j], held[i] })
					for _, e := range held[:len(held)/3] {
						if err := a.Release([]alloc.Extent{e}); err != nil {
							b.Fatal(err)
						}
					}
				}
				frag := a.Fragmentation()
				for b.Loop() {
					got, err := a.Allocate(int64(1+rng.IntN(16)) * unit)
					if err != nil {
						b.Fatal(err)
					}
					if err := a.Release(got); err != nil {
						b.Fatal(err)
					}
				}
				b.ReportMetric(frag, "frag")
			})
		}
	}
}

// BenchmarkRebuild measures rebuilding a 64 GiB allocator at mount from 100k used extents, in bulk
// (FromUsed) and one MarkUsed at a time.
func BenchmarkRebuild(b *testing.B) {
	const size, unit = 64 << 30, 4096
	var used []alloc.Extent
	for off := int64(0); off+unit*8 <= size && len(used) < 100000; off += unit * 16 {
		used = append(used, alloc.Extent{Offset: off, Length: unit * 8})
	}
	for _, im := range impls {
		b.Run(im.name+"/FromUsed", func(b *testing.B) {
			for b.Loop() {
				if _, err := im.fromUsed(size, unit, used); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(im.name+"/MarkUsed", func(b *testing.B) {
			for b.Loop() {
				a, err := im.new(size, unit)
				if err != nil {
					b.Fatal(err)
				}
				for _, e := range used {
					if err := a.MarkUsed(e); err != nil {
						b.Fatal(err)
					}
				}
			}
		})
	}
}
