package store

import (
	"errors"
	"testing"
)

// TestCloneToSharesExtents clones an object into another collection: no space is used, the
// clone reads the same data, attributes and omap, a later overwrite of the source copies only
// the units it writes and leaves the clone's data as it was, and removing everything returns the
// space in use before (fsck at cleanup checks the reference counts).
func TestCloneToSharesExtents(t *testing.T) {
	s := newStore(t, Options{})
	before := s.Statfs().Used
	data := pattern(1<<20, 5)
	commit(t, s, NewTransaction().CreateCollection("a").CreateCollection("b").
		Write("a", "o", 0, data).SetAttr("a", "o", "x", []byte("v")).
		OmapSet("a", "o", map[string][]byte{"k": []byte("w")}))
	written := s.Statfs().Used
	if written-before < 1<<20 {
		t.Fatalf("writing 1 MiB used %d bytes", written-before)
	}
	commit(t, s, NewTransaction().CloneTo("a", "o", "b", "snap"))
	if got := s.Statfs().Used; got != written {
		t.Fatalf("CloneTo changed used space from %d to %d: it must share extents", written, got)
	}
	mustRead(t, s, "b", "snap", 0, 0, data)
	if v, err := s.GetAttr(ctx, "b", "snap", "x"); err != nil || string(v) != "v" {
		t.Fatalf("clone's xattr: %q, %v", v, err)
	}
	if m, err := s.OmapGet(ctx, "b", "snap", "k"); err != nil || string(m["k"]) != "w" {
		t.Fatalf("clone's omap: %q, %v", m, err)
	}
	commit(t, s, NewTransaction().Write("a", "o", 4096, pattern(4096, 9)))
	grown := s.Statfs().Used - written
	if grown == 0 || grown > 2*s.unit {
		t.Fatalf("a 4 KiB overwrite of a shared object used %d bytes, want 1 to 2 allocation units (%d)", grown, s.unit)
	}
	mustRead(t, s, "b", "snap", 0, 0, data)
	want := append([]byte(nil), data...)
	copy(want[4096:], pattern(4096, 9))
	mustRead(t, s, "a", "o", 0, 0, want)

	commit(t, s, NewTransaction().Remove("a", "o").RemoveCollection("a"))
	mustRead(t, s, "b", "snap", 0, 0, data)
	commit(t, s, NewTransaction().Remove("b", "snap").RemoveCollection("b"))
	if got := s.Statfs().Used; got != before {
		t.Fatalf("used space %d after removing everything, %d before", got, before)
	}
}

// TestCloneToMissingCollection: a clone into a collection that does not exist fails the whole
// transaction with ErrNotFound and changes nothing.
func TestCloneToMissingCollection(t *testing.T) {
	s := newStore(t, Options{})
	commit(t, s, NewTransaction().CreateCollection("a").Write("a", "o", 0, pattern(8192, 1)))
	used := s.Statfs().Used
	err := s.Commit(ctx, NewTransaction().Touch("a", "p").CloneTo("a", "o", "nope", "o"))
	if !errors.Is(err, ErrNotFound) {
		t.Fatalf("CloneTo a missing collection: %v, want ErrNotFound", err)
	}
	if ok, err := s.Exists(ctx, "a", "p"); err != nil || ok {
		t.Fatalf("the failed transaction's touch is visible (%v, %v)", ok, err)
	}
	if got := s.Statfs().Used; got != used {
		t.Fatalf("used space %d after a failed clone, was %d", got, used)
	}
	if err := s.Commit(ctx, NewTransaction().CloneTo("a", "o", "a/b", "o")); !errors.Is(err, ErrInvalid) && !errors.Is(err, ErrNotFound) {
		t.Fatalf("CloneTo an invalid collection name: %v", err)
	}
}

// TestCollectionUsage checks Referenced and Exclusive through a clone, an overwrite, a clone
// inside the collection and the removal of the source.
func TestCollectionUsage(t *testing.T) {
	s := newStore(t, Options{})
	const size = 1 << 20
	commit(t, s, NewTransaction().CreateCollection("a").CreateCollection("b").Write("a", "o", 0, pattern(size, 3)))
	check := func(what, c string, objects, ref, excl uint64) {
		t.Helper()
		u, err := s.CollectionUsage(ctx, c)
		if err != nil {
			t.Fatalf("%s: CollectionUsage(%s): %v", what, c, err)
		}
		if u.Objects != objects || u.Referenced != ref || u.Exclusive != excl {
			t.Fatalf("%s: usage of %s = %+v, want objects %d, referenced %d, exclusive %d", what, c, u, objects, ref, excl)
		}
	}
	check("written", "a", 1, size, size)
	check("written", "b", 0, 0, 0)
	commit(t, s, NewTransaction().CloneTo("a", "o", "b", "o"))
	check("cloned", "a", 1, size, 0)
	check("cloned", "b", 1, size, 0)
	// Overwriting one unit of a gives a a private unit and leaves b the only holder of the old one.
	commit(t, s, NewTransaction().Write("a", "o", 0, pattern(int(s.unit), 7)))
	check("overwritten", "a", 1, size, s.unit)
	check("overwritten", "b", 1, size, s.unit)
	// A second clone inside b: b references its units twice, still nothing outside does.
	commit(t, s, NewTransaction().Clone("b", "o", "p"))
	check("cloned in b", "b", 2, size, s.unit)
	commit(t, s, NewTransaction().Remove("a", "o"))
	check("source removed", "b", 2, size, size)
	if _, err := s.CollectionUsage(ctx, "missing"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("usage of a missing collection: %v", err)
	}
}
