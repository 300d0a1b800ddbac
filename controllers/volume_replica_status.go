package controllers

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/cobaltstore/cobalt/api/v1alpha1"
)

// computeReplicatedStatus fills in st (a copy of vol's status) for a Volume with replicas > 1
// after a reconcile that observed obs, through set for the conditions. It returns what
// setResizing needs: why some copy did not grow, and whether one grew now.
//
// Ready is False while the operator runs without replication (ReplicationUnavailable), while
// some copy has no Store (Unschedulable) and, until the Volume was first in service (every copy
// created), while some copy is not created (Pending): ProvisioningFailed when a node failed to
// create one, else StoreMissing or StoreNotReady for the Store a copy waits for. Once every copy
// was created it is True (Provisioned) as long as one copy is in sync, else False
// (StoreNotReady); a replacement copy not created yet does not make it False.
//
// replicas lists the copies in spec, then the copies moving away that are not retired now
// (obs.Outgoing less obs.Retired); retiredReplicas gains obs.Retired and loses obs.Freed.
//
// Degraded, once every copy was created, is True when fewer copies than replicas are in sync:
// Rebuilding while one of them is CatchingUp, else ReplicasNotInSync; it names them and why,
// and why a copy could not be replaced or moved. It is False with reason Moving while a copy in
// spec is not in sync but enough are (a drain: the old copy still takes the writes), else
// ReplicasInSync.
//
// allocatedSize is the smallest allocation among the created copies in spec once they were all
// created: what the volume can hold on each of them. placement is the first copy's Store and
// node.
func computeReplicatedStatus(st *v1alpha1.VolumeStatus, vol *v1alpha1.Volume, obs volumeObservation,
	set func(t string, status metav1.ConditionStatus, reason, msg string)) (growthFailed string, grown bool) {
	switch {
	case obs.ReplicationUnavailable != "":
		set(v1alpha1.ConditionReady, metav1.ConditionFalse, v1alpha1.ReasonReplicationUnavailable, obs.ReplicationUnavailable)
		return "", false
	case !vol.FullyPlaced():
		if obs.Unschedulable != "" {
			set(v1alpha1.ConditionReady, metav1.ConditionFalse, v1alpha1.ReasonUnschedulable, obs.Unschedulable)
		}
		return "", false
	case obs.Copies == nil:
		// The reconcile stopped before it looked at the copies: what status said stands.
		return "", false
	}

	replicas := make([]v1alpha1.VolumeReplica, 0, len(obs.Copies)+len(obs.Outgoing))
	var pending, grewFailed []string
	pendingReason := ""
	var smallest *resource.Quantity
	allCreated := true
	for i := range obs.Copies {
		c := &obs.Copies[i]
		prev := findReplica(vol.Status.Replicas, c.StoreName)
		e, ok := replicaEntry(prev, *c, copyAllocated(vol, c), true, obs.Now)
		if !ok {
			e = v1alpha1.VolumeReplica{Store: c.StoreName, State: v1alpha1.ReplicaPending}
		}
		replicas = append(replicas, e)
		if c.GrowthFailed != "" {
			grewFailed = append(grewFailed, c.GrowthFailed)
		}
		grown = grown || c.Grown != nil
		if e.State == v1alpha1.ReplicaPending {
			allCreated = false
			pending = append(pending, fmt.Sprintf("copy on store %s: %s", e.Store, e.Message))
			pendingReason = worsePendingReason(pendingReason, *c)
			continue
		}
		if smallest == nil || e.AllocatedSize.Cmp(*smallest) < 0 {
			smallest = e.AllocatedSize
		}
	}
	for i := range obs.Outgoing {
		c := &obs.Outgoing[i]
		prev := findReplica(vol.Status.Replicas, c.StoreName)
		if prev == nil || slices.ContainsFunc(obs.Retired, func(r retirement) bool { return r.Store == c.StoreName }) {
			continue
		}
		if e, ok := replicaEntry(prev, *c, prev.AllocatedSize, true, obs.Now); ok {
			replicas = append(replicas, e)
		}
	}
	st.Replicas = replicas
	st.RetiredReplicas = retiredAfter(vol.Status.RetiredReplicas, obs)
	st.InSyncReplicas = countInSync(replicas)
	if first := replicas[0]; first.State != v1alpha1.ReplicaPending {
		st.Placement = &v1alpha1.VolumePlacement{Store: first.Store, Node: first.Node}
	}

	want := vol.Spec.Replicas
	served := vol.Status.AllocatedSize != nil
	switch {
	case !allCreated && !served:
		set(v1alpha1.ConditionReady, metav1.ConditionFalse, pendingReason,
			fmt.Sprintf("%d of %d copies created; %s", want-int32(len(pending)), want, strings.Join(pending, "; ")))
		return strings.Join(grewFailed, "; "), grown
	case st.InSyncReplicas == 0:
		set(v1alpha1.ConditionReady, metav1.ConditionFalse, v1alpha1.ReasonStoreNotReady,
			"no copy is in sync: "+strings.Join(notInSyncParts(replicas), "; "))
	default:
		where := make([]string, 0, len(replicas))
		for _, e := range replicas[:len(obs.Copies)] {
			if e.State != v1alpha1.ReplicaPending {
				where = append(where, fmt.Sprintf("%s (node %s)", e.Store, e.Node))
			}
		}
		set(v1alpha1.ConditionReady, metav1.ConditionTrue, v1alpha1.ReasonProvisioned,
			fmt.Sprintf("%d copies created on stores %s", len(where), strings.Join(where, ", ")))
	}
	if smallest != nil {
		q := smallest.DeepCopy()
		st.AllocatedSize = &q
	}
	setDegraded(st, want, replicas, obs.MoveBlocked, set)
	return strings.Join(grewFailed, "; "), grown
}

// setDegraded sets the Degraded condition of a replicated Volume that wants want copies in
// sync, from its status entries (replicas) and why a copy could not move (blocked).
func setDegraded(st *v1alpha1.VolumeStatus, want int32, replicas []v1alpha1.VolumeReplica, blocked string,
	set func(t string, status metav1.ConditionStatus, reason, msg string)) {
	notInSync := notInSyncParts(replicas)
	moving := len(notInSync) > 0
	if blocked != "" {
		notInSync = append(notInSync, blocked)
	}
	catchingUp := slices.ContainsFunc(replicas, func(e v1alpha1.VolumeReplica) bool { return e.State == v1alpha1.ReplicaCatchingUp })
	summary := fmt.Sprintf("%d of %d copies in sync", st.InSyncReplicas, want)
	if len(notInSync) > 0 {
		summary += "; " + strings.Join(notInSync, "; ")
	}
	switch {
	case st.InSyncReplicas < want && catchingUp:
		set(v1alpha1.ConditionDegraded, metav1.ConditionTrue, v1alpha1.ReasonRebuilding, summary)
	case st.InSyncReplicas < want:
		set(v1alpha1.ConditionDegraded, metav1.ConditionTrue, v1alpha1.ReasonReplicasNotInSync, summary)
	case moving:
		set(v1alpha1.ConditionDegraded, metav1.ConditionFalse, v1alpha1.ReasonMoving, summary)
	default:
		set(v1alpha1.ConditionDegraded, metav1.ConditionFalse, v1alpha1.ReasonReplicasInSync, summary)
	}
}

// notInSyncParts names every entry of replicas that is not InSync, with its state and message.
func notInSyncParts(replicas []v1alpha1.VolumeReplica) []string {
	var out []string
	for _, e := range replicas {
		if e.State != v1alpha1.ReplicaInSync {
			out = append(out, fmt.Sprintf("copy on store %s %s: %s", e.Store, e.State, e.Message))
		}
	}
	return out
}

// retiredAfter is status.retiredReplicas after a reconcile that observed obs: before, less the
// copies freed (obs.Freed), plus the copies retired now (obs.Retired, at obs.Now).
func retiredAfter(before []v1alpha1.RetiredReplica, obs volumeObservation) []v1alpha1.RetiredReplica {
	var out []v1alpha1.RetiredReplica
	for _, e := range before {
		if !slices.Contains(obs.Freed, e.Store) {
			out = append(out, e)
		}
	}
	for _, r := range obs.Retired {
		if !slices.ContainsFunc(out, func(e v1alpha1.RetiredReplica) bool { return e.Store == r.Store }) {
			out = append(out, v1alpha1.RetiredReplica{Store: r.Store, Node: r.Node, RetiredAt: metav1.NewTime(obs.Now)})
		}
	}
	return out
}

// worsePendingReason is the Ready reason for copies not created yet, given the one found so
// far (empty at first) and another pending copy c: a node's failure first, then a missing
// Store, then a Store not Ready.
func worsePendingReason(sofar string, c copyObservation) string {
	rank := map[string]int{"": 0, v1alpha1.ReasonStoreNotReady: 1, v1alpha1.ReasonStoreMissing: 2, v1alpha1.ReasonProvisioningFailed: 3}
	reason := v1alpha1.ReasonStoreNotReady
	switch {
	case c.CreateFailed != "":
		reason = v1alpha1.ReasonProvisioningFailed
	case c.Seen && c.Store == nil:
		reason = v1alpha1.ReasonStoreMissing
	}
	if rank[reason] > rank[sofar] {
		return reason
	}
	return sofar
}

// replicaEntry is the status entry of the copy that c observed at now, given its entry before
// (prev, nil when it had none) and its allocation after the reconcile (nil while not created).
//
// A copy not created is Pending. A created copy whose Store is missing or not Ready is Lost,
// since lostSince (kept while it stays Lost). A copy of a replicated Volume that was Lost or
// CatchingUp stays CatchingUp when its Store comes back: it may have missed writes while it was
// away, and only the replicated data path (which resyncs it) may call it InSync again; the
// operator never promotes it. A copy created after the Volume was in service (c.Joining) starts
// CatchingUp too: it is empty until the serving node rebuilt it. Any other created copy is
// InSync. ok is false when the reconcile did not look at the copy and it had no entry.
func replicaEntry(prev *v1alpha1.VolumeReplica, c copyObservation, allocated *resource.Quantity, replicated bool, now time.Time) (v1alpha1.VolumeReplica, bool) {
	e := v1alpha1.VolumeReplica{Store: c.StoreName}
	if prev != nil {
		e = *prev.DeepCopy()
	}
	if c.Store != nil {
		e.Node = c.Store.Spec.NodeName
	}
	if allocated == nil {
		e.State, e.AllocatedSize, e.LostSince = v1alpha1.ReplicaPending, nil, nil
		switch reason := c.unusableReason(); {
		case c.CreateFailed != "":
			e.Message = c.CreateFailed
		case reason != "":
			e.Message = "waits: " + reason
		case !c.Seen && prev != nil:
		case c.Note != "":
			e.Message = "not created yet; " + c.Note
		default:
			e.Message = "not created yet"
		}
		return e, true
	}
	q := allocated.DeepCopy()
	e.AllocatedSize = &q
	reason := c.unusableReason()
	switch {
	case !c.Seen:
		return e, prev != nil && prev.State != v1alpha1.ReplicaPending
	case reason != "":
		if prev == nil || prev.State != v1alpha1.ReplicaLost || prev.LostSince == nil {
			since := metav1.NewTime(now)
			e.LostSince = &since
		}
		e.State, e.Message = v1alpha1.ReplicaLost, reason
		return e, true
	case replicated && prev != nil && prev.State == v1alpha1.ReplicaLost:
		e.State = v1alpha1.ReplicaCatchingUp
		e.Message = fmt.Sprintf("store %s is back; the copy may miss writes made while it was away and waits for the replicated data path to resync it", c.StoreName)
	case replicated && prev != nil && prev.State == v1alpha1.ReplicaCatchingUp:
	case replicated && c.Joining && (prev == nil || prev.State == v1alpha1.ReplicaPending):
		e.State = v1alpha1.ReplicaCatchingUp
		e.Message = "new copy, created empty: being rebuilt from the in-sync copies by the node serving the volume"
		if c.Note != "" {
			e.Message = "new copy that " + c.Note + ", created empty: being rebuilt from the in-sync copies by the node serving the volume"
		}
	default:
		e.State, e.Message = v1alpha1.ReplicaInSync, ""
	}
	e.LostSince = nil
	return e, true
}

// setSingleCopyReplica lists the one copy of a Volume with replicas 1 in st.Replicas (its
// Store, node and state, as replicaEntry decides) and counts it in st.InSyncReplicas.
func setSingleCopyReplica(st *v1alpha1.VolumeStatus, vol *v1alpha1.Volume, obs volumeObservation) {
	if vol.Spec.StoreName == "" {
		return
	}
	c := copyObservation{StoreName: vol.Spec.StoreName, Seen: obs.StoreSeen, Store: obs.Store, Health: obs.StoreHealth,
		CreateFailed: obs.CreateFailed, Created: obs.Created, GrowthFailed: obs.GrowthFailed, Grown: obs.Grown}
	e, ok := replicaEntry(findReplica(vol.Status.Replicas, vol.Spec.StoreName), c, st.AllocatedSize, false, obs.Now)
	if !ok {
		return
	}
	st.Replicas = []v1alpha1.VolumeReplica{e}
	st.InSyncReplicas = countInSync(st.Replicas)
}

// countInSync counts the InSync entries of replicas.
func countInSync(replicas []v1alpha1.VolumeReplica) int32 {
	n := int32(0)
	for _, e := range replicas {
		if e.State == v1alpha1.ReplicaInSync {
			n++
		}
	}
	return n
}
