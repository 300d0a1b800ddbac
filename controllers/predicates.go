package controllers

import (
	"k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/api/meta"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/predicate"

	"github.com/cobaltstore/cobalt/api/v1alpha1"
)

// storeChanged passes the Store events that matter to other kinds' reconcilers: creation,
// deletion, and updates of the spec, labels, annotations, deletion state, identity, capacity,
// the not-used reason, or the Ready/Schedulable verdicts. It drops updates that only move the
// heartbeat, the used bytes or the cache summary, which every node daemon writes every few
// seconds: reconciling every Volume and StorageCluster on each of those would be wasted work.
// (Readers that need fresh use numbers get them on their periodic refresh or retry.)
func storeChanged() predicate.Funcs {
	return predicate.Funcs{UpdateFunc: func(e event.UpdateEvent) bool {
		oldS, ok1 := e.ObjectOld.(*v1alpha1.Store)
		newS, ok2 := e.ObjectNew.(*v1alpha1.Store)
		if !ok1 || !ok2 {
			return true
		}
		return storeMattersChanged(oldS, newS)
	}}
}

func storeMattersChanged(a, b *v1alpha1.Store) bool {
	if !equality.Semantic.DeepEqual(a.Spec, b.Spec) ||
		!equality.Semantic.DeepEqual(a.Labels, b.Labels) ||
		!equality.Semantic.DeepEqual(a.Annotations, b.Annotations) ||
		a.DeletionTimestamp.IsZero() != b.DeletionTimestamp.IsZero() ||
		a.Status.UUID != b.Status.UUID ||
		a.Status.NotUsedReason != b.Status.NotUsedReason ||
		!equality.Semantic.DeepEqual(a.Status.Capacity, b.Status.Capacity) {
		return true
	}
	for _, t := range []string{v1alpha1.ConditionReady, v1alpha1.ConditionSchedulable} {
		ca, cb := meta.FindStatusCondition(a.Status.Conditions, t), meta.FindStatusCondition(b.Status.Conditions, t)
		if (ca == nil) != (cb == nil) || (ca != nil && (ca.Status != cb.Status || ca.Reason != cb.Reason)) {
			return true
		}
	}
	return false
}
