package volume_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/cobaltstore/cobalt/node-daemon/objstore"
	"github.com/cobaltstore/cobalt/node-daemon/objstore/memstore"
	"github.com/cobaltstore/cobalt/node-daemon/volume"
)

// readStore embeds the Store interface and so has no ReadInto: the Manager reads it with Read.
type readStore struct{ objstore.Store }

// TestReadInto: Manager.ReadInto, ReadNoCacheInto, Read and Backend.ReadAt return the volume's
// bytes for reads inside a stripe, across stripes, over a missing stripe and past a stripe
// object's end (zeros), into 4 KiB-aligned and unaligned buffers that held other bytes, on stores
// that read into buffers (the engine, memstore) and on one that does not; ranges outside the
// volume and unknown volumes are refused.
func TestReadInto(t *testing.T) {
	ctx := context.Background()
	const stripe, size = volume.MinStripeSize, 4 * volume.MinStripeSize
	for _, backend := range []struct {
		name  string
		store func(t *testing.T) objstore.Store
	}{
		{"engine", func(t *testing.T) objstore.Store { _, mnt := newEngineManager(t, 64<<20); return mnt }},
		{"memstore", func(*testing.T) objstore.Store { return memstore.New("m", 64<<20) }},
		{"store-without-ReadInto", func(*testing.T) objstore.Store { return readStore{memstore.New("m", 64<<20)} }},
	} {
		t.Run(backend.name, func(t *testing.T) {
			m, err := volume.Open(ctx, backend.store(t))
			if err != nil {
				t.Fatal(err)
			}
			if _, err := m.Create(ctx, "v", size, stripe); err != nil {
				t.Fatal(err)
			}
			// Stripe 0 holds 10000 bytes, stripe 1 was never written, stripe 2 holds a block at
			// 4096 (its object ends at 8192), stripe 3 was never written.
			want := make([]byte, size)
			for _, w := range []struct {
				off int64
				n   int
			}{{0, 10000}, {2*stripe + 4096, 4096}} {
				data := bytes.Repeat([]byte{byte(w.off>>12) | 1, 7, 9}, w.n/3+1)[:w.n]
				if err := m.Write(ctx, "v", w.off, data); err != nil {
					t.Fatal(err)
				}
				copy(want[w.off:], data)
			}
			b := volume.Backend{Manager: m, ID: "v"}
			for _, r := range []struct {
				name   string
				off, n int64
			}{
				{"block", 0, 4096},
				{"past the stripe object's end", 4096, 8192},
				{"partial", 100, 5000},
				{"across stripes 0 and 1", stripe - 4096, 8192},
				{"missing stripe", stripe, stripe},
				{"across stripes 1 and 2", 2*stripe - 4096, 16384},
				{"block of stripe 2", 2*stripe + 4096, 4096},
				{"whole volume", 0, size},
			} {
				for _, aligned := range []bool{true, false} {
					t.Run(fmt.Sprintf("%s/aligned=%v", r.name, aligned), func(t *testing.T) {
						w := want[r.off : r.off+r.n]
						raw := make([]byte, (r.n+1+4095)/4096*4096)
						p := raw[:r.n]
						if !aligned {
							p = raw[1 : r.n+1]
						}
						for _, read := range []struct {
							name string
							fn   func(p []byte) error
						}{
							{"ReadInto", func(p []byte) error { return m.ReadInto(ctx, "v", r.off, p) }},
							{"ReadNoCacheInto", func(p []byte) error { return m.ReadNoCacheInto(ctx, "v", r.off, p) }},
							{"Backend.ReadAt", func(p []byte) error { return b.ReadAt(ctx, p, r.off) }},
						} {
							for i := range p {
								p[i] = 0xee
							}
							if err := read.fn(p); err != nil {
								t.Fatalf("%s: %v", read.name, err)
							}
							if !bytes.Equal(p, w) {
								t.Fatalf("%s: [%d,+%d) differs from what was written (unwritten bytes read as zeros)", read.name, r.off, r.n)
							}
						}
						got, err := m.Read(ctx, "v", r.off, r.n)
						if err != nil || !bytes.Equal(got, w) {
							t.Fatalf("Read [%d,+%d) = %d bytes, %v; differs", r.off, r.n, len(got), err)
						}
					})
				}
			}
			for _, bad := range []struct {
				name string
				id   string
				off  int64
				n    int
				want error
			}{
				{"past the end", "v", size - 4096, 8192, objstore.ErrInvalid},
				{"negative offset", "v", -4096, 4096, objstore.ErrInvalid},
				{"unknown volume", "nope", 0, 4096, objstore.ErrNotFound},
			} {
				if err := m.ReadInto(ctx, bad.id, bad.off, make([]byte, bad.n)); !errors.Is(err, bad.want) {
					t.Errorf("ReadInto %s: %v, want %v", bad.name, err, bad.want)
				}
				if err := m.ReadNoCacheInto(ctx, bad.id, bad.off, make([]byte, bad.n)); !errors.Is(err, bad.want) {
					t.Errorf("ReadNoCacheInto %s: %v, want %v", bad.name, err, bad.want)
				}
			}
			if err := m.ReadInto(ctx, "v", size, nil); err != nil {
				t.Errorf("ReadInto of nothing at the end: %v", err)
			}
		})
	}
}

// TestReadIntoAllocations: a 4 KiB read of a cached block into the caller's aligned buffer
// allocates at most the stripe's object name, and Read the buffer it returns besides; a read
// that misses the cache allocates what the cache keeps, and Read one buffer more than ReadInto.
func TestReadIntoAllocations(t *testing.T) {
	ctx := context.Background()
	m, _ := newEngineManager(t, 64<<20)
	const size = 1 << 20
	if _, err := m.Create(ctx, "v", size, volume.MinStripeSize); err != nil {
		t.Fatal(err)
	}
	if err := m.Write(ctx, "v", 0, bytes.Repeat([]byte{5}, size)); err != nil {
		t.Fatal(err)
	}
	p := make([]byte, 4096)
	into := func(off int64) {
		if err := m.ReadInto(ctx, "v", off, p); err != nil || p[0] != 5 {
			t.Fatalf("ReadInto at %d: %v", off, err)
		}
	}
	read := func(off int64) {
		if got, err := m.Read(ctx, "v", off, 4096); err != nil || got[0] != 5 {
			t.Fatalf("Read at %d: %v", off, err)
		}
	}
	const runs = 100
	// Cold: each run reads a block not read before, ReadInto in the first half of the volume,
	// Read in the second.
	var nInto, nRead int64 = 0, size / 2
	coldInto := testing.AllocsPerRun(runs, func() { into(nInto); nInto += 4096 })
	coldRead := testing.AllocsPerRun(runs, func() { read(nRead); nRead += 4096 })
	warmInto := testing.AllocsPerRun(runs, func() { into(0) })
	warmRead := testing.AllocsPerRun(runs, func() { read(0) })
	t.Logf("allocations per 4 KiB read: cold ReadInto %.1f, Read %.1f; cached ReadInto %.1f, Read %.1f", coldInto, coldRead, warmInto, warmRead)
	if warmInto > 1 || warmRead > 2 || coldRead-coldInto < 1 {
		t.Fatalf("allocations per 4 KiB read: cold ReadInto %.1f, Read %.1f (want one more); cached ReadInto %.1f (want <= 1: the stripe name), Read %.1f (want <= 2)",
			coldInto, coldRead, warmInto, warmRead)
	}
}
