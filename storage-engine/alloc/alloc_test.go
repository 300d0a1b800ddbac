package alloc_test

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"testing"

	"github.com/cobaltstore/cobalt/storage-engine/alloc"
)

// impls lists every Freelist implementation; each test runs against all of them.
var impls = []struct {
	name     string
	new      func(size, unit int64) (alloc.Freelist, error)
	fromFree func(size, unit int64, free []alloc.Extent) (alloc.Freelist, error)
	fromUsed func(size, unit int64, used []alloc.Extent) (alloc.Freelist, error)
}{
	{
		"extent",
		func(s, u int64) (alloc.Freelist, error) { return alloc.NewExtent(s, u) },
		func(s, u int64, f []alloc.Extent) (alloc.Freelist, error) { return alloc.NewExtentFromFree(s, u, f) },
		func(s, u int64, f []alloc.Extent) (alloc.Freelist, error) { return alloc.NewExtentFromUsed(s, u, f) },
	},
	{
		"bitmap",
		func(s, u int64) (alloc.Freelist, error) { return alloc.NewBitmap(s, u) },
		func(s, u int64, f []alloc.Extent) (alloc.Freelist, error) { return alloc.NewBitmapFromFree(s, u, f) },
		func(s, u int64, f []alloc.Extent) (alloc.Freelist, error) { return alloc.NewBitmapFromUsed(s, u, f) },
	},
}

func forEach(t *testing.T, f func(t *testing.T, newA func(size, unit int64) alloc.Freelist)) {
	for _, im := range impls {
		t.Run(im.name, func(t *testing.T) {
			f(t, func(size, unit int64) alloc.Freelist {
				t.Helper()
				a, err := im.new(size, unit)
				if err != nil {
					t.Fatal(err)
				}
				return a
			})
		})
	}
}

const K = 4096

func ext(off, length int64) alloc.Extent { return alloc.Extent{Offset: off * K, Length: length * K} }

// mustCheck is the bbolt-style consistency check run after every test step.
func mustCheck(t *testing.T, a alloc.Freelist, used []alloc.Extent) {
	t.Helper()
	if err := alloc.Check(a, used); err != nil {
		t.Fatal(err)
	}
}

func TestNew(t *testing.T) {
	forEach(t, func(t *testing.T, newA func(size, unit int64) alloc.Freelist) {
		a := newA(100*K+123, K)
		if a.Size() != 100*K || a.Unit() != K || a.Free() != 100*K || a.Fragmentation() != 0 {
			t.Fatalf("size %d unit %d free %d frag %v", a.Size(), a.Unit(), a.Free(), a.Fragmentation())
		}
		if got := a.Extents(); !slices.Equal(got, []alloc.Extent{ext(0, 100)}) {
			t.Fatalf("Extents = %v", got)
		}
		empty := newA(0, K)
		if empty.Free() != 0 || len(empty.Extents()) != 0 {
			t.Fatal("empty allocator has free space")
		}
		if _, err := empty.Allocate(K); !errors.Is(err, alloc.ErrNoSpace) {
			t.Fatalf("allocate from empty: %v", err)
		}
		mustCheck(t, a, []alloc.Extent{})
	})
	for _, im := range impls {
		for _, c := range []struct{ size, unit int64 }{{K, 0}, {K, 3000}, {K, 256}, {-1, K}} {
			if _, err := im.new(c.size, c.unit); !errors.Is(err, alloc.ErrInvalidExtent) {
				t.Errorf("%s: new(%d, %d): %v", im.name, c.size, c.unit, err)
			}
		}
	}
}

func TestAllocateTable(t *testing.T) {
	forEach(t, func(t *testing.T, newA func(size, unit int64) alloc.Freelist) {
		a := newA(16*K, K)
		cases := []struct {
			want    int64
			wantExt []alloc.Extent
			wantErr error
		}{
			{1, []alloc.Extent{ext(0, 1)}, nil}, // rounded up to the unit
			{K, []alloc.Extent{ext(1, 1)}, nil},
			{K + 1, []alloc.Extent{ext(2, 2)}, nil},
			{0, nil, alloc.ErrInvalidExtent},
			{-K, nil, alloc.ErrInvalidExtent},
			{13 * K, nil, alloc.ErrNoSpace},
			{12 * K, []alloc.Extent{ext(4, 12)}, nil},
			{K, nil, alloc.ErrNoSpace},
		}
		var used []alloc.Extent
		for i, c := range cases {
			got, err := a.Allocate(c.want)
			if !errors.Is(err, c.wantErr) || !slices.Equal(got, c.wantExt) {
				t.Fatalf("step %d: Allocate(%d) = %v, %v; want %v, %v", i, c.want, got, err, c.wantExt, c.wantErr)
			}
			used = append(used, got...)
			mustCheck(t, a, used)
		}
	})
}

func TestAllocateSplitsWhenNoExtentFits(t *testing.T) {
	forEach(t, func(t *testing.T, newA func(size, unit int64) alloc.Freelist) {
		a := newA(10*K, K)
		if err := a.MarkUsed(ext(2, 1)); err != nil {
			t.Fatal(err)
		}
		if err := a.MarkUsed(ext(5, 1)); err != nil {
			t.Fatal(err)
		}
		// Free: [0,2) [3,5) [6,10): 8 units; nothing holds 7 contiguous.
		got, err := a.Allocate(7 * K)
		if err != nil {
			t.Fatal(err)
		}
		var total int64
		for _, e := range got {
			total += e.Length
		}
		if total != 7*K || len(got) != 3 {
			t.Fatalf("Allocate(7 units) = %v: want 3 extents totalling 7 units", got)
		}
		mustCheck(t, a, append(got, ext(2, 1), ext(5, 1)))
		if a.Free() != K {
			t.Fatalf("free %d, want one unit", a.Free())
		}
	})
}

func TestBestFitAndFirstFit(t *testing.T) {
	// Free [0,4) [5,7) [8,20): a 2-unit request goes to [5,7) with best fit, [0,2) with first fit.
	for _, c := range []struct {
		impl string
		want alloc.Extent
	}{{"extent", ext(5, 2)}, {"bitmap", ext(0, 2)}} {
		var a alloc.Freelist
		var err error
		if c.impl == "extent" {
			a, err = alloc.NewExtentFromFree(20*K, K, []alloc.Extent{ext(0, 4), ext(5, 2), ext(8, 12)})
		} else {
			a, err = alloc.NewBitmapFromFree(20*K, K, []alloc.Extent{ext(0, 4), ext(5, 2), ext(8, 12)})
		}
		if err != nil {
			t.Fatal(err)
		}
		got, err := a.Allocate(2 * K)
		if err != nil || !slices.Equal(got, []alloc.Extent{c.want}) {
			t.Fatalf("%s: Allocate(2 units) = %v %v, want %v", c.impl, got, err, c.want)
		}
	}
}

func TestReleaseTable(t *testing.T) {
	forEach(t, func(t *testing.T, newA func(size, unit int64) alloc.Freelist) {
		a := newA(16*K, K)
		all, err := a.Allocate(16 * K)
		if err != nil {
			t.Fatal(err)
		}
		cases := []struct {
			name    string
			rel     []alloc.Extent
			wantErr error
			free    []alloc.Extent
		}{
			{"middle", []alloc.Extent{ext(4, 2)}, nil, []alloc.Extent{ext(4, 2)}},
			{"merge-left", []alloc.Extent{ext(6, 1)}, nil, []alloc.Extent{ext(4, 3)}},
			{"merge-right", []alloc.Extent{ext(3, 1)}, nil, []alloc.Extent{ext(3, 4)}},
			{"separate-batch", []alloc.Extent{ext(12, 1), ext(0, 1)}, nil, []alloc.Extent{ext(0, 1), ext(3, 4), ext(12, 1)}},
			{"bridge", []alloc.Extent{ext(7, 5)}, nil, []alloc.Extent{ext(0, 1), ext(3, 10)}},
			{"double-free", []alloc.Extent{ext(5, 1)}, alloc.ErrDoubleFree, nil},
			{"partial-double-free", []alloc.Extent{ext(1, 3)}, alloc.ErrDoubleFree, nil},
			{"batch-with-one-bad-changes-nothing", []alloc.Extent{ext(14, 1), ext(12, 2)}, alloc.ErrDoubleFree, nil},
			{"overlap-in-batch", []alloc.Extent{ext(14, 2), ext(15, 1)}, alloc.ErrInvalidExtent, nil},
			{"misaligned", []alloc.Extent{{Offset: 14*K + 1, Length: K}}, alloc.ErrInvalidExtent, nil},
			{"out-of-range", []alloc.Extent{ext(15, 2)}, alloc.ErrInvalidExtent, nil},
			{"empty-extent", []alloc.Extent{ext(14, 0)}, alloc.ErrInvalidExtent, nil},
			{"negative", []alloc.Extent{{Offset: -K, Length: K}}, alloc.ErrInvalidExtent, nil},
			{"rest", []alloc.Extent{ext(1, 2), ext(13, 3)}, nil, []alloc.Extent{ext(0, 16)}},
		}
		free := []alloc.Extent{}
		for _, c := range cases {
			err := a.Release(c.rel)
			if !errors.Is(err, c.wantErr) {
				t.Fatalf("%s: Release(%v) = %v, want %v", c.name, c.rel, err, c.wantErr)
			}
			if c.free != nil {
				free = c.free
			}
			if got := a.Extents(); !slices.Equal(got, free) {
				t.Fatalf("%s: free %v, want %v", c.name, got, free)
			}
			mustCheck(t, a, nil)
		}
		_ = all
		if a.Fragmentation() != 0 || a.Free() != 16*K {
			t.Fatal("everything released but not one free extent")
		}
	})
}

func TestMarkUsed(t *testing.T) {
	forEach(t, func(t *testing.T, newA func(size, unit int64) alloc.Freelist) {
		a := newA(16*K, K)
		steps := []struct {
			e       alloc.Extent
			wantErr error
		}{
			{ext(0, 1), nil},
			{ext(15, 1), nil},
			{ext(4, 4), nil},
			{ext(4, 1), alloc.ErrNotFree},
			{ext(3, 2), alloc.ErrNotFree},
			{ext(7, 2), alloc.ErrNotFree},
			{ext(15, 2), alloc.ErrInvalidExtent},
			{alloc.Extent{Offset: 100, Length: K}, alloc.ErrInvalidExtent},
			{ext(8, 7), nil},
		}
		var used []alloc.Extent
		for _, s := range steps {
			err := a.MarkUsed(s.e)
			if !errors.Is(err, s.wantErr) {
				t.Fatalf("MarkUsed(%v) = %v, want %v", s.e, err, s.wantErr)
			}
			if err == nil {
				used = append(used, s.e)
			}
			mustCheck(t, a, used)
		}
		if got := a.Extents(); !slices.Equal(got, []alloc.Extent{ext(1, 3)}) {
			t.Fatalf("free %v", got)
		}
	})
}

func TestFragmentation(t *testing.T) {
	forEach(t, func(t *testing.T, newA func(size, unit int64) alloc.Freelist) {
		a := newA(64*K, K)
		for i := int64(0); i < 64; i += 2 {
			if err := a.MarkUsed(ext(i, 1)); err != nil {
				t.Fatal(err)
			}
		}
		if f := a.Fragmentation(); f != 1 {
			t.Fatalf("checkerboard fragmentation %v, want 1", f)
		}
		if err := a.Release([]alloc.Extent{ext(0, 1), ext(2, 1)}); err != nil {
			t.Fatal(err)
		}
		// Units 0-3 merge into one extent; 31 extents over 34 free units.
		if f, want := a.Fragmentation(), 30.0/33.0; f != want {
			t.Fatalf("fragmentation %v, want %v", f, want)
		}
	})
}

func TestFromFree(t *testing.T) {
	for _, im := range impls {
		t.Run(im.name, func(t *testing.T) {
			a, err := im.fromFree(16*K, K, []alloc.Extent{ext(8, 2), ext(0, 2), ext(2, 1)})
			if err != nil {
				t.Fatal(err)
			}
			if got := a.Extents(); !slices.Equal(got, []alloc.Extent{ext(0, 3), ext(8, 2)}) {
				t.Fatalf("free %v (adjacent input extents must merge)", got)
			}
			mustCheck(t, a, []alloc.Extent{ext(3, 5), ext(10, 6)})
			for _, bad := range [][]alloc.Extent{
				{ext(0, 2), ext(1, 2)},
				{ext(15, 2)},
				{{Offset: 1, Length: K}},
			} {
				if _, err := im.fromFree(16*K, K, bad); !errors.Is(err, alloc.ErrInvalidExtent) {
					t.Errorf("fromFree(%v): %v", bad, err)
				}
			}
			if a, err := im.fromFree(16*K, K, nil); err != nil || a.Free() != 0 {
				t.Fatalf("fromFree(nil): %v free %d", err, a.Free())
			}
		})
	}
}

func TestFromUsed(t *testing.T) {
	for _, im := range impls {
		t.Run(im.name, func(t *testing.T) {
			used := []alloc.Extent{ext(8, 2), ext(0, 2), ext(2, 1), ext(15, 1)}
			a, err := im.fromUsed(16*K+100, K, used)
			if err != nil {
				t.Fatal(err)
			}
			if got := a.Extents(); !slices.Equal(got, []alloc.Extent{ext(3, 5), ext(10, 5)}) {
				t.Fatalf("free %v", got)
			}
			mustCheck(t, a, used)
			// The same state as NewXxx + MarkUsed of each extent.
			b, err := im.new(16*K, K)
			if err != nil {
				t.Fatal(err)
			}
			for _, e := range used {
				if err := b.MarkUsed(e); err != nil {
					t.Fatal(err)
				}
			}
			if !slices.Equal(a.Extents(), b.Extents()) || a.Free() != b.Free() || a.Size() != b.Size() {
				t.Fatalf("fromUsed %v != MarkUsed %v", a.Extents(), b.Extents())
			}
			if a, err := im.fromUsed(16*K, K, nil); err != nil || a.Free() != 16*K {
				t.Fatalf("fromUsed(nil): %v", err)
			}
			for _, bad := range [][]alloc.Extent{
				{ext(0, 2), ext(1, 2)}, // double allocation
				{ext(15, 2)},
				{{Offset: 1, Length: K}},
			} {
				if _, err := im.fromUsed(16*K, K, bad); !errors.Is(err, alloc.ErrInvalidExtent) {
					t.Errorf("fromUsed(%v): %v", bad, err)
				}
			}
			if _, err := im.fromUsed(16*K, 1000, nil); !errors.Is(err, alloc.ErrInvalidExtent) {
				t.Errorf("bad unit accepted: %v", err)
			}
		})
	}
}

func TestCheckFindsProblems(t *testing.T) {
	a, err := alloc.NewExtentFromFree(16*K, K, []alloc.Extent{ext(0, 4)})
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name string
		used []alloc.Extent
		want string
	}{
		{"leak", []alloc.Extent{ext(4, 10)}, "leaked"},
		{"double-allocation", []alloc.Extent{ext(4, 8), ext(10, 6)}, "double allocation"},
		{"used-is-free", []alloc.Extent{ext(3, 13)}, "overlaps free extent"},
		{"invalid-used", []alloc.Extent{ext(4, 11), {Offset: 15*K + 1, Length: K}}, "used extent"},
	}
	for _, c := range cases {
		err := alloc.Check(a, c.used)
		if !errors.Is(err, alloc.ErrInconsistent) || !contains(err.Error(), c.want) {
			t.Errorf("%s: Check = %v, want ErrInconsistent mentioning %q", c.name, err, c.want)
		}
	}
	if err := alloc.Check(a, []alloc.Extent{ext(4, 12)}); err != nil {
		t.Fatalf("consistent: %v", err)
	}
	// A Freelist that breaks its own invariants is caught too.
	if err := alloc.Check(brokenFreelist{a}, nil); !errors.Is(err, alloc.ErrInconsistent) {
		t.Fatalf("broken freelist: %v", err)
	}
}

// brokenFreelist reports overlapping, uncoalesced free extents and a wrong Free().
type brokenFreelist struct{ alloc.Freelist }

func (brokenFreelist) Extents() []alloc.Extent {
	return []alloc.Extent{ext(0, 2), ext(1, 2), ext(3, 1)}
}

func contains(s, sub string) bool {
	return len(sub) == 0 || (len(s) >= len(sub) && indexOf(s, sub) >= 0)
}

func indexOf(s, sub string) int {
	for i := 0; i+len(sub) <= len(s); i++ {
		if s[i:i+len(sub)] == sub {
			return i
		}
	}
	return -1
}

// TestRandomized runs random allocate/release/mark-used sequences against a model of the allocated
// extents, checking every step, for both implementations and several seeds and geometries.
func TestRandomized(t *testing.T) {
	for _, im := range impls {
		for seed := range uint64(8) {
			t.Run(fmt.Sprintf("%s/seed%d", im.name, seed), func(t *testing.T) {
				rng := rand.New(rand.NewPCG(seed, 99))
				unit := int64(512) << rng.IntN(4)
				size := unit * int64(64+rng.IntN(2000))
				a, err := im.new(size, unit)
				if err != nil {
					t.Fatal(err)
				}
				var used []alloc.Extent
				for step := range 2000 {
					switch op := rng.IntN(10); {
					case op < 5:
						want := unit * int64(1+rng.IntN(40))
						if rng.IntN(4) == 0 {
							want -= int64(rng.IntN(int(unit))) // not a multiple of the unit
						}
						free := a.Free()
						got, err := a.Allocate(want)
						if roundUp(want, unit) > free {
							if !errors.Is(err, alloc.ErrNoSpace) || a.Free() != free {
								t.Fatalf("step %d: Allocate(%d) with %d free: %v", step, want, free, err)
							}
							continue
						}
						if err != nil {
							t.Fatalf("step %d: Allocate(%d): %v", step, want, err)
						}
						var total int64
						for _, e := range got {
							total += e.Length
						}
						if total != roundUp(want, unit) || a.Free() != free-total {
							t.Fatalf("step %d: Allocate(%d) gave %d bytes (%v)", step, want, total, got)
						}
						used = append(used, got...)
					case op < 8 && len(used) > 0:
						// Release a random batch of whole or partial allocated extents.
						var batch []alloc.Extent
						for range 1 + rng.IntN(3) {
							if len(used) == 0 {
								break
							}
							i := rng.IntN(len(used))
							e := used[i]
							used = slices.Delete(used, i, i+1)
							if n := e.Length / unit; n > 1 && rng.IntN(2) == 0 {
								cut := unit * (1 + rng.Int64N(n-1))
								used = append(used, alloc.Extent{Offset: e.Offset + cut, Length: e.Length - cut})
								e.Length = cut
							}
							batch = append(batch, e)
						}
						if err := a.Release(batch); err != nil {
							t.Fatalf("step %d: Release(%v): %v", step, batch, err)
						}
						// Releasing the same space again must fail and change nothing.
						if err := a.Release(batch[:1]); !errors.Is(err, alloc.ErrDoubleFree) {
							t.Fatalf("step %d: double release: %v", step, err)
						}
					case op == 8:
						// MarkUsed a free unit-sized piece of a random free extent.
						free := a.Extents()
						if len(free) == 0 {
							continue
						}
						f := free[rng.IntN(len(free))]
						e := alloc.Extent{Offset: f.Offset + unit*rng.Int64N(f.Length/unit), Length: unit}
						if err := a.MarkUsed(e); err != nil {
							t.Fatalf("step %d: MarkUsed(%v): %v", step, e, err)
						}
						used = append(used, e)
					default:
						// Persist and reload: the reloaded allocator has the same free space.
						enc := alloc.EncodeExtents(a.Extents())
						dec, err := alloc.DecodeExtents(enc)
						if err != nil {
							t.Fatalf("step %d: decode: %v", step, err)
						}
						b, err := im.fromFree(size, unit, dec)
						if err != nil {
							t.Fatalf("step %d: reload: %v", step, err)
						}
						if !slices.Equal(a.Extents(), b.Extents()) {
							t.Fatalf("step %d: reloaded free list differs", step)
						}
						a = b
					}
					if err := alloc.Check(a, used); err != nil {
						t.Fatalf("step %d: %v", step, err)
					}
					if f := a.Fragmentation(); f < 0 || f > 1 {
						t.Fatalf("step %d: fragmentation %v", step, f)
					}
				}
			})
		}
	}
}

func roundUp(n, unit int64) int64 { return (n + unit - 1) / unit * unit }

// TestConcurrent allocates and releases from many goroutines; afterwards the extents each one kept
// are disjoint and account for all the used space.
func TestConcurrent(t *testing.T) {
	forEach(t, func(t *testing.T, newA func(size, unit int64) alloc.Freelist) {
		a := newA(16384*K, K)
		const workers = 8
		kept := make([][]alloc.Extent, workers)
		var wg sync.WaitGroup
		for w := range workers {
			wg.Go(func() {
				rng := rand.New(rand.NewPCG(uint64(w), 1))
				for range 300 {
					got, err := a.Allocate(int64(1+rng.IntN(8)) * K)
					if err != nil {
						t.Error(err)
						return
					}
					if rng.IntN(2) == 0 {
						if err := a.Release(got); err != nil {
							t.Error(err)
							return
						}
					} else {
						kept[w] = append(kept[w], got...)
					}
				}
			})
		}
		wg.Wait()
		mustCheck(t, a, slices.Concat(kept...))
	})
}
