package objstoretest

import (
	"context"
	"errors"
	"testing"

	"github.com/cobaltstore/cobalt/node-daemon/objstore"
)

// full writes an object with data, an attribute, omap entries and a header.
func full(c, o string, data string) []objstore.Op {
	return []objstore.Op{
		objstore.Write(c, o, 0, []byte(data)),
		objstore.SetAttr(c, o, "a", []byte(data+"-attr")),
		objstore.OmapSetKeys(c, o, map[string][]byte{"k": []byte(data + "-omap")}),
		objstore.OmapSetHeader(c, o, []byte(data+"-header")),
	}
}

// copyChecks check Clone and Rename.
func copyChecks() []check {
	return []check{
		{"clone", func(t *testing.T, in Instance) {
			s := in.Store
			commit(t, s, objstore.CreateCollection("c"))
			commit(t, s, append(full("c", "src", "source"), objstore.Clone("c", "src", "dst"))...)
			src := dumpObject(t, s, "c", "src")
			if d := dumpObject(t, s, "c", "dst"); !equalObjects(d, src) {
				t.Fatalf("clone %s differs from its source %s", d, src)
			}
			commit(t, s, objstore.Write("c", "dst", 0, []byte("CHANGED")), objstore.SetAttr("c", "dst", "a", []byte("x")),
				objstore.OmapClear("c", "dst"))
			if d := dumpObject(t, s, "c", "src"); !equalObjects(d, src) {
				t.Fatalf("changing the clone changed the source: %s", d)
			}
		}},
		{"clone replaces the target", func(t *testing.T, in Instance) {
			s := in.Store
			commit(t, s, objstore.CreateCollection("c"))
			commit(t, s, full("c", "src", "short")...)
			commit(t, s, append(full("c", "dst", "a much longer target"),
				objstore.SetAttr("c", "dst", "only-dst", []byte("1")),
				objstore.OmapSetKeys("c", "dst", map[string][]byte{"only-dst": []byte("1")}))...)
			commit(t, s, objstore.Clone("c", "src", "dst"))
			if d, src := dumpObject(t, s, "c", "dst"), dumpObject(t, s, "c", "src"); !equalObjects(d, src) {
				t.Fatalf("replaced target %s, want a copy of %s", d, src)
			}
		}},
		{"clone onto itself", func(t *testing.T, in Instance) {
			s := in.Store
			commit(t, s, objstore.CreateCollection("c"))
			commit(t, s, full("c", "o", "same")...)
			before := dump(t, s)
			commit(t, s, objstore.Clone("c", "o", "o"))
			unchanged(t, s, before, "a clone onto itself")
		}},
		{"clone to another collection", func(t *testing.T, in Instance) {
			s := in.Store
			commit(t, s, objstore.CreateCollection("c"), objstore.CreateCollection("snap"))
			commit(t, s, append(full("c", "src", "source"), objstore.CloneTo("c", "src", "snap", "dst"))...)
			src := dumpObject(t, s, "c", "src")
			if d := dumpObject(t, s, "snap", "dst"); !equalObjects(d, src) {
				t.Fatalf("clone %s differs from its source %s", d, src)
			}
			// Changing either side leaves the other as it was.
			commit(t, s, objstore.Write("c", "src", 0, []byte("CHANGED")), objstore.SetAttr("c", "src", "a", []byte("x")),
				objstore.OmapClear("c", "src"))
			if d := dumpObject(t, s, "snap", "dst"); !equalObjects(d, src) {
				t.Fatalf("changing the source changed the clone: %s, want %s", d, src)
			}
			changed := dumpObject(t, s, "c", "src")
			commit(t, s, objstore.Write("snap", "dst", 2, []byte("zz")))
			if d := dumpObject(t, s, "c", "src"); !equalObjects(d, changed) {
				t.Fatalf("changing the clone changed the source: %s, want %s", d, changed)
			}
			// The clone outlives its source and its source's collection.
			commit(t, s, objstore.Remove("c", "src"), objstore.RemoveCollection("c"))
			if got := read(t, s, "snap", "dst", 0, 6); string(got) != "sozzce" {
				t.Fatalf("clone after its source was removed reads %q, want %q", got, "sozzce")
			}
		}},
		{"clone to another collection replaces the target", func(t *testing.T, in Instance) {
			s := in.Store
			commit(t, s, objstore.CreateCollection("c"), objstore.CreateCollection("d"))
			commit(t, s, full("c", "src", "short")...)
			commit(t, s, append(full("d", "dst", "a much longer target"),
				objstore.SetAttr("d", "dst", "only-dst", []byte("1")))...)
			commit(t, s, objstore.CloneTo("c", "src", "d", "dst"))
			if d, src := dumpObject(t, s, "d", "dst"), dumpObject(t, s, "c", "src"); !equalObjects(d, src) {
				t.Fatalf("replaced target %s, want a copy of %s", d, src)
			}
		}},
		{"clone to the same collection and name", func(t *testing.T, in Instance) {
			s := in.Store
			commit(t, s, objstore.CreateCollection("c"))
			commit(t, s, full("c", "o", "same")...)
			before := dump(t, s)
			commit(t, s, objstore.CloneTo("c", "o", "c", "o"))
			unchanged(t, s, before, "a clone onto itself")
		}},
		{"collection usage", func(t *testing.T, in Instance) {
			s := in.Store
			ctx := context.Background()
			commit(t, s, objstore.CreateCollection("c"), objstore.CreateCollection("snap"))
			usage := func(c string) objstore.CollectionUsage {
				t.Helper()
				u, err := s.CollectionUsage(ctx, c)
				if err != nil {
					t.Fatalf("CollectionUsage(%s): %v", c, err)
				}
				if u.Exclusive < 0 || u.Exclusive > u.Referenced {
					t.Fatalf("usage of %s: %+v, want 0 <= Exclusive <= Referenced", c, u)
				}
				return u
			}
			if u := usage("c"); u != (objstore.CollectionUsage{}) {
				t.Fatalf("usage of an empty collection: %+v", u)
			}
			commit(t, s, objstore.Write("c", "o", 0, pattern(256<<10, 1)), objstore.Touch("c", "empty"))
			u := usage("c")
			if u.Objects != 2 || u.Referenced < 256<<10 || u.Exclusive != u.Referenced {
				t.Fatalf("usage of a collection holding 256 KiB nothing shares: %+v", u)
			}
			commit(t, s, objstore.CloneTo("c", "o", "snap", "o"))
			if su := usage("snap"); su.Objects != 1 || su.Referenced < 256<<10 {
				t.Fatalf("usage of the clone's collection: %+v", su)
			}
			// Once the source is gone, all the clone holds is its own.
			commit(t, s, objstore.Remove("c", "o"))
			if su := usage("snap"); su.Exclusive != su.Referenced || su.Referenced < 256<<10 {
				t.Fatalf("usage of a clone whose source was removed: %+v", su)
			}
			if _, err := s.CollectionUsage(ctx, "missing"); !errors.Is(err, objstore.ErrNotFound) {
				t.Fatalf("CollectionUsage of a missing collection = %v, want ErrNotFound", err)
			}
		}},
		{"rename", func(t *testing.T, in Instance) {
			s := in.Store
			commit(t, s, objstore.CreateCollection("c"))
			commit(t, s, full("c", "src", "moved")...)
			src := dumpObject(t, s, "c", "src")
			commit(t, s, objstore.Rename("c", "src", "dst"))
			if d := dumpObject(t, s, "c", "dst"); !equalObjects(d, src) {
				t.Fatalf("renamed object %s, want %s", d, src)
			}
			if _, err := s.Stat(context.Background(), "c", "src"); !errors.Is(err, objstore.ErrNotFound) {
				t.Fatalf("Stat of the old name = %v, want ErrNotFound", err)
			}
			commit(t, s, objstore.Rename("c", "dst", "src"), objstore.Rename("c", "src", "dst")) // back and forth
			if d := dumpObject(t, s, "c", "dst"); !equalObjects(d, src) {
				t.Fatalf("after renaming back and forth: %s", d)
			}
		}},
		{"rename onto itself", func(t *testing.T, in Instance) {
			s := in.Store
			commit(t, s, objstore.CreateCollection("c"))
			commit(t, s, full("c", "o", "same")...)
			before := dump(t, s)
			commit(t, s, objstore.Rename("c", "o", "o"))
			unchanged(t, s, before, "a rename onto itself")
		}},
	}
}
