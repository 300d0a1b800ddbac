package onode

import (
	"slices"
	"testing"
)

// forkFixture is an onode of three extents (4 KiB checksum blocks) with an xattr, an omap header
// and a dirty range, and a deep copy of it to compare with.
func forkFixture() (*Onode, *Onode) {
	o := &Onode{Nid: 7, Size: 40 << 10, Xattrs: map[string][]byte{"a": []byte("x")}, OmapHeader: []byte("h")}
	o.Insert(Extent{Logical: 0, Phys: 1 << 20, Length: 16 << 10, Csums: []uint32{1, 2, 3, 4}})
	o.Insert(Extent{Logical: 16 << 10, Phys: 4 << 20, Length: 8 << 10, Csums: []uint32{5, 6}})
	o.Insert(Extent{Logical: 32 << 10, Phys: 9 << 20, Length: 8 << 10, Csums: []uint32{7, 8}})
	o.MarkDirty(0, 4096)
	return o, o.Clone()
}

// TestForkLeavesTheOriginal changes a fork in every way a store stages a change and checks that
// the original still holds what it held: SetCsum copies a shared checksum array before its first
// change, appends do not write past a shared slice, and Punch and Insert do not reach the
// original's extents.
func TestForkLeavesTheOriginal(t *testing.T) {
	tests := []struct {
		name   string
		change func(f *Onode)
		check  func(t *testing.T, f *Onode)
	}{
		{"SetCsum", func(f *Onode) { f.SetCsum(0, 2, 99) }, func(t *testing.T, f *Onode) {
			if got := f.Extents[0].Csums; !slices.Equal(got, []uint32{1, 2, 99, 4}) {
				t.Errorf("fork's checksums %v", got)
			}
		}},
		{"SetCsum twice in one extent", func(f *Onode) { f.SetCsum(1, 0, 50); f.SetCsum(1, 1, 60) }, func(t *testing.T, f *Onode) {
			if got := f.Extents[1].Csums; !slices.Equal(got, []uint32{50, 60}) {
				t.Errorf("fork's checksums %v", got)
			}
		}},
		{"SetCsum in every extent", func(f *Onode) {
			for i, e := range f.Extents {
				for j := range e.Csums {
					f.SetCsum(i, uint64(j), 100+uint32(i*10+j))
				}
			}
		}, nil},
		{"append to an extent's checksums", func(f *Onode) {
			f.Extents[1].Csums = append(f.Extents[1].Csums, 44)
			f.Extents[2].Csums = append(f.Extents[2].Csums, 45, 46)
		}, nil},
		{"punch and insert", func(f *Onode) {
			f.Punch(4<<10, 16<<10, 4096)
			f.Insert(Extent{Logical: 4 << 10, Phys: 12 << 20, Length: 16 << 10, Csums: []uint32{9, 9, 9, 9}})
		}, nil},
		{"attributes", func(f *Onode) {
			f.Xattrs["a"][0] = 'y'
			f.Xattrs["b"] = []byte("z")
			f.OmapHeader[0] = 'H'
			f.Size = 1
			f.MarkDirty(32<<10, 4096)
		}, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			o, want := forkFixture()
			f := o.Fork()
			if !f.Equal(o) || !slices.Equal(f.DirtyShards(16<<10), o.DirtyShards(16<<10)) {
				t.Fatalf("fork differs from its original before any change")
			}
			tc.change(f)
			if !o.Equal(want) || !slices.Equal(o.DirtyShards(16<<10), want.DirtyShards(16<<10)) {
				t.Fatalf("original changed with its fork:\n got %+v\nwant %+v", o.Extents, want.Extents)
			}
			if tc.check != nil {
				tc.check(t, f)
			}
		})
	}
}

// TestSetCsumCopiesOnce: the first SetCsum in an extent of a fork copies its checksums, later ones
// in the same extent write in place, and a Clone's SetCsum copies again (it does not own the
// clone's arrays either).
func TestSetCsumCopiesOnce(t *testing.T) {
	o, _ := forkFixture()
	f := o.Fork()
	if &f.Extents[0].Csums[0] != &o.Extents[0].Csums[0] {
		t.Fatal("a fork's extent does not share its checksums")
	}
	f.SetCsum(0, 0, 10)
	first := &f.Extents[0].Csums[0]
	if first == &o.Extents[0].Csums[0] {
		t.Fatal("SetCsum wrote into the shared checksums")
	}
	f.SetCsum(0, 3, 11)
	if &f.Extents[0].Csums[0] != first {
		t.Error("a second SetCsum in the same extent copied its checksums again")
	}
	if &f.Extents[1].Csums[0] != &o.Extents[1].Csums[0] {
		t.Error("SetCsum in extent 0 copied extent 1's checksums")
	}
	g := f.Fork()
	g.SetCsum(0, 1, 12)
	if &g.Extents[0].Csums[0] == first || f.Extents[0].Csums[1] != 2 {
		t.Errorf("a fork of a fork wrote into its parent's checksums: %v", f.Extents[0].Csums)
	}
}
