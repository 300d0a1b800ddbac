package app

import (
	"fmt"

	corev1 "k8s.io/api/core/v1"

	storagev1alpha1 "github.com/cobaltstore/cobalt/api/v1alpha1"
	"github.com/cobaltstore/cobalt/node-daemon/metrics"
)

// Event reasons for changes of a Store's engine health. A Degraded engine's Warning carries the
// engine's own reason instead (for example MetadataBackgroundErrors, MetadataDiskSlow,
// MetadataWriteStalled); EventReasonEngineDegraded is the fallback when it gives none.
const (
	EventReasonEngineFailed    = "EngineFailed"
	EventReasonEngineDegraded  = "EngineDegraded"
	EventReasonEngineRecovered = "EngineRecovered"
)

// healthEvent is an event to record on a Store.
type healthEvent struct {
	Type, Reason, Note string
}

// engineHealthEvents remembers the engine health last seen per Store and says which event a
// change deserves. Only the heartbeat goroutine uses it.
type engineHealthEvents struct {
	last map[string]string // Store name -> metrics.Health*
}

// healthRank orders health states, best first; an unknown or empty state counts as OK.
func healthRank(state string) int {
	switch state {
	case metrics.HealthDegraded:
		return 1
	case metrics.HealthFailed:
		return 2
	}
	return 0
}

// observe records snap's health for the Store named name and returns the event the change
// deserves: a Warning when the health got worse (on the first report too), a Normal event when
// it came back to OK, none otherwise. A nil snap (the device is not used) is ignored.
func (e *engineHealthEvents) observe(name string, snap *metrics.StoreSnapshot) (healthEvent, bool) {
	if snap == nil {
		return healthEvent{}, false
	}
	if e.last == nil {
		e.last = map[string]string{}
	}
	prev, seen := e.last[name]
	e.last[name] = snap.Health
	was := prev
	if !seen {
		was = "unknown"
	}
	switch {
	case healthRank(snap.Health) > healthRank(prev):
		reason := snap.HealthReason
		switch {
		case snap.Health == metrics.HealthFailed:
			reason = EventReasonEngineFailed
		case reason == "":
			reason = EventReasonEngineDegraded
		}
		return healthEvent{Type: corev1.EventTypeWarning, Reason: reason,
			Note: truncate(fmt.Sprintf("engine health %s (was %s): %s", snap.Health, was, snap.HealthMessage), 1024)}, true
	case seen && healthRank(snap.Health) == 0 && healthRank(prev) > 0:
		return healthEvent{Type: corev1.EventTypeNormal, Reason: EventReasonEngineRecovered,
			Note: fmt.Sprintf("engine health OK (was %s)", prev)}, true
	}
	return healthEvent{}, false
}

// applyEngineHealth writes snap's engine health into st's status (cleared for a device that is
// not used).
func applyEngineHealth(st *storagev1alpha1.Store, snap *metrics.StoreSnapshot) {
	if snap == nil {
		st.Status.EngineHealth, st.Status.EngineMessage = "", ""
		return
	}
	st.Status.EngineHealth = storagev1alpha1.EngineHealth(snap.Health)
	st.Status.EngineMessage = truncate(snap.HealthMessage, 1024)
}
