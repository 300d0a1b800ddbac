package replvol

import (
	"bytes"
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/cobaltstore/cobalt/api/v1alpha1"
	"github.com/cobaltstore/cobalt/node-daemon/csinode"
	"github.com/cobaltstore/cobalt/node-daemon/replica"
)

// unacked applies data at off on node i's copy only, at generation gen, through the node's
// fenced replica I/O: a write of a coordinator that died (or was replaced) before the other copies
// had it. The copy marks the range in its write-intent log before it applies it, as it does for
// every write.
func (h *harness) unacked(t *testing.T, i int, gen uint64, off int64, data []byte) {
	t.Helper()
	if err := h.nodes[i].replicas().Write(context.Background(), replica.Ref{StoreUUID: h.nodes[i].uuid, Volume: testUID}, gen, off, data); err != nil {
		t.Fatalf("write on %s alone: %v", h.nodes[i].store, err)
	}
}

// intentOf returns the write-intent log of node i's copy.
func (h *harness) intentOf(t *testing.T, i int, gen uint64) replica.Intent {
	t.Helper()
	in, err := h.nodes[i].replicas().Intent(context.Background(), replica.Ref{StoreUUID: h.nodes[i].uuid, Volume: testUID}, gen)
	if err != nil {
		t.Fatalf("write intent of %s: %v", h.nodes[i].store, err)
	}
	return in
}

// TestOpenReconcilesCopies: copies left different by a coordinator that is gone (here: a write
// that landed on one copy only between a Close and the next Open, as an unacknowledged write of a
// coordinator that died leaves them; with rot, the landed block then rots there) compare equal
// once Open returns, repaired from the majority, else from the first in-sync copy (the local
// one) that read the block. The reconcile compares only the regions of the copies' write intent,
// and clears it once the copies agree.
func TestOpenReconcilesCopies(t *testing.T) {
	const damaged = 1<<20 + 8192
	cases := []struct {
		name   string
		copies int
		bad    int  // the node the unacknowledged write landed on (0 is the coordinator's); -1: none
		rot    bool // the landed block rots (the engine refuses it); otherwise it changed the block
		// original: the copies end with the written data (else with the bad copy's)
		original bool
		reason   string
	}{
		{"equal copies", 3, -1, false, true, ReasonScrubEqual},
		{"three copies, majority against the local one", 3, 0, false, true, ReasonScrubRepaired},
		{"three copies, rot on a remote one", 3, 2, true, true, ReasonScrubRepaired},
		{"two copies, no majority, the local one wins", 2, 1, false, true, ReasonScrubRepaired},
		{"two copies, no majority, the local one's version is kept", 2, 0, false, false, ReasonScrubRepaired},
		{"two copies, rot on the local one", 2, 0, true, true, ReasonScrubRepaired},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, tc.copies)
			h.createVolume(t, 1, inSyncCopies(tc.copies)...)
			v := h.volumes(t, never)
			ctx := context.Background()
			data := pattern(31, 2<<20)
			first := h.open(t, v, 1)
			if err := first.WriteAt(ctx, data, 0); err != nil {
				t.Fatal(err)
			}
			if err := first.Close(ctx); err != nil {
				t.Fatal(err)
			}
			for i := range h.nodes {
				if in := h.intentOf(t, i, 1); !in.Tracking || len(in.Regions) != 0 {
					t.Fatalf("write intent of %s after a clean Close = %+v, want a log without regions", h.nodes[i].store, in)
				}
			}
			if tc.bad >= 0 {
				block := slices.Clone(data[damaged : damaged+4096])
				if !tc.rot {
					for i := range block {
						block[i] = ^block[i]
					}
				}
				h.unacked(t, tc.bad, 1, damaged, block)
				if tc.rot {
					h.nodes[tc.bad].damage(t, damaged, 4096, true)
				}
			}
			var kept []byte
			if !tc.original {
				kept = h.nodes[tc.bad].read(t, 1, damaged, 4096)
			}

			b := h.open(t, v, 1)
			c := h.scrubCondition(t)
			scope := "reconcile at open over the write intent (0 regions, 0 MiB) by node"
			if tc.bad >= 0 {
				scope = "reconcile at open over the write intent (1 region, 1 MiB) by node"
			}
			if c == nil || c.Status != metav1.ConditionTrue || c.Reason != tc.reason || !strings.HasPrefix(c.Message, scope) {
				t.Fatalf("Scrubbed condition after Open = %+v, want True/%s recorded by the reconcile at open (%q)", c, tc.reason, scope)
			}
			if tc.bad >= 0 && !strings.Contains(c.Message, h.nodes[tc.bad].store) {
				t.Fatalf("Scrubbed condition %q does not name the damaged copy %s", c.Message, h.nodes[tc.bad].store)
			}
			if tc.rot {
				if left, hits := h.nodes[tc.bad].rot.rotten(); left || hits == 0 {
					t.Fatalf("rotten range left: %v, reads refused: %d", left, hits)
				}
			}
			for i := range h.nodes {
				if tc.original {
					h.checkCopy(t, i, 1, 0, data)
					continue
				}
				h.checkCopy(t, i, 1, 0, data[:damaged])
				h.checkCopy(t, i, 1, damaged, kept)
				h.checkCopy(t, i, 1, damaged+4096, data[damaged+4096:])
			}
			got := make([]byte, 4096)
			if err := b.ReadAt(ctx, got, damaged); err != nil {
				t.Fatal(err)
			}
			if want := data[damaged : damaged+4096]; !tc.original && !bytes.Equal(got, kept) || tc.original && !bytes.Equal(got, want) {
				t.Fatal("a read after Open does not return the reconciled block")
			}
			// Only the intent region was compared (and the repaired block again), not the 2 MiB
			// written.
			var want int64
			if tc.bad >= 0 {
				want = regionSize + replica.DefaultCompareBlock
			}
			for i := range h.nodes {
				if s := stat(t, v, h.nodes[i].store); s.ScrubbedBytes != want {
					t.Fatalf("stat of %s = %+v, want %d bytes compared by the reconcile", h.nodes[i].store, s, want)
				}
				if in := h.intentOf(t, i, 1); !in.Tracking || len(in.Regions) != 0 {
					t.Fatalf("write intent of %s after the reconcile = %+v, want it cleared", h.nodes[i].store, in)
				}
			}
		})
	}
}

// TestTakeoverReconcilesOnlyTheIntent: a coordinator still open (generation 1) has acknowledged
// writes whose intent it cleared and one write that landed on one copy only; a newer coordinator
// (generation 2, the node restarted) compares only the region of that write and repairs it.
func TestTakeoverReconcilesOnlyTheIntent(t *testing.T) {
	h := newHarness(t, 3)
	h.createVolume(t, 1, inSyncCopies(3)...)
	ctx := context.Background()
	old := h.volumes(t, never)
	be, _, err := old.Open(ctx, openReq(1))
	if err != nil {
		t.Fatal(err)
	}
	first := be.(*backend)
	data := pattern(41, 6<<20)
	if err := first.WriteAt(ctx, data, 0); err != nil {
		t.Fatal(err)
	}
	if err := first.WriteAt(ctx, data[3<<20:4<<20], 3<<20); err != nil { // a hot region
		t.Fatal(err)
	}
	if n, err := first.co.ClearIdleIntent(ctx, 0); err != nil || n != 6 {
		t.Fatalf("ClearIdleIntent = %d, %v; want the 6 regions written cleared", n, err)
	}
	const landed = 5<<20 + 12288
	h.unacked(t, 2, 1, landed, pattern(42, 4096))
	for i := range h.nodes {
		want := 0
		if i == 2 {
			want = 1
		}
		if in := h.intentOf(t, i, 1); !in.Tracking || len(in.Regions) != want {
			t.Fatalf("write intent of %s = %+v, want %d region", h.nodes[i].store, in, want)
		}
	}

	vol := h.volume(t)
	vol.Status.Attachment.Generation = 2
	if err := h.client.Status().Update(ctx, vol); err != nil {
		t.Fatal(err)
	}
	v := h.volumes(t, never)
	b := h.open(t, v, 2)
	if err := first.Close(ctx); !errors.Is(err, csinode.ErrFenced) {
		t.Fatalf("Close of the replaced coordinator = %v, want fenced", err)
	}
	c := h.scrubCondition(t)
	if c == nil || c.Reason != ReasonScrubRepaired || !strings.HasPrefix(c.Message, "reconcile at open over the write intent (1 region, 1 MiB)") ||
		!strings.Contains(c.Message, h.nodes[2].store) {
		t.Fatalf("Scrubbed condition after the takeover = %+v, want the landed block repaired on %s", c, h.nodes[2].store)
	}
	for i := range h.nodes {
		h.checkCopy(t, i, 2, 0, data)
		if s := stat(t, v, h.nodes[i].store); s.ScrubbedBytes != regionSize+replica.DefaultCompareBlock {
			t.Fatalf("stat of %s = %+v, want only the intent region (and the repaired block) compared", h.nodes[i].store, s)
		}
	}
	got := make([]byte, 4096)
	if err := b.ReadAt(ctx, got, landed); err != nil || !bytes.Equal(got, data[landed:landed+4096]) {
		t.Fatalf("read of the repaired block = %v, want the acknowledged data", err)
	}
}

// TestOpenWithoutIntentComparesEverything: copies written by older code (no write-intent log:
// here written through the nodes before any coordinator started a log) get the full comparison
// at Open, which finds a difference anywhere; once they agree, every copy keeps a log.
func TestOpenWithoutIntentComparesEverything(t *testing.T) {
	h := newHarness(t, 2)
	h.createVolume(t, 1, inSyncCopies(2)...)
	ctx := context.Background()
	data := pattern(51, 3<<20)
	for i := range h.nodes {
		h.unacked(t, i, 1, 0, data)
		if in := h.intentOf(t, i, 1); in.Tracking || in.Why == "" {
			t.Fatalf("write intent of %s written by older code = %+v, want none, with why", h.nodes[i].store, in)
		}
	}
	const damaged = 2<<20 + 4096
	h.nodes[1].damage(t, damaged, 4096, false)

	v := h.volumes(t, never)
	b := h.open(t, v, 1)
	c := h.scrubCondition(t)
	if c == nil || c.Reason != ReasonScrubRepaired || !strings.HasPrefix(c.Message, "reconcile at open over every written extent") {
		t.Fatalf("Scrubbed condition = %+v, want the full comparison repairing the damaged block", c)
	}
	for i := range h.nodes {
		h.checkCopy(t, i, 1, 0, data)
		if s := stat(t, v, h.nodes[i].store); s.ScrubbedBytes < int64(len(data)) {
			t.Fatalf("stat of %s = %+v, want every written byte compared", h.nodes[i].store, s)
		}
		if in := h.intentOf(t, i, 1); !in.Tracking || len(in.Regions) != 0 {
			t.Fatalf("write intent of %s after the reconcile = %+v, want an empty log", h.nodes[i].store, in)
		}
	}
	if err := b.WriteAt(ctx, pattern(52, 4096), 1<<20); err != nil {
		t.Fatal(err)
	}
	for i := range h.nodes {
		if in := h.intentOf(t, i, 1); len(in.Regions) != 1 || in.Regions[0] != (replica.Extent{Offset: 1 << 20, Length: regionSize}) {
			t.Fatalf("write intent of %s after a write = %+v, want its region", h.nodes[i].store, in)
		}
	}
}

func TestPlanRepairsWithAuthority(t *testing.T) {
	ext := func(off int64) replica.Extent { return replica.Extent{Offset: off, Length: 4096} }
	mism := []replica.Mismatch{
		{Extent: ext(0), Checksums: map[string]uint32{"a": 1, "b": 1, "c": 2}},
		{Extent: ext(4096), Checksums: map[string]uint32{"a": 1, "b": 2}},
		{Extent: ext(8192), Checksums: map[string]uint32{"a": 1}, Unreadable: map[string]string{"b": "corrupt"}},
		{Extent: ext(12288), Checksums: map[string]uint32{"a": 1, "b": 2, "c": 3}},
		{Extent: ext(16384), Checksums: map[string]uint32{"a": 1, "c": 2}, Unreadable: map[string]string{"b": "corrupt"}},
		{Extent: ext(20480), Unreadable: map[string]string{"a": "corrupt", "b": "corrupt"}},
	}
	plans, undecided := planRepairs(mism, []string{"b", "a", "c"})
	want := []repairPlan{
		{good: "a", bad: []string{"c"}, extents: []replica.Extent{ext(0)}},
		{good: "b", bad: []string{"a"}, extents: []replica.Extent{ext(4096)}},
		{good: "a", bad: []string{"b"}, extents: []replica.Extent{ext(8192)}},
		{good: "b", bad: []string{"a", "c"}, extents: []replica.Extent{ext(12288)}},
		{good: "a", bad: []string{"b", "c"}, extents: []replica.Extent{ext(16384)}},
	}
	if len(plans) != len(want) {
		t.Fatalf("plans = %+v, want %+v", plans, want)
	}
	for i := range want {
		if plans[i].good != want[i].good || strings.Join(plans[i].bad, ",") != strings.Join(want[i].bad, ",") ||
			len(plans[i].extents) != 1 || plans[i].extents[0] != want[i].extents[0] {
			t.Fatalf("plan %d = %+v, want %+v", i, plans[i], want[i])
		}
	}
	if len(undecided) != 1 || undecided[0].Offset != 20480 {
		t.Fatalf("undecided = %+v, want only the block no copy read, at 20480", undecided)
	}
}

// TestOpenAfterRebuildReconcilesOnlyTheIntent: a copy a rebuild brought in sync keeps a
// write-intent log, so the next Open (after a clean Close, or a takeover of a coordinator that
// never closed) compares only the write intent, not every written extent, and still finds and
// repairs a write that landed on one copy only, whichever copy it landed on.
func TestOpenAfterRebuildReconcilesOnlyTheIntent(t *testing.T) {
	const landed = 6<<20 + 8192
	cases := []struct {
		name  string
		bad   int  // the copy the unacknowledged write landed on (2 is the rebuilt one); -1: none
		close bool // the first coordinator closes; otherwise a newer generation takes over
	}{
		{"clean close, copies equal", -1, true},
		{"clean close, a write landed on the rebuilt copy", 2, true},
		{"clean close, a write landed on the rebuild's source", 0, true},
		{"clean close, a write landed on the other copy", 1, true},
		{"takeover, a write landed on the rebuilt copy", 2, false},
		{"takeover, a write landed on the rebuild's source", 0, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, 3)
			h.createVolume(t, 1, copySpec{0, true, v1alpha1.ReplicaInSync}, copySpec{1, true, v1alpha1.ReplicaInSync}, copySpec{2, true, v1alpha1.ReplicaCatchingUp})
			ctx := context.Background()
			v := h.volumes(t, 50*time.Millisecond)
			be, _, err := v.Open(ctx, openReq(1)) // closed below (fenced after a takeover)
			if err != nil {
				t.Fatal(err)
			}
			first := be.(*backend)
			t.Cleanup(func() { _ = first.Close(ctx) }) // a test that stops early leaves no stream open
			data := pattern(61, 3<<20)
			if err := first.WriteAt(ctx, data, 0); err != nil {
				t.Fatal(err)
			}
			waitFor(t, "the new copy to be InSync", func() bool { return h.copyStatus(t, 2).State == v1alpha1.ReplicaInSync })
			if in := h.intentOf(t, 2, 1); !in.Tracking {
				t.Fatalf("write intent of the rebuilt copy = %+v, want a log", in)
			}
			if err := first.WriteAt(ctx, data[:4096], 5<<20); err != nil {
				t.Fatal(err)
			}
			gen := uint64(1)
			if tc.close {
				if err := first.Close(ctx); err != nil {
					t.Fatal(err)
				}
				for i := range h.nodes {
					if in := h.intentOf(t, i, 1); !in.Tracking || len(in.Regions) != 0 {
						t.Fatalf("write intent of %s after a clean Close = %+v, want a log without regions", h.nodes[i].store, in)
					}
				}
			}
			want := make([]byte, 4096) // what every copy holds at landed in the end
			if tc.bad >= 0 {
				h.unacked(t, tc.bad, 1, landed, pattern(62, 4096))
			}
			if !tc.close {
				gen = 2
				vol := h.volume(t)
				vol.Status.Attachment.Generation = 2
				if err := h.client.Status().Update(ctx, vol); err != nil {
					t.Fatal(err)
				}
			}

			v2 := h.volumes(t, never) // the node restarted
			b := h.open(t, v2, gen)
			if !tc.close {
				if err := first.Close(ctx); !errors.Is(err, csinode.ErrFenced) {
					t.Fatalf("Close of the replaced coordinator = %v, want fenced", err)
				}
			}
			c := h.scrubCondition(t)
			reason, scope := ReasonScrubEqual, "reconcile at open over the write intent (0 regions, 0 MiB) by node"
			if tc.bad >= 0 {
				reason, scope = ReasonScrubRepaired, "reconcile at open over the write intent (1 region, 1 MiB) by node"
			}
			if !tc.close {
				scope = "reconcile at open over the write intent (" // the regions written and not cleared yet too
			}
			if c == nil || c.Reason != reason || !strings.HasPrefix(c.Message, scope) {
				t.Fatalf("Scrubbed condition after the Open = %+v, want %s recorded by the reconcile at open (%q)", c, reason, scope)
			}
			if tc.bad >= 0 && !strings.Contains(c.Message, h.nodes[tc.bad].store) {
				t.Fatalf("Scrubbed condition %q does not name the copy the write landed on, %s", c.Message, h.nodes[tc.bad].store)
			}
			for i := range h.nodes {
				h.checkCopy(t, i, gen, 0, data)
				h.checkCopy(t, i, gen, landed, want)
				s := stat(t, v2, h.nodes[i].store)
				if tc.close && tc.bad >= 0 && s.ScrubbedBytes != regionSize+replica.DefaultCompareBlock {
					t.Fatalf("stat of %s = %+v, want only the intent region (and the repaired block) compared", h.nodes[i].store, s)
				}
				// After a takeover: at most the five regions written (and the repaired block).
				if !tc.close && s.ScrubbedBytes > 5*regionSize+replica.DefaultCompareBlock {
					t.Fatalf("stat of %s = %+v, want at most the regions written compared", h.nodes[i].store, s)
				}
			}
			got := make([]byte, 4096)
			if err := b.ReadAt(ctx, got, landed); err != nil || !bytes.Equal(got, want) {
				t.Fatalf("read of the reconciled block = %v, want the majority's data", err)
			}
		})
	}
}

// TestCopyDroppedAtOpenGetsInFlightWrites: an earlier coordinator's write landed on two copies
// and not on the third (it was never acknowledged), and the third cannot be reached when the
// next coordinator opens the volume. The reconcile finds the two equal and clears their intent;
// the third, dropped at the claim, must still get that write when it returns, or the copies
// would differ with nothing marking where (only a scrub would find it). Its resync copies the
// intent region, and no more.
func TestCopyDroppedAtOpenGetsInFlightWrites(t *testing.T) {
	h := newHarness(t, 3)
	h.createVolume(t, 1, inSyncCopies(3)...)
	v := h.volumes(t, never)
	ctx := context.Background()
	data := pattern(61, 2<<20)
	first := h.open(t, v, 1)
	if err := first.WriteAt(ctx, data, 0); err != nil {
		t.Fatal(err)
	}
	if err := first.Close(ctx); err != nil {
		t.Fatal(err)
	}
	const off = 1<<20 + 8192
	inFlight := pattern(62, 4096)
	h.unacked(t, 0, 1, off, inFlight)
	h.unacked(t, 1, 1, off, inFlight)

	down := h.nodes[2]
	h.dialer.setDown(down.env.Addr, true)
	b := h.open(t, v, 2)
	if got := b.co.InSync(); slices.Contains(got, down.store) {
		t.Fatalf("in sync after the claim = %v, want %s dropped", got, down.store)
	}
	for i := range 2 {
		if in := h.intentOf(t, i, 2); len(in.Regions) != 0 {
			t.Fatalf("write intent of %s after the reconcile = %+v, want cleared", h.nodes[i].store, in)
		}
	}
	if got := b.co.Dirty().Bytes(down.store); got != replica.IntentRegionSize {
		t.Fatalf("dirty bytes of %s after Open = %d, want the intent region (%d)", down.store, got, replica.IntentRegionSize)
	}

	h.dialer.setDown(down.env.Addr, false)
	b.syncOnce(ctx)
	if c := h.copyStatus(t, 2); c.State != v1alpha1.ReplicaInSync {
		t.Fatalf("copy on %s after a sync pass = %+v, want InSync", down.store, c)
	}
	if s := stat(t, v, down.store); s.SyncedBytes[KindResync] != replica.IntentRegionSize || s.SyncedBytes[KindRebuild] != 0 {
		t.Fatalf("stat of %s = %+v, want a resync of the one intent region", down.store, s)
	}
	for i := range h.nodes {
		h.checkCopy(t, i, 2, 0, data[:off])
		h.checkCopy(t, i, 2, off, inFlight)
		h.checkCopy(t, i, 2, off+4096, data[off+4096:])
	}
}
