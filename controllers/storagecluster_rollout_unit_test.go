package controllers

import (
	"strings"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/cobaltstore/cobalt/api/v1alpha1"
)

func TestRestartBlockers(t *testing.T) {
	copyOn := func(store, node string, state v1alpha1.ReplicaState) v1alpha1.VolumeReplica {
		return v1alpha1.VolumeReplica{Store: store, Node: node, State: state}
	}
	vol := func(replicas int32, copies ...v1alpha1.VolumeReplica) v1alpha1.Volume {
		return v1alpha1.Volume{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "v"},
			Spec: v1alpha1.VolumeSpec{Replicas: replicas}, Status: v1alpha1.VolumeStatus{Replicas: copies}}
	}
	ready := map[string]bool{"sa": true, "sb": true, "sc": true, "sa2": true}
	for _, tc := range []struct {
		name    string
		vol     v1alpha1.Volume
		ready   map[string]bool
		blocked bool
	}{
		{"single copy: nothing else to do", vol(1, copyOn("sa", "a", v1alpha1.ReplicaInSync)), ready, false},
		{"another copy in sync on a Ready Store", vol(2, copyOn("sa", "a", v1alpha1.ReplicaInSync), copyOn("sb", "b", v1alpha1.ReplicaInSync)), ready, false},
		{"the other copy catches up", vol(2, copyOn("sa", "a", v1alpha1.ReplicaInSync), copyOn("sb", "b", v1alpha1.ReplicaCatchingUp)), ready, true},
		{"the other copy is lost", vol(2, copyOn("sa", "a", v1alpha1.ReplicaInSync), copyOn("sb", "b", v1alpha1.ReplicaLost)), ready, true},
		{"the other copy's Store is not Ready", vol(2, copyOn("sa", "a", v1alpha1.ReplicaInSync), copyOn("sb", "b", v1alpha1.ReplicaInSync)),
			map[string]bool{"sa": true}, true},
		{"one of two others in sync", vol(3, copyOn("sa", "a", v1alpha1.ReplicaInSync), copyOn("sb", "b", v1alpha1.ReplicaCatchingUp),
			copyOn("sc", "c", v1alpha1.ReplicaInSync)), ready, false},
		{"every copy on this node (allowSameNode): cannot be spared", vol(2, copyOn("sa", "a", v1alpha1.ReplicaInSync), copyOn("sa2", "a", v1alpha1.ReplicaInSync)), ready, false},
		{"no copy on this node", vol(2, copyOn("sb", "b", v1alpha1.ReplicaInSync), copyOn("sc", "c", v1alpha1.ReplicaCatchingUp)), ready, false},
		{"copies not created yet", vol(2, copyOn("sa", "a", v1alpha1.ReplicaPending), copyOn("sb", "b", v1alpha1.ReplicaPending)), ready, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := restartBlockers("a", []v1alpha1.Volume{tc.vol}, tc.ready)
			if (len(got) > 0) != tc.blocked {
				t.Fatalf("restartBlockers = %q, want blocked %v", got, tc.blocked)
			}
			if tc.blocked && !strings.Contains(got[0], "Volume ns/v would have no in-sync copy") {
				t.Fatalf("message %q does not name the Volume", got[0])
			}
		})
	}
}

func TestRolloutStatus(t *testing.T) {
	for _, tc := range []struct {
		name    string
		ro      rolloutObservation
		rolling bool
		reason  string
		msg     string
	}{
		{"nothing outdated", rolloutObservation{}, false, "", ""},
		{"restarting", rolloutObservation{Outdated: []string{"a", "b"}, Restarting: "a"}, true, v1alpha1.ReasonRollingOut, "restarting the node daemon on node a; 2 node(s)"},
		{"blocked", rolloutObservation{Outdated: []string{"b"}, Blocked: []string{"node b: Volume ns/v would have no in-sync copy"}}, true,
			v1alpha1.ReasonRolloutBlocked, "the rollout waits for the other copies to catch up: node b: Volume ns/v"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			reason, msg, rolling := rolloutStatus(tc.ro)
			if rolling != tc.rolling || reason != tc.reason || !strings.Contains(msg, tc.msg) {
				t.Fatalf("rolloutStatus = %q, %q, %v; want %q, containing %q, %v", reason, msg, rolling, tc.reason, tc.msg, tc.rolling)
			}
		})
	}
}
