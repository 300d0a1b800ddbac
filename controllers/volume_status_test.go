package controllers

import (
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/cobaltstore/cobalt/api/v1alpha1"
)

// volumeAt builds a Volume of generation 3 that requests size; placed on store s1 when allocated
// is not empty ("-" places it without an allocation), carrying conds as its status said them.
func volumeAt(size, allocated string, conds ...metav1.Condition) *v1alpha1.Volume {
	v := newVolume("ns", "v", size)
	v.Generation = 3
	v.Status.ObservedGeneration = 2
	switch allocated {
	case "":
	case "-":
		v.Spec.StoreName = "s1"
	default:
		v.Spec.StoreName = "s1"
		q := resource.MustParse(allocated)
		v.Status.AllocatedSize = &q
		v.Status.Placement = &v1alpha1.VolumePlacement{Store: "s1", Node: "node-a"}
	}
	v.Status.Conditions = conds
	return v
}

// cond is a condition as an earlier reconcile (at unitNow minus an hour, generation 2) wrote it.
func cond(t string, status metav1.ConditionStatus, reason, msg string) metav1.Condition {
	return metav1.Condition{Type: t, Status: status, Reason: reason, Message: msg, ObservedGeneration: 2,
		LastTransitionTime: metav1.NewTime(unitNow.Add(-time.Hour))}
}

// seen is an observation that found store s1 of node-a with the given health.
func seen(ready bool, msg string) volumeObservation {
	s := newStore("s1", newFileCluster("ns", "sc"), "node-a")
	return volumeObservation{Now: unitNow, StoreSeen: true, Store: s, StoreHealth: storeHealth{Ready: ready, Message: msg}}
}

func with(obs volumeObservation, f func(*volumeObservation)) volumeObservation {
	f(&obs)
	return obs
}

func qty(s string) *resource.Quantity {
	q := resource.MustParse(s)
	return &q
}

// want describes one condition after the computation; a nil *want means the condition is absent.
type want struct {
	status  metav1.ConditionStatus
	reason  string
	message string
	// changedNow says the condition was written by this computation (generation 3, and, when its
	// status changed, transition time unitNow); false says it is exactly as before.
	changedNow bool
}

func TestComputeVolumeStatus(t *testing.T) {
	const healthy = "heartbeat within the 1m0s timeout"
	readyTrue := cond(v1alpha1.ConditionReady, metav1.ConditionTrue, v1alpha1.ReasonProvisioned, "created on store s1 of node node-a")
	storeDown := cond(v1alpha1.ConditionReady, metav1.ConditionFalse, v1alpha1.ReasonStoreNotReady, "store s1 is not Ready: stale")
	expanded := cond(v1alpha1.ConditionResizing, metav1.ConditionFalse, v1alpha1.ReasonExpanded, "expanded to 10Gi")
	noRoom := cond(v1alpha1.ConditionResizing, metav1.ConditionTrue, v1alpha1.ReasonExpansionFailed, "store s1 has 1Gi free, growing to 30Gi needs 20Gi more")
	created := &want{metav1.ConditionTrue, v1alpha1.ReasonProvisioned, "created on store s1 of node node-a", true}
	unchanged := func(c metav1.Condition) *want { return &want{c.Status, c.Reason, c.Message, false} }

	tests := []struct {
		name            string
		vol             *v1alpha1.Volume
		obs             volumeObservation
		ready, resizing *want
		allocated       string // empty: none
		placement       bool
		observedGen     int64
	}{
		{
			name:        "unplaced: no store with room",
			vol:         volumeAt("25Gi", ""),
			obs:         volumeObservation{Now: unitNow, Unschedulable: "no Store can hold 25Gi: 3 Stores considered: 3 too full (largest free space 20Gi)"},
			ready:       &want{metav1.ConditionFalse, v1alpha1.ReasonUnschedulable, "no Store can hold 25Gi: 3 Stores considered: 3 too full (largest free space 20Gi)", true},
			observedGen: 3,
		},
		{
			name:        "unplaced: placement not tried (the reconcile failed first) says nothing new",
			vol:         volumeAt("1Gi", "", cond(v1alpha1.ConditionReady, metav1.ConditionFalse, v1alpha1.ReasonUnschedulable, "no Store can hold 1Gi")),
			obs:         volumeObservation{Now: unitNow},
			ready:       &want{metav1.ConditionFalse, v1alpha1.ReasonUnschedulable, "no Store can hold 1Gi", false},
			observedGen: 3,
		},
		{
			name:        "restore waiting for its snapshot",
			vol:         volumeAt("10Gi", ""),
			obs:         volumeObservation{Now: unitNow, SourceWaiting: "snapshot ns/s is not ready to use yet"},
			ready:       &want{metav1.ConditionFalse, v1alpha1.ReasonSourceNotReady, "snapshot ns/s is not ready to use yet", true},
			observedGen: 3,
		},
		{
			name: "restore smaller than its source, already placed: SourceTooLarge wins over the store's state",
			vol:  volumeAt("1Gi", "-"),
			obs: with(seen(true, healthy), func(o *volumeObservation) {
				o.SourceTooLarge = "the volume's size 1Gi is smaller than its source snapshot ns/s (2Gi): ask for at least 2Gi"
			}),
			ready: &want{metav1.ConditionFalse, v1alpha1.ReasonSourceTooLarge,
				"the volume's size 1Gi is smaller than its source snapshot ns/s (2Gi): ask for at least 2Gi", true},
			observedGen: 3,
		},
		{
			name:        "clone pinned to another store than its source's",
			vol:         volumeAt("10Gi", "-"),
			obs:         volumeObservation{Now: unitNow, SourceMisplaced: "storeName s1 is not store s2"},
			ready:       &want{metav1.ConditionFalse, v1alpha1.ReasonUnschedulable, "storeName s1 is not store s2", true},
			observedGen: 3,
		},
		{
			name:        "unplaced and never reconciled: no condition yet",
			vol:         volumeAt("1Gi", ""),
			obs:         volumeObservation{Now: unitNow},
			observedGen: 3,
		},
		{
			name:        "placed, store not looked up yet: Ready as before",
			vol:         volumeAt("10Gi", "10Gi", readyTrue),
			obs:         volumeObservation{Now: unitNow},
			ready:       unchanged(readyTrue),
			allocated:   "10Gi",
			placement:   true,
			observedGen: 3,
		},
		{
			name:        "placed, store missing",
			vol:         volumeAt("10Gi", "-"),
			obs:         volumeObservation{Now: unitNow, StoreSeen: true},
			ready:       &want{metav1.ConditionFalse, v1alpha1.ReasonStoreMissing, "store s1 does not exist", true},
			observedGen: 3,
		},
		{
			name:        "created volume whose store went missing",
			vol:         volumeAt("10Gi", "10Gi", readyTrue, expanded),
			obs:         volumeObservation{Now: unitNow, StoreSeen: true},
			ready:       &want{metav1.ConditionFalse, v1alpha1.ReasonStoreMissing, "store s1 does not exist", true},
			resizing:    unchanged(expanded),
			allocated:   "10Gi",
			placement:   true,
			observedGen: 3,
		},
		{
			name:        "placed, store not ready",
			vol:         volumeAt("10Gi", "-"),
			obs:         seen(false, "last heartbeat is older than the 1m0s timeout"),
			ready:       &want{metav1.ConditionFalse, v1alpha1.ReasonStoreNotReady, "store s1 is not Ready: last heartbeat is older than the 1m0s timeout", true},
			observedGen: 3,
		},
		{
			name:        "created volume on a store that went down",
			vol:         volumeAt("10Gi", "10Gi", readyTrue),
			obs:         seen(false, "stale"),
			ready:       &want{metav1.ConditionFalse, v1alpha1.ReasonStoreNotReady, "store s1 is not Ready: stale", true},
			allocated:   "10Gi",
			placement:   true,
			observedGen: 3,
		},
		{
			name: "node failed to create it",
			vol:  volumeAt("10Gi", "-"),
			obs: with(seen(true, healthy), func(o *volumeObservation) {
				o.CreateFailed = "node node-a could not create the volume on store s1: connection refused"
			}),
			ready:       &want{metav1.ConditionFalse, v1alpha1.ReasonProvisioningFailed, "node node-a could not create the volume on store s1: connection refused", true},
			observedGen: 3,
		},
		{
			name:        "created now: allocation, placement and Ready",
			vol:         volumeAt("10Gi", "-", cond(v1alpha1.ConditionReady, metav1.ConditionFalse, v1alpha1.ReasonProvisioningFailed, "connection refused")),
			obs:         with(seen(true, healthy), func(o *volumeObservation) { o.Created = qty("10Gi") }),
			ready:       created,
			allocated:   "10Gi",
			placement:   true,
			observedGen: 3,
		},
		{
			name:        "created earlier on a healthy store: Ready kept, its transition time too",
			vol:         volumeAt("10Gi", "10Gi", readyTrue),
			obs:         seen(true, healthy),
			ready:       created,
			allocated:   "10Gi",
			placement:   true,
			observedGen: 3,
		},
		{
			name:        "store back after an outage: Ready again",
			vol:         volumeAt("10Gi", "10Gi", storeDown),
			obs:         seen(true, healthy),
			ready:       created,
			allocated:   "10Gi",
			placement:   true,
			observedGen: 3,
		},
		{
			name:        "grown now: Resizing turns False, Expanded",
			vol:         volumeAt("15Gi", "10Gi", readyTrue),
			obs:         with(seen(true, healthy), func(o *volumeObservation) { o.Grown = qty("15Gi") }),
			ready:       created,
			resizing:    &want{metav1.ConditionFalse, v1alpha1.ReasonExpanded, "expanded to 15Gi", true},
			allocated:   "15Gi",
			placement:   true,
			observedGen: 3,
		},
		{
			name:        "grown after a failure",
			vol:         volumeAt("30Gi", "10Gi", readyTrue, noRoom),
			obs:         with(seen(true, healthy), func(o *volumeObservation) { o.Grown = qty("30Gi") }),
			ready:       created,
			resizing:    &want{metav1.ConditionFalse, v1alpha1.ReasonExpanded, "expanded to 30Gi", true},
			allocated:   "30Gi",
			placement:   true,
			observedGen: 3,
		},
		{
			name:        "the node grew it less than asked: still Expanding",
			vol:         volumeAt("30Gi", "10Gi", readyTrue, noRoom),
			obs:         with(seen(true, healthy), func(o *volumeObservation) { o.Grown = qty("20Gi") }),
			ready:       created,
			resizing:    &want{metav1.ConditionTrue, v1alpha1.ReasonExpanding, "growing from 20Gi to 30Gi", true},
			allocated:   "20Gi",
			placement:   true,
			observedGen: 3,
		},
		{
			name:        "growth failed for lack of room on a healthy store: Ready stays True",
			vol:         volumeAt("30Gi", "10Gi", readyTrue, expanded),
			obs:         with(seen(true, healthy), func(o *volumeObservation) { o.GrowthFailed = noRoom.Message }),
			ready:       created,
			resizing:    &want{metav1.ConditionTrue, v1alpha1.ReasonExpansionFailed, noRoom.Message, true},
			allocated:   "10Gi",
			placement:   true,
			observedGen: 3,
		},
		{
			name:        "growth failed on the node after the store came back: Ready turns True",
			vol:         volumeAt("30Gi", "10Gi", storeDown),
			obs:         with(seen(true, healthy), func(o *volumeObservation) { o.GrowthFailed = "node node-a could not grow the volume to 30Gi: EIO" }),
			ready:       created,
			resizing:    &want{metav1.ConditionTrue, v1alpha1.ReasonExpansionFailed, "node node-a could not grow the volume to 30Gi: EIO", true},
			allocated:   "10Gi",
			placement:   true,
			observedGen: 3,
		},
		{
			name:        "growing while the store is not ready: Expanding, Ready False",
			vol:         volumeAt("15Gi", "10Gi", readyTrue, expanded),
			obs:         seen(false, "stale"),
			ready:       &want{metav1.ConditionFalse, v1alpha1.ReasonStoreNotReady, "store s1 is not Ready: stale", true},
			resizing:    &want{metav1.ConditionTrue, v1alpha1.ReasonExpanding, "growing from 10Gi to 15Gi", true},
			allocated:   "10Gi",
			placement:   true,
			observedGen: 3,
		},
		{
			name:        "growing, not tried again: the failure reported before stays",
			vol:         volumeAt("30Gi", "10Gi", readyTrue, noRoom),
			obs:         seen(false, "stale"),
			ready:       &want{metav1.ConditionFalse, v1alpha1.ReasonStoreNotReady, "store s1 is not Ready: stale", true},
			resizing:    unchanged(noRoom),
			allocated:   "10Gi",
			placement:   true,
			observedGen: 3,
		},
		{
			name:        "already at its size after a failure (another reconcile grew it)",
			vol:         volumeAt("30Gi", "30Gi", readyTrue, noRoom),
			obs:         seen(true, healthy),
			ready:       created,
			resizing:    &want{metav1.ConditionFalse, v1alpha1.ReasonExpanded, "expanded to 30Gi", true},
			allocated:   "30Gi",
			placement:   true,
			observedGen: 3,
		},
		{
			name:        "never grown: no Resizing condition",
			vol:         volumeAt("10Gi", "10Gi", readyTrue),
			obs:         seen(true, healthy),
			ready:       created,
			allocated:   "10Gi",
			placement:   true,
			observedGen: 3,
		},
		{
			name:        "not created: no Resizing even when the request grew",
			vol:         volumeAt("20Gi", "-"),
			obs:         seen(false, "stale"),
			ready:       &want{metav1.ConditionFalse, v1alpha1.ReasonStoreNotReady, "store s1 is not Ready: stale", true},
			observedGen: 3,
		},
		{
			name:        "deleting, the node could not free it",
			vol:         volumeAt("10Gi", "10Gi", readyTrue),
			obs:         volumeObservation{Now: unitNow, Deleting: true, DeleteFailed: "node node-a could not free the volume on store s1: node unreachable"},
			ready:       &want{metav1.ConditionFalse, v1alpha1.ReasonDeleteFailed, "node node-a could not free the volume on store s1: node unreachable", true},
			allocated:   "10Gi",
			placement:   true,
			observedGen: 2,
		},
		{
			name:        "deleting, freed: status as it was",
			vol:         volumeAt("15Gi", "10Gi", readyTrue),
			obs:         volumeObservation{Now: unitNow, Deleting: true},
			ready:       unchanged(readyTrue),
			allocated:   "10Gi",
			placement:   true,
			observedGen: 2,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			orig := tt.vol.DeepCopy()
			got := computeVolumeStatus(tt.vol, tt.obs)
			if !equality.Semantic.DeepEqual(orig, tt.vol) {
				t.Fatalf("computeVolumeStatus modified its input:\nbefore %+v\nafter  %+v", orig.Status, tt.vol.Status)
			}
			checkCondition(t, got.Conditions, tt.vol.Status.Conditions, v1alpha1.ConditionReady, tt.ready)
			checkCondition(t, got.Conditions, tt.vol.Status.Conditions, v1alpha1.ConditionResizing, tt.resizing)
			if len(got.Conditions) > 2 {
				t.Errorf("conditions %v: want only Ready and Resizing", got.Conditions)
			}
			switch {
			case tt.allocated == "" && got.AllocatedSize != nil:
				t.Errorf("allocatedSize = %s, want none", got.AllocatedSize)
			case tt.allocated != "" && (got.AllocatedSize == nil || got.AllocatedSize.Cmp(resource.MustParse(tt.allocated)) != 0):
				t.Errorf("allocatedSize = %v, want %s", got.AllocatedSize, tt.allocated)
			}
			wantPlacement := (*v1alpha1.VolumePlacement)(nil)
			if tt.placement {
				wantPlacement = &v1alpha1.VolumePlacement{Store: "s1", Node: "node-a"}
			}
			if !equality.Semantic.DeepEqual(got.Placement, wantPlacement) {
				t.Errorf("placement = %+v, want %+v", got.Placement, wantPlacement)
			}
			if got.ObservedGeneration != tt.observedGen {
				t.Errorf("observedGeneration = %d, want %d", got.ObservedGeneration, tt.observedGen)
			}
		})
	}
}

// checkCondition compares the condition of type typ in got with w; before are the conditions
// the computation started from, to check the transition time.
func checkCondition(t *testing.T, got, before []metav1.Condition, typ string, w *want) {
	t.Helper()
	c := meta.FindStatusCondition(got, typ)
	if w == nil {
		if c != nil {
			t.Errorf("%s = %s/%s %q, want no condition", typ, c.Status, c.Reason, c.Message)
		}
		return
	}
	if c == nil {
		t.Errorf("%s missing, want %s/%s %q", typ, w.status, w.reason, w.message)
		return
	}
	if c.Status != w.status || c.Reason != w.reason || c.Message != w.message {
		t.Errorf("%s = %s/%s %q, want %s/%s %q", typ, c.Status, c.Reason, c.Message, w.status, w.reason, w.message)
	}
	prev := meta.FindStatusCondition(before, typ)
	wantGen, wantLTT := int64(2), unitNow.Add(-time.Hour)
	if w.changedNow {
		wantGen = 3
		if prev == nil || prev.Status != c.Status {
			wantLTT = unitNow
		}
	}
	if c.ObservedGeneration != wantGen {
		t.Errorf("%s observedGeneration = %d, want %d", typ, c.ObservedGeneration, wantGen)
	}
	if !c.LastTransitionTime.Time.Equal(wantLTT) {
		t.Errorf("%s lastTransitionTime = %s, want %s", typ, c.LastTransitionTime.UTC(), wantLTT.UTC())
	}
}

// TestComputeVolumeStatusTransitionTime runs one Volume through a sequence of reconciles an hour
// apart and checks that Ready's transition time moves only when its status does.
func TestComputeVolumeStatusTransitionTime(t *testing.T) {
	vol := volumeAt("10Gi", "")
	steps := []struct {
		name     string
		obs      func(now time.Time) volumeObservation
		status   metav1.ConditionStatus
		reason   string
		moved    bool
		placedAt bool
	}{
		{"unschedulable", func(now time.Time) volumeObservation {
			return volumeObservation{Now: now, Unschedulable: "no Store can hold 10Gi: 0 Stores considered"}
		}, metav1.ConditionFalse, v1alpha1.ReasonUnschedulable, true, false},
		{"unschedulable for another reason: same status, time kept", func(now time.Time) volumeObservation {
			return volumeObservation{Now: now, Unschedulable: "no Store can hold 10Gi: 1 Stores considered: 1 not ready"}
		}, metav1.ConditionFalse, v1alpha1.ReasonUnschedulable, false, false},
		{"placed on a store that is not ready: still False, time kept", func(now time.Time) volumeObservation {
			return with(seen(false, "stale"), func(o *volumeObservation) { o.Now = now })
		}, metav1.ConditionFalse, v1alpha1.ReasonStoreNotReady, false, true},
		{"created: True, time moves", func(now time.Time) volumeObservation {
			return with(seen(true, "fresh"), func(o *volumeObservation) { o.Now, o.Created = now, qty("10Gi") })
		}, metav1.ConditionTrue, v1alpha1.ReasonProvisioned, true, true},
		{"reconciled again: unchanged", func(now time.Time) volumeObservation {
			return with(seen(true, "fresh"), func(o *volumeObservation) { o.Now = now })
		}, metav1.ConditionTrue, v1alpha1.ReasonProvisioned, false, true},
		{"growth failed: Ready stays True, time kept", func(now time.Time) volumeObservation {
			return with(seen(true, "fresh"), func(o *volumeObservation) { o.Now, o.GrowthFailed = now, "no room" })
		}, metav1.ConditionTrue, v1alpha1.ReasonProvisioned, false, true},
		{"store down: False, time moves", func(now time.Time) volumeObservation {
			return with(seen(false, "stale"), func(o *volumeObservation) { o.Now = now })
		}, metav1.ConditionFalse, v1alpha1.ReasonStoreNotReady, true, true},
	}
	var last time.Time
	for i, s := range steps {
		now := unitNow.Add(time.Duration(i) * time.Hour)
		if s.placedAt {
			vol.Spec.StoreName = "s1"
		}
		if i == 5 {
			vol.Spec.Size = resource.MustParse("20Gi")
		}
		vol.Status = computeVolumeStatus(vol, s.obs(now))
		c := meta.FindStatusCondition(vol.Status.Conditions, v1alpha1.ConditionReady)
		if c == nil || c.Status != s.status || c.Reason != s.reason {
			t.Fatalf("step %q: Ready = %+v, want %s/%s", s.name, c, s.status, s.reason)
		}
		wantLTT := last
		if s.moved {
			wantLTT = now
		}
		if !c.LastTransitionTime.Time.Equal(wantLTT) {
			t.Fatalf("step %q: lastTransitionTime = %s, want %s", s.name, c.LastTransitionTime.UTC(), wantLTT.UTC())
		}
		last = c.LastTransitionTime.Time
	}
}
