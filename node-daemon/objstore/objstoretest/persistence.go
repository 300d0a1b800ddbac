package objstoretest

import (
	"testing"

	"github.com/cobaltstore/cobalt/node-daemon/objstore"
)

// runPersistence commits a varied state, reopens the store and checks that all of it survived
// (for an Instance without Reopen it only checks the state before reopening).
func runPersistence(t *testing.T, in Instance) {
	s := in.Store
	commit(t, s, objstore.CreateCollection("a"), objstore.CreateCollection("b"), objstore.CreateCollection("gone"))
	commit(t, s, full("a", "o1", "first")...)
	commit(t, s, full("a", "o2", "second")...)
	commit(t, s,
		objstore.Write("b", "big", 0, pattern(300<<10, 7)),
		objstore.Write("b", "big", 8000, []byte("small overwrite")),
		objstore.Zero("b", "big", 64<<10, 128<<10),
		objstore.Write("b", "sparse", 2<<20, []byte("after a hole")),
		objstore.Truncate("b", "sparse", 3<<20),
		objstore.Clone("a", "o1", "clone"),
		objstore.Rename("a", "o2", "renamed"),
		objstore.Touch("a", "removed"),
		objstore.Remove("a", "removed"),
		objstore.OmapRmKeys("a", "clone", []string{"k"}),
		objstore.RemoveCollection("gone"),
	)
	before := dump(t, s)
	if len(before["b"]["big"].Data) != 300<<10 || before["b"]["sparse"].Size != 3<<20 {
		t.Fatalf("state before reopening is not what was committed: %v", before["b"])
	}
	if in.Reopen == nil {
		t.Log("the implementation does not persist; checked the state without reopening")
		return
	}
	uuid := s.UUID()
	s = in.Reopen(t)
	if s.UUID() != uuid {
		t.Errorf("UUID %q after reopening, was %q", s.UUID(), uuid)
	}
	unchanged(t, s, before, "reopening")
	commit(t, s, objstore.Write("a", "o1", 0, []byte("written after reopening")), objstore.Remove("b", "big"))
	s = in.Reopen(t)
	if got := read(t, s, "a", "o1", 0, 100); string(got) != "written after reopening" {
		t.Errorf("after a second reopen: %q", got)
	}
}
