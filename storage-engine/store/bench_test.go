package store

import (
	"fmt"
	"math/rand/v2"
	"sync/atomic"
	"testing"

	"github.com/cobaltstore/cobalt/storage-engine/blockdev"
	"github.com/cockroachdb/pebble/v2/vfs"
)

// The benchmarks run on the in-memory device and metadata filesystem, so they measure the store's
// CPU cost per operation; storage-engine/cmd/cobalt-bench measures a real device next to fio.

func benchStore(b *testing.B, objects int, opts Options) *Store {
	b.Helper()
	// A plain MemFS: the crashable one copies file data on every sync.
	return benchStoreOn(b, blockdev.NewMem(1<<30, 4096), objects, opts)
}

// benchStoreOn makes a store on dev (metadata in a plain MemFS) with collection "c" holding
// objects 4 MiB objects o0, o1, ...
func benchStoreOn(b *testing.B, dev blockdev.Device, objects int, opts Options) *Store {
	b.Helper()
	e := &testEnv{dev: dev, fs: vfs.NewMem(), dir: "db", opts: opts}
	e.opts.FS = e.fs
	if _, err := Mkfs(ctx, e.dev, e.dir, MkfsOptions{FS: e.fs}); err != nil {
		b.Fatal(err)
	}
	s := e.open(b)
	commit(b, s, NewTransaction().CreateCollection("c"))
	buf := pattern(1<<20, 1)
	for i := range objects {
		txn := NewTransaction()
		for off := 0; off < 4<<20; off += len(buf) {
			txn.Write("c", fmt.Sprintf("o%d", i), uint64(off), buf)
		}
		commit(b, s, txn)
	}
	return s
}

func BenchmarkOverwrite4K(b *testing.B) {
	for _, mode := range []struct {
		name     string
		deferred int
	}{{"deferred", 0}, {"cow", -1}} {
		b.Run(mode.name, func(b *testing.B) {
			s := benchStore(b, 8, Options{PreferDeferredSize: mode.deferred})
			block := pattern(4096, 2)
			b.SetBytes(4096)
			var seed atomic.Uint64
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				rng := rand.New(rand.NewPCG(seed.Add(1), 0))
				for pb.Next() {
					o, off := rng.IntN(8), uint64(rng.IntN(1024))*4096
					if err := s.Commit(ctx, NewTransaction().Write("c", fmt.Sprintf("o%d", o), off, block)); err != nil {
						b.Error(err)
						return
					}
				}
			})
		})
	}
}

func BenchmarkWriteNewObject1M(b *testing.B) {
	s := benchStore(b, 0, Options{})
	buf := pattern(1<<20, 3)
	b.SetBytes(1 << 20)
	var n atomic.Int64
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			i := n.Add(1)
			name := fmt.Sprintf("n%d", i)
			if err := s.Commit(ctx, NewTransaction().Write("c", name, 0, buf)); err != nil {
				b.Error(err)
				return
			}
			if err := s.Commit(ctx, NewTransaction().Remove("c", name)); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

func BenchmarkRead4K(b *testing.B) {
	s := benchStore(b, 8, Options{})
	b.SetBytes(4096)
	var seed atomic.Uint64
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		rng := rand.New(rand.NewPCG(seed.Add(1), 0))
		for pb.Next() {
			o, off := rng.IntN(8), uint64(rng.IntN(1024))*4096
			if _, err := s.Read(ctx, "c", fmt.Sprintf("o%d", o), off, 4096); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

// BenchmarkReadModes reads random 4 KiB blocks with the buffer cache off (every read goes to the
// device: the cold reads cobalt-bench measures) and on (after the first pass, hits), returning a
// new buffer (Read) or filling the reader's own, aligned or not (ReadInto): allocs/op shows what
// each mode costs the garbage collector.
func BenchmarkReadModes(b *testing.B) {
	names := make([]string, 8)
	for i := range names {
		names[i] = fmt.Sprintf("o%d", i)
	}
	for _, cache := range []struct {
		name string
		opts Options
	}{{"cold", Options{DisableBufferedReads: true}}, {"cached", Options{}}} {
		s := benchStore(b, len(names), cache.opts)
		for _, mode := range []string{"Read", "ReadInto", "ReadInto-unaligned"} {
			b.Run(cache.name+"/"+mode, func(b *testing.B) {
				b.SetBytes(4096)
				b.ReportAllocs()
				var seed atomic.Uint64
				b.ResetTimer()
				b.RunParallel(func(pb *testing.PB) {
					rng := rand.New(rand.NewPCG(seed.Add(1), 0))
					buf := blockdev.AlignedBuffer(4096 + 1)[:4096]
					if mode == "ReadInto-unaligned" {
						buf = buf[1:][:4096:4096]
					}
					for pb.Next() {
						o, off := rng.IntN(len(names)), uint64(rng.IntN(1024))*4096
						var err error
						if mode == "Read" {
							_, err = s.Read(ctx, "c", names[o], off, 4096)
						} else {
							_, err = s.ReadInto(ctx, "c", names[o], off, buf)
						}
						if err != nil {
							b.Error(err)
							return
						}
					}
				})
			})
		}
	}
}

func BenchmarkCreateSmallObject(b *testing.B) {
	s := benchStore(b, 0, Options{})
	data := pattern(4096, 4)
	var n atomic.Int64
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			name := fmt.Sprintf("s%d", n.Add(1))
			txn := NewTransaction().Write("c", name, 0, data).SetAttr("c", name, "a", []byte("1")).
				SetAttr("c", name, "b", []byte("2")).OmapSet("c", name, map[string][]byte{"x": {1}, "y": {2}, "z": {3}, "w": {4}})
			if err := s.Commit(ctx, txn); err != nil {
				b.Error(err)
				return
			}
		}
	})
}
