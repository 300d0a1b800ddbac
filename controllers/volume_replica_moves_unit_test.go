package controllers

import (
	"slices"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/cobaltstore/cobalt/api/v1alpha1"
)

// twoCopies is a Volume with copies on s1 and s2 whose status lists entries.
func twoCopies(entries ...v1alpha1.VolumeReplica) *v1alpha1.Volume {
	v := volumeAt("10Gi", "")
	v.Spec.Replicas, v.Spec.StoreName, v.Spec.ReplicaStoreNames = 2, "s1", []string{"s2"}
	v.Status.Replicas = entries
	return v
}

// lostFor is a Lost entry of store, Lost since d before unitNow.
func lostFor(store string, d time.Duration) v1alpha1.VolumeReplica {
	e := entry(store, v1alpha1.ReplicaLost, "10Gi", "gone")
	e.LostSince = &metav1.Time{Time: unitNow.Add(-d)}
	return e
}

// outStore is copySeen of a Ready Store set out.
func outStore(store string) copyObservation {
	c := copySeen(store, true, "")
	c.Store.Spec.AdminState = v1alpha1.AdminStateOut
	return c
}

func TestPlanMove(t *testing.T) {
	const delay = 10 * time.Minute
	inSync := func(s string) v1alpha1.VolumeReplica { return entry(s, v1alpha1.ReplicaInSync, "10Gi", "") }
	tests := []struct {
		name   string
		vol    *v1alpha1.Volume
		copies []copyObservation
		want   plannedMove
	}{
		{name: "all in sync: nothing moves",
			vol: twoCopies(inSync("s1"), inSync("s2")), copies: []copyObservation{copySeen("s1", true, ""), copySeen("s2", true, "")}},
		{name: "Lost within the delay: wait for the rest of it",
			vol:    twoCopies(inSync("s1"), lostFor("s2", 4*time.Minute)),
			copies: []copyObservation{copySeen("s1", true, ""), copySeen("s2", false, "stale")},
			want:   plannedMove{Wait: 6 * time.Minute}},
		{name: "Lost for the delay: replaced",
			vol:    twoCopies(inSync("s1"), lostFor("s2", delay)),
			copies: []copyObservation{copySeen("s1", true, ""), copySeen("s2", false, "stale")},
			want:   plannedMove{Kind: moveReplace, Store: "s2", LostSince: unitNow.Add(-delay)}},
		{name: "Lost for the delay with no other copy in sync: blocked, never rebuilt from nothing",
			vol:    twoCopies(entry("s1", v1alpha1.ReplicaCatchingUp, "10Gi", ""), lostFor("s2", time.Hour)),
			copies: []copyObservation{copySeen("s1", true, ""), copySeen("s2", false, "stale")},
			want: plannedMove{Blocked: "the copy on store s2 has been Lost since " + unitNow.Add(-time.Hour).Format(time.RFC3339) +
				", but no other copy is in sync to rebuild a replacement from"}},
		{name: "in sync on a Store set out: drained",
			vol: twoCopies(inSync("s1"), inSync("s2")), copies: []copyObservation{copySeen("s1", true, ""), outStore("s2")},
			want: plannedMove{Kind: moveDrain, Store: "s2"}},
		{name: "catching up on a Store set out: it first catches up",
			vol:    twoCopies(inSync("s1"), entry("s2", v1alpha1.ReplicaCatchingUp, "10Gi", "")),
			copies: []copyObservation{copySeen("s1", true, ""), outStore("s2")}},
		{name: "every Store set out: the last copy in sync cannot move first without another in sync",
			vol:    twoCopies(inSync("s1"), entry("s2", v1alpha1.ReplicaCatchingUp, "10Gi", "")),
			copies: []copyObservation{outStore("s1"), outStore("s2")}},
		{name: "a drain under way: no second one",
			vol:    twoCopies(inSync("s1"), entry("s2", v1alpha1.ReplicaCatchingUp, "10Gi", ""), inSync("s9")),
			copies: []copyObservation{outStore("s1"), copySeen("s2", true, "")}},
		{name: "a replacement comes before a drain",
			vol:    twoCopies(inSync("s1"), lostFor("s2", time.Hour)),
			copies: []copyObservation{outStore("s1"), copySeen("s2", false, "stale")},
			want:   plannedMove{Kind: moveReplace, Store: "s2", LostSince: unitNow.Add(-time.Hour)}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := planMove(tt.vol, tt.copies, unitNow, delay)
			if got.Kind != tt.want.Kind || got.Store != tt.want.Store || !got.LostSince.Equal(tt.want.LostSince) ||
				got.Wait != tt.want.Wait || got.Blocked != tt.want.Blocked {
				t.Errorf("planMove = %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestCopiesToRetire(t *testing.T) {
	inSync := func(s string) v1alpha1.VolumeReplica { return entry(s, v1alpha1.ReplicaInSync, "10Gi", "") }
	catchingUp := func(s string) v1alpha1.VolumeReplica { return entry(s, v1alpha1.ReplicaCatchingUp, "10Gi", "") }
	healthy := []copyObservation{copySeen("s1", true, ""), copySeen("s2", true, "")}
	tests := []struct {
		name     string
		vol      *v1alpha1.Volume
		copies   []copyObservation
		outgoing []copyObservation
		want     []string
	}{
		{name: "nothing outside spec", vol: twoCopies(inSync("s1"), inSync("s2")), copies: healthy},
		{name: "a moving copy in sync is kept while the new copy catches up",
			vol: twoCopies(inSync("s1"), catchingUp("s2"), inSync("s9")), copies: healthy, outgoing: []copyObservation{copySeen("s9", true, "")}},
		{name: "the last copy in sync is never retired",
			vol: twoCopies(catchingUp("s1"), catchingUp("s2"), inSync("s9")), copies: healthy, outgoing: []copyObservation{copySeen("s9", true, "")}},
		{name: "a copy in spec whose Store is down does not count as in sync",
			vol:    twoCopies(inSync("s1"), inSync("s2"), inSync("s9")),
			copies: []copyObservation{copySeen("s1", true, ""), copySeen("s2", false, "stale")}, outgoing: []copyObservation{copySeen("s9", true, "")}},
		{name: "retired once every copy in spec is in sync",
			vol: twoCopies(inSync("s1"), inSync("s2"), inSync("s9")), copies: healthy, outgoing: []copyObservation{copySeen("s9", true, "")},
			want: []string{"s9"}},
		{name: "a replaced Lost copy is retired at once",
			vol: twoCopies(inSync("s1"), catchingUp("s2"), lostFor("s9", time.Hour)), copies: healthy, outgoing: []copyObservation{copySeen("s9", false, "stale")},
			want: []string{"s9"}},
		{name: "a moving copy that fell behind is retired",
			vol: twoCopies(inSync("s1"), catchingUp("s2"), catchingUp("s9")), copies: healthy, outgoing: []copyObservation{copySeen("s9", true, "")},
			want: []string{"s9"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got []string
			for _, r := range copiesToRetire(tt.vol, tt.copies, tt.outgoing) {
				if r.Why == "" {
					t.Errorf("retirement of %s says no why", r.Store)
				}
				got = append(got, r.Store)
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("copiesToRetire = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestChooseMoveTarget(t *testing.T) {
	load := func(name, node, zone string) storeLoad { return onNode(name, node, zone, "100Gi") }
	vol := twoCopies()
	vol.Status.RetiredReplicas = []v1alpha1.RetiredReplica{{Store: "old"}}
	tests := []struct {
		name     string
		sameNode bool
		loads    []storeLoad
		want     string
		msg      string
	}{
		{name: "a new node in a new zone first",
			loads: []storeLoad{load("s1", "n1", "za"), load("s2", "n2", "zb"), load("same-zone", "n3", "za"), load("new-zone", "n4", "zc")},
			want:  "new-zone"},
		{name: "never a Store holding a copy, retired ones included",
			loads: []storeLoad{load("s1", "n1", "za"), load("s2", "n2", "zb"), load("old", "n5", "zc"), load("n3", "n3", "za")},
			want:  "n3"},
		{name: "not on the node of a copy that stays, unless allowed",
			loads: []storeLoad{load("s1", "n1", "za"), load("s2", "n2", "zb"), load("beside-s1", "n1", "za")},
			msg:   "no Store can take a copy of 10Gi in place of the one on store s2: 3 Stores considered, 2 hold a copy already, 1 other is on a node that holds a copy (spec.replicaPlacement.allowSameNode would allow them)"},
		{name: "on the node of a copy that stays with allowSameNode",
			sameNode: true,
			loads:    []storeLoad{load("s1", "n1", "za"), load("s2", "n2", "zb"), load("beside-s1", "n1", "za")},
			want:     "beside-s1"},
		{name: "the node of the copy that moves is fine",
			loads: []storeLoad{load("s1", "n1", "za"), load("s2", "n2", "zb"), load("beside-s2", "n2", "zb")},
			want:  "beside-s2"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v := vol.DeepCopy()
			if tt.sameNode {
				v.Spec.ReplicaPlacement = &v1alpha1.ReplicaPlacement{AllowSameNode: true}
			}
			got, msg, err := chooseMoveTarget(v, tt.loads, "s2", unitNow, time.Minute)
			if err != nil {
				t.Fatal(err)
			}
			if got != tt.want || msg != tt.msg {
				t.Errorf("chooseMoveTarget = %q, %q; want %q, %q", got, msg, tt.want, tt.msg)
			}
		})
	}
}

func TestVolumeCopiesDiffer(t *testing.T) {
	base := twoCopies(entry("s1", v1alpha1.ReplicaInSync, "10Gi", ""), entry("s2", v1alpha1.ReplicaCatchingUp, "10Gi", "resync"))
	tests := []struct {
		name   string
		change func(*v1alpha1.Volume)
		want   bool
	}{
		{name: "nothing", change: func(*v1alpha1.Volume) {}},
		{name: "a condition only", change: func(v *v1alpha1.Volume) {
			v.Status.Conditions = []metav1.Condition{{Type: v1alpha1.ConditionDegraded, Status: metav1.ConditionTrue}}
		}},
		{name: "a copy's message only", change: func(v *v1alpha1.Volume) { v.Status.Replicas[1].Message = "resync 40%" }},
		{name: "the node made a copy InSync", change: func(v *v1alpha1.Volume) { v.Status.Replicas[1].State = v1alpha1.ReplicaInSync }, want: true},
		{name: "a copy retired", change: func(v *v1alpha1.Volume) {
			v.Status.Replicas = v.Status.Replicas[:1]
			v.Status.RetiredReplicas = []v1alpha1.RetiredReplica{{Store: "s2"}}
		}, want: true},
		{name: "attached elsewhere", change: func(v *v1alpha1.Volume) {
			v.Status.Attachment = &v1alpha1.VolumeAttachmentStatus{Node: "n2", Generation: 2}
		}, want: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			changed := base.DeepCopy()
			tt.change(changed)
			if got := volumeCopiesDiffer(base, changed); got != tt.want {
				t.Errorf("volumeCopiesDiffer = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestReplicaStatesSeen(t *testing.T) {
	var seen replicaStatesSeen
	uid := types.UID("u1")
	catching := []v1alpha1.VolumeReplica{{Store: "s1", State: v1alpha1.ReplicaInSync}, {Store: "s2", State: v1alpha1.ReplicaCatchingUp}}
	back := []v1alpha1.VolumeReplica{{Store: "s1", State: v1alpha1.ReplicaInSync}, {Store: "s2", State: v1alpha1.ReplicaInSync}}
	if got := seen.backInSync(uid, back); len(got) != 0 {
		t.Errorf("nothing remembered yet: backInSync = %v, want none", got)
	}
	seen.remember(uid, catching)
	if got := seen.backInSync(uid, back); !slices.Equal(got, []string{"s2"}) {
		t.Errorf("backInSync = %v, want [s2]", got)
	}
	seen.remember(uid, back)
	if got := seen.backInSync(uid, back); len(got) != 0 {
		t.Errorf("once seen InSync: backInSync = %v, want none", got)
	}
	seen.remember(uid, catching)
	seen.forget(uid)
	if got := seen.backInSync(uid, back); len(got) != 0 {
		t.Errorf("forgotten: backInSync = %v, want none", got)
	}
}

func TestRetiredAfter(t *testing.T) {
	before := []v1alpha1.RetiredReplica{{Store: "a"}, {Store: "b"}}
	got := retiredAfter(before, volumeObservation{Now: unitNow, Freed: []string{"a"}, Retired: []retirement{{Store: "c", Node: "n"}, {Store: "b"}}})
	var stores []string
	for _, e := range got {
		stores = append(stores, e.Store)
	}
	if !slices.Equal(stores, []string{"b", "c"}) {
		t.Fatalf("retiredAfter = %v, want [b c]", stores)
	}
	if !got[1].RetiredAt.Time.Equal(unitNow) || got[1].Node != "n" {
		t.Errorf("new entry %+v, want retired at %s on node n", got[1], unitNow)
	}
	if !strings.Contains(strings.Join(formerStores(&v1alpha1.Volume{Status: v1alpha1.VolumeStatus{RetiredReplicas: got}}), ","), "b") {
		t.Error("formerStores misses a retired copy")
	}
}
