package cache

import (
	"bytes"
	"math"
	"math/rand/v2"
	"reflect"
	"testing"
)

func newTestBufferCache(t *testing.T, o BufferOptions) *BufferCache {
	t.Helper()
	c, err := NewBufferCache(o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := c.Check(); err != nil {
			t.Errorf("check at cleanup: %v", err)
		}
		if got, want := c.Pool().Bytes(CategoryBuffers), c.Bytes(); got != want {
			t.Errorf("mempool says %d bytes, shards sum to %d", got, want)
		}
	})
	return c
}

var obj1 = ObjectKey{Collection: "c", Object: "o1"}

func mustWrite(t *testing.T, c *BufferCache, obj ObjectKey, off uint64, data string, seq uint64, nocache bool) {
	t.Helper()
	if err := c.Write(obj, off, []byte(data), seq, nocache); err != nil {
		t.Fatal(err)
	}
}

func TestBufferWriteFinishStates(t *testing.T) {
	for _, tc := range []struct {
		name     string
		buffered bool
		nocache  bool
		want     string
	}{
		{"buffered writes keep clean data", true, false, "0:abcd:clean"},
		{"no-cache hint drops on finish", true, true, ""},
		{"unbuffered writes drop on finish", false, false, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := newTestBufferCache(t, BufferOptions{Options: Options{Capacity: 1 << 20}, BufferedWrites: tc.buffered})
			mustWrite(t, c, obj1, 0, "abcd", 7, tc.nocache)
			if got := c.contents(obj1); got != "0:abcd:writing" {
				t.Fatalf("before commit: %q", got)
			}
			// Writing buffers serve reads and survive any trim.
			c.SetCapacity(0)
			dst := make([]byte, 4)
			gaps, _, err := c.ReadInto(obj1, 0, dst, nil)
			if err != nil || len(gaps) != 0 || string(dst) != "abcd" {
				t.Fatalf("read while writing: %q gaps %v err %v", dst, gaps, err)
			}
			c.SetCapacity(1 << 20)
			c.FinishWrite(obj1, 6) // an older sequence leaves it writing
			if got := c.contents(obj1); got != "0:abcd:writing" {
				t.Fatalf("after older finish: %q", got)
			}
			c.FinishWrite(obj1, 7)
			if got := c.contents(obj1); got != tc.want {
				t.Fatalf("after finish: %q, want %q", got, tc.want)
			}
		})
	}
}

// TestBufferReadIntoAppends: ReadInto appends the gaps to the slice it is given, in its spare
// room (no new array), leaving what it held; the hit or miss is this read's alone.
func TestBufferReadIntoAppends(t *testing.T) {
	c := newTestBufferCache(t, BufferOptions{Options: Options{Capacity: 1 << 20}, BufferedWrites: true})
	mustWrite(t, c, obj1, 4, "4567", 1, false)
	c.FinishWrite(obj1, 1)
	room := make([]Range, 1, 8)
	room[0] = Range{Off: 99, Len: 1}
	for _, tc := range []struct {
		name       string
		obj        ObjectKey
		off, n     uint64
		gaps       []Range
		hit        bool
		wantCached string
	}{
		{"around a buffer", obj1, 0, 12, []Range{{Off: 0, Len: 4}, {Off: 8, Len: 4}}, false, "4567"},
		{"inside a buffer", obj1, 5, 2, nil, true, "56"},
		{"uncached object", ObjectKey{Collection: "c", Object: "none"}, 0, 6, []Range{{Off: 0, Len: 6}}, false, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := c.Metrics().Total
			dst := make([]byte, tc.n)
			gaps, _, err := c.ReadInto(tc.obj, tc.off, dst, room)
			if err != nil {
				t.Fatal(err)
			}
			if &gaps[0] != &room[0] || gaps[0] != room[0] || !reflect.DeepEqual(gaps[1:], append([]Range{}, tc.gaps...)) {
				t.Fatalf("gaps %v, want %v after %v in the same array", gaps, tc.gaps, room)
			}
			if !bytes.Contains(dst, []byte(tc.wantCached)) {
				t.Fatalf("dst %q lacks the cached %q", dst, tc.wantCached)
			}
			after := c.Metrics().Total
			if hit := after.Hits == before.Hits+1 && after.Misses == before.Misses; hit != tc.hit || after.Hits+after.Misses != before.Hits+before.Misses+1 {
				t.Fatalf("hits %d->%d, misses %d->%d; want hit %v", before.Hits, after.Hits, before.Misses, after.Misses, tc.hit)
			}
		})
	}
}

func TestBufferPartialRead(t *testing.T) {
	c := newTestBufferCache(t, BufferOptions{Options: Options{Capacity: 1 << 20}, BufferedWrites: true})
	mustWrite(t, c, obj1, 0, "0123", 1, false)
	mustWrite(t, c, obj1, 8, "89ab", 1, false)
	c.FinishWrite(obj1, 1)
	dst := bytes.Repeat([]byte{'.'}, 10)
	gaps, _, err := c.ReadInto(obj1, 2, dst, nil)
	if err != nil {
		t.Fatal(err)
	}
	if string(dst) != "23....89ab" || !reflect.DeepEqual(gaps, []Range{{Off: 4, Len: 4}}) {
		t.Fatalf("dst %q gaps %v", dst, gaps)
	}
	dst = make([]byte, 4)
	gaps, _, _ = c.ReadInto(obj1, 10, dst, nil)
	if string(dst[:2]) != "ab" || !reflect.DeepEqual(gaps, []Range{{Off: 12, Len: 2}}) {
		t.Fatalf("tail read: %q gaps %v", dst, gaps)
	}
	m := c.Metrics().Total
	if m.Hits != 0 || m.Misses != 2 {
		t.Fatalf("hits %d misses %d, want 0/2", m.Hits, m.Misses)
	}
	gaps, _, _ = c.ReadInto(obj1, 0, make([]byte, 4), nil)
	if len(gaps) != 0 || c.Metrics().Total.Hits != 1 {
		t.Fatalf("covered read: gaps %v hits %d", gaps, c.Metrics().Total.Hits)
	}
}

func TestBufferOverwriteSplits(t *testing.T) {
	c := newTestBufferCache(t, BufferOptions{Options: Options{Capacity: 1 << 20}, BufferedWrites: true})
	mustWrite(t, c, obj1, 0, "aaaaaaaa", 1, false)
	c.FinishWrite(obj1, 1)
	mustWrite(t, c, obj1, 3, "bb", 2, false)
	if got, want := c.contents(obj1), "0:aaa:clean 3:bb:writing 5:aaa:clean"; got != want {
		t.Fatalf("split: %q, want %q", got, want)
	}
	mustWrite(t, c, obj1, 4, "cccc", 3, false)
	if got, want := c.contents(obj1), "0:aaa:clean 3:b:writing 4:cccc:writing"; got != want {
		t.Fatalf("overlap: %q, want %q", got, want)
	}
	c.FinishWrite(obj1, 2)
	if got, want := c.contents(obj1), "0:aaa:clean 3:b:clean 4:cccc:writing"; got != want {
		t.Fatalf("finish 2: %q, want %q", got, want)
	}
	if err := c.Discard(obj1, 2, 4); err != nil {
		t.Fatal(err)
	}
	if got, want := c.contents(obj1), "0:aa:clean 6:cc:writing"; got != want {
		t.Fatalf("discard: %q, want %q", got, want)
	}
	c.DiscardObject(obj1)
	if got := c.contents(obj1); got != "" {
		t.Fatalf("discard object: %q", got)
	}
}

func TestBufferInsertReadFillsGapsOnly(t *testing.T) {
	c := newTestBufferCache(t, BufferOptions{Options: Options{Capacity: 1 << 20}})
	mustWrite(t, c, obj1, 2, "WW", 1, false)
	dst := make([]byte, 6)
	gaps, tok, _ := c.ReadInto(obj1, 0, dst, nil)
	if !reflect.DeepEqual(gaps, []Range{{0, 2}, {4, 2}}) {
		t.Fatalf("gaps %v", gaps)
	}
	ok, err := c.InsertRead(obj1, 0, []byte("dddddd"), tok)
	if err != nil || !ok {
		t.Fatalf("insert read: %v %v", ok, err)
	}
	if got, want := c.contents(obj1), "0:dd:clean 2:WW:writing 4:dd:clean"; got != want {
		t.Fatalf("%q, want %q", got, want)
	}
}

func TestBufferStaleReadRefused(t *testing.T) {
	c := newTestBufferCache(t, BufferOptions{Options: Options{Capacity: 1 << 20}})
	other := ObjectKey{Collection: "c", Object: "o2"}
	for _, tc := range []struct {
		name    string
		between func()
		want    bool
	}{
		{"nothing in between", func() {}, true},
		{"write in between", func() { mustWrite(t, c, obj1, 100, "x", 1, false) }, false},
		{"write finished and dropped in between", func() {
			mustWrite(t, c, obj1, 100, "x", 1, true)
			c.FinishWrite(obj1, 1)
		}, false},
		{"discard of an uncached object in between", func() { c.DiscardObject(obj1) }, false},
		{"read-insert of another object in between", func() {
			_, tok, _ := c.ReadInto(other, 0, make([]byte, 1), nil)
			if _, err := c.InsertRead(other, 0, []byte("z"), tok); err != nil {
				t.Fatal(err)
			}
		}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c.DiscardObject(obj1)
			_, tok, _ := c.ReadInto(obj1, 0, make([]byte, 4), nil)
			tc.between()
			ok, err := c.InsertRead(obj1, 0, []byte("old!"), tok)
			if err != nil || ok != tc.want {
				t.Fatalf("insert read = %v (%v), want %v", ok, err, tc.want)
			}
		})
	}
	if ok, _ := c.InsertRead(obj1, 0, []byte("zero"), ReadToken{}); ok {
		t.Fatal("a zero token was accepted")
	}
}

func TestBufferReadsDisabled(t *testing.T) {
	c := newTestBufferCache(t, BufferOptions{Options: Options{Capacity: 1 << 20}, DisableBufferedReads: true})
	_, tok, _ := c.ReadInto(obj1, 0, make([]byte, 4), nil)
	if ok, _ := c.InsertRead(obj1, 0, []byte("data"), tok); ok || c.contents(obj1) != "" {
		t.Fatal("buffered read inserted with buffered reads disabled")
	}
}

func TestBufferRangeOverflow(t *testing.T) {
	c := newTestBufferCache(t, BufferOptions{})
	if err := c.Write(obj1, math.MaxUint64-1, []byte("abc"), 1, false); err == nil {
		t.Fatal("write past 2^64 accepted")
	}
	if _, _, err := c.ReadInto(obj1, math.MaxUint64, make([]byte, 2), nil); err == nil {
		t.Fatal("read past 2^64 accepted")
	}
	if err := c.Discard(obj1, math.MaxUint64, 2); err == nil {
		t.Fatal("discard past 2^64 accepted")
	}
}

// TestBufferEvictionAndGhosts: clean buffers are evicted under the byte capacity and leave their
// BufferSpace; a buffer re-read while its ghost is in A1out goes to Am.
func TestBufferEvictionAndGhosts(t *testing.T) {
	per := bufferBytes(100)
	c := newTestBufferCache(t, BufferOptions{Options: Options{Shards: 1, Capacity: 4 * per}})
	data := bytes.Repeat([]byte{'x'}, 100)
	read := func(off uint64) {
		_, tok, _ := c.ReadInto(obj1, off, make([]byte, 100), nil)
		if _, err := c.InsertRead(obj1, off, data, tok); err != nil {
			t.Fatal(err)
		}
	}
	for i := range uint64(5) {
		read(i * 100)
	}
	m := c.Metrics().Total
	if m.Entries != 4 || m.Evictions != 1 || m.Lists[2].Entries != 1 {
		t.Fatalf("after 5 reads: entries %d evictions %d ghosts %d", m.Entries, m.Evictions, m.Lists[2].Entries)
	}
	read(0) // its ghost is in A1out
	m = c.Metrics().Total
	if m.GhostHits != 1 || m.Lists[1].Entries != 1 {
		t.Fatalf("ghost hits %d, Am entries %d", m.GhostHits, m.Lists[1].Entries)
	}
	mustWrite(t, c, obj1, 10000, string(data), 1, false)
	c.SetCapacity(0)
	if got := c.contents(obj1); got != "10000:"+string(data)+":writing" {
		t.Fatalf("after trim to 0: %q", got)
	}
	c.FinishWrite(obj1, 1)
	if got := c.contents(obj1); got != "" {
		t.Fatalf("after finish: %q", got)
	}
	if b := c.Bytes(); b != 0 {
		t.Fatalf("empty cache accounts %d bytes", b)
	}
}

// TestBufferModel runs random writes, finishes, discards, evictions and interleaved read-fills
// (with device reads taken before concurrent writes) against a model of each object's latest
// content: every byte a read finds in the cache must be the latest.
func TestBufferModel(t *testing.T) {
	for _, policy := range []PolicyKind{Policy2Q, PolicyLRU} {
		t.Run(string(policy), func(t *testing.T) {
			rng := rand.New(rand.NewPCG(1, 2))
			c := newTestBufferCache(t, BufferOptions{
				Options:        Options{Policy: policy, Shards: 2, Capacity: 64 * bufferBytes(16)},
				BufferedWrites: true,
			})
			const size = 256
			objs := []ObjectKey{{"c", "a"}, {"c", "b"}, {"d", "a"}}
			model := map[ObjectKey][]byte{}
			for _, o := range objs {
				model[o] = make([]byte, size)
			}
			type pending struct {
				obj  ObjectKey
				off  uint64
				data []byte
				tok  ReadToken
			}
			var reads []pending
			seq := uint64(0)
			for step := range 20000 {
				o := objs[rng.IntN(len(objs))]
				off := uint64(rng.IntN(size - 1))
				n := uint64(1 + rng.IntN(int(size-off)))
				switch r := rng.IntN(10); {
				case r < 3:
					seq++
					d := make([]byte, n)
					for i := range d {
						d[i] = byte('a' + rng.IntN(26))
					}
					copy(model[o][off:], d)
					if err := c.Write(o, off, d, seq, rng.IntN(4) == 0); err != nil {
						t.Fatal(err)
					}
				case r < 4:
					c.FinishWrite(o, seq-uint64(rng.IntN(3)))
				case r < 5:
					clear(model[o][off : off+n])
					if err := c.Discard(o, off, n); err != nil {
						t.Fatal(err)
					}
				case r < 8:
					dst := make([]byte, n)
					gaps, tok, err := c.ReadInto(o, off, dst, nil)
					if err != nil {
						t.Fatal(err)
					}
					pos := off
					for _, g := range append(gaps, Range{Off: off + n}) {
						if !bytes.Equal(dst[pos-off:g.Off-off], model[o][pos:g.Off]) {
							t.Fatalf("step %d: cached %v [%d,%d) = %q, model %q", step, o, pos, g.Off, dst[pos-off:g.Off-off], model[o][pos:g.Off])
						}
						pos = g.End()
					}
					// The "device" returns the content as of now; inserting it later is only
					// allowed if nothing changed the object in between.
					reads = append(reads, pending{obj: o, off: off, data: bytes.Clone(model[o][off : off+n]), tok: tok})
				default:
					if len(reads) == 0 {
						continue
					}
					k := rng.IntN(len(reads))
					p := reads[k]
					reads = append(reads[:k], reads[k+1:]...)
					if _, err := c.InsertRead(p.obj, p.off, p.data, p.tok); err != nil {
						t.Fatal(err)
					}
				}
				if step%50 == 0 {
					c.SetCapacity(int64(rng.IntN(128)) * bufferBytes(16))
				}
				if step%500 == 0 {
					if err := c.Check(); err != nil {
						t.Fatalf("step %d: %v", step, err)
					}
				}
			}
		})
	}
}
