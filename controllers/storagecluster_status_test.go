package controllers

import (
	"errors"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/cobaltstore/cobalt/api/v1alpha1"
)

func namedStore(name string, s *v1alpha1.Store) v1alpha1.Store {
	s.Name = name
	return *s
}

func rolledOut(n int32) *appsv1.DaemonSet {
	return &appsv1.DaemonSet{ObjectMeta: metav1.ObjectMeta{Name: "c-node-daemon", Generation: 2},
		Status: appsv1.DaemonSetStatus{ObservedGeneration: 2, DesiredNumberScheduled: n, UpdatedNumberScheduled: n, NumberAvailable: n}}
}

func TestComputeClusterStatus(t *testing.T) {
	fresh, stale := age(time.Second), age(time.Hour)
	type want struct {
		desired, up               int32
		total, used, available    string
		ready, degraded, progress metav1.ConditionStatus
		readyReason               string
		readyMessage              string
		progressReason            string
	}
	tests := []struct {
		name string
		obs  clusterObservation
		want want
	}{
		{"no stores yet, daemonset missing", clusterObservation{},
			want{0, 0, "0", "0", "0", metav1.ConditionFalse, metav1.ConditionFalse, metav1.ConditionTrue,
				v1alpha1.ReasonNoStores, "no Store is in use yet", v1alpha1.ReasonRollingOut}},
		{"all up", clusterObservation{DaemonSet: rolledOut(2), Stores: []v1alpha1.Store{
			namedStore("a", storeWith(fresh, "", "100Gi", "30Gi", v1alpha1.AdminStateIn)),
			namedStore("b", storeWith(fresh, "", "100Gi", "20Gi", v1alpha1.AdminStateIn)),
		}}, want{2, 2, "200Gi", "50Gi", "150Gi", metav1.ConditionTrue, metav1.ConditionFalse, metav1.ConditionFalse,
			v1alpha1.ReasonAllStoresUp, "all 2 Stores are up", v1alpha1.ReasonRolledOut}},
		{"one down, one skipped device, one drained", clusterObservation{DaemonSet: rolledOut(3), Stores: []v1alpha1.Store{
			namedStore("a", storeWith(fresh, "", "100Gi", "30Gi", v1alpha1.AdminStateIn)),
			namedStore("b", storeWith(stale, "", "100Gi", "20Gi", v1alpha1.AdminStateIn)),
			namedStore("c", storeWith(fresh, "has ext4", "", "", v1alpha1.AdminStateIn)),
			namedStore("d", storeWith(fresh, "", "50Gi", "10Gi", v1alpha1.AdminStateOut)),
		}}, want{1 + 1, 1, "150Gi", "40Gi", "110Gi", metav1.ConditionFalse, metav1.ConditionTrue, metav1.ConditionFalse,
			v1alpha1.ReasonStoresDown, "1 of 2 Stores are up; down: b", v1alpha1.ReasonRolledOut}},
		{"reconcile error wins over store health", clusterObservation{DaemonSet: rolledOut(1), ReconcileError: errors.New("apply daemonset: boom"),
			Stores: []v1alpha1.Store{namedStore("a", storeWith(fresh, "", "1Gi", "0", v1alpha1.AdminStateIn))}},
			want{1, 1, "1Gi", "0", "1Gi", metav1.ConditionFalse, metav1.ConditionFalse, metav1.ConditionFalse,
				v1alpha1.ReasonReconcileFailed, "apply daemonset: boom", v1alpha1.ReasonRolledOut}},
		{"deletion blocked by volumes", clusterObservation{Deleting: true, BlockingVolumes: []string{"ns/b", "ns/a"}},
			want{0, 0, "0", "0", "0", metav1.ConditionFalse, metav1.ConditionFalse, metav1.ConditionTrue,
				v1alpha1.ReasonDeletionBlocked, "deletion waits for 2 Volume(s) placed on this cluster's Stores: ns/a, ns/b", v1alpha1.ReasonDeletionBlocked}},
		{"deletion proceeding", clusterObservation{Deleting: true},
			want{0, 0, "0", "0", "0", metav1.ConditionFalse, metav1.ConditionFalse, metav1.ConditionTrue,
				v1alpha1.ReasonDeleting, "the cluster is being deleted", v1alpha1.ReasonDeleting}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := &v1alpha1.StorageCluster{ObjectMeta: metav1.ObjectMeta{Generation: 7}}
			tt.obs.Now, tt.obs.HeartbeatTimeout = unitNow, time.Minute
			computeClusterStatus(c, tt.obs)
			st := c.Status
			if st.StoresDesired != tt.want.desired || st.StoresUp != tt.want.up {
				t.Errorf("stores desired/up = %d/%d, want %d/%d", st.StoresDesired, st.StoresUp, tt.want.desired, tt.want.up)
			}
			if got := st.Capacity.Total.String() + " " + st.Capacity.Used.String() + " " + st.Capacity.Available.String(); got != tt.want.total+" "+tt.want.used+" "+tt.want.available {
				t.Errorf("capacity total/used/available = %s, want %s %s %s", got, tt.want.total, tt.want.used, tt.want.available)
			}
			if st.ObservedGeneration != 7 {
				t.Errorf("observedGeneration = %d, want 7", st.ObservedGeneration)
			}
			ready := meta.FindStatusCondition(st.Conditions, v1alpha1.ConditionReady)
			if ready.Status != tt.want.ready || ready.Reason != tt.want.readyReason || !strings.Contains(ready.Message, tt.want.readyMessage) {
				t.Errorf("Ready = %s/%s %q, want %s/%s containing %q", ready.Status, ready.Reason, ready.Message, tt.want.ready, tt.want.readyReason, tt.want.readyMessage)
			}
			if d := meta.FindStatusCondition(st.Conditions, v1alpha1.ConditionDegraded); d.Status != tt.want.degraded {
				t.Errorf("Degraded = %s (%s), want %s", d.Status, d.Message, tt.want.degraded)
			}
			if p := meta.FindStatusCondition(st.Conditions, v1alpha1.ConditionProgressing); p.Status != tt.want.progress || p.Reason != tt.want.progressReason {
				t.Errorf("Progressing = %s/%s, want %s/%s", p.Status, p.Reason, tt.want.progress, tt.want.progressReason)
			}
		})
	}
}

func TestDaemonSetRollout(t *testing.T) {
	behind := rolledOut(3)
	behind.Generation = 3
	updating := rolledOut(3)
	updating.Status.UpdatedNumberScheduled = 1
	unavailable := rolledOut(3)
	unavailable.Status.NumberAvailable = 2
	tests := []struct {
		name    string
		ds      *appsv1.DaemonSet
		rolling bool
		message string
	}{
		{"missing", nil, true, "does not exist yet"},
		{"generation not observed", behind, true, "has not seen the latest"},
		{"updating", updating, true, "1 of 3 nodes run the latest node daemon"},
		{"not all available", unavailable, true, "2 of 3 node daemons are available"},
		{"done", rolledOut(3), false, "runs on all 3 selected nodes"},
	}
	for _, tt := range tests {
		msg, rolling := daemonSetRollout(tt.ds)
		if rolling != tt.rolling || !strings.Contains(msg, tt.message) {
			t.Errorf("%s: got %v %q, want %v containing %q", tt.name, rolling, msg, tt.rolling, tt.message)
		}
	}
}

func TestNameList(t *testing.T) {
	if got := nameList([]string{"c", "a", "b"}); got != "a, b, c" {
		t.Errorf("nameList = %q", got)
	}
	if got := nameList([]string{"g", "f", "e", "d", "c", "b", "a"}); got != "a, b, c, d, e and 2 more" {
		t.Errorf("nameList of 7 = %q", got)
	}
}
