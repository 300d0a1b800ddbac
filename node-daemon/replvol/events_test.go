package replvol

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/cobaltstore/cobalt/api/v1alpha1"
)

// recordedEvent is one Event an eventLog received.
type recordedEvent struct {
	regarding, related string // namespace/name of the Volume, name of the Store ("" for none)
	eventtype, reason  string
	note               string
}

// eventLog is an EventRecorder that keeps what it is given.
type eventLog struct {
	mu     sync.Mutex
	events []recordedEvent
}

func (l *eventLog) Eventf(regarding, related runtime.Object, eventtype, reason, _ /* action */, note string, args ...any) {
	e := recordedEvent{eventtype: eventtype, reason: reason, note: fmt.Sprintf(note, args...)}
	if o, ok := regarding.(client.Object); ok {
		e.regarding = o.GetNamespace() + "/" + o.GetName()
	}
	if o, ok := related.(client.Object); ok {
		e.related = o.GetName()
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	l.events = append(l.events, e)
}

// withReason returns the Events of reason received so far.
func (l *eventLog) withReason(reason string) []recordedEvent {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []recordedEvent
	for _, e := range l.events {
		if e.reason == reason {
			out = append(out, e)
		}
	}
	return out
}

// expectEvent fails unless exactly one Event of reason and type was written on the test Volume,
// related to store (or to nothing for ""), with a note containing every one of parts.
func (h *harness) expectEvent(t *testing.T, eventtype, reason, store string, parts ...string) {
	t.Helper()
	got := h.events.withReason(reason)
	if len(got) != 1 {
		t.Fatalf("%d %s events, want 1: %+v", len(got), reason, got)
	}
	e := got[0]
	if e.eventtype != eventtype || e.regarding != testNS+"/"+testVolume || e.related != store {
		t.Fatalf("%s event = %+v, want type %s on %s/%s related to store %q", reason, e, eventtype, testNS, testVolume, store)
	}
	for _, p := range parts {
		if !strings.Contains(e.note, p) {
			t.Fatalf("%s event note %q does not say %q", reason, e.note, p)
		}
	}
}

func TestScrubEventReason(t *testing.T) {
	for reason, want := range map[string]string{
		ReasonScrubRepaired:     "ScrubRepaired",
		ReasonScrubNotRepaired:  "ScrubMismatchNotRepaired",
		ReasonScrubRepairFailed: "ScrubRepairFailed",
		ReasonScrubFailed:       "ScrubFailed",
	} {
		if got := scrubEventReason(reason); got != want {
			t.Errorf("scrubEventReason(%s) = %s, want %s", reason, got, want)
		}
	}
}

// TestSyncFailureSaidOnce: a resync whose source cannot read a block the returning copy lacks
// is tried from another in-sync copy; every distinct failure makes one ReplicaSyncFailed event,
// however often it repeats.
func TestSyncFailureSaidOnce(t *testing.T) {
	for _, tc := range []struct {
		name   string
		rotten []int // the in-sync copies that cannot read the block
		tries  int
		failed int // distinct failures: ReplicaSyncFailed events
		synced bool
	}{
		{name: "the local source cannot read: the other in-sync copy is the next source", rotten: []int{0}, tries: 2, failed: 1, synced: true},
		{name: "no in-sync copy can read: each failure said once", rotten: []int{0, 1}, tries: 5, failed: 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, 3)
			h.createVolume(t, 1, inSyncCopies(3)...)
			v := h.volumes(t, never)
			b := h.open(t, v, 1)
			ctx := context.Background()
			down := h.nodes[2]
			h.dialer.setDown(down.env.Addr, true)
			if err := b.WriteAt(ctx, pattern(31, 8192), 1<<20); err != nil {
				t.Fatal(err)
			}
			h.dialer.setDown(down.env.Addr, false)
			for _, i := range tc.rotten {
				h.nodes[i].damage(t, 1<<20, 4096, true)
			}
			for range tc.tries {
				b.syncOnce(ctx)
			}
			if got := h.events.withReason(EventReplicaSyncFailed); len(got) != tc.failed {
				t.Fatalf("%d ReplicaSyncFailed events after %d tries, want %d: %+v", len(got), tc.tries, tc.failed, got)
			}
			if c := h.copyStatus(t, 2); (c.State == v1alpha1.ReplicaInSync) != tc.synced {
				t.Fatalf("copy after %d tries = %+v, want in sync: %v", tc.tries, c, tc.synced)
			}
			if !tc.synced {
				// Written again, the block heals on the in-sync copies and the resync goes through.
				if err := b.WriteAt(ctx, pattern(32, 4096), 1<<20); err != nil {
					t.Fatal(err)
				}
				b.syncOnce(ctx)
			}
			h.expectEvent(t, corev1.EventTypeNormal, EventReplicaResynced, down.store, "in sync again")
			h.checkCopy(t, 2, 1, 1<<20+4096, pattern(31, 8192)[4096:])
		})
	}
}
