package replvol

import (
	"bytes"
	"context"
	"errors"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/cobaltstore/cobalt/api/v1alpha1"
	"github.com/cobaltstore/cobalt/node-daemon/replica"
)

// scrubCondition returns the Volume's Scrubbed condition, or nil.
func (h *harness) scrubCondition(t *testing.T) *metav1.Condition {
	t.Helper()
	return meta.FindStatusCondition(h.volume(t).Status.Conditions, ConditionScrubbed)
}

// inSyncCopies lists n InSync copies, one on each of the first n nodes.
func inSyncCopies(n int) []copySpec {
	var out []copySpec
	for i := range n {
		out = append(out, copySpec{node: i, inSpec: true, state: v1alpha1.ReplicaInSync})
	}
	return out
}

// readWhile reads [off, off+len(want)) through be until stop is closed, and returns the first
// read that failed or returned other data than want, and how many reads ran.
func readWhile(be *backend, off int64, want []byte, stop <-chan struct{}) (wait func() (int, error)) {
	var (
		wg    sync.WaitGroup
		reads int
		first error
	)
	wg.Add(1)
	go func() {
		defer wg.Done()
		got := make([]byte, len(want))
		for {
			select {
			case <-stop:
				return
			default:
			}
			err := be.ReadAt(context.Background(), got, off)
			if err == nil && !bytes.Equal(got, want) {
				err = errors.New("read returned other data than written")
			}
			reads++
			if err != nil {
				first = err
				return
			}
		}
	}()
	return func() (int, error) {
		wg.Wait()
		return reads, first
	}
}

// TestScrubRepairsFromGoodCopy: one copy of three has a block that rotted (its engine refuses
// to read it) or that silently differs; a scrub finds that block, repairs it from a good copy,
// compares it again and records it in status and stats, while reads keep returning the written
// data; the next scrub finds the copies equal.
func TestScrubRepairsFromGoodCopy(t *testing.T) {
	cases := []struct {
		name string
		bad  int  // the damaged node (0 is the coordinator's, local)
		rot  bool // the engine refuses the block; otherwise it reads back changed
		what string
	}{
		{"rot on a remote copy", 2, true, "unreadable"},
		{"rot on the local copy", 0, true, "unreadable"},
		{"silent difference on a remote copy, majority", 1, false, "crc32c"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, 3)
			h.createVolume(t, 1, inSyncCopies(3)...)
			v := h.volumes(t, never)
			b := h.open(t, v, 1)
			ctx := context.Background()
			data := pattern(21, 2<<20)
			if err := b.WriteAt(ctx, data, 0); err != nil {
				t.Fatal(err)
			}
			if err := b.Flush(ctx); err != nil {
				t.Fatal(err)
			}
			const damaged = 1<<20 + 8192
			h.nodes[tc.bad].damage(t, damaged, 4096, tc.rot)

			stop := make(chan struct{})
			wait := readWhile(b, 1<<20, data[1<<20:1<<20+64<<10], stop)
			ran := b.scrubOnce(ctx)
			close(stop)
			if reads, err := wait(); err != nil {
				t.Fatalf("read during the scrub (after %d reads): %v", reads, err)
			}
			if !ran {
				t.Fatal("the scrub did not run with every copy in sync")
			}
			c := h.scrubCondition(t)
			if c == nil || c.Status != metav1.ConditionTrue || c.Reason != ReasonScrubRepaired ||
				!strings.Contains(c.Message, h.nodes[tc.bad].store) || !strings.Contains(c.Message, tc.what) {
				t.Fatalf("Scrubbed condition = %+v, want True/%s naming %s (%s)", c, ReasonScrubRepaired, h.nodes[tc.bad].store, tc.what)
			}
			h.expectEvent(t, corev1.EventTypeWarning, "ScrubRepaired", "", h.nodes[tc.bad].store, tc.what)
			if left, hits := h.nodes[tc.bad].rot.rotten(); left || tc.rot && hits == 0 {
				t.Fatalf("rotten range left: %v, reads refused: %d", left, hits)
			}
			for i := range h.nodes {
				h.checkCopy(t, i, 1, 0, data)
				s := stat(t, v, h.nodes[i].store)
				if s.ScrubbedBytes < int64(len(data)) || s.LastScrub.IsZero() {
					t.Fatalf("stat of %s = %+v, want the scrub counted", h.nodes[i].store, s)
				}
				wantMism, wantRepaired := int64(0), int64(0)
				if i == tc.bad {
					wantMism, wantRepaired = 1, replica.DefaultCompareBlock
				}
				if s.ScrubMismatches != wantMism || s.ScrubRepairedBytes != wantRepaired {
					t.Fatalf("stat of %s: %d mismatches, %d bytes repaired; want %d, %d", h.nodes[i].store, s.ScrubMismatches, s.ScrubRepairedBytes, wantMism, wantRepaired)
				}
			}
			if !b.scrubOnce(ctx) {
				t.Fatal("the second scrub did not run")
			}
			if c := h.scrubCondition(t); c == nil || c.Status != metav1.ConditionTrue || c.Reason != ReasonScrubEqual {
				t.Fatalf("Scrubbed condition after the second scrub = %+v, want True/%s", c, ReasonScrubEqual)
			}
		})
	}
}

// TestScrubDoesNotGuessBetweenTwoCopies: two copies that read a block without error but differ
// on it: the scrub reports it (status False with both checksums) and repairs nothing.
func TestScrubDoesNotGuessBetweenTwoCopies(t *testing.T) {
	h := newHarness(t, 2)
	h.createVolume(t, 1, inSyncCopies(2)...)
	v := h.volumes(t, never)
	b := h.open(t, v, 1)
	ctx := context.Background()
	data := pattern(22, 1<<20)
	if err := b.WriteAt(ctx, data, 0); err != nil {
		t.Fatal(err)
	}
	h.nodes[1].damage(t, 4096, 100, false)
	if !b.scrubOnce(ctx) {
		t.Fatal("the scrub did not run with every copy in sync")
	}
	c := h.scrubCondition(t)
	if c == nil || c.Status != metav1.ConditionFalse || c.Reason != ReasonScrubNotRepaired ||
		!strings.Contains(c.Message, h.nodes[0].store+" crc32c") || !strings.Contains(c.Message, h.nodes[1].store+" crc32c") {
		t.Fatalf("Scrubbed condition = %+v, want False/%s with both copies' checksums", c, ReasonScrubNotRepaired)
	}
	h.expectEvent(t, corev1.EventTypeWarning, "ScrubMismatchNotRepaired", "", "no majority tells the good copy")
	h.checkCopy(t, 0, 1, 0, data)
	if got := h.nodes[1].read(t, 1, 4096, 100); bytes.Equal(got, data[4096:4196]) {
		t.Fatal("the differing block was repaired without a good copy known")
	}
	for _, nd := range h.nodes {
		if s := stat(t, v, nd.store); s.ScrubMismatches != 1 || s.ScrubRepairedBytes != 0 {
			t.Fatalf("stat of %s = %+v, want one mismatch and nothing repaired", nd.store, s)
		}
	}
}

// TestScrubWaitsForSync: no scrub runs while a copy the spec places is CatchingUp, nor while a
// sync holds the scrub off; it runs once they are over.
func TestScrubWaitsForSync(t *testing.T) {
	t.Run("a copy catching up", func(t *testing.T) {
		h := newHarness(t, 3)
		h.createVolume(t, 1, copySpec{0, true, v1alpha1.ReplicaInSync}, copySpec{1, true, v1alpha1.ReplicaInSync}, copySpec{2, true, v1alpha1.ReplicaCatchingUp})
		h.dialer.setDown(h.nodes[2].env.Addr, true) // the rebuild cannot start
		v := h.volumes(t, never)
		b := h.open(t, v, 1)
		atOpen, statsAtOpen := h.scrubCondition(t), v.ReplicationStats() // the reconcile at open
		if b.scrubOnce(context.Background()) {
			t.Fatal("a scrub ran while a copy is CatchingUp")
		}
		if c := h.scrubCondition(t); !reflect.DeepEqual(c, atOpen) {
			t.Fatalf("Scrubbed condition = %+v after a skipped scrub, want the reconcile's at open %+v", c, atOpen)
		}
		if stats := v.ReplicationStats(); !reflect.DeepEqual(stats, statsAtOpen) {
			t.Fatalf("stats %+v after a skipped scrub, want those after open %+v", stats, statsAtOpen)
		}
	})
	t.Run("a sync running", func(t *testing.T) {
		h := newHarness(t, 2)
		h.createVolume(t, 1, inSyncCopies(2)...)
		v := h.volumes(t, never)
		b := h.open(t, v, 1)
		resume := b.pauseScrub()
		if b.scrubOnce(context.Background()) {
			t.Fatal("a scrub ran beside a sync")
		}
		resume()
		if !b.scrubOnce(context.Background()) {
			t.Fatal("the scrub did not run after the sync")
		}
		if c := h.scrubCondition(t); c == nil || c.Reason != ReasonScrubEqual {
			t.Fatalf("Scrubbed condition = %+v, want %s", c, ReasonScrubEqual)
		}
	})
}

// TestScheduledScrub: with a ScrubInterval, the volume is scrubbed on its own, repeatedly.
func TestScheduledScrub(t *testing.T) {
	h := newHarness(t, 3)
	ctx := context.Background()
	data := pattern(23, 256<<10)
	for _, nd := range h.nodes {
		if err := nd.replicas().Write(ctx, replica.Ref{StoreUUID: nd.uuid, Volume: testUID}, 1, 0, data); err != nil {
			t.Fatal(err)
		}
	}
	h.createVolume(t, 1, inSyncCopies(3)...)
	v := h.volumes(t, never)
	v.opts.ScrubInterval = 20 * time.Millisecond
	h.open(t, v, 1)
	h.nodes[1].damage(t, 8192, 4096, true) // after the reconcile at open
	waitFor(t, "a scheduled scrub repaired the rotten block", func() bool {
		return stat(t, v, h.nodes[1].store).ScrubRepairedBytes > 0
	})
	first := stat(t, v, h.nodes[1].store).LastScrub
	waitFor(t, "another scheduled scrub found the copies equal", func() bool {
		c := h.scrubCondition(t)
		return stat(t, v, h.nodes[1].store).LastScrub.After(first) && c != nil && c.Reason == ReasonScrubEqual
	})
	for i := range h.nodes {
		h.checkCopy(t, i, 1, 0, data)
	}
}

// TestCloseStopsRunningScrub: a scheduled scrub throttled by the Limiter is running when Close
// is called; Close stops it and nothing is recorded.
func TestCloseStopsRunningScrub(t *testing.T) {
	h := newHarness(t, 2)
	ctx := context.Background()
	for _, nd := range h.nodes {
		if err := nd.replicas().Write(ctx, replica.Ref{StoreUUID: nd.uuid, Volume: testUID}, 1, 0, pattern(24, 4096)); err != nil {
			t.Fatal(err)
		}
	}
	h.createVolume(t, 1, inSyncCopies(2)...)
	v := h.volumes(t, never)
	lim := &blockingLimiter{waiting: make(chan struct{})}
	v.opts.Limiter = lim
	v.opts.ScrubInterval = time.Millisecond
	be, _, err := v.Open(ctx, openReq(1))
	if err != nil {
		t.Fatal(err)
	}
	atOpen := h.scrubCondition(t) // the reconcile at open, not throttled
	<-lim.waiting                 // the scrub is comparing
	if err := be.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if c := h.scrubCondition(t); !reflect.DeepEqual(c, atOpen) {
		t.Fatalf("Scrubbed condition = %+v after an interrupted scrub, want the reconcile's at open %+v", c, atOpen)
	}
}

func TestPlanRepairs(t *testing.T) {
	ext := func(off int64) replica.Extent { return replica.Extent{Offset: off, Length: 4096} }
	mism := []replica.Mismatch{
		{Extent: ext(0), Checksums: map[string]uint32{"a": 1, "b": 1, "c": 2}},
		{Extent: ext(4096), Checksums: map[string]uint32{"a": 1, "c": 1}, Unreadable: map[string]string{"b": "corrupt"}},
		{Extent: ext(8192), Checksums: map[string]uint32{"a": 3, "b": 3, "c": 4}},
		{Extent: ext(12288), Checksums: map[string]uint32{"a": 1, "b": 2}},
	}
	plans, undecided := planRepairs(mism, nil)
	want := []repairPlan{
		{good: "a", bad: []string{"c"}, extents: []replica.Extent{ext(0), ext(8192)}},
		{good: "a", bad: []string{"b"}, extents: []replica.Extent{ext(4096)}},
	}
	if len(plans) != len(want) {
		t.Fatalf("plans = %+v, want %+v", plans, want)
	}
	for i := range want {
		if plans[i].good != want[i].good || strings.Join(plans[i].bad, ",") != strings.Join(want[i].bad, ",") || len(plans[i].extents) != len(want[i].extents) {
			t.Fatalf("plan %d = %+v, want %+v", i, plans[i], want[i])
		}
		for j := range want[i].extents {
			if plans[i].extents[j] != want[i].extents[j] {
				t.Fatalf("plan %d = %+v, want %+v", i, plans[i], want[i])
			}
		}
	}
	if len(undecided) != 1 || undecided[0].Offset != 12288 {
		t.Fatalf("undecided = %+v, want the block at 12288", undecided)
	}
}

func TestScrubOutcome(t *testing.T) {
	m := replica.Mismatch{Extent: replica.Extent{Offset: 0, Length: 4096}, Checksums: map[string]uint32{"a": 1, "b": 2}}
	cases := []struct {
		name   string
		run    scrubRun
		status metav1.ConditionStatus
		reason string
	}{
		{"equal", scrubRun{compared: 1 << 20}, metav1.ConditionTrue, ReasonScrubEqual},
		{"repaired", scrubRun{found: []replica.Mismatch{m}, repaired: 4096, repairs: []string{"b from a"}}, metav1.ConditionTrue, ReasonScrubRepaired},
		{"undecided", scrubRun{found: []replica.Mismatch{m}, undecided: []replica.Mismatch{m}}, metav1.ConditionFalse, ReasonScrubNotRepaired},
		{"still differs", scrubRun{found: []replica.Mismatch{m}, remaining: []replica.Mismatch{m}, repaired: 4096}, metav1.ConditionFalse, ReasonScrubRepairFailed},
		{"repair failed", scrubRun{found: []replica.Mismatch{m}, err: errors.New("write refused")}, metav1.ConditionFalse, ReasonScrubRepairFailed},
		{"failed", scrubRun{err: errors.New("node down")}, metav1.ConditionFalse, ReasonScrubFailed},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			tc.run.what = "scrub"
			status, reason, msg := tc.run.outcome("node-a")
			if status != tc.status || reason != tc.reason || !strings.HasPrefix(msg, "scrub by node node-a") || len(msg) > maxMessage {
				t.Fatalf("outcome = %s, %s, %q; want %s, %s", status, reason, msg, tc.status, tc.reason)
			}
		})
	}
}
