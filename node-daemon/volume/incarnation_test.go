package volume

import (
	"context"
	"errors"
	"testing"

	"github.com/cobaltstore/cobalt/node-daemon/objstore"
)

// TestIncarnation: every volume has an incarnation that survives a reopen; a volume deleted and
// created again under the same ID, or made from another, has a new one; a volume made by older
// code (no attribute) gets one when first asked, durably.
func TestIncarnation(t *testing.T) {
	ctx := context.Background()
	m, st := newManager(t, 1<<30)
	info, err := m.Create(ctx, "v", 4*testStripe, testStripe)
	if err != nil {
		t.Fatal(err)
	}
	first, err := m.Incarnation(ctx, "v")
	if err != nil {
		t.Fatal(err)
	}
	if len(first) != 32 || info.Incarnation != first {
		t.Fatalf("Create's incarnation %q, Incarnation %q: want the same 32 hex digits", info.Incarnation, first)
	}
	if again, err := m.Create(ctx, "v", 4*testStripe, testStripe); err != nil || again.Incarnation != first {
		t.Fatalf("repeated Create = %q, %v; want the existing incarnation %q", again.Incarnation, err, first)
	}

	reopened, err := Open(ctx, st)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := reopened.Incarnation(ctx, "v"); err != nil || got != first {
		t.Fatalf("after reopen: %q, %v; want %q", got, err, first)
	}

	if err := m.Delete(ctx, "v"); err != nil {
		t.Fatal(err)
	}
	if _, err := m.Incarnation(ctx, "v"); !errors.Is(err, objstore.ErrNotFound) {
		t.Fatalf("incarnation of a deleted volume: %v, want ErrNotFound", err)
	}
	if _, err := m.Create(ctx, "v", 4*testStripe, testStripe); err != nil {
		t.Fatal(err)
	}
	second, err := m.Incarnation(ctx, "v")
	if err != nil {
		t.Fatal(err)
	}
	if second == first || second == "" {
		t.Fatalf("created again: incarnation %q, want a new one (the first was %q)", second, first)
	}

	clone, err := m.CloneVolume(ctx, "v", "c", 0)
	if err != nil {
		t.Fatal(err)
	}
	if clone.Incarnation == "" || clone.Incarnation == second {
		t.Fatalf("clone's incarnation %q: want its own (the source's is %q)", clone.Incarnation, second)
	}
}

// TestIncarnationOfOlderVolume: a volume without the attribute (made before it existed) reports
// none in Info until asked, then keeps the one it was given across a reopen.
func TestIncarnationOfOlderVolume(t *testing.T) {
	ctx := context.Background()
	_, st := newManager(t, 1<<30)
	c := CollectionName("old")
	p := params{size: 4 * testStripe, stripeSize: testStripe}
	if err := st.Commit(ctx, append([]objstore.Op{objstore.CreateCollection(c), objstore.Touch(c, metaObject)}, p.attrOps(c)...)); err != nil {
		t.Fatal(err)
	}
	m, err := Open(ctx, st)
	if err != nil {
		t.Fatal(err)
	}
	if info, err := m.Get(ctx, "old"); err != nil || info.Incarnation != "" {
		t.Fatalf("Get = %+v, %v; want no incarnation yet", info, err)
	}
	inc, err := m.Incarnation(ctx, "old")
	if err != nil || len(inc) != 32 {
		t.Fatalf("Incarnation = %q, %v; want 32 hex digits", inc, err)
	}
	m2, err := Open(ctx, st)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := m2.Incarnation(ctx, "old"); err != nil || got != inc {
		t.Fatalf("after reopen: %q, %v; want %q", got, err, inc)
	}
}
