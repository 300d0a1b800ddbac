package memstore

import (
	"bytes"
	"context"
	"errors"
	"testing"

	"github.com/cobaltstore/cobalt/node-daemon/objstore"
)

func TestFailedCommitChangesNothing(t *testing.T) {
	ctx := context.Background()
	s := New("u", 1<<20)
	if err := s.Commit(ctx, []objstore.Op{objstore.CreateCollection("c"), objstore.Write("c", "o", 0, []byte("abc"))}); err != nil {
		t.Fatal(err)
	}
	err := s.Commit(ctx, []objstore.Op{
		objstore.Write("c", "o", 0, []byte("XYZ")),
		objstore.SetAttr("c", "o", "a", []byte("1")),
		objstore.Remove("c", "missing"),
	})
	if !errors.Is(err, objstore.ErrNotFound) {
		t.Fatalf("commit = %v, want ErrNotFound", err)
	}
	got, _ := s.Read(ctx, "c", "o", 0, 10)
	if !bytes.Equal(got, []byte("abc")) {
		t.Fatalf("data after failed commit = %q", got)
	}
	if _, err := s.GetAttr(ctx, "c", "o", "a"); !errors.Is(err, objstore.ErrNotFound) {
		t.Fatalf("attr after failed commit: %v", err)
	}
	if err := s.Commit(ctx, []objstore.Op{objstore.Write("c", "big", 0, make([]byte, 2<<20))}); !errors.Is(err, objstore.ErrNoSpace) {
		t.Fatalf("over-capacity commit = %v, want ErrNoSpace", err)
	}
	if fs, _ := s.Statfs(ctx); fs.Used != 3 {
		t.Fatalf("used = %d, want 3", fs.Used)
	}
}

func TestOps(t *testing.T) {
	ctx := context.Background()
	s := New("u", 0)
	ops := []objstore.Op{
		objstore.CreateCollection("c"),
		objstore.Write("c", "a", 2, []byte("xy")),
		objstore.OmapSetKeys("c", "a", map[string][]byte{"k1": []byte("v1"), "k2": []byte("v2")}),
		objstore.OmapSetHeader("c", "a", []byte("h")),
		objstore.Clone("c", "a", "b"),
		objstore.Rename("c", "a", "r"),
		objstore.Zero("c", "b", 3, 3),
		objstore.OmapRmKeys("c", "r", []string{"k1"}),
	}
	if err := s.Commit(ctx, ops); err != nil {
		t.Fatal(err)
	}
	if got, _ := s.Read(ctx, "c", "b", 0, 100); !bytes.Equal(got, []byte{0, 0, 'x', 0, 0, 0}) {
		t.Errorf("clone+zero data = %q", got)
	}
	var keys []string
	if err := s.OmapIterate(ctx, "c", "r", "", func(k string, _ []byte) bool { keys = append(keys, k); return true }); err != nil {
		t.Fatal(err)
	}
	if len(keys) != 1 || keys[0] != "k2" {
		t.Errorf("omap keys of renamed object = %v", keys)
	}
	if objs, next, _ := s.ListObjects(ctx, "c", "", 1); len(objs) != 1 || objs[0] != "b" || next != "r" {
		t.Errorf("ListObjects page = %v next %q", objs, next)
	}
	if err := s.Commit(ctx, []objstore.Op{objstore.RemoveCollection("c")}); !errors.Is(err, objstore.ErrNotEmpty) {
		t.Errorf("remove non-empty collection = %v", err)
	}
}
