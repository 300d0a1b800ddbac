package store

import (
	"bytes"
	"errors"
	"fmt"
	"maps"
	"math/rand/v2"
	"slices"
	"testing"
)

// model is an in-memory reference implementation of the store's semantics.
type model struct {
	colls map[string]map[string]*mobj
}

type mobj struct {
	data   []byte
	xattrs map[string][]byte
	omap   map[string][]byte
	header []byte
}

func (o *mobj) clone() *mobj {
	c := &mobj{data: slices.Clone(o.data), xattrs: maps.Clone(o.xattrs), omap: maps.Clone(o.omap), header: slices.Clone(o.header)}
	if o.header != nil && c.header == nil {
		c.header = []byte{}
	}
	return c
}

func newModel() *model { return &model{colls: map[string]map[string]*mobj{}} }

func (m *model) clone() *model {
	n := newModel()
	for c, objs := range m.colls {
		n.colls[c] = map[string]*mobj{}
		for name, o := range objs {
			n.colls[c][name] = o.clone()
		}
	}
	return n
}

var errModel = errors.New("model: op fails")

func grow(b []byte, n uint64) []byte {
	if uint64(len(b)) < n {
		b = append(b, make([]byte, n-uint64(len(b)))...)
	}
	return b
}

// apply applies op to m, returning errModel if the store must refuse the transaction.
func (m *model) apply(o op) error {
	objs, ok := m.colls[o.c]
	switch o.kind {
	case opCreateCollection:
		if ok {
			return errModel
		}
		m.colls[o.c] = map[string]*mobj{}
		return nil
	case opRemoveCollection:
		if !ok || len(objs) > 0 {
			return errModel
		}
		delete(m.colls, o.c)
		return nil
	}
	if !ok {
		return errModel
	}
	obj := objs[o.o]
	create := func() *mobj {
		if obj == nil {
			obj = &mobj{xattrs: map[string][]byte{}, omap: map[string][]byte{}}
			objs[o.o] = obj
		}
		return obj
	}
	switch o.kind {
	case opTouch:
		create()
	case opWrite:
		create()
		if len(o.data) > 0 {
			obj.data = grow(obj.data, o.off+uint64(len(o.data)))
			copy(obj.data[o.off:], o.data)
		}
	case opZero:
		create()
		if o.length > 0 {
			obj.data = grow(obj.data, o.off+o.length)
			clear(obj.data[o.off : o.off+o.length])
		}
	case opClone:
		dobjs, ok := m.colls[o.dc]
		if obj == nil || !ok {
			return errModel
		}
		if o.c != o.dc || o.o != o.dst {
			dobjs[o.dst] = obj.clone()
		}
	case opRename:
		if obj == nil {
			return errModel
		}
		if o.o != o.dst {
			if objs[o.dst] != nil {
				return errModel
			}
			objs[o.dst] = obj
			delete(objs, o.o)
		}
	default:
		if obj == nil {
			return errModel
		}
		switch o.kind {
		case opTruncate:
			if o.off < uint64(len(obj.data)) {
				obj.data = obj.data[:o.off]
			} else {
				obj.data = grow(obj.data, o.off)
			}
		case opRemove:
			delete(objs, o.o)
		case opSetAttr:
			obj.xattrs[o.name] = slices.Clone(o.data)
		case opRmAttr:
			delete(obj.xattrs, o.name)
		case opOmapSet:
			for k, v := range o.kvs {
				obj.omap[k] = v
			}
		case opOmapRmKeys:
			for _, k := range o.keys {
				delete(obj.omap, k)
			}
		case opOmapClear:
			clear(obj.omap)
			obj.header = nil
		case opOmapSetHeader:
			obj.header = slices.Clone(o.data)
			if obj.header == nil {
				obj.header = []byte{}
			}
		}
	}
	return nil
}

// randomTxn builds a transaction of 1..4 random operations over a small name space.
func randomTxn(rng *rand.Rand, maxOff int) *Transaction {
	return randomTxnIn(rng, maxOff, []string{"c0", "c1", "c2"}, true)
}

// randomTxnIn builds a random transaction over collections colls (the last one is rarely used, so
// operations on a missing collection are tried); collection create/remove only if collOps.
func randomTxnIn(rng *rand.Rand, maxOff int, colls []string, collOps bool) *Transaction {
	txn := NewTransaction()
	objs := []string{"o0", "o1", "o2", "o3", "o4", "o5"}
	for range 1 + rng.IntN(4) {
		c, o, o2 := colls[0], objs[rng.IntN(len(objs))], objs[rng.IntN(len(objs))]
		if len(colls) > 1 {
			c = colls[rng.IntN(len(colls)-1)]
			if rng.IntN(30) == 0 {
				c = colls[len(colls)-1]
			}
		}
		off := uint64(rng.IntN(maxOff))
		aligned := rng.IntN(3) == 0 // whole blocks: no read-modify-write at either end
		if aligned {
			off = off / 4096 * 4096
		}
		n := rng.IntN(9000)
		r := rng.IntN(100)
		if !collOps && r < 5 {
			r += 5
		}
		switch {
		case r < 3:
			txn.CreateCollection(c)
		case r < 5:
			txn.RemoveCollection(c)
		case r < 8:
			txn.Touch(c, o)
		case r < 40:
			if rng.IntN(8) == 0 {
				n = rng.IntN(200000)
			}
			if aligned {
				n = n / 4096 * 4096
			}
			txn.Write(c, o, off, pattern(n, byte(rng.Uint32())))
		case r < 45:
			txn.Zero(c, o, off, uint64(rng.IntN(70000)))
		case r < 52:
			txn.Truncate(c, o, uint64(rng.IntN(maxOff)))
		case r < 57:
			txn.Remove(c, o)
		case r < 64:
			txn.SetAttr(c, o, fmt.Sprintf("a%d", rng.IntN(3)), pattern(rng.IntN(20), 1))
		case r < 67:
			txn.RmAttr(c, o, fmt.Sprintf("a%d", rng.IntN(3)))
		case r < 75:
			kvs := map[string][]byte{}
			for range 1 + rng.IntN(3) {
				kvs[fmt.Sprintf("k%d", rng.IntN(6))] = pattern(rng.IntN(10), 2)
			}
			txn.OmapSet(c, o, kvs)
		case r < 78:
			txn.OmapRmKeys(c, o, fmt.Sprintf("k%d", rng.IntN(6)), "k9")
		case r < 80:
			txn.OmapClear(c, o)
		case r < 83:
			txn.OmapSetHeader(c, o, pattern(rng.IntN(8), 3))
		case r < 92:
			if len(colls) > 1 && rng.IntN(2) == 0 {
				txn.CloneTo(c, o, colls[rng.IntN(len(colls))], o2)
			} else {
				txn.Clone(c, o, o2)
			}
		default:
			txn.Rename(c, o, o2)
		}
	}
	return txn
}

// applyModel applies txn to a copy of m; it returns the new model and whether the txn must succeed.
func applyModel(m *model, txn *Transaction) (*model, bool) {
	n := m.clone()
	for _, o := range txn.ops {
		if err := n.apply(o); err != nil {
			return m, false
		}
	}
	return n, true
}

// verifyModel compares every collection and object of the store with the model.
func verifyModel(t testing.TB, s *Store, m *model) {
	t.Helper()
	colls, err := s.ListCollections(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if want := slices.Sorted(maps.Keys(m.colls)); !slices.Equal(colls, want) {
		t.Fatalf("collections %q, model %q", colls, want)
	}
	for c, objs := range m.colls {
		names, _, err := s.ListObjects(ctx, c, "", 0)
		if err != nil {
			t.Fatal(err)
		}
		if want := slices.Sorted(maps.Keys(objs)); !slices.Equal(names, want) {
			t.Fatalf("collection %s lists %q, model %q", c, names, want)
		}
		for name, o := range objs {
			verifyObject(t, s, c, name, o)
		}
	}
}

func verifyObject(t testing.TB, s *Store, c, name string, o *mobj) {
	t.Helper()
	got, err := s.Read(ctx, c, name, 0, 0)
	if err != nil {
		t.Fatalf("read %s/%s: %v", c, name, err)
	}
	if !bytes.Equal(got, o.data) {
		i := 0
		for i < min(len(got), len(o.data)) && got[i] == o.data[i] {
			i++
		}
		t.Fatalf("%s/%s: %d bytes, model %d, first difference at %d", c, name, len(got), len(o.data), i)
	}
	// The buffer-filling reads agree, into an unaligned buffer one block longer than the object
	// (they must stop at its end) and into an aligned one from the second block on.
	for _, fn := range readIntoFns {
		buf := intoBuf(len(o.data)+4096, false)
		n, err := fn.read(s, c, name, 0, buf)
		if err != nil || n != len(o.data) || !bytes.Equal(buf[:n], o.data) || firstNot(buf[n:], garbage) >= 0 {
			t.Fatalf("%s %s/%s: %d bytes (%v), model %d, first difference at %d", fn.name, c, name, n, err, len(o.data), firstDiff(buf[:n], o.data))
		}
		if len(o.data) > 4096 {
			buf = intoBuf(len(o.data)-4096, true)
			if n, err := fn.read(s, c, name, 4096, buf); err != nil || n != len(buf) || !bytes.Equal(buf, o.data[4096:]) {
				t.Fatalf("%s %s/%s from 4096: %d bytes (%v), model %d, first difference at %d", fn.name, c, name, n, err, len(o.data)-4096, firstDiff(buf[:n], o.data[4096:]))
			}
		}
	}
	attrs, err := s.GetAttrs(ctx, c, name)
	if err != nil || !maps.EqualFunc(attrs, o.xattrs, bytes.Equal) {
		t.Fatalf("%s/%s xattrs %q (%v), model %q", c, name, attrs, err, o.xattrs)
	}
	om := map[string][]byte{}
	if err := s.OmapIterate(ctx, c, name, "", func(k string, v []byte) bool { om[k] = slices.Clone(v); return true }); err != nil {
		t.Fatal(err)
	}
	if !maps.EqualFunc(om, o.omap, bytes.Equal) {
		t.Fatalf("%s/%s omap %q, model %q", c, name, om, o.omap)
	}
	h, err := s.OmapGetHeader(ctx, c, name)
	if err != nil || (h == nil) != (o.header == nil) || !bytes.Equal(h, o.header) {
		t.Fatalf("%s/%s omap header %q (%v), model %q", c, name, h, err, o.header)
	}
}

func TestModelRandomized(t *testing.T) {
	configs := []struct {
		name string
		opts Options
		mkfs MkfsOptions
	}{
		{"cow", Options{PreferDeferredSize: -1}, MkfsOptions{}},
		{"deferred", Options{PreferDeferredSize: 64 << 10, DeferredBatch: 8}, MkfsOptions{}},
		{"unit16k", Options{}, MkfsOptions{MinAllocSize: 16 << 10}},
		{"buffered-writes", Options{BufferedWrites: true, PreferDeferredSize: 64 << 10, DeferredBatch: 8}, MkfsOptions{}},
	}
	for i, cfg := range configs {
		t.Run(cfg.name, func(t *testing.T) {
			runModel(t, newEnvMkfs(t, nil, cfg.opts, cfg.mkfs), 600, uint64(i)+1)
		})
	}
}

// runModel runs steps random transactions against a store in e and the model, comparing them as it
// goes and after a remount.
func runModel(t *testing.T, e *testEnv, steps int, seed uint64) {
	rng := rand.New(rand.NewPCG(seed, 77))
	s := e.open(t)
	m := newModel()
	commit(t, s, NewTransaction().CreateCollection("c0").CreateCollection("c1"))
	m.colls["c0"], m.colls["c1"] = map[string]*mobj{}, map[string]*mobj{}
	for step := range steps {
		txn := randomTxn(rng, 300000)
		next, ok := applyModel(m, txn)
		err := s.Commit(ctx, txn)
		if ok != (err == nil) {
			t.Fatalf("step %d: commit = %v, model expects success=%v", step, err, ok)
		}
		m = next
		if step%50 == 0 {
			verifyModel(t, s, m)
			mustCheck(t, s)
		}
	}
	verifyModel(t, s, m)
	mustCheck(t, s)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = e.open(t)
	verifyModel(t, s, m)
}
