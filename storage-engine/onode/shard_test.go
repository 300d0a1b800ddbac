package onode

import (
	"bytes"
	"errors"
	"math/rand/v2"
	"slices"
	"testing"
)

const shardSize = 4 * bs // small shards, so extents cross them often

// blockMap returns, per logical block of [0, n*bs), the physical block and checksum it maps to
// (-1 when unmapped): the meaning of an extent map, whatever its shape.
func blockMap(t *testing.T, o *Onode, n int) [][2]int64 {
	t.Helper()
	out := make([][2]int64, n)
	for i := range out {
		out[i] = [2]int64{-1, -1}
	}
	for _, e := range o.Extents {
		if uint64(len(e.Csums)) != e.Length/bs {
			t.Fatalf("extent %+v has %d checksums", e, len(e.Csums))
		}
		for k := range e.Length / bs {
			b := (e.Logical / bs) + k
			if b >= uint64(n) {
				t.Fatalf("extent %+v maps block %d past %d", e, b, n)
			}
			out[b] = [2]int64{int64(e.Phys/bs + k), int64(e.Csums[k])}
		}
	}
	return out
}

// roundTrip encodes every shard of o and decodes them into a new onode.
func roundTrip(t *testing.T, o *Onode) *Onode {
	t.Helper()
	got := &Onode{}
	for _, i := range o.Shards(shardSize) {
		buf, ok := o.EncodeShard(nil, i, shardSize, bs)
		if !ok {
			t.Fatalf("shard %d listed by Shards encodes as empty", i)
		}
		exts, err := DecodeShard(buf, i, shardSize, bs)
		if err != nil {
			t.Fatalf("DecodeShard(%d): %v", i, err)
		}
		if err := got.AddShard(exts); err != nil {
			t.Fatalf("AddShard(%d): %v", i, err)
		}
	}
	if err := got.Validate(); err != nil {
		t.Fatal(err)
	}
	return got
}

// TestShardsRandomAgainstModel builds random extent maps with Punch and Insert, checks that the
// shards round-trip to the same block mapping, that the shards DirtyShards leaves out encode as
// before, and that physically contiguous writes come back as one extent.
func TestShardsRandomAgainstModel(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	const blocks = 64
	o := &Onode{}
	next := uint64(1000)
	for range 1000 {
		before := o.Clone()
		for range 1 + rng.IntN(3) {
			a := rng.IntN(blocks)
			n := 1 + rng.IntN(min(blocks-a, 12))
			o.Punch(uint64(a)*bs, uint64(n)*bs, bs)
			if rng.IntN(3) > 0 {
				cs := make([]uint32, n)
				for i := range cs {
					cs[i] = rng.Uint32()
				}
				o.Insert(Extent{Logical: uint64(a) * bs, Phys: next * bs, Length: uint64(n) * bs, Csums: cs})
				next += uint64(n)
				if rng.IntN(4) == 0 {
					next++ // a gap, so that some neighbors are not physically contiguous
				}
			}
		}
		if rng.IntN(4) == 0 && len(o.Extents) > 0 {
			e := &o.Extents[rng.IntN(len(o.Extents))]
			k := rng.IntN(len(e.Csums))
			e.Csums[k] = rng.Uint32()
			o.MarkDirty(e.Logical+uint64(k)*bs, bs)
		}
		if !slices.Equal(blockMap(t, roundTrip(t, o), blocks), blockMap(t, o, blocks)) {
			t.Fatalf("shards do not round-trip the mapping of %+v", o.Extents)
		}
		dirty := o.DirtyShards(shardSize)
		for i := range uint64(blocks * bs / shardSize) {
			if slices.Contains(dirty, i) {
				continue
			}
			was, _ := before.EncodeShard(nil, i, shardSize, bs)
			now, _ := o.EncodeShard(nil, i, shardSize, bs)
			if !bytes.Equal(was, now) {
				t.Fatalf("shard %d changed but is not dirty (dirty: %v)", i, dirty)
			}
		}
		if !slices.Equal(o.Clone().DirtyShards(shardSize), dirty) {
			t.Fatal("a clone does not carry the recorded changes")
		}
		o.ClearDirty()
	}
}

func TestContiguousExtentIsOneAfterRoundTrip(t *testing.T) {
	cs := make([]uint32, 10)
	for i := range cs {
		cs[i] = uint32(i + 1)
	}
	o := &Onode{Extents: []Extent{{Logical: 2 * bs, Phys: 100 * bs, Length: 10 * bs, Csums: cs}}}
	if got := o.Shards(shardSize); !slices.Equal(got, []uint64{0, 1, 2}) {
		t.Fatalf("Shards = %v", got)
	}
	if got := roundTrip(t, o); !got.Equal(o) {
		t.Fatalf("round trip = %+v, want %+v", got.Extents, o.Extents)
	}
	if _, ok := o.EncodeShard(nil, 3, shardSize, bs); ok {
		t.Fatal("an unmapped shard encoded")
	}
}

func TestDecodeShardRejectsBadInput(t *testing.T) {
	good, _ := (&Onode{Extents: []Extent{{Logical: bs, Phys: 8 * bs, Length: bs, Csums: []uint32{7}}}}).EncodeShard(nil, 0, shardSize, bs)
	if _, err := DecodeShard(good, 0, shardSize, bs); err != nil {
		t.Fatalf("good shard: %v", err)
	}
	mk := func(exts ...Extent) []byte {
		var b []byte
		b = append(b, FormatVersion)
		b = append(b, byte(len(exts)))
		for _, e := range exts {
			b = appendUv(b, e.Logical, e.Phys, e.Length, uint64(len(e.Csums)))
			for range e.Csums {
				b = append(b, 1, 2, 3, 4)
			}
		}
		return b
	}
	one := []uint32{0}
	two := []uint32{0, 0}
	for name, buf := range map[string][]byte{
		"bad version":    append([]byte{1}, good[1:]...),
		"empty shard":    {FormatVersion, 0},
		"truncated":      good[:len(good)-1],
		"trailing":       append(slices.Clone(good), 0),
		"zero length":    mk(Extent{Logical: 0, Phys: bs, Length: 0}),
		"past the shard": mk(Extent{Logical: 3 * bs, Phys: bs, Length: 2 * bs, Csums: two}),
		"csum count":     mk(Extent{Logical: 0, Phys: bs, Length: 2 * bs, Csums: one}),
		"unaligned":      mk(Extent{Logical: 0, Phys: bs, Length: bs + 1, Csums: one}),
		"overlap":        mk(Extent{Logical: 0, Phys: bs, Length: 2 * bs, Csums: two}, Extent{Logical: bs, Phys: 9 * bs, Length: bs, Csums: one}),
		"not canonical":  mk(Extent{Logical: 0, Phys: bs, Length: bs, Csums: one}, Extent{Logical: bs, Phys: 2 * bs, Length: bs, Csums: one}),
		"phys overflow":  mk(Extent{Logical: 0, Phys: ^uint64(0) - 10, Length: bs, Csums: one}),
		"huge count":     {FormatVersion, 0xff, 0xff, 0xff, 0x0f},
	} {
		if _, err := DecodeShard(buf, 0, shardSize, bs); !errors.Is(err, ErrCorrupt) {
			t.Errorf("%s: DecodeShard = %v, want ErrCorrupt", name, err)
		}
	}
	if _, err := DecodeShard(good, ^uint64(0), shardSize, bs); !errors.Is(err, ErrCorrupt) {
		t.Errorf("shard index overflowing the logical space accepted: %v", err)
	}
}

func appendUv(b []byte, vs ...uint64) []byte {
	for _, v := range vs {
		for v >= 0x80 {
			b = append(b, byte(v)|0x80)
			v >>= 7
		}
		b = append(b, byte(v))
	}
	return b
}

func TestAddShardRejectsDisorder(t *testing.T) {
	o := &Onode{}
	if err := o.AddShard([]Extent{{Logical: shardSize, Phys: bs, Length: bs, Csums: []uint32{1}}}); err != nil {
		t.Fatal(err)
	}
	if err := o.AddShard([]Extent{{Logical: 0, Phys: 9 * bs, Length: bs, Csums: []uint32{1}}}); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("out-of-order shard accepted: %v", err)
	}
}

// FuzzDecodeShard checks that DecodeShard never panics and that whatever it accepts is canonical:
// it re-encodes to the same bytes.
func FuzzDecodeShard(f *testing.F) {
	o := &Onode{Extents: []Extent{
		{Logical: 0, Phys: 64 * bs, Length: 2 * bs, Csums: []uint32{1, 2}},
		{Logical: 3 * bs, Phys: 99 * bs, Length: 3 * bs, Csums: []uint32{3, 4, 5}},
	}}
	for i := range uint64(2) {
		b, _ := o.EncodeShard(nil, i, shardSize, bs)
		f.Add(b, i)
	}
	f.Add([]byte{FormatVersion, 0}, uint64(0))
	f.Fuzz(func(t *testing.T, buf []byte, i uint64) {
		i %= 1 << 20
		exts, err := DecodeShard(buf, i, shardSize, bs)
		if err != nil {
			if !errors.Is(err, ErrCorrupt) {
				t.Fatalf("error does not wrap ErrCorrupt: %v", err)
			}
			return
		}
		got := &Onode{}
		if err := got.AddShard(exts); err != nil {
			t.Fatalf("AddShard of a decoded shard: %v", err)
		}
		again, ok := got.EncodeShard(nil, i, shardSize, bs)
		if !ok || !bytes.Equal(again, buf) {
			t.Fatalf("accepted shard is not canonical: re-encoded %x, input %x", again, buf)
		}
	})
}
