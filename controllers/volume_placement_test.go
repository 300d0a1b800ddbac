package controllers

import (
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"

	"github.com/cobaltstore/cobalt/api/v1alpha1"
)

// load builds a placement candidate: a Ready, "in" Store with the given capacity and use.
func load(name, capacity, used string, reserved string, volumes int) storeLoad {
	s := storeWith(age(time.Second), "", capacity, used, v1alpha1.AdminStateIn)
	s.Name = name
	s.Labels = map[string]string{v1alpha1.LabelDeviceClass: "ssd"}
	l := storeLoad{Store: s, NodeFound: true, NodeLabels: labels.Set{"zone": "a"}, Volumes: volumes}
	if reserved != "" {
		q := resource.MustParse(reserved)
		l.Reserved = q.Value()
	}
	return l
}

func withStore(l storeLoad, f func(*storeLoad)) storeLoad { f(&l); return l }

func TestChoosePlacement(t *testing.T) {
	vol := func(size string, f func(*v1alpha1.Volume)) *v1alpha1.Volume {
		v := &v1alpha1.Volume{Spec: v1alpha1.VolumeSpec{Size: resource.MustParse(size)}}
		if f != nil {
			f(v)
		}
		return v
	}
	tests := []struct {
		name    string
		vol     *v1alpha1.Volume
		loads   []storeLoad
		want    string
		message string
	}{
		{"most free space wins", vol("10Gi", nil),
			[]storeLoad{load("a", "100Gi", "80Gi", "", 0), load("b", "100Gi", "20Gi", "", 0), load("c", "100Gi", "50Gi", "", 0)}, "b", ""},
		{"reservations of unreported volumes count", vol("10Gi", nil),
			[]storeLoad{load("a", "100Gi", "0", "90Gi", 3), load("b", "50Gi", "0", "", 0)}, "b", ""},
		{"node-reported use counts when larger than reservations", vol("10Gi", nil),
			[]storeLoad{load("a", "100Gi", "95Gi", "10Gi", 1), load("b", "50Gi", "0", "", 0)}, "b", ""},
		{"equal free space goes to the store with fewer volumes", vol("1Gi", nil),
			[]storeLoad{load("a", "100Gi", "0", "", 5), load("b", "100Gi", "0", "", 2)}, "b", ""},
		{"full tie goes to the first name", vol("1Gi", nil),
			[]storeLoad{load("b", "100Gi", "0", "", 0), load("a", "100Gi", "0", "", 0)}, "a", ""},
		{"a store whose node daemon has not published its endpoint is passed over", vol("10Gi", nil),
			[]storeLoad{withStore(load("a", "100Gi", "0", "", 0), func(l *storeLoad) { withoutEndpoint(l.Store) }), load("b", "50Gi", "0", "", 0)}, "b", ""},
		{"a store whose engine failed is passed over, one whose engine is degraded is not", vol("10Gi", nil),
			[]storeLoad{withStore(load("a", "100Gi", "0", "", 0), func(l *storeLoad) { withEngine(l.Store, v1alpha1.EngineHealthFailed, "writes are refused") }),
				withStore(load("b", "50Gi", "0", "", 0), func(l *storeLoad) { withEngine(l.Store, v1alpha1.EngineHealthDegraded, "disk slow") })}, "b", ""},
		{"exact fit is accepted", vol("10Gi", nil), []storeLoad{load("a", "10Gi", "0", "", 0)}, "a", ""},
		{"storeSelector filters", vol("1Gi", func(v *v1alpha1.Volume) {
			v.Spec.StoreSelector = &metav1.LabelSelector{MatchLabels: map[string]string{v1alpha1.LabelDeviceClass: "hdd"}}
		}), []storeLoad{load("a", "100Gi", "0", "", 0), withStore(load("b", "10Gi", "0", "", 0), func(l *storeLoad) {
			l.Store.Labels[v1alpha1.LabelDeviceClass] = "hdd"
		})}, "b", ""},
		{"nodeSelector filters", vol("1Gi", func(v *v1alpha1.Volume) { v.Spec.NodeSelector = map[string]string{"zone": "b"} }),
			[]storeLoad{load("a", "100Gi", "0", "", 0), withStore(load("b", "10Gi", "0", "", 0), func(l *storeLoad) {
				l.NodeLabels = labels.Set{"zone": "b"}
			})}, "b", ""},
		{"no stores", vol("1Gi", nil), nil, "", "no Store can hold 1Gi: there are no Stores"},
		{"every reason is counted", vol("20Gi", func(v *v1alpha1.Volume) {
			v.Spec.StoreSelector = &metav1.LabelSelector{MatchLabels: map[string]string{v1alpha1.LabelDeviceClass: "ssd"}}
			v.Spec.NodeSelector = map[string]string{"zone": "a"}
		}), []storeLoad{
			withStore(load("stale", "100Gi", "0", "", 0), func(l *storeLoad) { l.Store.Status.LastHeartbeat = nil }),
			withStore(load("pending", "100Gi", "0", "", 0), func(l *storeLoad) { withoutEndpoint(l.Store) }),
			withStore(load("out", "100Gi", "0", "", 0), func(l *storeLoad) { l.Store.Spec.AdminState = v1alpha1.AdminStateOut }),
			withStore(load("failed", "100Gi", "0", "", 0), func(l *storeLoad) { withEngine(l.Store, v1alpha1.EngineHealthFailed, "writes are refused") }),
			withStore(load("deleting", "100Gi", "0", "", 0), func(l *storeLoad) { l.ClusterDeleting = true }),
			withStore(load("hdd", "100Gi", "0", "", 0), func(l *storeLoad) { l.Store.Labels[v1alpha1.LabelDeviceClass] = "hdd" }),
			withStore(load("nonode", "100Gi", "0", "", 0), func(l *storeLoad) { l.NodeFound, l.NodeLabels = false, nil }),
			withStore(load("zoneb", "100Gi", "0", "", 0), func(l *storeLoad) { l.NodeLabels = labels.Set{"zone": "b"} }),
			load("full1", "100Gi", "90Gi", "", 0),
			load("full2", "30Gi", "0", "15Gi", 1),
		}, "", "no Store can hold 20Gi: 10 Stores considered: 1 not ready, 1 endpoint pending, 1 admin out, 1 engine failed, 1 cluster deleting, " +
			"1 not matching storeSelector, 1 node unknown, 1 not matching nodeSelector, 2 too full (largest free space 15Gi)"},
		{"a store without reported capacity never fits", vol("1Gi", nil),
			[]storeLoad{withStore(load("a", "", "", "", 0), func(l *storeLoad) {})}, "",
			"no Store can hold 1Gi: 1 Stores considered: 1 too full (largest free space 0)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := choosePlacement(tt.vol, tt.loads, unitNow, time.Minute)
			if err != nil {
				t.Fatal(err)
			}
			if got.Store != tt.want || got.Message != tt.message {
				t.Fatalf("got store %q message %q, want store %q message %q", got.Store, got.Message, tt.want, tt.message)
			}
		})
	}
}

func TestChoosePlacementRefusesABadSelector(t *testing.T) {
	v := &v1alpha1.Volume{Spec: v1alpha1.VolumeSpec{Size: resource.MustParse("1Gi"),
		StoreSelector: &metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{{Key: "k", Operator: "Near"}}}}}
	if _, err := choosePlacement(v, []storeLoad{load("a", "10Gi", "0", "", 0)}, unitNow, time.Minute); err == nil {
		t.Fatal("want an error for an invalid selector operator")
	}
}

func TestRetryBackoff(t *testing.T) {
	tests := []struct{ failing, want time.Duration }{
		{0, 5 * time.Second},
		{3 * time.Second, 5 * time.Second},
		{40 * time.Second, 40 * time.Second},
		{time.Hour, 5 * time.Minute},
	}
	for _, tt := range tests {
		if got := retryBackoff(tt.failing, 5*time.Second, 5*time.Minute); got != tt.want {
			t.Errorf("retryBackoff(%s) = %s, want %s", tt.failing, got, tt.want)
		}
	}
}

func TestAssumedPlacements(t *testing.T) {
	var a assumedPlacements
	a.assume(types.UID("v1"), 10, "s1")
	a.assume(types.UID("v2"), 5, "s1")
	a.assume(types.UID("v3"), 7, "s2")

	loads := []storeLoad{load("s1", "100", "0", "", 0), load("s2", "100", "0", "", 0)}
	a.addUnseen(loads, map[types.UID]bool{"v2": true}) // the cache already shows v2
	if loads[0].Reserved != 10 || loads[0].Volumes != 1 || loads[1].Reserved != 7 {
		t.Fatalf("first pass: s1 reserved %d (%d vols), s2 reserved %d; want 10 (1), 7", loads[0].Reserved, loads[0].Volumes, loads[1].Reserved)
	}
	a.forget(types.UID("v3"))
	loads = []storeLoad{load("s1", "100", "0", "", 0), load("s2", "100", "0", "", 0)}
	a.addUnseen(loads, nil)
	if loads[0].Reserved != 10 || loads[1].Reserved != 0 {
		t.Fatalf("second pass: s1 reserved %d, s2 reserved %d; want 10, 0 (v2 dropped once seen, v3 forgotten)", loads[0].Reserved, loads[1].Reserved)
	}
}

func TestVolumeBackoffGrowsWithTimeFailing(t *testing.T) {
	vol := &v1alpha1.Volume{}
	if got := backoff(vol, unitNow); got != minRetryDelay {
		t.Errorf("no condition yet: backoff %s, want %s", got, minRetryDelay)
	}
	vol.Status = computeVolumeStatus(vol, volumeObservation{Now: unitNow, Unschedulable: "no room"})
	if got := backoff(vol, unitNow.Add(40*time.Second)); got != 40*time.Second {
		t.Errorf("failing for 40s: backoff %s, want 40s", got)
	}
	if got := backoff(vol, unitNow.Add(time.Hour)); got != maxRetryDelay {
		t.Errorf("failing for an hour: backoff %s, want %s", got, maxRetryDelay)
	}
	vol.Spec.StoreName = "s1"
	vol.Status = computeVolumeStatus(vol, with(seen(true, "fresh"), func(o *volumeObservation) {
		o.Now, o.Created = unitNow.Add(30*time.Minute), qty("1Gi")
	}))
	if got := backoff(vol, unitNow.Add(time.Hour)); got != minRetryDelay {
		t.Errorf("Ready again: backoff %s, want %s", got, minRetryDelay)
	}
}
