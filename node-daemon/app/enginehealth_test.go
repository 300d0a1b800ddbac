package app

import (
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	storagev1alpha1 "github.com/cobaltstore/cobalt/api/v1alpha1"
	"github.com/cobaltstore/cobalt/node-daemon/metrics"
)

// TestEngineHealthEvents: a Store's engine health reported heartbeat after heartbeat gives a
// Warning each time it gets worse (with the engine's reason, EngineFailed when Failed), a Normal
// event when it is OK again, and nothing while it stays the same or improves short of OK.
func TestEngineHealthEvents(t *testing.T) {
	snap := func(state, reason, msg string) *metrics.StoreSnapshot {
		return &metrics.StoreSnapshot{Health: state, HealthReason: reason, HealthMessage: msg}
	}
	steps := []struct {
		name       string
		snap       *metrics.StoreSnapshot
		wantType   string // "" = no event
		wantReason string
		inNote     string
	}{
		{"first report OK", snap(metrics.HealthOK, "", ""), "", "", ""},
		{"still OK", snap(metrics.HealthOK, "", ""), "", "", ""},
		{"flushes fail", snap(metrics.HealthDegraded, "MetadataBackgroundErrors", "3 metadata background errors"), corev1.EventTypeWarning, "MetadataBackgroundErrors", "engine health Degraded (was OK): 3 metadata background errors"},
		{"still degraded, other cause", snap(metrics.HealthDegraded, "MetadataDiskSlow", "disk slow"), "", "", ""},
		{"device not used", nil, "", "", ""},
		{"commit fails", snap(metrics.HealthFailed, "CommitFailed", "writes are refused"), corev1.EventTypeWarning, EventReasonEngineFailed, "writes are refused"},
		{"failed to degraded", snap(metrics.HealthDegraded, "", ""), "", "", ""},
		{"back to OK", snap(metrics.HealthOK, "", ""), corev1.EventTypeNormal, EventReasonEngineRecovered, "was Degraded"},
		{"worse again", snap(metrics.HealthDegraded, "", "stalled"), corev1.EventTypeWarning, EventReasonEngineDegraded, "stalled"},
	}
	var e engineHealthEvents
	for _, s := range steps {
		ev, ok := e.observe("store-a", s.snap)
		if ok != (s.wantType != "") || ev.Type != s.wantType || ev.Reason != s.wantReason || !strings.Contains(ev.Note, s.inNote) {
			t.Fatalf("%s: event %+v (%v), want type %q reason %q note containing %q", s.name, ev, ok, s.wantType, s.wantReason, s.inNote)
		}
	}
	// Another Store's history is its own: its first Degraded report is a Warning.
	if ev, ok := e.observe("store-b", snap(metrics.HealthDegraded, "MetadataDiskSlow", "slow")); !ok || ev.Reason != "MetadataDiskSlow" || !strings.Contains(ev.Note, "was unknown") {
		t.Fatalf("store-b: %+v (%v)", ev, ok)
	}
}

// TestApplyStatusReportsEngineHealth: the heartbeat writes the engine's health and message into
// the Store status, and clears them when the device is not used.
func TestApplyStatusReportsEngineHealth(t *testing.T) {
	var st storagev1alpha1.Store
	now := metav1.Now()
	applyStatus(&st, "", &metrics.StoreSnapshot{UUID: "u", Health: metrics.HealthDegraded, HealthMessage: strings.Repeat("x", 2000)}, now)
	if st.Status.EngineHealth != storagev1alpha1.EngineHealthDegraded || len(st.Status.EngineMessage) != 1024 {
		t.Fatalf("status %q, message of %d bytes", st.Status.EngineHealth, len(st.Status.EngineMessage))
	}
	applyStatus(&st, "device has an ext4 filesystem", nil, now)
	if st.Status.EngineHealth != "" || st.Status.EngineMessage != "" {
		t.Fatalf("unused device keeps engine health %q %q", st.Status.EngineHealth, st.Status.EngineMessage)
	}
}
