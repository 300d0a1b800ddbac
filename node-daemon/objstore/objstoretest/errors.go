package objstoretest

import (
	"context"
	"errors"
	"math"
	"strings"
	"testing"

	"github.com/cobaltstore/cobalt/node-daemon/objstore"
)

// errorCase is one bad call and the sentinel its error must wrap.
type errorCase struct {
	name string
	call func(ctx context.Context, s objstore.Store) error
	want error
}

// commitCase is a transaction of ops that must fail with want.
func commitCase(name string, want error, ops ...objstore.Op) errorCase {
	return errorCase{name, func(ctx context.Context, s objstore.Store) error { return s.Commit(ctx, ops) }, want}
}

func readCase(name string, want error, c, o string, off, length int64) errorCase {
	return errorCase{name, func(ctx context.Context, s objstore.Store) error {
		_, err := s.Read(ctx, c, o, off, length)
		return err
	}, want}
}

// errorCases run against a store holding collection "c" with object "o" (data, attribute "a",
// omap key "k", a header) and object "p", and the empty collection "e".
func errorCases() []errorCase {
	var (
		inv, nf = objstore.ErrInvalid, objstore.ErrNotFound
		long    = func(n int) string { return strings.Repeat("x", n) }
		one     = []byte{1}
	)
	return []errorCase{
		// Names.
		commitCase("create collection with an empty name", inv, objstore.CreateCollection("")),
		commitCase("create collection with a name too long", inv, objstore.CreateCollection(long(objstore.MaxCollectionName+1))),
		commitCase("create collection with a NUL", inv, objstore.CreateCollection("a\x00b")),
		commitCase("remove collection with an empty name", inv, objstore.RemoveCollection("")),
		commitCase("touch in a collection with an empty name", inv, objstore.Touch("", "o")),
		commitCase("touch an object with an empty name", inv, objstore.Touch("c", "")),
		commitCase("touch an object with a name too long", inv, objstore.Touch("c", long(objstore.MaxObjectName+1))),
		commitCase("touch an object with a NUL", inv, objstore.Touch("c", "o\x00")),
		commitCase("set an attribute with an empty name", inv, objstore.SetAttr("c", "o", "", one)),
		commitCase("set an attribute with a name too long", inv, objstore.SetAttr("c", "o", long(objstore.MaxAttrName+1), one)),
		commitCase("remove an attribute with an empty name", inv, objstore.RmAttr("c", "o", "")),
		commitCase("set an empty omap key", inv, objstore.OmapSetKeys("c", "o", map[string][]byte{"": one})),
		commitCase("set an omap key too long", inv, objstore.OmapSetKeys("c", "o", map[string][]byte{long(objstore.MaxOmapKey + 1): one})),
		commitCase("remove an empty omap key", inv, objstore.OmapRmKeys("c", "o", []string{"k", ""})),
		commitCase("clone to an empty name", inv, objstore.Clone("c", "o", "")),
		commitCase("clone to a name too long", inv, objstore.Clone("c", "o", long(objstore.MaxObjectName+1))),
		commitCase("clone to another collection with an empty object name", inv, objstore.CloneTo("c", "o", "e", "")),
		commitCase("clone to a collection with an empty name", inv, objstore.CloneTo("c", "o", "", "x")),
		commitCase("clone to a collection with a name too long", inv, objstore.CloneTo("c", "o", long(objstore.MaxCollectionName+1), "x")),
		commitCase("clone from a collection with an empty name", inv, objstore.CloneTo("", "o", "e", "x")),
		commitCase("rename to an empty name", inv, objstore.Rename("c", "o", "")),
		commitCase("rename to a name with a NUL", inv, objstore.Rename("c", "o", "\x00")),
		// Offsets and lengths.
		commitCase("write at a negative offset", inv, objstore.Write("c", "o", -1, one)),
		commitCase("write whose end overflows", inv, objstore.Write("c", "o", math.MaxInt64, one)),
		commitCase("zero at a negative offset", inv, objstore.Zero("c", "o", -1, 1)),
		commitCase("zero of a negative length", inv, objstore.Zero("c", "o", 0, -5)),
		commitCase("zero whose end overflows", inv, objstore.Zero("c", "o", math.MaxInt64-1, 10)),
		commitCase("truncate to a negative size", inv, objstore.Truncate("c", "o", -1)),
		// Kinds.
		commitCase("op of kind 0", inv, objstore.Op{Collection: "c", Object: "o"}),
		commitCase("op of an unknown kind", inv, objstore.Op{Kind: 200, Collection: "c", Object: "o"}),
		commitCase("invalid op after valid ones", inv, objstore.Touch("c", "new"), objstore.Write("c", "o", -1, one)),
		// Existence.
		commitCase("create an existing collection", objstore.ErrExists, objstore.CreateCollection("c")),
		commitCase("create a collection twice", objstore.ErrExists, objstore.CreateCollection("n"), objstore.CreateCollection("n")),
		commitCase("remove a missing collection", nf, objstore.RemoveCollection("missing")),
		commitCase("remove a non-empty collection", objstore.ErrNotEmpty, objstore.RemoveCollection("c")),
		commitCase("remove a collection filled in the same transaction", objstore.ErrNotEmpty, objstore.Touch("e", "x"), objstore.RemoveCollection("e")),
		commitCase("touch in a missing collection", nf, objstore.Touch("missing", "o")),
		commitCase("write in a missing collection", nf, objstore.Write("missing", "o", 0, one)),
		commitCase("zero in a missing collection", nf, objstore.Zero("missing", "o", 0, 1)),
		commitCase("truncate a missing object", nf, objstore.Truncate("c", "missing", 0)),
		commitCase("remove a missing object", nf, objstore.Remove("c", "missing")),
		commitCase("remove an object twice", nf, objstore.Remove("c", "p"), objstore.Remove("c", "p")),
		commitCase("set an attribute of a missing object", nf, objstore.SetAttr("c", "missing", "a", one)),
		commitCase("remove an attribute of a missing object", nf, objstore.RmAttr("c", "missing", "a")),
		commitCase("set omap keys of a missing object", nf, objstore.OmapSetKeys("c", "missing", map[string][]byte{"k": one})),
		commitCase("remove omap keys of a missing object", nf, objstore.OmapRmKeys("c", "missing", []string{"k"})),
		commitCase("clear the omap of a missing object", nf, objstore.OmapClear("c", "missing")),
		commitCase("set the omap header of a missing object", nf, objstore.OmapSetHeader("c", "missing", one)),
		commitCase("clone a missing object", nf, objstore.Clone("c", "missing", "x")),
		commitCase("clone a missing object to another collection", nf, objstore.CloneTo("c", "missing", "e", "x")),
		commitCase("clone to a missing collection", nf, objstore.CloneTo("c", "o", "missing", "x")),
		commitCase("clone from a missing collection", nf, objstore.CloneTo("missing", "o", "e", "x")),
		commitCase("rename a missing object", nf, objstore.Rename("c", "missing", "x")),
		commitCase("rename onto an existing object", objstore.ErrExists, objstore.Rename("c", "o", "p")),
		// Reads.
		readCase("read at a negative offset", inv, "c", "o", -1, 1),
		readCase("read of a negative length", inv, "c", "o", 0, -1),
		readCase("read whose end overflows", inv, "c", "o", math.MaxInt64, 1),
		readCase("read an object with an empty name", inv, "c", "", 0, 1),
		readCase("read in a collection with an empty name", inv, "", "o", 0, 1),
		readCase("read a missing object", nf, "c", "missing", 0, 1),
		readCase("read in a missing collection", nf, "missing", "o", 0, 1),
		readCase("read a missing object of an empty collection", nf, "e", "o", 0, 1),
		{"stat an object with a NUL", func(ctx context.Context, s objstore.Store) error {
			_, err := s.Stat(ctx, "c", "o\x00")
			return err
		}, inv},
		{"stat a missing object", func(ctx context.Context, s objstore.Store) error {
			_, err := s.Stat(ctx, "c", "missing")
			return err
		}, nf},
		{"get an attribute with an empty name", func(ctx context.Context, s objstore.Store) error {
			_, err := s.GetAttr(ctx, "c", "o", "")
			return err
		}, inv},
		{"get a missing attribute", func(ctx context.Context, s objstore.Store) error {
			_, err := s.GetAttr(ctx, "c", "o", "missing")
			return err
		}, nf},
		{"get an attribute of a missing object", func(ctx context.Context, s objstore.Store) error {
			_, err := s.GetAttr(ctx, "c", "missing", "a")
			return err
		}, nf},
		{"get the attributes of a missing object", func(ctx context.Context, s objstore.Store) error {
			_, err := s.GetAttrs(ctx, "c", "missing")
			return err
		}, nf},
		{"get omap keys of a missing object", func(ctx context.Context, s objstore.Store) error {
			_, err := s.OmapGet(ctx, "c", "missing", []string{"k"})
			return err
		}, nf},
		{"get the omap header of a missing object", func(ctx context.Context, s objstore.Store) error {
			_, err := s.OmapGetHeader(ctx, "c", "missing")
			return err
		}, nf},
		{"iterate the omap of a missing object", func(ctx context.Context, s objstore.Store) error {
			return s.OmapIterate(ctx, "c", "missing", "", func(string, []byte) bool { return true })
		}, nf},
		{"iterate the omap of an object with an empty name", func(ctx context.Context, s objstore.Store) error {
			return s.OmapIterate(ctx, "c", "", "", func(string, []byte) bool { return true })
		}, inv},
		{"list a missing collection", func(ctx context.Context, s objstore.Store) error {
			_, _, err := s.ListObjects(ctx, "missing", "", 10)
			return err
		}, nf},
		{"list with limit 0", func(ctx context.Context, s objstore.Store) error {
			_, _, err := s.ListObjects(ctx, "c", "", 0)
			return err
		}, inv},
		{"list with a negative limit", func(ctx context.Context, s objstore.Store) error {
			_, _, err := s.ListObjects(ctx, "c", "", -1)
			return err
		}, inv},
		{"list a collection with an empty name", func(ctx context.Context, s objstore.Store) error {
			_, _, err := s.ListObjects(ctx, "", "", 10)
			return err
		}, inv},
	}
}

// runErrors checks every error case against one store, and that none of them changed it.
func runErrors(t *testing.T, in Instance) {
	s := in.Store
	commit(t, s, objstore.CreateCollection("c"), objstore.CreateCollection("e"), objstore.Touch("c", "p"))
	commit(t, s, full("c", "o", "fixture")...)
	before := dump(t, s)
	ctx := context.Background()
	for _, tc := range errorCases() {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.call(ctx, s)
			if !errors.Is(err, tc.want) {
				t.Fatalf("error %v, want %v", err, tc.want)
			}
		})
	}
	unchanged(t, s, before, "the failing calls")
}
