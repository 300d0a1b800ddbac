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
