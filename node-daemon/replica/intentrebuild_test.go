package replica

import (
	"bytes"
	"context"
	"errors"
	"slices"
	"sync/atomic"
	"testing"
	"time"
)

// writeGate is a Local whose writes fail while fail is set, before they reach the node (nothing
// applied, nothing marked), and that runs onFlush once before its next flush when it is set.
type writeGate struct {
	*Local
	fail    atomic.Bool
	onFlush atomic.Pointer[func()]
}

func (w *writeGate) Write(ctx context.Context, gen uint64, off int64, data []byte) error {
	if w.fail.Load() {
		return errDisk
	}
	return w.Local.Write(ctx, gen, off, data)
}

func (w *writeGate) Flush(ctx context.Context, gen uint64) error {
	if f := w.onFlush.Swap(nil); f != nil {
		(*f)()
	}
	return w.Local.Flush(ctx, gen)
}

// covers reports whether every region of want lies in got.
func covers(got, want []Extent) bool {
	return len(subtractExtents(mergeExtents(want), mergeExtents(got))) == 0
}

// TestRebuiltReplicaKeepsIntent: a replica a Rebuild put in sync keeps a write-intent log from
// then on, holding the source's intent (where the source may differ from the others), the regions
// written during and after the rebuild, and the regions where a write failed on the in-sync
// replicas but may have landed on it; it is vouched for (Close clears its whole log but the failed
// regions) exactly when its source is. A divergence the source's log covered is still found once
// the source is gone.
func TestRebuiltReplicaKeepsIntent(t *testing.T) {
	cases := []struct {
		name string
		// sourceLog: the source and the other in-sync replica keep a log from before this
		// coordinator, and an older coordinator's write landed on the source only (region 5).
		sourceLog bool
		vouch     bool // a reconcile vouched for the in-sync replicas (ClearAllIntent)
		// failAfterCompare: a write fails on every in-sync replica between the rebuild's
		// comparison and its promotion, and lands on the target only (region 6).
		failAfterCompare bool
		wantAfter        []Extent // the target's log right after the rebuild and a write to region 4
		wantClosed       []Extent // the target's log after Close
	}{
		{"source vouched for", false, true, false, regions(1, 3, 4), nil},
		{"source with an older coordinator's write, not vouched for", true, false, false, regions(1, 3, 4, 5), regions(5)},
		{"source without a log: the whole volume", false, false, false, regions(0, 1, 2, 3, 4, 5, 6, 7), regions(0, 2, 5, 6, 7)},
		{"a write failed everywhere in sync after the comparison", false, true, true, regions(1, 3, 4, 6), regions(6)},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			na, nb, nc := newIntentNode(t, "sa"), newIntentNode(t, "sb"), newIntentNode(t, "sc")
			if tc.sourceLog {
				for _, n := range []*intentNode{na, nb} {
					if err := n.node.ClearIntent(ctx, Ref{StoreUUID: n.st.UUID(), Volume: "v"}, 1, nil, true); err != nil {
						t.Fatal(err)
					}
				}
				if err := na.node.Write(ctx, Ref{StoreUUID: na.st.UUID(), Volume: "v"}, 1, 5<<20, []byte{9}); err != nil {
					t.Fatal(err)
				}
			}
			a, b, c := &writeGate{Local: na.local("a")}, &writeGate{Local: nb.local("b")}, &writeGate{Local: nc.local("c")}
			co, err := Open(ctx, Config{Generation: 2, Local: a, Remotes: []Replica{b}, Recorder: &fakeRecorder{}, IntentClearInterval: -1, ReplicaTimeout: 5 * time.Second})
			if err != nil {
				t.Fatal(err)
			}
			if tc.vouch {
				if err := co.ClearAllIntent(ctx); err != nil {
					t.Fatal(err)
				}
			}
			data := bytes.Repeat([]byte{7}, 4096)
			if err := co.Write(ctx, 1<<20, data); err != nil {
				t.Fatal(err)
			}
			if in := nc.intent(t, 2); in.Tracking {
				t.Fatalf("intent of the new copy before the rebuild = %+v, want no log", in)
			}
			var during atomic.Bool // one write during the copy
			progress := func(Progress) {
				if during.CompareAndSwap(false, true) {
					if err := co.Write(ctx, 3<<20, data); err != nil {
						t.Error(err)
					}
				}
			}
			if tc.failAfterCompare {
				f := func() {
					a.fail.Store(true)
					b.fail.Store(true)
					defer a.fail.Store(false)
					defer b.fail.Store(false)
					if err := co.Write(ctx, 6<<20, data); err == nil {
						t.Error("a write that failed on every in-sync replica succeeded")
					}
				}
				// The target's flush runs right after the comparison, before the promotion;
				// the copy does not flush it.
				c.onFlush.Store(&f)
			}
			if _, err := co.Rebuild(ctx, "a", c, SyncOptions{Progress: progress}); err != nil {
				t.Fatal(err)
			}
			if !during.Load() {
				t.Fatal("no write ran during the copy")
			}
			if tc.failAfterCompare {
				got, err := nc.node.Read(ctx, Ref{StoreUUID: nc.st.UUID(), Volume: "v"}, 2, 6<<20, int64(len(data)))
				if err != nil || !bytes.Equal(got, data) {
					t.Fatalf("the failed write did not land on the target (%v)", err)
				}
			}
			if err := co.Write(ctx, 4<<20, data); err != nil {
				t.Fatal(err)
			}
			in := nc.intent(t, 2)
			if !in.Tracking || !slices.Equal(in.Regions, tc.wantAfter) {
				t.Fatalf("intent of the rebuilt copy = %+v, want %v", in, tc.wantAfter)
			}
			// Where the copies may differ, one of their logs says so: the target's log holds
			// at least the source's.
			if src := na.intent(t, 2); src.Tracking && !covers(in.Regions, src.Regions) {
				t.Fatalf("intent of the rebuilt copy %v does not cover the source's %v", in.Regions, src.Regions)
			}
			if err := co.Close(ctx); err != nil {
				t.Fatal(err)
			}
			if in := nc.restart(t).intent(t, 2); !in.Tracking || !slices.Equal(in.Regions, tc.wantClosed) {
				t.Fatalf("intent of the rebuilt copy after Close and a restart = %+v, want %v", in, tc.wantClosed)
			}

			// The source is gone: the next coordinator knows only b and c. What they may
			// differ in (the source's older write, now on c too) is in their intent.
			co3, err := Open(ctx, Config{Generation: 3, Local: nb.local("b"), Remotes: []Replica{nc.local("c")}, Recorder: &fakeRecorder{}, IntentClearInterval: -1})
			if err != nil {
				t.Fatal(err)
			}
			ext, err := co3.IntentExtents(ctx)
			if !tc.vouch && !tc.sourceLog {
				if !errors.Is(err, ErrNoIntent) {
					t.Fatalf("IntentExtents with b keeping no log = %v, %v; want ErrNoIntent", ext, err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			res, err := co3.Verify(ctx, ext, SyncOptions{})
			if err != nil {
				t.Fatal(err)
			}
			var want []int64 // the regions where b and c differ
			if tc.sourceLog {
				want = append(want, 5)
			}
			if tc.failAfterCompare {
				want = append(want, 6)
			}
			var got []int64
			for _, m := range res.Mismatches {
				got = append(got, m.Offset/IntentRegionSize)
			}
			if !slices.Equal(got, want) {
				t.Fatalf("the comparison of the intent %v found differences in regions %v, want %v", ext, got, want)
			}
		})
	}
}

// TestResyncedReplicaKeepsItsLog: a resync compares only the target's dirty regions, so a target
// that keeps no log does not start one, and one that keeps a log keeps its marks (an older mark
// outside the dirty regions included, also after Close: it is not vouched for).
func TestResyncedReplicaKeepsItsLog(t *testing.T) {
	for _, withLog := range []bool{false, true} {
		name := "without a log"
		if withLog {
			name = "with a log"
		}
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			na, nb := newIntentNode(t, "sa"), newIntentNode(t, "sb")
			b := &writeGate{Local: nb.local("b")}
			co, err := Open(ctx, Config{Generation: 1, Local: na.local("a"), Remotes: []Replica{b}, Recorder: &fakeRecorder{}, IntentClearInterval: -1, ReplicaTimeout: 5 * time.Second})
			if err != nil {
				t.Fatal(err)
			}
			if withLog {
				if err := co.ClearAllIntent(ctx); err != nil {
					t.Fatal(err)
				}
			}
			data := bytes.Repeat([]byte{3}, 4096)
			if err := co.Write(ctx, 1<<20, data); err != nil {
				t.Fatal(err)
			}
			b.fail.Store(true)
			if err := co.Write(ctx, 2<<20, data); err != nil { // drops b
				t.Fatal(err)
			}
			b.fail.Store(false)
			if got := co.InSync(); !slices.Equal(got, []string{"a"}) {
				t.Fatalf("in sync = %v, want a only", got)
			}
			// A mark b holds outside its dirty regions (a write of an older coordinator).
			if err := nb.node.Write(ctx, Ref{StoreUUID: nb.st.UUID(), Volume: "v"}, 1, 5<<20, []byte{1}); err != nil {
				t.Fatal(err)
			}
			if _, err := co.Resync(ctx, "a", b, SyncOptions{}); err != nil {
				t.Fatal(err)
			}
			in := nb.intent(t, 1)
			if !withLog {
				if in.Tracking {
					t.Fatalf("intent of a resynced copy that kept no log = %+v, want still none", in)
				}
				return
			}
			if !in.Tracking || !covers(in.Regions, regions(1, 2, 5)) {
				t.Fatalf("intent of the resynced copy = %+v, want at least regions 1, 2 and 5", in)
			}
			if err := co.Close(ctx); err != nil {
				t.Fatal(err)
			}
			if in := nb.intent(t, 1); !in.Tracking || !slices.Equal(in.Regions, regions(5)) {
				t.Fatalf("intent of the resynced copy after Close = %+v, want region 5 kept", in)
			}
		})
	}
}

// TestRebuildFailsWhenTheTargetsLogCannotStart: a rebuilt replica is put in sync only with its
// write-intent log started; when the log cannot be saved the rebuild fails (nobody is dropped, the
// target stays out of sync) and a later rebuild succeeds.
func TestRebuildFailsWhenTheTargetsLogCannotStart(t *testing.T) {
	ctx := context.Background()
	na, nb := newIntentNode(t, "sa"), newIntentNode(t, "sb")
	rec := &fakeRecorder{}
	co, err := Open(ctx, Config{Generation: 1, Local: na.local("a"), Recorder: rec, IntentClearInterval: -1, ReplicaTimeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	if err := co.ClearAllIntent(ctx); err != nil {
		t.Fatal(err)
	}
	if err := co.Write(ctx, 2<<20, bytes.Repeat([]byte{5}, 4096)); err != nil {
		t.Fatal(err)
	}
	nb.st.fail.Store(true)
	if _, err := co.Rebuild(ctx, "a", nb.local("b"), SyncOptions{}); !errors.Is(err, errAttrSave) {
		t.Fatalf("rebuild whose target cannot save its log = %v, want the save's error", err)
	}
	if got := co.InSync(); !slices.Equal(got, []string{"a"}) || len(rec.droppedNames()) != 0 {
		t.Fatalf("in sync = %v, dropped %v; want a only, nobody dropped", got, rec.droppedNames())
	}
	nb.st.fail.Store(false)
	if _, err := co.Rebuild(ctx, "a", nb.local("b"), SyncOptions{}); err != nil {
		t.Fatal(err)
	}
	if in := nb.restart(t).intent(t, 1); !in.Tracking || !slices.Equal(in.Regions, regions(2)) {
		t.Fatalf("intent of the rebuilt copy after a restart = %+v, want region 2", in)
	}
}
