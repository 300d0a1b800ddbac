package controllers

import (
	"fmt"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	storagev1alpha1 "github.com/cobaltstore/cobalt/api/v1alpha1"
)

// DefaultHeartbeatTimeout is how old a Store's heartbeat may get before the Store is not Ready.
const DefaultHeartbeatTimeout = 60 * time.Second

// nearlyFullPercent is the fill level at which a Store reports Degraded.
const nearlyFullPercent = 90

// storeHealth is the verdict on one Store at one instant. Its messages depend only on the Store
// and the timeout, not on the current time, so re-evaluating a healthy Store changes nothing and
// writes nothing.
type storeHealth struct {
	// Ready is true when the device is in use, the heartbeat is fresh and the node daemon has
	// published its endpoint, so a Volume placed on the Store can be created at once.
	Ready bool
	// Reason and Message explain Ready.
	Reason, Message string
	// StaleIn is how long until a fresh heartbeat goes stale; zero when not Ready.
	StaleIn time.Duration
}

// evaluateStoreHealth judges a Store from what its node daemon reported, at time now.
func evaluateStoreHealth(store *storagev1alpha1.Store, now time.Time, timeout time.Duration) storeHealth {
	switch {
	case store.Status.NotUsedReason != "":
		return storeHealth{Reason: storagev1alpha1.ReasonDeviceNotUsed,
			Message: "the node daemon did not use the device: " + store.Status.NotUsedReason}
	case store.Status.LastHeartbeat == nil:
		return storeHealth{Reason: storagev1alpha1.ReasonAwaitingHeartbeat,
			Message: "the node daemon has not reported this store yet"}
	}
	age := now.Sub(store.Status.LastHeartbeat.Time)
	if age > timeout {
		return storeHealth{Reason: storagev1alpha1.ReasonHeartbeatStale,
			Message: fmt.Sprintf("last heartbeat at %s is older than the %s timeout",
				store.Status.LastHeartbeat.UTC().Format(time.RFC3339), timeout)}
	}
	if age < 0 {
		// A node clock ahead of ours: treat the heartbeat as just received.
		age = 0
	}
	if store.Annotations[storagev1alpha1.AnnotationNodeEndpoint] == "" {
		// The daemon reports the store before its API serves (it waits for the CA Secret first)
		// and withdraws the endpoint when it stops; placing a Volume now would fail to reach it.
		return storeHealth{Reason: storagev1alpha1.ReasonEndpointPending,
			Message: "the node daemon reports the store but publishes no API endpoint (annotation " +
				storagev1alpha1.AnnotationNodeEndpoint + "): it publishes one while its gRPC server serves, " +
				"which first needs the node API's CA Secret, and withdraws it when it stops"}
	}
	return storeHealth{Ready: true, Reason: storagev1alpha1.ReasonHeartbeatFresh,
		Message: fmt.Sprintf("heartbeat within the %s timeout", timeout), StaleIn: timeout - age}
}

// fillPercent is used/capacity in percent, or -1 when either is unknown or capacity is zero.
func fillPercent(store *storagev1alpha1.Store) int64 {
	if store.Status.Capacity == nil || store.Status.Used == nil || store.Status.Capacity.Value() <= 0 {
		return -1
	}
	return store.Status.Used.Value() * 100 / store.Status.Capacity.Value()
}

// degradedCondition is the Store's Degraded condition (without generation and time): True when
// its engine reports trouble (Failed before Degraded: a Failed engine refuses writes) or when it
// is nearly full.
func degradedCondition(store *storagev1alpha1.Store) metav1.Condition {
	c := metav1.Condition{Type: storagev1alpha1.ConditionDegraded, Status: metav1.ConditionTrue}
	full := ""
	pct := fillPercent(store)
	if pct >= nearlyFullPercent {
		full = fmt.Sprintf("; the store is also %d%% full", pct)
	}
	switch store.Status.EngineHealth {
	case storagev1alpha1.EngineHealthFailed:
		c.Reason = storagev1alpha1.ReasonEngineFailed
		c.Message = "the storage engine failed: " + store.Status.EngineMessage + full
		return c
	case storagev1alpha1.EngineHealthDegraded:
		c.Reason = storagev1alpha1.ReasonEngineDegraded
		c.Message = "the storage engine is degraded: " + store.Status.EngineMessage + full
		return c
	}
	if pct >= nearlyFullPercent {
		c.Reason = storagev1alpha1.ReasonNearlyFull
		c.Message = fmt.Sprintf("the store is %d%% full (threshold %d%%)", pct, nearlyFullPercent)
		return c
	}
	c.Status, c.Reason, c.Message = metav1.ConditionFalse, storagev1alpha1.ReasonAsExpected, "the store has room and its engine is OK"
	return c
}

// engineRefusesWrites is true when the Store's engine reports Failed: it refuses writes, so no
// new Volume may go there. A Degraded engine still serves and stays schedulable.
func engineRefusesWrites(store *storagev1alpha1.Store) bool {
	return store.Status.EngineHealth == storagev1alpha1.EngineHealthFailed
}

// storeConditions sets the Ready, Degraded and Schedulable conditions of store from health, its
// spec and its engine's health (a Failed engine makes it unschedulable); a condition that changes status gets now as its transition time. It only touches
// store.Status.
func storeConditions(store *storagev1alpha1.Store, health storeHealth, now time.Time) {
	gen := store.Generation
	at := metav1.NewTime(now)
	readyStatus := metav1.ConditionFalse
	if health.Ready {
		readyStatus = metav1.ConditionTrue
	}
	meta.SetStatusCondition(&store.Status.Conditions, metav1.Condition{Type: storagev1alpha1.ConditionReady,
		Status: readyStatus, Reason: health.Reason, Message: health.Message, ObservedGeneration: gen, LastTransitionTime: at})

	degraded := degradedCondition(store)
	degraded.ObservedGeneration, degraded.LastTransitionTime = gen, at
	meta.SetStatusCondition(&store.Status.Conditions, degraded)

	sched := metav1.Condition{Type: storagev1alpha1.ConditionSchedulable, Status: metav1.ConditionTrue,
		Reason: storagev1alpha1.ReasonAcceptingVolumes, Message: "the store accepts new volumes", ObservedGeneration: gen, LastTransitionTime: at}
	switch {
	case store.Spec.AdminState == storagev1alpha1.AdminStateOut:
		sched.Status = metav1.ConditionFalse
		sched.Reason = storagev1alpha1.ReasonAdminOut
		sched.Message = "an administrator set adminState to out: the store keeps its volumes but takes no new ones"
	case !health.Ready:
		sched.Status = metav1.ConditionFalse
		sched.Reason = storagev1alpha1.ReasonStoreNotReady
		sched.Message = "the store is not Ready: " + health.Message
	case engineRefusesWrites(store):
		sched.Status = metav1.ConditionFalse
		sched.Reason = storagev1alpha1.ReasonEngineFailed
		sched.Message = "the storage engine failed and refuses writes: " + store.Status.EngineMessage
	}
	meta.SetStatusCondition(&store.Status.Conditions, sched)
	store.Status.ObservedGeneration = gen
}

// storeDeletionConditions sets the Ready condition of a deleted store from the Volumes placed on
// it and the Snapshots it holds (volumes and snapshots, as "namespace/name"): False, naming how
// many of each and which, while there are any. With none it changes nothing, since the finalizer
// goes and the Store with it. Like storeConditions it only touches store.Status.
func storeDeletionConditions(store *storagev1alpha1.Store, volumes, snapshots []string, now time.Time) {
	var parts []string
	if len(volumes) > 0 {
		parts = append(parts, fmt.Sprintf("%d Volume(s) placed on this store: %s", len(volumes), nameList(volumes)))
	}
	if len(snapshots) > 0 {
		parts = append(parts, fmt.Sprintf("%d Snapshot(s) held on this store: %s", len(snapshots), nameList(snapshots)))
	}
	if len(parts) == 0 {
		return
	}
	meta.SetStatusCondition(&store.Status.Conditions, metav1.Condition{Type: storagev1alpha1.ConditionReady,
		Status: metav1.ConditionFalse, Reason: storagev1alpha1.ReasonDeletionBlocked,
		Message:            "deletion waits for " + strings.Join(parts, "; and for "),
		ObservedGeneration: store.Generation, LastTransitionTime: metav1.NewTime(now)})
}
