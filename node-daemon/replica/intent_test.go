package replica

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cobaltstore/cobalt/node-daemon/objstore"
	"github.com/cobaltstore/cobalt/node-daemon/objstore/memstore"
	"github.com/cobaltstore/cobalt/node-daemon/volume"
)

var errAttrSave = errors.New("injected: attribute save failed")

// intentStore counts the saves of the write-intent attribute and fails them while fail is set.
type intentStore struct {
	objstore.Store
	fail  atomic.Bool
	saves atomic.Int64
}

func (s *intentStore) Commit(ctx context.Context, ops []objstore.Op) error {
	for _, op := range ops {
		if op.Kind == objstore.OpSetAttr && op.Name == "user."+IntentAttr {
			if s.fail.Load() {
				return errAttrSave
			}
			s.saves.Add(1)
		}
	}
	return s.Store.Commit(ctx, ops)
}

// intentNode is a node serving one store with volume "v" of 8 MiB.
type intentNode struct {
	st   *intentStore
	node *Node
}

const intentVolSize = 8 << 20

func newIntentNode(t testing.TB, uuid string) *intentNode {
	t.Helper()
	ctx := context.Background()
	st := &intentStore{Store: memstore.New(uuid, 1<<30)}
	m, err := volume.Open(ctx, st)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := m.Create(ctx, "v", intentVolSize, 0); err != nil {
		t.Fatal(err)
	}
	return &intentNode{st: st, node: NewNode(oneStore{uuid, m})}
}

// restart returns a node over the same store, as after a daemon restart.
func (n *intentNode) restart(t *testing.T) *intentNode {
	t.Helper()
	m, err := volume.Open(context.Background(), n.st)
	if err != nil {
		t.Fatal(err)
	}
	return &intentNode{st: n.st, node: NewNode(oneStore{n.st.UUID(), m})}
}

func (n *intentNode) intent(t *testing.T, gen uint64) Intent {
	t.Helper()
	in, err := n.node.Intent(context.Background(), Ref{StoreUUID: n.st.UUID(), Volume: "v"}, gen)
	if err != nil {
		t.Fatalf("Intent: %v", err)
	}
	return in
}

func (n *intentNode) local(name string) *Local { return NewLocal(n.node, name, n.st.UUID(), "v") }

func regions(idx ...int64) []Extent {
	var out []Extent
	for _, i := range idx {
		out = append(out, Extent{Offset: i * IntentRegionSize, Length: IntentRegionSize})
	}
	return mergeExtents(out)
}

// TestIntentMarkedBeforeTheWrite: a write or trim is applied only once its regions are durably
// marked: when the mark cannot be saved it fails and is not applied; a region already saved costs
// no save; a copy without a log (older code) marks nothing.
func TestIntentMarkedBeforeTheWrite(t *testing.T) {
	ctx := context.Background()
	n := newIntentNode(t, "s1")
	u := n.st.UUID()
	data := bytes.Repeat([]byte{0x5a}, 8192)

	if err := n.node.Write(ctx, Ref{StoreUUID: u, Volume: "v"}, 1, 0, data); err != nil {
		t.Fatal(err)
	}
	if in := n.intent(t, 1); in.Tracking || in.Why == "" || n.st.saves.Load() != 0 {
		t.Fatalf("a volume without a log: intent %+v after %d saves, want none and no save", in, n.st.saves.Load())
	}
	if err := n.node.ClearIntent(ctx, Ref{StoreUUID: u, Volume: "v"}, 1, nil, true); err != nil {
		t.Fatal(err)
	}
	if in := n.intent(t, 1); !in.Tracking || len(in.Regions) != 0 {
		t.Fatalf("intent after the log started = %+v, want an empty log", in)
	}

	steps := []struct {
		name      string
		fail      bool
		op        func() error
		wantErr   bool
		wantSaves int64 // saves the step adds
		want      []Extent
		applied   func() bool
	}{
		{"write: the save fails, nothing applied", true,
			func() error { return n.node.Write(ctx, Ref{StoreUUID: u, Volume: "v"}, 1, 3<<20, data) }, true, 0, nil,
			func() bool { return n.reads(t, 3<<20, make([]byte, len(data))) }},
		{"trim: the save fails, nothing applied", true,
			func() error { return n.node.Trim(ctx, Ref{StoreUUID: u, Volume: "v"}, 1, 0, 4096) }, true, 0, nil,
			func() bool { return n.reads(t, 0, data[:4096]) }},
		{"write: saved, then applied", false,
			func() error { return n.node.Write(ctx, Ref{StoreUUID: u, Volume: "v"}, 1, 3<<20+4096, data) }, false, 1, regions(0, 3),
			func() bool { return n.reads(t, 3<<20+4096, data) }},
		{"write again in the region: no save", false,
			func() error { return n.node.Write(ctx, Ref{StoreUUID: u, Volume: "v"}, 1, 3<<20, data) }, false, 0, regions(0, 3),
			func() bool { return n.reads(t, 3<<20, data) }},
		{"trim across two regions: one save", false,
			func() error { return n.node.Trim(ctx, Ref{StoreUUID: u, Volume: "v"}, 1, 1<<20-4096, 8192) }, false, 1, regions(0, 1, 3),
			func() bool { return n.reads(t, 1<<20-4096, make([]byte, 8192)) }},
		{"a region the failed trim marked in memory was saved with the next save: no save", false,
			func() error { return n.node.Write(ctx, Ref{StoreUUID: u, Volume: "v"}, 1, 0, data[:4096]) }, false, 0, regions(0, 1, 3),
			func() bool { return n.reads(t, 0, data[:4096]) }},
	}
	for _, s := range steps {
		t.Run(s.name, func(t *testing.T) {
			n.st.fail.Store(s.fail)
			defer n.st.fail.Store(false)
			before := n.st.saves.Load()
			err := s.op()
			if s.wantErr != (err != nil) || s.wantErr && !errors.Is(err, errAttrSave) {
				t.Fatalf("op = %v, want an error: %v", err, s.wantErr)
			}
			if !s.applied() {
				t.Fatal("the volume does not hold what the operation's outcome says (applied only once marked)")
			}
			n.st.fail.Store(false)
			if got := n.st.saves.Load() - before; got != s.wantSaves {
				t.Fatalf("saves = %d, want %d", got, s.wantSaves)
			}
			if s.want != nil {
				if in := n.intent(t, 1); !slices.Equal(in.Regions, s.want) {
					t.Fatalf("intent = %+v, want %v", in.Regions, s.want)
				}
			}
		})
	}
	// The regions the failed operations marked in memory are in the log: a superset is safe.
	if in := n.intent(t, 1); !slices.Equal(in.Regions, regions(0, 1, 3)) {
		t.Fatalf("intent = %v, want regions 0, 1 and 3", in.Regions)
	}
}

// reads reports whether the volume holds want at off.
func (n *intentNode) reads(t *testing.T, off int64, want []byte) bool {
	t.Helper()
	got, err := n.node.Read(context.Background(), Ref{StoreUUID: n.st.UUID(), Volume: "v"}, 1, off, int64(len(want)))
	if err != nil {
		t.Fatal(err)
	}
	return bytes.Equal(got, want)
}

// TestIntentClearAndRestart: the log survives a restart; a clear of ranges unmarks only the
// regions they cover whole, a clear of all keeps the regions the ranges touch; a corrupt log
// counts as no log until a clear of all starts a new one.
func TestIntentClearAndRestart(t *testing.T) {
	ctx := context.Background()
	n := newIntentNode(t, "s1")
	u := n.st.UUID()
	if err := n.node.ClearIntent(ctx, Ref{StoreUUID: u, Volume: "v"}, 1, nil, true); err != nil {
		t.Fatal(err)
	}
	for _, r := range []int64{0, 2, 3, 7} {
		if err := n.node.Write(ctx, Ref{StoreUUID: u, Volume: "v"}, 1, r*IntentRegionSize+512, []byte{1}); err != nil {
			t.Fatal(err)
		}
	}
	n = n.restart(t)
	if in := n.intent(t, 1); !in.Tracking || !slices.Equal(in.Regions, regions(0, 2, 3, 7)) {
		t.Fatalf("intent after a restart = %+v, want regions 0, 2, 3, 7", in)
	}
	steps := []struct {
		name    string
		extents []Extent
		all     bool
		want    []Extent
		wantErr error
	}{
		{"a range not covering a region whole clears nothing", []Extent{{Offset: 2<<20 + 4096, Length: 1 << 20}}, false, regions(0, 2, 3, 7), nil},
		{"a range covering regions 2 and 3", []Extent{{Offset: 2 << 20, Length: 2 << 20}}, false, regions(0, 7), nil},
		{"a range reaching the end covers the last region", []Extent{{Offset: 7 << 20, Length: 1 << 40}}, false, regions(0), nil},
		{"a range outside the volume is refused", []Extent{{Offset: 8 << 20, Length: 4096}}, false, regions(0), objstore.ErrInvalid},
		{"all but what a range touches", []Extent{{Offset: 5<<20 + 4096, Length: 4096}}, true, regions(5), nil},
		{"all", nil, true, nil, nil},
	}
	for _, s := range steps {
		t.Run(s.name, func(t *testing.T) {
			err := n.node.ClearIntent(ctx, Ref{StoreUUID: u, Volume: "v"}, 1, s.extents, s.all)
			if !errors.Is(err, s.wantErr) || (err != nil) != (s.wantErr != nil) {
				t.Fatalf("ClearIntent = %v, want %v", err, s.wantErr)
			}
			n = n.restart(t) // every clear is durable
			if in := n.intent(t, 1); !in.Tracking || !slices.Equal(in.Regions, s.want) {
				t.Fatalf("intent = %+v, want %v", in, s.want)
			}
		})
	}

	// A corrupt log: no log (a full comparison), writes go on; a clear of all starts a new one.
	m, err := volume.Open(ctx, n.st)
	if err != nil {
		t.Fatal(err)
	}
	if err := m.SetUserAttr(ctx, "v", IntentAttr, []byte("CWIL garbage")); err != nil {
		t.Fatal(err)
	}
	n = n.restart(t)
	if in := n.intent(t, 1); in.Tracking || in.Why == "" {
		t.Fatalf("intent of a corrupt log = %+v, want no log, with why", in)
	}
	if err := n.node.Write(ctx, Ref{StoreUUID: u, Volume: "v"}, 1, 0, []byte{2}); err != nil {
		t.Fatalf("write with a corrupt log = %v", err)
	}
	if err := n.node.ClearIntent(ctx, Ref{StoreUUID: u, Volume: "v"}, 1, nil, true); err != nil {
		t.Fatal(err)
	}
	if in := n.restart(t).intent(t, 1); !in.Tracking || len(in.Regions) != 0 {
		t.Fatalf("intent after a clear of all = %+v, want an empty log", in)
	}
	if err := n.node.ClearIntent(ctx, Ref{StoreUUID: u, Volume: "v"}, 2, nil, true); err != nil {
		t.Fatal(err)
	}
	if err := n.node.ClearIntent(ctx, Ref{StoreUUID: u, Volume: "v"}, 1, nil, true); !errors.Is(err, ErrStaleGeneration) {
		t.Fatalf("a clear of an older generation = %v, want ErrStaleGeneration", err)
	}
}

// flakyFlush is a Local whose flushes fail while fail is set.
type flakyFlush struct {
	*Local
	fail atomic.Bool
}

func (f *flakyFlush) Flush(ctx context.Context, gen uint64) error {
	if f.fail.Load() {
		return errDisk
	}
	return f.Local.Flush(ctx, gen)
}

// TestCoordinatorClearsIntent: the coordinator clears a region's intent only after a flush every
// in-sync replica acknowledged, once the region is idle, never where a write failed (until
// Close, which keeps those and clears the rest).
func TestCoordinatorClearsIntent(t *testing.T) {
	ctx := context.Background()
	na, nb := newIntentNode(t, "sa"), newIntentNode(t, "sb")
	a, b := &flakyFlush{Local: na.local("a")}, &flakyFlush{Local: nb.local("b")}
	rec := &fakeRecorder{}
	co, err := Open(ctx, Config{Generation: 1, Local: a, Remotes: []Replica{b}, Recorder: rec, IntentClearInterval: -1, ReplicaTimeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := co.IntentExtents(ctx); !errors.Is(err, ErrNoIntent) {
		t.Fatalf("IntentExtents of replicas without a log = %v, want ErrNoIntent", err)
	}
	if err := co.ClearAllIntent(ctx); err != nil {
		t.Fatal(err)
	}
	both := func(want []Extent) {
		t.Helper()
		for _, n := range []*intentNode{na, nb} {
			if in := n.intent(t, 1); !in.Tracking || !slices.Equal(in.Regions, want) {
				t.Fatalf("intent of %s = %+v, want %v", n.st.UUID(), in, want)
			}
		}
		if got, err := co.IntentExtents(ctx); err != nil || !slices.Equal(got, want) {
			t.Fatalf("IntentExtents = %v, %v; want %v", got, err, want)
		}
	}
	data := bytes.Repeat([]byte{7}, 4096)
	for _, r := range []int64{1, 4} {
		if err := co.Write(ctx, r*IntentRegionSize, data); err != nil {
			t.Fatal(err)
		}
	}
	both(regions(1, 4))

	// Not idle long enough: nothing cleared, nothing flushed.
	if got, err := co.ClearIdleIntent(ctx, time.Hour); err != nil || got != 0 {
		t.Fatalf("ClearIdleIntent(1h) = %d, %v; want nothing cleared", got, err)
	}
	// The flush fails on every replica: nothing cleared.
	a.fail.Store(true)
	b.fail.Store(true)
	if got, err := co.ClearIdleIntent(ctx, 0); err == nil || got != 0 {
		t.Fatalf("ClearIdleIntent with failing flushes = %d, %v; want an error and nothing cleared", got, err)
	}
	both(regions(1, 4))
	a.fail.Store(false)
	b.fail.Store(false)

	// A write that fails on every replica (its range is undefined): its region stays marked.
	na.st.fail.Store(true)
	nb.st.fail.Store(true)
	if err := co.Write(ctx, 6*IntentRegionSize, data); err == nil {
		t.Fatal("a write whose marks cannot be saved anywhere succeeded")
	}
	na.st.fail.Store(false)
	nb.st.fail.Store(false)
	if err := co.Write(ctx, 6*IntentRegionSize, data); err != nil {
		t.Fatal(err)
	}
	both(regions(1, 4, 6))
	if got, err := co.ClearIdleIntent(ctx, 0); err != nil || got != 2 {
		t.Fatalf("ClearIdleIntent(0) = %d, %v; want regions 1 and 4 cleared", got, err)
	}
	both(regions(6))
	if marked, failed := co.IntentRegions(); marked != 1 || failed != 1 {
		t.Fatalf("IntentRegions = %d, %d; want the failed region only", marked, failed)
	}

	if err := co.Write(ctx, 2*IntentRegionSize, data); err != nil {
		t.Fatal(err)
	}
	if err := co.Close(ctx); err != nil {
		t.Fatal(err)
	}
	both(regions(6)) // the failed write's region is kept until a reconcile
	if err := co.ClearAllIntent(ctx); err != nil {
		t.Fatal(err)
	}
	both(regions(6))
	if len(rec.droppedNames()) != 0 {
		t.Fatalf("replicas dropped: %v", rec.droppedNames())
	}
}

// TestCoordinatorCleanCloseLeavesNoIntent: after writes and a clean Close no replica has intent,
// also after a restart; a background sweep started by writes clears idle regions by itself.
func TestCoordinatorCleanCloseLeavesNoIntent(t *testing.T) {
	ctx := context.Background()
	na, nb := newIntentNode(t, "sa"), newIntentNode(t, "sb")
	co, err := Open(ctx, Config{Generation: 1, Local: na.local("a"), Remotes: []Replica{nb.local("b")}, Recorder: &fakeRecorder{},
		IntentClearInterval: time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if err := co.ClearAllIntent(ctx); err != nil {
		t.Fatal(err)
	}
	// Writers in parallel with background sweeps: every region a writer wrote is marked on both
	// replicas unless the coordinator cleared it.
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 50 {
				off := int64((w*50+i)%8) * IntentRegionSize
				if err := co.Write(ctx, off, []byte{byte(i)}); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	co.intent.sweeps.Wait()
	co.intent.mu.Lock()
	var tracked []int64
	for i := range co.intent.mu.regions {
		tracked = append(tracked, i)
	}
	co.intent.mu.Unlock()
	slices.Sort(tracked)
	for _, n := range []*intentNode{na, nb} {
		in := n.intent(t, 1)
		for _, e := range regions(tracked...) {
			if !slices.ContainsFunc(in.Regions, func(r Extent) bool { return r.Offset <= e.Offset && e.Offset+e.Length <= r.Offset+r.Length }) {
				t.Fatalf("region %v the coordinator did not clear is not marked on %s (%v)", e, n.st.UUID(), in.Regions)
			}
		}
	}
	if err := co.Close(ctx); err != nil {
		t.Fatal(err)
	}
	for _, n := range []*intentNode{na, nb} {
		if in := n.restart(t).intent(t, 1); !in.Tracking || len(in.Regions) != 0 {
			t.Fatalf("intent of %s after a clean Close and a restart = %+v, want none", n.st.UUID(), in)
		}
	}
}

// TestCloseClearsWholeLogsOnlyOfReplicasVouchedFor: Close clears the whole log only of the
// replicas a ClearAllIntent vouched for (a reconcile found them equal); on the others it clears
// only the coordinator's own regions, so an older coordinator's unacknowledged write stays
// marked for the next reconcile.
func TestCloseClearsWholeLogsOnlyOfReplicasVouchedFor(t *testing.T) {
	for _, vouch := range []bool{false, true} {
		t.Run(fmt.Sprintf("vouched=%v", vouch), func(t *testing.T) {
			ctx := context.Background()
			na, nb := newIntentNode(t, "sa"), newIntentNode(t, "sb")
			for _, n := range []*intentNode{na, nb} {
				if err := n.node.ClearIntent(ctx, Ref{StoreUUID: n.st.UUID(), Volume: "v"}, 1, nil, true); err != nil {
					t.Fatal(err)
				}
			}
			// An older coordinator's write that landed on b only.
			if err := nb.node.Write(ctx, Ref{StoreUUID: nb.st.UUID(), Volume: "v"}, 1, 5<<20, []byte{9}); err != nil {
				t.Fatal(err)
			}
			co, err := Open(ctx, Config{Generation: 2, Local: na.local("a"), Remotes: []Replica{nb.local("b")}, Recorder: &fakeRecorder{}, IntentClearInterval: -1})
			if err != nil {
				t.Fatal(err)
			}
			if got, err := co.IntentExtents(ctx); err != nil || !slices.Equal(got, regions(5)) {
				t.Fatalf("IntentExtents = %v, %v; want region 5", got, err)
			}
			if vouch {
				if err := co.ClearAllIntent(ctx); err != nil {
					t.Fatal(err)
				}
			}
			if err := co.Write(ctx, 2<<20, []byte{1}); err != nil {
				t.Fatal(err)
			}
			if err := co.Close(ctx); err != nil {
				t.Fatal(err)
			}
			wantB := regions(5)
			if vouch {
				wantB = nil
			}
			if in := na.intent(t, 2); !in.Tracking || len(in.Regions) != 0 {
				t.Fatalf("intent of a after Close = %+v, want none", in)
			}
			if in := nb.intent(t, 2); !in.Tracking || !slices.Equal(in.Regions, wantB) {
				t.Fatalf("intent of b after Close = %+v, want %v", in, wantB)
			}
		})
	}
}
