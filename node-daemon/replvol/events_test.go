package replvol

import (
	"fmt"
	"strings"
	"sync"
	"testing"

	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
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
