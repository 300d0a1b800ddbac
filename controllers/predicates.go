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

// volumeCopiesChanged passes the Volume updates that change what its copies are or where it is
// attached: the Store or state of an entry of status.replicas, status.retiredReplicas, or
// status.attachment. The serving node writes those without touching spec (a copy that failed a
// write is CatchingUp, a rebuilt one InSync), and Degraded, inSyncReplicas and the moves and
// retirements that follow from them must follow; the generation and annotation predicates the
// Volume watch also has do not see status changes. Other status changes (conditions, the
// operator's messages) are dropped.
func volumeCopiesChanged() predicate.Funcs {
	return predicate.Funcs{UpdateFunc: func(e event.UpdateEvent) bool {
		oldV, ok1 := e.ObjectOld.(*v1alpha1.Volume)
		newV, ok2 := e.ObjectNew.(*v1alpha1.Volume)
		if !ok1 || !ok2 {
			return false
		}
		return volumeCopiesDiffer(oldV, newV)
	}}
}

func volumeCopiesDiffer(a, b *v1alpha1.Volume) bool {
	if len(a.Status.Replicas) != len(b.Status.Replicas) || len(a.Status.RetiredReplicas) != len(b.Status.RetiredReplicas) ||
		!equality.Semantic.DeepEqual(a.Status.Attachment, b.Status.Attachment) {
		return true
	}
	for i := range a.Status.Replicas {
		if a.Status.Replicas[i].Store != b.Status.Replicas[i].Store || a.Status.Replicas[i].State != b.Status.Replicas[i].State {
			return true
		}
	}
	for i := range a.Status.RetiredReplicas {
		if a.Status.RetiredReplicas[i].Store != b.Status.RetiredReplicas[i].Store {
			return true
		}
	}
	return false
}
