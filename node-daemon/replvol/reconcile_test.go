package replvol

import (
	"bytes"
	"context"
	"strings"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/cobaltstore/cobalt/node-daemon/replica"
)

// TestOpenReconcilesCopies: copies left different by a coordinator that is gone (here: a block
// changed underneath one copy between a Close and the next Open, as an unacknowledged write that
// landed on some copies only leaves them) compare equal once Open returns, repaired from the
// majority, else from the first in-sync copy (the local one) that read the block.
func TestOpenReconcilesCopies(t *testing.T) {
	const damaged = 1<<20 + 8192
	cases := []struct {
		name   string
		copies int
		bad    int  // the damaged node (0 is the coordinator's, local); -1: none
		rot    bool // the engine refuses the block; otherwise it reads back changed
		// original: the copies end with the written data (else with the damaged copy's)
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
			if tc.bad >= 0 {
				h.nodes[tc.bad].damage(t, damaged, 4096, tc.rot)
			}
			var kept []byte
			if !tc.original {
				kept = h.nodes[tc.bad].read(t, 1, damaged, 4096)
			}

			b := h.open(t, v, 1)
			c := h.scrubCondition(t)
			if c == nil || c.Status != metav1.ConditionTrue || c.Reason != tc.reason || !strings.HasPrefix(c.Message, "reconcile at open by node") {
				t.Fatalf("Scrubbed condition after Open = %+v, want True/%s recorded by the reconcile at open", c, tc.reason)
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
			for i := range h.nodes {
				if s := stat(t, v, h.nodes[i].store); s.ScrubbedBytes < int64(len(data)) {
					t.Fatalf("stat of %s = %+v, want the reconcile counted", h.nodes[i].store, s)
				}
			}
		})
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
