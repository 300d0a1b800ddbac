package controllers

import (
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/cobaltstore/cobalt/api/v1alpha1"
)

// replicatedVolume is a Volume of generation 3 with three copies placed on s1, s2 and s3,
// requesting size, whose status lists prev (nil: no entries yet).
func replicatedVolume(size string, prev ...v1alpha1.VolumeReplica) *v1alpha1.Volume {
	v := volumeAt(size, "")
	v.Spec.Replicas, v.Spec.StoreName, v.Spec.ReplicaStoreNames = 3, "s1", []string{"s2", "s3"}
	v.Status.Replicas = prev
	return v
}

// entry is a status.replicas entry of store (on node "node-"+store) that holds alloc.
func entry(store string, state v1alpha1.ReplicaState, alloc, msg string) v1alpha1.VolumeReplica {
	e := v1alpha1.VolumeReplica{Store: store, Node: "node-" + store, State: state, Message: msg}
	if alloc != "" {
		e.AllocatedSize = qty(alloc)
	}
	return e
}

// lostEntry is a Lost entry of store since unitNow (the reconcile that saw it Lost first).
func lostEntry(store, alloc, msg string) v1alpha1.VolumeReplica {
	e := entry(store, v1alpha1.ReplicaLost, alloc, msg)
	e.LostSince = &metav1.Time{Time: unitNow}
	return e
}

// copySeen is a copy whose Store (on node "node-"+store) was found Ready, or not Ready with msg.
func copySeen(store string, ready bool, msg string) copyObservation {
	return copyObservation{StoreName: store, Seen: true, Store: newStore(store, newFileCluster("ns", "sc"), "node-"+store),
		Health: storeHealth{Ready: ready, Message: msg}}
}

func withCopy(c copyObservation, f func(*copyObservation)) copyObservation { f(&c); return c }

// served is vol once it was in service: every copy was created, so status has an allocation.
func served(vol *v1alpha1.Volume) *v1alpha1.Volume {
	vol.Status.AllocatedSize = qty("10Gi")
	return vol
}

func TestComputeReplicatedStatus(t *testing.T) {
	const stale = "last heartbeat is older than the 1m0s timeout"
	const rebuilding = "new copy that replaces the copy on store s9, created empty: being rebuilt from the in-sync copies by the node serving the volume"
	created := func(q string) func(*copyObservation) { return func(c *copyObservation) { c.Created = qty(q) } }
	inSync3 := []v1alpha1.VolumeReplica{entry("s1", v1alpha1.ReplicaInSync, "10Gi", ""), entry("s2", v1alpha1.ReplicaInSync, "10Gi", ""),
		entry("s3", v1alpha1.ReplicaInSync, "10Gi", "")}
	healthy := []copyObservation{copySeen("s1", true, ""), copySeen("s2", true, ""), copySeen("s3", true, "")}
	tests := []struct {
		name            string
		vol             *v1alpha1.Volume
		obs             volumeObservation
		replicas        []v1alpha1.VolumeReplica
		allocated       string
		ready, degraded *want
		resizing        *want
	}{
		{name: "replication off: not placed, and says why",
			vol: func() *v1alpha1.Volume {
				v := replicatedVolume("10Gi")
				v.Spec.StoreName, v.Spec.ReplicaStoreNames = "", nil
				return v
			}(),
			obs:   volumeObservation{Now: unitNow, ReplicationUnavailable: "replication is off"},
			ready: &want{metav1.ConditionFalse, v1alpha1.ReasonReplicationUnavailable, "replication is off", true}},
		{name: "copies that do not fit: unschedulable",
			vol: func() *v1alpha1.Volume {
				v := replicatedVolume("10Gi")
				v.Spec.ReplicaStoreNames = nil // the first copy was pinned
				return v
			}(),
			obs:   volumeObservation{Now: unitNow, Unschedulable: "3 replicas need 3 nodes"},
			ready: &want{metav1.ConditionFalse, v1alpha1.ReasonUnschedulable, "3 replicas need 3 nodes", true}},
		{name: "every copy created now: in sync, Ready, not Degraded, the first copy is the placement",
			vol: replicatedVolume("10Gi"),
			obs: volumeObservation{Now: unitNow, Copies: []copyObservation{withCopy(healthy[0], created("10Gi")),
				withCopy(healthy[1], created("12Gi")), withCopy(healthy[2], created("10Gi"))}},
			replicas: []v1alpha1.VolumeReplica{entry("s1", v1alpha1.ReplicaInSync, "10Gi", ""), entry("s2", v1alpha1.ReplicaInSync, "12Gi", ""),
				entry("s3", v1alpha1.ReplicaInSync, "10Gi", "")},
			allocated: "10Gi",
			ready: &want{metav1.ConditionTrue, v1alpha1.ReasonProvisioned,
				"3 copies created on stores s1 (node node-s1), s2 (node node-s2), s3 (node node-s3)", true},
			degraded: &want{metav1.ConditionFalse, v1alpha1.ReasonReplicasInSync, "3 of 3 copies in sync", true}},
		{name: "a copy whose Store is not Ready waits; the volume is not Ready until every copy exists",
			vol: replicatedVolume("10Gi"),
			obs: volumeObservation{Now: unitNow, Copies: []copyObservation{withCopy(healthy[0], created("10Gi")),
				withCopy(healthy[1], created("10Gi")), copySeen("s3", false, stale)}},
			replicas: []v1alpha1.VolumeReplica{entry("s1", v1alpha1.ReplicaInSync, "10Gi", ""), entry("s2", v1alpha1.ReplicaInSync, "10Gi", ""),
				entry("s3", v1alpha1.ReplicaPending, "", "waits: store s3 is not Ready: "+stale)},
			ready: &want{metav1.ConditionFalse, v1alpha1.ReasonStoreNotReady,
				"2 of 3 copies created; copy on store s3: waits: store s3 is not Ready: " + stale, true}},
		{name: "a node failing to create its copy outranks a Store not Ready",
			vol: replicatedVolume("10Gi"),
			obs: volumeObservation{Now: unitNow, Copies: []copyObservation{copySeen("s1", false, stale),
				withCopy(healthy[1], func(c *copyObservation) { c.CreateFailed = "node node-s2 could not create the copy on store s2: EIO" }),
				withCopy(healthy[2], created("10Gi"))}},
			replicas: []v1alpha1.VolumeReplica{entry("s1", v1alpha1.ReplicaPending, "", "waits: store s1 is not Ready: "+stale),
				entry("s2", v1alpha1.ReplicaPending, "", "node node-s2 could not create the copy on store s2: EIO"),
				entry("s3", v1alpha1.ReplicaInSync, "10Gi", "")},
			ready: &want{metav1.ConditionFalse, v1alpha1.ReasonProvisioningFailed,
				"1 of 3 copies created; copy on store s1: waits: store s1 is not Ready: " + stale +
					"; copy on store s2: node node-s2 could not create the copy on store s2: EIO", true}},
		{name: "a copy whose Store goes down is Lost: Degraded, still Ready",
			vol:       replicatedVolume("10Gi", inSync3...),
			obs:       volumeObservation{Now: unitNow, Copies: []copyObservation{healthy[0], copySeen("s2", false, stale), healthy[2]}},
			replicas:  []v1alpha1.VolumeReplica{inSync3[0], lostEntry("s2", "10Gi", "store s2 is not Ready: "+stale), inSync3[2]},
			allocated: "10Gi",
			ready: &want{metav1.ConditionTrue, v1alpha1.ReasonProvisioned,
				"3 copies created on stores s1 (node node-s1), s2 (node node-s2), s3 (node node-s3)", true},
			degraded: &want{metav1.ConditionTrue, v1alpha1.ReasonReplicasNotInSync,
				"2 of 3 copies in sync; copy on store s2 Lost: store s2 is not Ready: " + stale, true}},
		{name: "a missing Store loses its copy",
			vol:       replicatedVolume("10Gi", inSync3...),
			obs:       volumeObservation{Now: unitNow, Copies: []copyObservation{healthy[0], healthy[1], {StoreName: "s3", Seen: true}}},
			replicas:  []v1alpha1.VolumeReplica{inSync3[0], inSync3[1], lostEntry("s3", "10Gi", "store s3 does not exist")},
			allocated: "10Gi",
			ready: &want{metav1.ConditionTrue, v1alpha1.ReasonProvisioned,
				"3 copies created on stores s1 (node node-s1), s2 (node node-s2), s3 (node node-s3)", true},
			degraded: &want{metav1.ConditionTrue, v1alpha1.ReasonReplicasNotInSync,
				"2 of 3 copies in sync; copy on store s3 Lost: store s3 does not exist", true}},
		{name: "a Lost copy whose Store comes back catches up: the operator never calls it InSync",
			vol: replicatedVolume("10Gi", inSync3[0], entry("s2", v1alpha1.ReplicaLost, "10Gi", "store s2 is not Ready: "+stale), inSync3[2]),
			obs: volumeObservation{Now: unitNow, Copies: healthy},
			replicas: []v1alpha1.VolumeReplica{inSync3[0], entry("s2", v1alpha1.ReplicaCatchingUp, "10Gi",
				"store s2 is back; the copy may miss writes made while it was away and waits for the replicated data path to resync it"), inSync3[2]},
			allocated: "10Gi",
			ready: &want{metav1.ConditionTrue, v1alpha1.ReasonProvisioned,
				"3 copies created on stores s1 (node node-s1), s2 (node node-s2), s3 (node node-s3)", true},
			degraded: &want{metav1.ConditionTrue, v1alpha1.ReasonRebuilding,
				"2 of 3 copies in sync; copy on store s2 CatchingUp: store s2 is back; the copy may miss writes made while it was away and waits for the replicated data path to resync it", true}},
		{name: "a copy catching up stays so",
			vol:       replicatedVolume("10Gi", inSync3[0], inSync3[1], entry("s3", v1alpha1.ReplicaCatchingUp, "10Gi", "resync 40%")),
			obs:       volumeObservation{Now: unitNow, Copies: healthy},
			replicas:  []v1alpha1.VolumeReplica{inSync3[0], inSync3[1], entry("s3", v1alpha1.ReplicaCatchingUp, "10Gi", "resync 40%")},
			allocated: "10Gi",
			ready: &want{metav1.ConditionTrue, v1alpha1.ReasonProvisioned,
				"3 copies created on stores s1 (node node-s1), s2 (node node-s2), s3 (node node-s3)", true},
			degraded: &want{metav1.ConditionTrue, v1alpha1.ReasonRebuilding,
				"2 of 3 copies in sync; copy on store s3 CatchingUp: resync 40%", true}},
		{name: "no copy in sync: not Ready",
			vol: replicatedVolume("10Gi", inSync3...),
			obs: volumeObservation{Now: unitNow, Copies: []copyObservation{copySeen("s1", false, "a"), copySeen("s2", false, "b"), copySeen("s3", false, "c")}},
			replicas: []v1alpha1.VolumeReplica{lostEntry("s1", "10Gi", "store s1 is not Ready: a"),
				lostEntry("s2", "10Gi", "store s2 is not Ready: b"), lostEntry("s3", "10Gi", "store s3 is not Ready: c")},
			allocated: "10Gi",
			ready: &want{metav1.ConditionFalse, v1alpha1.ReasonStoreNotReady, "no copy is in sync: copy on store s1 Lost: store s1 is not Ready: a; " +
				"copy on store s2 Lost: store s2 is not Ready: b; copy on store s3 Lost: store s3 is not Ready: c", true},
			degraded: &want{metav1.ConditionTrue, v1alpha1.ReasonReplicasNotInSync, "0 of 3 copies in sync; copy on store s1 Lost: store s1 is not Ready: a; " +
				"copy on store s2 Lost: store s2 is not Ready: b; copy on store s3 Lost: store s3 is not Ready: c", true}},
		{name: "growth: the volume holds what its smallest copy holds, and a copy that cannot grow is reported",
			vol: replicatedVolume("20Gi", inSync3...),
			obs: volumeObservation{Now: unitNow, Copies: []copyObservation{
				withCopy(healthy[0], func(c *copyObservation) { c.Grown = qty("20Gi") }),
				withCopy(healthy[1], func(c *copyObservation) { c.Grown = qty("20Gi") }),
				withCopy(healthy[2], func(c *copyObservation) { c.GrowthFailed = "store s3 has 5Gi free, growing to 20Gi needs 10Gi more" })}},
			replicas: []v1alpha1.VolumeReplica{entry("s1", v1alpha1.ReplicaInSync, "20Gi", ""), entry("s2", v1alpha1.ReplicaInSync, "20Gi", ""),
				inSync3[2]},
			allocated: "10Gi",
			ready: &want{metav1.ConditionTrue, v1alpha1.ReasonProvisioned,
				"3 copies created on stores s1 (node node-s1), s2 (node node-s2), s3 (node node-s3)", true},
			degraded: &want{metav1.ConditionFalse, v1alpha1.ReasonReplicasInSync, "3 of 3 copies in sync", true},
			resizing: &want{metav1.ConditionTrue, v1alpha1.ReasonExpansionFailed, "store s3 has 5Gi free, growing to 20Gi needs 10Gi more", true}},
		{name: "every copy grown: the volume is expanded",
			vol: replicatedVolume("20Gi", entry("s1", v1alpha1.ReplicaInSync, "20Gi", ""), entry("s2", v1alpha1.ReplicaInSync, "20Gi", ""), inSync3[2]),
			obs: volumeObservation{Now: unitNow, Copies: []copyObservation{healthy[0], healthy[1],
				withCopy(healthy[2], func(c *copyObservation) { c.Grown = qty("20Gi") })}},
			replicas: []v1alpha1.VolumeReplica{entry("s1", v1alpha1.ReplicaInSync, "20Gi", ""), entry("s2", v1alpha1.ReplicaInSync, "20Gi", ""),
				entry("s3", v1alpha1.ReplicaInSync, "20Gi", "")},
			allocated: "20Gi",
			ready: &want{metav1.ConditionTrue, v1alpha1.ReasonProvisioned,
				"3 copies created on stores s1 (node node-s1), s2 (node node-s2), s3 (node node-s3)", true},
			degraded: &want{metav1.ConditionFalse, v1alpha1.ReasonReplicasInSync, "3 of 3 copies in sync", true},
			resizing: &want{metav1.ConditionFalse, v1alpha1.ReasonExpanded, "expanded to 20Gi", true}},
		{name: "a copy created after the volume was in service starts CatchingUp: it is empty until rebuilt",
			vol: served(replicatedVolume("10Gi", inSync3[0], inSync3[1])),
			obs: volumeObservation{Now: unitNow, Copies: []copyObservation{healthy[0], healthy[1], withCopy(healthy[2], func(c *copyObservation) {
				c.Joining, c.Created, c.Note = true, qty("10Gi"), "replaces the copy on store s9"
			})}},
			replicas:  []v1alpha1.VolumeReplica{inSync3[0], inSync3[1], entry("s3", v1alpha1.ReplicaCatchingUp, "10Gi", rebuilding)},
			allocated: "10Gi",
			ready: &want{metav1.ConditionTrue, v1alpha1.ReasonProvisioned,
				"3 copies created on stores s1 (node node-s1), s2 (node node-s2), s3 (node node-s3)", true},
			degraded: &want{metav1.ConditionTrue, v1alpha1.ReasonRebuilding, "2 of 3 copies in sync; copy on store s3 CatchingUp: " + rebuilding, true}},
		{name: "a replacement copy that its node fails to create leaves a served volume Ready",
			vol: served(replicatedVolume("10Gi", inSync3[0], inSync3[1])),
			obs: volumeObservation{Now: unitNow, Copies: []copyObservation{healthy[0], healthy[1], withCopy(healthy[2], func(c *copyObservation) {
				c.Joining, c.CreateFailed = true, "EIO"
			})}},
			replicas:  []v1alpha1.VolumeReplica{inSync3[0], inSync3[1], entry("s3", v1alpha1.ReplicaPending, "", "EIO")},
			allocated: "10Gi",
			ready: &want{metav1.ConditionTrue, v1alpha1.ReasonProvisioned,
				"2 copies created on stores s1 (node node-s1), s2 (node node-s2)", true},
			degraded: &want{metav1.ConditionTrue, v1alpha1.ReasonReplicasNotInSync, "2 of 3 copies in sync; copy on store s3 Pending: EIO", true}},
		{name: "a Lost copy keeps the time it was first seen Lost",
			vol: replicatedVolume("10Gi", inSync3[0], inSync3[1], func() v1alpha1.VolumeReplica {
				e := entry("s3", v1alpha1.ReplicaLost, "10Gi", "store s3 does not exist")
				e.LostSince = &metav1.Time{Time: unitNow.Add(-time.Hour)}
				return e
			}()),
			obs: volumeObservation{Now: unitNow, Copies: []copyObservation{healthy[0], healthy[1], {StoreName: "s3", Seen: true}}},
			replicas: []v1alpha1.VolumeReplica{inSync3[0], inSync3[1], func() v1alpha1.VolumeReplica {
				e := entry("s3", v1alpha1.ReplicaLost, "10Gi", "store s3 does not exist")
				e.LostSince = &metav1.Time{Time: unitNow.Add(-time.Hour)}
				return e
			}()},
			allocated: "10Gi",
			ready: &want{metav1.ConditionTrue, v1alpha1.ReasonProvisioned,
				"3 copies created on stores s1 (node node-s1), s2 (node node-s2), s3 (node node-s3)", true},
			degraded: &want{metav1.ConditionTrue, v1alpha1.ReasonReplicasNotInSync, "2 of 3 copies in sync; copy on store s3 Lost: store s3 does not exist", true}},
		{name: "a copy moving away is listed after the copies in spec while the new one is rebuilt: Moving",
			vol: served(replicatedVolume("10Gi", inSync3[0], inSync3[1], entry("s3", v1alpha1.ReplicaCatchingUp, "10Gi", rebuilding),
				entry("s9", v1alpha1.ReplicaInSync, "10Gi", ""))),
			obs: volumeObservation{Now: unitNow, Copies: healthy, Outgoing: []copyObservation{copySeen("s9", true, "")}},
			replicas: []v1alpha1.VolumeReplica{inSync3[0], inSync3[1], entry("s3", v1alpha1.ReplicaCatchingUp, "10Gi", rebuilding),
				entry("s9", v1alpha1.ReplicaInSync, "10Gi", "")},
			allocated: "10Gi",
			ready: &want{metav1.ConditionTrue, v1alpha1.ReasonProvisioned,
				"3 copies created on stores s1 (node node-s1), s2 (node node-s2), s3 (node node-s3)", true},
			degraded: &want{metav1.ConditionFalse, v1alpha1.ReasonMoving, "3 of 3 copies in sync; copy on store s3 CatchingUp: " + rebuilding, true}},
		{name: "a retired copy leaves replicas",
			vol: served(replicatedVolume("10Gi", inSync3[0], inSync3[1], inSync3[2], entry("s9", v1alpha1.ReplicaInSync, "10Gi", ""))),
			obs: volumeObservation{Now: unitNow, Copies: healthy, Outgoing: []copyObservation{copySeen("s9", true, "")},
				Retired: []retirement{{Store: "s9", Node: "node-s9"}}},
			replicas:  inSync3,
			allocated: "10Gi",
			ready: &want{metav1.ConditionTrue, v1alpha1.ReasonProvisioned,
				"3 copies created on stores s1 (node node-s1), s2 (node node-s2), s3 (node node-s3)", true},
			degraded: &want{metav1.ConditionFalse, v1alpha1.ReasonReplicasInSync, "3 of 3 copies in sync", true}},
		{name: "a drain with nowhere to go is no move: still in sync",
			vol:      served(replicatedVolume("10Gi", inSync3...)),
			obs:      volumeObservation{Now: unitNow, Copies: healthy, MoveBlocked: "no Store can take a copy"},
			replicas: inSync3, allocated: "10Gi",
			ready: &want{metav1.ConditionTrue, v1alpha1.ReasonProvisioned,
				"3 copies created on stores s1 (node node-s1), s2 (node node-s2), s3 (node node-s3)", true},
			degraded: &want{metav1.ConditionFalse, v1alpha1.ReasonReplicasInSync, "3 of 3 copies in sync; no Store can take a copy", true}},
		{name: "a copy that cannot be replaced is named in Degraded",
			vol: served(replicatedVolume("10Gi", inSync3[0], inSync3[1], lostEntry("s3", "10Gi", "store s3 does not exist"))),
			obs: volumeObservation{Now: unitNow, Copies: []copyObservation{healthy[0], healthy[1], {StoreName: "s3", Seen: true}},
				MoveBlocked: "no Store can take a copy"},
			replicas:  []v1alpha1.VolumeReplica{inSync3[0], inSync3[1], lostEntry("s3", "10Gi", "store s3 does not exist")},
			allocated: "10Gi",
			ready: &want{metav1.ConditionTrue, v1alpha1.ReasonProvisioned,
				"3 copies created on stores s1 (node node-s1), s2 (node node-s2), s3 (node node-s3)", true},
			degraded: &want{metav1.ConditionTrue, v1alpha1.ReasonReplicasNotInSync,
				"2 of 3 copies in sync; copy on store s3 Lost: store s3 does not exist; no Store can take a copy", true}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			orig := tt.vol.DeepCopy()
			got := computeVolumeStatus(tt.vol, tt.obs)
			if !equality.Semantic.DeepEqual(orig, tt.vol) {
				t.Fatal("computeVolumeStatus modified its input")
			}
			checkCondition(t, got.Conditions, tt.vol.Status.Conditions, v1alpha1.ConditionReady, tt.ready)
			checkCondition(t, got.Conditions, tt.vol.Status.Conditions, v1alpha1.ConditionDegraded, tt.degraded)
			checkCondition(t, got.Conditions, tt.vol.Status.Conditions, v1alpha1.ConditionResizing, tt.resizing)
			if !equality.Semantic.DeepEqual(got.Replicas, tt.replicas) {
				t.Errorf("replicas:\n got %+v\nwant %+v", got.Replicas, tt.replicas)
			}
			inSync := int32(0)
			for _, e := range tt.replicas {
				if e.State == v1alpha1.ReplicaInSync {
					inSync++
				}
			}
			if got.InSyncReplicas != inSync {
				t.Errorf("inSyncReplicas = %d, want %d", got.InSyncReplicas, inSync)
			}
			switch {
			case tt.allocated == "" && got.AllocatedSize != nil:
				t.Errorf("allocatedSize = %s, want none", got.AllocatedSize)
			case tt.allocated != "" && (got.AllocatedSize == nil || got.AllocatedSize.Cmp(*qty(tt.allocated)) != 0):
				t.Errorf("allocatedSize = %v, want %s", got.AllocatedSize, tt.allocated)
			}
			if len(tt.replicas) > 0 && tt.replicas[0].State != v1alpha1.ReplicaPending {
				if want := (&v1alpha1.VolumePlacement{Store: "s1", Node: "node-s1"}); !equality.Semantic.DeepEqual(got.Placement, want) {
					t.Errorf("placement = %+v, want %+v (the first copy)", got.Placement, want)
				}
			}
		})
	}
}

func TestSingleCopyReplicaStatus(t *testing.T) {
	vol := volumeAt("10Gi", "-")
	st := computeVolumeStatus(vol, with(seen(true, "fresh"), func(o *volumeObservation) { o.Created = qty("10Gi") }))
	if want := []v1alpha1.VolumeReplica{{Store: "s1", Node: "node-a", State: v1alpha1.ReplicaInSync, AllocatedSize: qty("10Gi")}}; !equality.Semantic.DeepEqual(st.Replicas, want) || st.InSyncReplicas != 1 {
		t.Errorf("created: replicas %+v (%d in sync), want %+v (1)", st.Replicas, st.InSyncReplicas, want)
	}
	if meta.FindStatusCondition(st.Conditions, v1alpha1.ConditionDegraded) != nil {
		t.Error("a single-copy volume has no Degraded condition")
	}

	vol.Status = st
	st = computeVolumeStatus(vol, seen(false, "stale"))
	if want := []v1alpha1.VolumeReplica{{Store: "s1", Node: "node-a", State: v1alpha1.ReplicaLost, AllocatedSize: qty("10Gi"),
		Message: "store s1 is not Ready: stale", LostSince: &metav1.Time{Time: unitNow}}}; !equality.Semantic.DeepEqual(st.Replicas, want) || st.InSyncReplicas != 0 {
		t.Errorf("store down: replicas %+v (%d in sync), want %+v (0)", st.Replicas, st.InSyncReplicas, want)
	}

	vol.Status = st
	st = computeVolumeStatus(vol, seen(true, "fresh"))
	if st.Replicas[0].State != v1alpha1.ReplicaInSync || st.InSyncReplicas != 1 {
		t.Errorf("store back: %+v, want the only copy InSync (there is no other copy to miss writes against)", st.Replicas)
	}

	st = computeVolumeStatus(volumeAt("10Gi", "-"), with(seen(true, "fresh"), func(o *volumeObservation) { o.CreateFailed = "EIO" }))
	if want := []v1alpha1.VolumeReplica{{Store: "s1", Node: "node-a", State: v1alpha1.ReplicaPending, Message: "EIO"}}; !equality.Semantic.DeepEqual(st.Replicas, want) {
		t.Errorf("create failed: replicas %+v, want %+v", st.Replicas, want)
	}
}
