package store

import (
	"bytes"
	"errors"
	"fmt"
	"reflect"
	"testing"
	"time"

	"github.com/cobaltstore/cobalt/storage-engine/blockdev"
)

// garbage fills the caller's buffers before a read, so that a byte the read should have written
// (a hole's zeros above all) and did not shows up.
const garbage = 0xee

// intoBuf returns a buffer of n bytes filled with garbage, at an aligned address or one byte past
// one.
func intoBuf(n int, aligned bool) []byte {
	raw := blockdev.AlignedBuffer(n + 1)
	b := raw[:n]
	if !aligned {
		b = raw[1 : n+1]
	}
	for i := range b {
		b[i] = garbage
	}
	return b
}

// readIntoFns are the two buffer-filling reads, which must return the same content.
var readIntoFns = []struct {
	name string
	read func(s *Store, c, o string, off uint64, buf []byte) (int, error)
}{
	{"ReadInto", func(s *Store, c, o string, off uint64, buf []byte) (int, error) {
		return s.ReadInto(ctx, c, o, off, buf)
	}},
	{"ReadNoCacheInto", func(s *Store, c, o string, off uint64, buf []byte) (int, error) {
		return s.ReadNoCacheInto(ctx, c, o, off, buf)
	}},
}

// TestReadInto: ReadInto and ReadNoCacheInto fill aligned and unaligned caller buffers with the
// committed content (written data, a deferred overwrite still in the overlay, holes as zeros,
// partial blocks, an extent longer than one pooled bounce buffer), stop at the object's end
// leaving the rest of the buffer alone, and agree with Read, with the buffer cache on and off.
func TestReadInto(t *testing.T) {
	for _, cfg := range []struct {
		name string
		opts Options
	}{
		{"cached", Options{}},
		{"uncached", Options{DisableBufferedReads: true}},
		{"buffered-writes", Options{BufferedWrites: true}},
	} {
		t.Run(cfg.name, func(t *testing.T) {
			opts := cfg.opts
			// Keep the deferred overwrite in the overlay for the whole test.
			opts.DeferredBatch, opts.DeferredInterval = 1<<20, time.Hour
			s := newStore(t, opts)
			// o: [0, 320K) data (one extent longer than maxBounce), a hole [320K, 384K), data up to
			// 600000 (not a block multiple), and a deferred 4 KiB overwrite at 8K.
			const size = 600000
			want := make([]byte, size)
			copy(want, pattern(320<<10, 3))
			copy(want[384<<10:], pattern(size-384<<10, 9))
			over := bytes.Repeat([]byte{0xab}, 4096)
			commit(t, s, NewTransaction().CreateCollection("c").
				Write("c", "o", 0, want[:320<<10]).Write("c", "o", 384<<10, want[384<<10:]))
			commit(t, s, NewTransaction().Write("c", "o", 8192, over))
			copy(want[8192:], over)
			if s.overlay.empty() {
				t.Fatal("the 4 KiB overwrite was not deferred")
			}

			for _, r := range []struct {
				name      string
				off, n    uint64 // n is the buffer's length
				wantBytes int
			}{
				{"block", 0, 4096, 4096},
				{"deferred-block", 8192, 4096, 4096},
				{"blocks-around-deferred", 4096, 12288, 12288},
				{"partial-blocks", 100, 5000, 5000},
				{"into-hole", 312 << 10, 16 << 10, 16 << 10},
				{"hole", 330 << 10, 8 << 10, 8 << 10},
				{"across-hole", 316 << 10, 80 << 10, 80 << 10},
				{"longer-than-bounce", 0, 320 << 10, 320 << 10},
				{"whole", 0, size, size},
				{"short-at-end", size - 1000, 4096, 1000},
				{"block-short-at-end", 584 << 10, 64 << 10, size - 584<<10},
				{"at-end", size, 4096, 0},
				{"past-end", size + 5000, 4096, 0},
				{"empty", 4096, 0, 0},
			} {
				for _, aligned := range []bool{true, false} {
					for _, fn := range readIntoFns {
						t.Run(fmt.Sprintf("%s/aligned=%v/%s", r.name, aligned, fn.name), func(t *testing.T) {
							buf := intoBuf(int(r.n), aligned)
							n, err := fn.read(s, "c", "o", r.off, buf)
							if err != nil || n != r.wantBytes {
								t.Fatalf("[%d, +%d) = %d bytes, %v; want %d", r.off, r.n, n, err, r.wantBytes)
							}
							if w := want[min(r.off, size):][:n]; !bytes.Equal(buf[:n], w) {
								t.Fatalf("[%d, +%d) = %x..., want %x... (first difference at %d)", r.off, r.n, head(buf), head(w), firstDiff(buf[:n], w))
							}
							if i := firstNot(buf[n:], garbage); i >= 0 {
								t.Fatalf("[%d, +%d) wrote past the %d bytes it returned, at %d", r.off, r.n, n, n+i)
							}
							// Read agrees, and a second read (a cache hit when cached) too.
							if r.n > 0 { // Read's length 0 reads to the end
								mustRead(t, s, "c", "o", r.off, r.n, buf[:n])
							}
							again := intoBuf(int(r.n), !aligned)
							if n2, err := fn.read(s, "c", "o", r.off, again); err != nil || !bytes.Equal(again[:n2], buf[:n]) {
								t.Fatalf("second read of [%d, +%d) = %d bytes, %v, differs", r.off, r.n, n2, err)
							}
						})
					}
				}
			}
			for _, fn := range readIntoFns {
				if n, err := fn.read(s, "c", "o", 0, nil); n != 0 || err != nil {
					t.Errorf("%s into a nil buffer = %d, %v; want 0, nil", fn.name, n, err)
				}
				if _, err := fn.read(s, "c", "missing", 0, make([]byte, 4096)); !errors.Is(err, ErrNotFound) {
					t.Errorf("%s of a missing object: %v, want ErrNotFound", fn.name, err)
				}
				if _, err := fn.read(s, "nocoll", "o", 0, make([]byte, 4096)); !errors.Is(err, ErrNotFound) {
					t.Errorf("%s in a missing collection: %v, want ErrNotFound", fn.name, err)
				}
				if _, err := fn.read(s, "c", "", 0, make([]byte, 4096)); !errors.Is(err, ErrInvalid) {
					t.Errorf("%s of an empty object name: %v, want ErrInvalid", fn.name, err)
				}
			}
		})
	}
}

// TestReadIntoCache: ReadInto looks in and fills the buffer cache as Read does (a miss, then
// hits), caches a copy rather than the caller's buffer, and ReadNoCacheInto leaves the cache
// exactly as it was.
func TestReadIntoCache(t *testing.T) {
	s := newStore(t, Options{})
	// The test compares the cache's metrics: stop the Tuner, which would resize it in the
	// background (close stops it again harmlessly).
	s.caches.stop()
	<-s.caches.done
	data := pattern(64<<10, 4)
	commit(t, s, NewTransaction().CreateCollection("c").Write("c", "o", 0, data))

	buffers := func() (hits, misses int64) {
		m := s.Metrics().Cache.Buffers.Total
		return m.Hits, m.Misses
	}
	h0, m0 := buffers()
	buf := intoBuf(16<<10, true)
	if n, err := s.ReadInto(ctx, "c", "o", 4096, buf); err != nil || n != len(buf) || !bytes.Equal(buf, data[4096:20480]) {
		t.Fatalf("cold ReadInto = %d, %v, equal %v", n, err, bytes.Equal(buf, data[4096:20480]))
	}
	if h, m := buffers(); h != h0 || m != m0+1 {
		t.Fatalf("cold ReadInto: hits %d->%d, misses %d->%d; want one miss", h0, h, m0, m)
	}
	// Scribble over the caller's buffer: the cache must have kept its own copy.
	for i := range buf {
		buf[i] = garbage
	}
	before := s.Metrics().Cache.Buffers
	nc := intoBuf(16<<10, false)
	if n, err := s.ReadNoCacheInto(ctx, "c", "o", 4096, nc); err != nil || n != len(nc) || !bytes.Equal(nc, data[4096:20480]) {
		t.Fatalf("ReadNoCacheInto = %d, %v", n, err)
	}
	if after := s.Metrics().Cache.Buffers; !reflect.DeepEqual(before, after) {
		t.Fatalf("ReadNoCacheInto changed the buffer cache:\nbefore %+v\nafter  %+v", before.Total, after.Total)
	}
	for _, aligned := range []bool{true, false} {
		h1, m1 := buffers()
		warm := intoBuf(8<<10, aligned)
		if n, err := s.ReadInto(ctx, "c", "o", 8192, warm); err != nil || n != len(warm) || !bytes.Equal(warm, data[8192:16384]) {
			t.Fatalf("warm ReadInto (aligned %v) = %d, %v, equal %v", aligned, n, err, bytes.Equal(warm, data[8192:16384]))
		}
		if h, m := buffers(); h != h1+1 || m != m1 {
			t.Fatalf("warm ReadInto (aligned %v): hits %d->%d, misses %d->%d; want one hit", aligned, h1, h, m1, m)
		}
	}
	if err := s.caches.buffers.Check(); err != nil {
		t.Fatal(err)
	}
}

// TestReadIntoCorruption: a block that rotted on the device fails ReadInto and ReadNoCacheInto
// with a CorruptionError, aligned buffer (the device reads into it) or not, and leaves no byte of
// the object in the caller's buffer.
func TestReadIntoCorruption(t *testing.T) {
	mem := blockdev.NewMem(testDevSize, 4096)
	s := newEnv(t, mem, Options{}).open(t)
	data := pattern(64<<10, 6)
	commit(t, s, NewTransaction().CreateCollection("c").Write("c", "o", 0, data))
	rotBlock(t, s, mem, OnodeKey{"c", "o"}, 16384, 7, 0x10)
	for _, r := range []struct {
		name   string
		off, n uint64
	}{
		{"the-block", 16384, 4096},
		{"blocks-around", 8192, 16384},
		{"partial", 16500, 100},
	} {
		for _, aligned := range []bool{true, false} {
			for _, fn := range readIntoFns {
				t.Run(fmt.Sprintf("%s/aligned=%v/%s", r.name, aligned, fn.name), func(t *testing.T) {
					buf := intoBuf(int(r.n), aligned)
					n, err := fn.read(s, "c", "o", r.off, buf)
					var ce *CorruptionError
					if !errors.As(err, &ce) || !IsCorruption(err) || n != 0 || ce.Offset != 16384 {
						t.Fatalf("[%d, +%d) = %d bytes, %v; want a CorruptionError at 16384", r.off, r.n, n, err)
					}
					if i := firstNot(buf, 0); i >= 0 {
						t.Fatalf("[%d, +%d) left a byte %#x at %d in the buffer after the error", r.off, r.n, buf[i], i)
					}
				})
			}
		}
	}
	// The blocks around it still read, and the rotten one heals with a rewrite.
	mustRead(t, s, "c", "o", 0, 16384, data[:16384])
	commit(t, s, NewTransaction().Write("c", "o", 16384, data[16384:20480]))
	buf := intoBuf(64<<10, false)
	if n, err := s.ReadInto(ctx, "c", "o", 0, buf); err != nil || n != len(data) || !bytes.Equal(buf, data) {
		t.Fatalf("ReadInto after the rewrite = %d, %v", n, err)
	}
}

// TestBouncePool: every size up to the piece size gets an aligned buffer of exactly that length
// from the smallest class that holds it, for checksum blocks smaller and larger than maxBounce.
func TestBouncePool(t *testing.T) {
	for _, block := range []int{4096, 16384, 1 << 20} {
		p := newBouncePool(block)
		for n := block; n <= p.piece; n += block {
			b, h := p.get(n)
			class := p.class(n)
			if len(b) != n || !blockdev.IsAligned(b, blockdev.Alignment) || cap(*h) != block<<class || cap(*h) < n || (class > 0 && block<<(class-1) >= n) {
				t.Fatalf("block %d: get(%d) = len %d, cap %d, class %d, aligned %v", block, n, len(b), cap(*h), class, blockdev.IsAligned(b, blockdev.Alignment))
			}
			p.put(h)
		}
	}
}

func firstDiff(a, b []byte) int {
	i := 0
	for i < min(len(a), len(b)) && a[i] == b[i] {
		i++
	}
	return i
}

// firstNot returns the index of the first byte of b that is not v, or -1.
func firstNot(b []byte, v byte) int {
	for i, c := range b {
		if c != v {
			return i
		}
	}
	return -1
}
