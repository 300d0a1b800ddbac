package kv

import (
	"bytes"
	"errors"
	"slices"
	"testing"
)

func TestOnodeKeysOfACollectionAreContiguousAndOrdered(t *testing.T) {
	colls := []string{"a", "a\x01", "ab", "b"}
	objs := []string{"x", "x\x01", "xy", "y", "\xff"}
	type kc struct {
		k    []byte
		c, o string
	}
	var all []kc
	for _, c := range colls {
		for _, o := range objs {
			all = append(all, kc{OnodeKey(c, o), c, o})
		}
	}
	slices.SortFunc(all, func(a, b kc) int { return bytes.Compare(a.k, b.k) })
	for _, c := range colls {
		lo, hi := OnodeSpan(c, "")
		var got []string
		for _, e := range all {
			in := bytes.Compare(e.k, lo) >= 0 && bytes.Compare(e.k, hi) < 0
			if in != (e.c == c) {
				t.Fatalf("key of %q/%q in span of %q = %v", e.c, e.o, c, in)
			}
			if in {
				got = append(got, e.o)
			}
		}
		if !slices.IsSorted(got) || len(got) != len(objs) {
			t.Fatalf("collection %q lists %q", c, got)
		}
		pc, po, err := ParseOnodeKey(OnodeKey(c, "x"))
		if err != nil || pc != c || po != "x" {
			t.Fatalf("ParseOnodeKey = %q %q %v", pc, po, err)
		}
	}
}

func TestKeyParsersRoundTrip(t *testing.T) {
	if c, err := ParseCollectionKey(CollectionKey("coll")); err != nil || c != "coll" {
		t.Fatalf("collection: %q %v", c, err)
	}
	if n, k, err := ParseOmapKey(OmapKey(77, "key")); err != nil || n != 77 || k != "key" {
		t.Fatalf("omap: %d %q %v", n, k, err)
	}
	if s, err := ParseDeferredKey(DeferredKey(1 << 40)); err != nil || s != 1<<40 {
		t.Fatalf("deferred: %d %v", s, err)
	}
	if n, sh, err := ParseExtentShardKey(ExtentShardKey(9, 1<<33)); err != nil || n != 9 || sh != 1<<33 {
		t.Fatalf("extent shard: %d %d %v", n, sh, err)
	}
	for _, nid := range []uint64{0, 5, ^uint64(0)} {
		elo, ehi := ExtentShardSpan(nid)
		in := func(k []byte) bool { return bytes.Compare(k, elo) >= 0 && bytes.Compare(k, ehi) < 0 }
		if !in(ExtentShardKey(nid, 0)) || !in(ExtentShardKey(nid, ^uint64(0))) {
			t.Fatalf("extent span of nid %d misses its own shards", nid)
		}
		if (nid > 0 && in(ExtentShardKey(nid-1, ^uint64(0)))) || (nid < ^uint64(0) && in(ExtentShardKey(nid+1, 0))) {
			t.Fatalf("extent span of nid %d holds a neighbour's shard", nid)
		}
		if bytes.Compare(ExtentShardKey(nid, 1), ExtentShardKey(nid, 256)) >= 0 {
			t.Fatal("extent shards of one nid are not in shard order")
		}
	}
	for _, bad := range [][]byte{nil, {PrefixExtents}, ExtentShardKey(1, 2)[:16], append(ExtentShardKey(1, 2), 0), OmapKey(1, "12345678")} {
		if _, _, err := ParseExtentShardKey(bad); !errors.Is(err, ErrCorrupt) {
			t.Errorf("ParseExtentShardKey(%q) = %v", bad, err)
		}
	}
	lo, hi := OmapSpan(5, "")
	if bytes.Compare(OmapKey(5, "zzz"), hi) >= 0 || bytes.Compare(OmapKey(6, ""), hi) < 0 || bytes.Compare(OmapKey(4, "zzz"), lo) >= 0 {
		t.Fatal("omap span does not bound exactly one nid")
	}
	for _, bad := range [][]byte{nil, {PrefixOnode}, {PrefixOnode, 'a'}, {PrefixOnode, 0, 'a'}, {PrefixOnode, 'a', 0}} {
		if _, _, err := ParseOnodeKey(bad); !errors.Is(err, ErrCorrupt) {
			t.Errorf("ParseOnodeKey(%q) = %v", bad, err)
		}
	}
}

func TestValidateNames(t *testing.T) {
	for _, bad := range []string{"", "a\x00b", string(make([]byte, MaxCollectionName+1))} {
		if err := ValidateCollection(bad); !errors.Is(err, ErrInvalidName) {
			t.Errorf("ValidateCollection(%q) = %v", bad, err)
		}
	}
	if err := ValidateObject("ok"); err != nil {
		t.Error(err)
	}
}

func FuzzParseKeys(f *testing.F) {
	f.Add(OnodeKey("c", "o"))
	f.Add(OmapKey(3, "k"))
	f.Add(DeferredKey(9))
	f.Add(CollectionKey("c"))
	f.Add(ExtentShardKey(3, 7))
	f.Fuzz(func(t *testing.T, k []byte) {
		if n, sh, err := ParseExtentShardKey(k); err == nil && !bytes.Equal(ExtentShardKey(n, sh), k) {
			t.Fatalf("extent shard key %q does not round-trip", k)
		} else if err != nil && !errors.Is(err, ErrCorrupt) {
			t.Fatal(err)
		}
		if c, o, err := ParseOnodeKey(k); err == nil && !bytes.Equal(OnodeKey(c, o), k) {
			t.Fatalf("onode key %q does not round-trip", k)
		}
		if n, key, err := ParseOmapKey(k); err == nil && !bytes.Equal(OmapKey(n, key), k) {
			t.Fatalf("omap key %q does not round-trip", k)
		}
		if s, err := ParseDeferredKey(k); err == nil && !bytes.Equal(DeferredKey(s), k) {
			t.Fatalf("deferred key %q does not round-trip", k)
		}
		if c, err := ParseCollectionKey(k); err == nil && !bytes.Equal(CollectionKey(c), k) {
			t.Fatalf("collection key %q does not round-trip", k)
		}
	})
}
