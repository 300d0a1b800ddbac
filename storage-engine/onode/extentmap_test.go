package onode

import (
	"math/rand/v2"
	"slices"
	"testing"
)

const bs = 4096

func TestPunchSplitsAndFrees(t *testing.T) {
	o := &Onode{Extents: []Extent{
		{Logical: 0, Phys: 100 * bs, Length: 4 * bs, Csums: []uint32{1, 2, 3, 4}},
		{Logical: 6 * bs, Phys: 200 * bs, Length: 2 * bs, Csums: []uint32{5, 6}},
	}}
	freed := o.Punch(1*bs, 6*bs, bs)
	want := []Extent{
		{Logical: 0, Phys: 100 * bs, Length: bs, Csums: []uint32{1}},
		{Logical: 7 * bs, Phys: 201 * bs, Length: bs, Csums: []uint32{6}},
	}
	if !(&Onode{Extents: want}).Equal(&Onode{Extents: o.Extents}) {
		t.Fatalf("extents after punch = %+v, want %+v", o.Extents, want)
	}
	wantFreed := []PhysRange{{101 * bs, 3 * bs}, {200 * bs, bs}}
	if !slices.Equal(freed, wantFreed) {
		t.Fatalf("freed = %v, want %v", freed, wantFreed)
	}
	o.Insert(Extent{Logical: 2 * bs, Phys: 9 * bs, Length: bs, Csums: []uint32{7}})
	if err := o.Validate(); err != nil || o.Extents[1].Logical != 2*bs {
		t.Fatalf("insert: %v %+v", err, o.Extents)
	}
}

// TestPunchRandomAgainstModel compares the extent map with a per-block model.
func TestPunchRandomAgainstModel(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	const blocks = 64
	model := make([]int64, blocks) // phys block or -1
	for i := range model {
		model[i] = -1
	}
	o := &Onode{}
	next := uint64(1000)
	for range 2000 {
		a := rng.IntN(blocks)
		n := 1 + rng.IntN(blocks-a)
		freed := o.Punch(uint64(a)*bs, uint64(n)*bs, bs)
		var freedBlocks, wantFreed []int64
		for _, f := range freed {
			for b := f.Phys; b < f.Phys+f.Length; b += bs {
				freedBlocks = append(freedBlocks, int64(b/bs))
			}
		}
		for i := a; i < a+n; i++ {
			if model[i] >= 0 {
				wantFreed = append(wantFreed, model[i])
			}
			model[i] = -1
		}
		slices.Sort(freedBlocks)
		slices.Sort(wantFreed)
		if !slices.Equal(freedBlocks, wantFreed) {
			t.Fatalf("freed %v want %v", freedBlocks, wantFreed)
		}
		if rng.IntN(2) == 0 {
			cs := make([]uint32, n)
			for i := range cs {
				cs[i] = uint32(next) + uint32(i)
				model[a+i] = int64(next) + int64(i)
			}
			o.Insert(Extent{Logical: uint64(a) * bs, Phys: next * bs, Length: uint64(n) * bs, Csums: cs})
			next += uint64(n)
		}
		if err := o.Validate(); err != nil {
			t.Fatal(err)
		}
		for i := range blocks {
			j := o.Find(uint64(i) * bs)
			var got int64 = -1
			if j < len(o.Extents) && o.Extents[j].Logical <= uint64(i)*bs {
				e := o.Extents[j]
				k := (uint64(i)*bs - e.Logical) / bs
				got = int64(e.Phys/bs + k)
				if uint32(got) != e.Csums[k] {
					t.Fatalf("block %d: csum %d does not follow phys %d", i, e.Csums[k], got)
				}
			}
			if got != model[i] {
				t.Fatalf("block %d maps to %d, model %d", i, got, model[i])
			}
		}
	}
}
