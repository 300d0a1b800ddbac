package controllers

import (
	"strings"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/cobaltstore/cobalt/api/v1alpha1"
)

var unitNow = time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC)

// storeWith builds a Store as its node daemon reports it; the daemon has published its endpoint
// (withoutEndpoint takes it away).
func storeWith(heartbeatAge *time.Duration, notUsed string, capacity, used string, admin v1alpha1.AdminState) *v1alpha1.Store {
	s := &v1alpha1.Store{Spec: v1alpha1.StoreSpec{AdminState: admin}}
	s.Annotations = map[string]string{v1alpha1.AnnotationNodeEndpoint: "10.0.0.7:7443"}
	if heartbeatAge != nil {
		s.Status.LastHeartbeat = &metav1.Time{Time: unitNow.Add(-*heartbeatAge)}
	}
	s.Status.NotUsedReason = notUsed
	if capacity != "" {
		c := resource.MustParse(capacity)
		s.Status.Capacity = &c
	}
	if used != "" {
		u := resource.MustParse(used)
		s.Status.Used = &u
	}
	return s
}

func age(d time.Duration) *time.Duration { return &d }

// withEngine is s with its node daemon reporting the engine's health h.
func withEngine(s *v1alpha1.Store, h v1alpha1.EngineHealth, msg string) *v1alpha1.Store {
	s.Status.EngineHealth, s.Status.EngineMessage = h, msg
	return s
}

// withoutEndpoint is s before its node daemon published the endpoint of its API.
func withoutEndpoint(s *v1alpha1.Store) *v1alpha1.Store {
	delete(s.Annotations, v1alpha1.AnnotationNodeEndpoint)
	return s
}

func TestEvaluateStoreHealth(t *testing.T) {
	const timeout = time.Minute
	tests := []struct {
		name      string
		store     *v1alpha1.Store
		ready     bool
		reason    string
		staleIn   time.Duration
		inMessage string
	}{
		{"no heartbeat yet", storeWith(nil, "", "", "", ""), false, v1alpha1.ReasonAwaitingHeartbeat, 0, "not reported"},
		{"fresh", storeWith(age(10*time.Second), "", "", "", ""), true, v1alpha1.ReasonHeartbeatFresh, 50 * time.Second, "within the 1m0s timeout"},
		{"exactly at the timeout is still fresh", storeWith(age(timeout), "", "", "", ""), true, v1alpha1.ReasonHeartbeatFresh, 0, ""},
		{"one second past the timeout", storeWith(age(timeout+time.Second), "", "", "", ""), false, v1alpha1.ReasonHeartbeatStale, 0, "2026-03-04T05:05:06Z is older than the 1m0s timeout"},
		{"node clock ahead counts as just now", storeWith(age(-30*time.Second), "", "", "", ""), true, v1alpha1.ReasonHeartbeatFresh, timeout, ""},
		{"device not used wins over a fresh heartbeat", storeWith(age(0), "device has an xfs filesystem", "", "", ""), false, v1alpha1.ReasonDeviceNotUsed, 0, "device has an xfs filesystem"},
		{"fresh heartbeat without an endpoint is pending", withoutEndpoint(storeWith(age(time.Second), "", "", "", "")), false, v1alpha1.ReasonEndpointPending, 0, "publishes no API endpoint (annotation storage.cobalt.io/node-endpoint)"},
		{"empty endpoint is pending", func() *v1alpha1.Store {
			s := storeWith(age(time.Second), "", "", "", "")
			s.Annotations[v1alpha1.AnnotationNodeEndpoint] = ""
			return s
		}(), false, v1alpha1.ReasonEndpointPending, 0, ""},
		{"stale wins over a missing endpoint", withoutEndpoint(storeWith(age(time.Hour), "", "", "", "")), false, v1alpha1.ReasonHeartbeatStale, 0, "older than"},
		{"no heartbeat wins over a missing endpoint", withoutEndpoint(storeWith(nil, "", "", "", "")), false, v1alpha1.ReasonAwaitingHeartbeat, 0, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := evaluateStoreHealth(tt.store, unitNow, timeout)
			if h.Ready != tt.ready || h.Reason != tt.reason || h.StaleIn != tt.staleIn {
				t.Fatalf("got ready=%v reason=%s staleIn=%s, want ready=%v reason=%s staleIn=%s",
					h.Ready, h.Reason, h.StaleIn, tt.ready, tt.reason, tt.staleIn)
			}
			if tt.inMessage != "" && !strings.Contains(h.Message, tt.inMessage) {
				t.Fatalf("message %q does not contain %q", h.Message, tt.inMessage)
			}
		})
	}
}

func TestStoreHealthMessageDoesNotDependOnTime(t *testing.T) {
	// A message that changed every reconcile would write status every reconcile and wake the
	// reconciler again through its own watch.
	s := storeWith(age(5*time.Second), "", "", "", "")
	a := evaluateStoreHealth(s, unitNow, time.Minute)
	b := evaluateStoreHealth(s, unitNow.Add(20*time.Second), time.Minute)
	if a.Message != b.Message {
		t.Fatalf("messages differ: %q vs %q", a.Message, b.Message)
	}
}

func TestStoreConditions(t *testing.T) {
	tests := []struct {
		name                   string
		store                  *v1alpha1.Store
		ready, degraded, sched metav1.ConditionStatus
		schedReason            string
		degradedReason         string
	}{
		{"healthy and in", storeWith(age(time.Second), "", "100Gi", "10Gi", v1alpha1.AdminStateIn),
			metav1.ConditionTrue, metav1.ConditionFalse, metav1.ConditionTrue, v1alpha1.ReasonAcceptingVolumes, v1alpha1.ReasonAsExpected},
		{"healthy but out", storeWith(age(time.Second), "", "100Gi", "10Gi", v1alpha1.AdminStateOut),
			metav1.ConditionTrue, metav1.ConditionFalse, metav1.ConditionFalse, v1alpha1.ReasonAdminOut, v1alpha1.ReasonAsExpected},
		{"stale", storeWith(age(time.Hour), "", "100Gi", "10Gi", v1alpha1.AdminStateIn),
			metav1.ConditionFalse, metav1.ConditionFalse, metav1.ConditionFalse, v1alpha1.ReasonStoreNotReady, v1alpha1.ReasonAsExpected},
		{"90% full is degraded", storeWith(age(time.Second), "", "100Gi", "90Gi", v1alpha1.AdminStateIn),
			metav1.ConditionTrue, metav1.ConditionTrue, metav1.ConditionTrue, v1alpha1.ReasonAcceptingVolumes, v1alpha1.ReasonNearlyFull},
		{"89% full is not", storeWith(age(time.Second), "", "100Gi", "89Gi", v1alpha1.AdminStateIn),
			metav1.ConditionTrue, metav1.ConditionFalse, metav1.ConditionTrue, v1alpha1.ReasonAcceptingVolumes, v1alpha1.ReasonAsExpected},
		{"endpoint pending is neither Ready nor Schedulable", withoutEndpoint(storeWith(age(time.Second), "", "100Gi", "10Gi", v1alpha1.AdminStateIn)),
			metav1.ConditionFalse, metav1.ConditionFalse, metav1.ConditionFalse, v1alpha1.ReasonStoreNotReady, v1alpha1.ReasonAsExpected},
		{"engine OK is not degraded", withEngine(storeWith(age(time.Second), "", "100Gi", "10Gi", v1alpha1.AdminStateIn), v1alpha1.EngineHealthOK, ""),
			metav1.ConditionTrue, metav1.ConditionFalse, metav1.ConditionTrue, v1alpha1.ReasonAcceptingVolumes, v1alpha1.ReasonAsExpected},
		{"engine degraded", withEngine(storeWith(age(time.Second), "", "100Gi", "10Gi", v1alpha1.AdminStateIn), v1alpha1.EngineHealthDegraded, "3 metadata background errors"),
			metav1.ConditionTrue, metav1.ConditionTrue, metav1.ConditionTrue, v1alpha1.ReasonAcceptingVolumes, v1alpha1.ReasonEngineDegraded},
		{"engine failed is not schedulable", withEngine(storeWith(age(time.Second), "", "100Gi", "10Gi", v1alpha1.AdminStateIn), v1alpha1.EngineHealthFailed, "writes are refused"),
			metav1.ConditionTrue, metav1.ConditionTrue, metav1.ConditionFalse, v1alpha1.ReasonEngineFailed, v1alpha1.ReasonEngineFailed},
		{"admin out outranks engine failed", withEngine(storeWith(age(time.Second), "", "100Gi", "10Gi", v1alpha1.AdminStateOut), v1alpha1.EngineHealthFailed, "metadata corrupt"),
			metav1.ConditionTrue, metav1.ConditionTrue, metav1.ConditionFalse, v1alpha1.ReasonAdminOut, v1alpha1.ReasonEngineFailed},
		{"not ready outranks engine failed", withEngine(storeWith(age(time.Hour), "", "100Gi", "10Gi", v1alpha1.AdminStateIn), v1alpha1.EngineHealthFailed, "writes are refused"),
			metav1.ConditionFalse, metav1.ConditionTrue, metav1.ConditionFalse, v1alpha1.ReasonStoreNotReady, v1alpha1.ReasonEngineFailed},
		{"engine failed and nearly full", withEngine(storeWith(age(time.Second), "", "100Gi", "95Gi", v1alpha1.AdminStateIn), v1alpha1.EngineHealthFailed, "writes are refused"),
			metav1.ConditionTrue, metav1.ConditionTrue, metav1.ConditionFalse, v1alpha1.ReasonEngineFailed, v1alpha1.ReasonEngineFailed},
		{"engine degraded outranks nearly full", withEngine(storeWith(age(time.Second), "", "100Gi", "95Gi", v1alpha1.AdminStateIn), v1alpha1.EngineHealthDegraded, "disk slow"),
			metav1.ConditionTrue, metav1.ConditionTrue, metav1.ConditionTrue, v1alpha1.ReasonAcceptingVolumes, v1alpha1.ReasonEngineDegraded},
		{"zero capacity is not degraded by division", storeWith(age(time.Second), "", "0", "0", v1alpha1.AdminStateIn),
			metav1.ConditionTrue, metav1.ConditionFalse, metav1.ConditionTrue, v1alpha1.ReasonAcceptingVolumes, v1alpha1.ReasonAsExpected},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.store.Generation = 3
			storeConditions(tt.store, evaluateStoreHealth(tt.store, unitNow, time.Minute), unitNow)
			check := func(typ string, status metav1.ConditionStatus, reason string) {
				c := meta.FindStatusCondition(tt.store.Status.Conditions, typ)
				if c == nil {
					t.Fatalf("no %s condition", typ)
				}
				if c.Status != status || (reason != "" && c.Reason != reason) || c.ObservedGeneration != 3 {
					t.Fatalf("%s = %s/%s (gen %d), want %s/%s (gen 3)", typ, c.Status, c.Reason, c.ObservedGeneration, status, reason)
				}
			}
			check(v1alpha1.ConditionReady, tt.ready, "")
			check(v1alpha1.ConditionDegraded, tt.degraded, tt.degradedReason)
			check(v1alpha1.ConditionSchedulable, tt.sched, tt.schedReason)
			if msg := tt.store.Status.EngineMessage; msg != "" {
				if c := meta.FindStatusCondition(tt.store.Status.Conditions, v1alpha1.ConditionDegraded); !strings.Contains(c.Message, msg) {
					t.Fatalf("Degraded message %q does not carry the engine's %q", c.Message, msg)
				}
				if c := meta.FindStatusCondition(tt.store.Status.Conditions, v1alpha1.ConditionSchedulable); c.Reason == v1alpha1.ReasonEngineFailed && !strings.Contains(c.Message, msg) {
					t.Fatalf("Schedulable message %q does not carry the engine's %q", c.Message, msg)
				}
			}
			if c := meta.FindStatusCondition(tt.store.Status.Conditions, v1alpha1.ConditionReady); !c.LastTransitionTime.Time.Equal(unitNow) {
				t.Fatalf("Ready transition time %s, want the injected now %s", c.LastTransitionTime, unitNow)
			}
			if tt.store.Status.ObservedGeneration != 3 {
				t.Fatalf("observedGeneration = %d, want 3", tt.store.Status.ObservedGeneration)
			}
		})
	}
}

func TestStoreDeletionConditions(t *testing.T) {
	earlier := metav1.NewTime(unitNow.Add(-time.Hour))
	healthy := func() *v1alpha1.Store {
		s := storeWith(age(time.Second), "", "100Gi", "10Gi", v1alpha1.AdminStateIn)
		s.Generation = 3
		s.Status.Conditions = []metav1.Condition{{Type: v1alpha1.ConditionReady, Status: metav1.ConditionTrue,
			Reason: v1alpha1.ReasonHeartbeatFresh, ObservedGeneration: 3, LastTransitionTime: earlier}}
		return s
	}
	tests := []struct {
		name      string
		blocking  []string
		snapshots []string
		status    metav1.ConditionStatus
		reason    string
		message   string
	}{
		{"no volumes or snapshots left: Ready as it was", nil, nil, metav1.ConditionTrue, v1alpha1.ReasonHeartbeatFresh, ""},
		{"blocked by volumes, named in order", []string{"b/v2", "a/v1"}, nil, metav1.ConditionFalse, v1alpha1.ReasonDeletionBlocked,
			"deletion waits for 2 Volume(s) placed on this store: a/v1, b/v2"},
		{"many volumes are counted, not all named", []string{"n/1", "n/2", "n/3", "n/4", "n/5", "n/6", "n/7"}, nil, metav1.ConditionFalse,
			v1alpha1.ReasonDeletionBlocked, "deletion waits for 7 Volume(s) placed on this store: n/1, n/2, n/3, n/4, n/5 and 2 more"},
		{"blocked by snapshots only, counted and named", nil, []string{"b/s2", "a/s1"}, metav1.ConditionFalse, v1alpha1.ReasonDeletionBlocked,
			"deletion waits for 2 Snapshot(s) held on this store: a/s1, b/s2"},
		{"blocked by both", []string{"a/v1"}, []string{"a/s1", "a/s2", "a/s3"}, metav1.ConditionFalse, v1alpha1.ReasonDeletionBlocked,
			"deletion waits for 1 Volume(s) placed on this store: a/v1; and for 3 Snapshot(s) held on this store: a/s1, a/s2, a/s3"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := healthy()
			storeDeletionConditions(s, tt.blocking, tt.snapshots, unitNow)
			c := meta.FindStatusCondition(s.Status.Conditions, v1alpha1.ConditionReady)
			if c.Status != tt.status || c.Reason != tt.reason || c.Message != tt.message {
				t.Fatalf("Ready = %s/%s %q, want %s/%s %q", c.Status, c.Reason, c.Message, tt.status, tt.reason, tt.message)
			}
			wantLTT := earlier.Time
			if tt.status != metav1.ConditionTrue {
				wantLTT = unitNow
			}
			if !c.LastTransitionTime.Time.Equal(wantLTT) {
				t.Fatalf("Ready transition time %s, want %s", c.LastTransitionTime.UTC(), wantLTT.UTC())
			}
		})
	}
}
