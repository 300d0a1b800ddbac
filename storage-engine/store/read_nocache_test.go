package store

import (
	"bytes"
	"errors"
	"reflect"
	"testing"
	"time"

	"github.com/cobaltstore/cobalt/storage-engine/blockdev"
)

// TestReadNoCacheLeavesCacheAlone: ReadNoCache returns the committed content (written data, a
// deferred overwrite not yet applied in place, a hole, a short read at the end) while the buffer
// cache is exactly as before (no lookup, insert or eviction), and a block that rotted on the
// device fails it with a CorruptionError even while Read still serves the good copy from the cache.
func TestReadNoCacheLeavesCacheAlone(t *testing.T) {
	for _, tc := range []struct {
		name string
		opts Options
	}{
		{"defaults", Options{}},
		{"buffered-writes", Options{BufferedWrites: true}},
		{"no-deferred", Options{PreferDeferredSize: -1}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			opts := tc.opts
			// Keep deferred writes in the overlay for the whole test.
			opts.DeferredBatch, opts.DeferredInterval = 1<<20, time.Hour
			mem := blockdev.NewMem(testDevSize, 4096)
			s := newEnv(t, mem, opts).open(t)
			// The test compares the cache's metrics: stop the Tuner, which would resize it in the
			// background (close stops it again harmlessly).
			s.caches.stop()
			<-s.caches.done

			data := pattern(256<<10, 5)
			commit(t, s, NewTransaction().CreateCollection("c").Write("c", "o", 0, data).Write("c", "p", 0, pattern(8192, 1)))
			over := bytes.Repeat([]byte{0xab}, 4096)
			commit(t, s, NewTransaction().Write("c", "o", 8192, over))
			copy(data[8192:], over)
			if deferred := !s.overlay.empty(); deferred != (opts.PreferDeferredSize >= 0) {
				t.Fatalf("overwrite deferred = %v with PreferDeferredSize %d", deferred, opts.PreferDeferredSize)
			}
			mustRead(t, s, "c", "o", 0, 64<<10, data[:64<<10]) // cache a part
			mustRead(t, s, "c", "p", 0, 0, pattern(8192, 1))
			before := s.Metrics().Cache.Buffers

			for _, r := range []struct {
				off, length uint64
				want        []byte
			}{
				{0, 0, data},
				{4096, 16384, data[4096:20480]},
				{100, 5000, data[100:5100]},
				{250 << 10, 64 << 10, data[250<<10:]}, // clipped at the end
				{300 << 10, 4096, []byte{}},           // past the end
			} {
				got, err := s.ReadNoCache(ctx, "c", "o", r.off, r.length)
				if err != nil {
					t.Fatalf("ReadNoCache [%d, +%d): %v", r.off, r.length, err)
				}
				if !bytes.Equal(got, r.want) {
					t.Fatalf("ReadNoCache [%d, +%d) = %d bytes %x..., want %d bytes %x...", r.off, r.length, len(got), head(got), len(r.want), head(r.want))
				}
			}
			if after := s.Metrics().Cache.Buffers; !reflect.DeepEqual(before, after) {
				t.Fatalf("ReadNoCache changed the buffer cache:\nbefore %+v\nafter  %+v", before.Total, after.Total)
			}
			if _, err := s.ReadNoCache(ctx, "c", "missing", 0, 0); !errors.Is(err, ErrNotFound) {
				t.Fatalf("ReadNoCache of a missing object: %v", err)
			}

			// Rot a block that is cached, outside the deferred overwrite.
			rotBlock(t, s, mem, OnodeKey{"c", "o"}, 16384, 99, 0x04)
			got, err := s.ReadNoCache(ctx, "c", "o", 12288, 8192)
			var ce *CorruptionError
			if !errors.As(err, &ce) || got != nil || ce.Offset != 16384 {
				t.Fatalf("ReadNoCache over the rotten block = %d bytes, %v; want a CorruptionError at 16384", len(got), err)
			}
			mustRead(t, s, "c", "o", 16384, 4096, data[16384:20480]) // still served by the cache
			// Heal the block so the fsck at cleanup passes.
			commit(t, s, NewTransaction().Write("c", "o", 16384, data[16384:20480]))
			mustReadNoCache(t, s, "c", "o", 12288, 8192, data[12288:20480])
		})
	}
}

func mustReadNoCache(t testing.TB, s *Store, c, o string, off, n uint64, want []byte) {
	t.Helper()
	got, err := s.ReadNoCache(ctx, c, o, off, n)
	if err != nil {
		t.Fatalf("ReadNoCache %s/%s [%d,+%d): %v", c, o, off, n, err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("ReadNoCache %s/%s [%d,+%d): got %d bytes %q..., want %d bytes %q...", c, o, off, n, len(got), head(got), len(want), head(want))
	}
}

// rotBlock flips the bits of mask in byte i of the 4 KiB device block that holds logical offset
// off of object k, behind the store's back (bit rot).
func rotBlock(t *testing.T, s *Store, mem *blockdev.MemDevice, k OnodeKey, off uint64, i int, mask byte) {
	t.Helper()
	on, err := s.loadOnode(k)
	if err != nil {
		t.Fatal(err)
	}
	e := on.Extents[on.Find(off)]
	phys := int64(e.Phys + (off - e.Logical))
	blk := blockdev.AlignedBuffer(4096)
	if _, err := mem.ReadAt(blk, phys); err != nil {
		t.Fatal(err)
	}
	blk[i] ^= mask
	if _, err := mem.WriteAt(blk, phys); err != nil {
		t.Fatal(err)
	}
}
