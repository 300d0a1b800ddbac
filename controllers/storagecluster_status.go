package controllers

import (
	"fmt"
	"sort"
	"strings"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	storagev1alpha1 "github.com/cobaltstore/cobalt/api/v1alpha1"
)

// maxNamesInMessage bounds how many object names a condition message lists.
const maxNamesInMessage = 5

// clusterObservation is everything the StorageCluster status is computed from.
type clusterObservation struct {
	// DaemonSet is the node daemon's DaemonSet; nil when it does not exist (yet).
	DaemonSet *appsv1.DaemonSet
	// Stores are the cluster's Stores.
	Stores []storagev1alpha1.Store
	// CAHash identifies the node API's CA certificate (caHash); set by reconcileCA.
	CAHash string
	// Now and HeartbeatTimeout judge Store health.
	Now              time.Time
	HeartbeatTimeout time.Duration
	// ReconcileError is the error of this reconcile's phases, if any.
	ReconcileError error
	// Deleting is true when the cluster has a deletion timestamp; BlockingVolumes then lists the
	// Volumes ("namespace/name") that keep its finalizer in place.
	Deleting        bool
	BlockingVolumes []string
	// StoppingDaemons counts the node daemon pods a deletion waits for before it removes the
	// Stores.
	StoppingDaemons int
	// Rollout is what reconcileRollout saw and did.
	Rollout rolloutObservation
}

// computeClusterStatus sets cluster.Status from obs. It only touches cluster.Status.
func computeClusterStatus(cluster *storagev1alpha1.StorageCluster, obs clusterObservation) {
	st := &cluster.Status
	gen := cluster.Generation
	st.ObservedGeneration = gen

	var desired, up int32
	var total, used int64
	var down []string
	for i := range obs.Stores {
		s := &obs.Stores[i]
		healthy := evaluateStoreHealth(s, obs.Now, obs.HeartbeatTimeout).Ready
		if healthy && s.Status.Capacity != nil {
			total += s.Status.Capacity.Value()
			if s.Status.Used != nil {
				used += s.Status.Used.Value()
			}
		}
		if s.Status.NotUsedReason != "" || s.Spec.AdminState == storagev1alpha1.AdminStateOut {
			continue
		}
		desired++
		if healthy {
			up++
		} else {
			down = append(down, s.Name)
		}
	}
	st.StoresDesired, st.StoresUp = desired, up
	st.Capacity = &storagev1alpha1.CapacityStatus{
		Total:     *resource.NewQuantity(total, resource.BinarySI),
		Used:      *resource.NewQuantity(used, resource.BinarySI),
		Available: *resource.NewQuantity(max(total-used, 0), resource.BinarySI),
	}
	if obs.DaemonSet != nil {
		st.NodeDaemon = obs.DaemonSet.Name
	}

	// Transition times come from obs.Now, so they follow the injected clock.
	at := metav1.NewTime(obs.Now)
	ready := metav1.Condition{Type: storagev1alpha1.ConditionReady, ObservedGeneration: gen, LastTransitionTime: at}
	switch {
	case obs.Deleting && len(obs.BlockingVolumes) > 0:
		ready.Status, ready.Reason = metav1.ConditionFalse, storagev1alpha1.ReasonDeletionBlocked
		ready.Message = deletionBlockedMessage(obs.BlockingVolumes)
	case obs.Deleting:
		ready.Status, ready.Reason = metav1.ConditionFalse, storagev1alpha1.ReasonDeleting
		ready.Message = "the cluster is being deleted"
	case obs.ReconcileError != nil:
		ready.Status, ready.Reason = metav1.ConditionFalse, storagev1alpha1.ReasonReconcileFailed
		ready.Message = obs.ReconcileError.Error()
	case desired == 0:
		ready.Status, ready.Reason = metav1.ConditionFalse, storagev1alpha1.ReasonNoStores
		ready.Message = "no Store is in use yet: the node daemon creates one per device it prepares"
	case up < desired:
		ready.Status, ready.Reason = metav1.ConditionFalse, storagev1alpha1.ReasonStoresDown
		ready.Message = fmt.Sprintf("%d of %d Stores are up; down: %s", up, desired, nameList(down))
	default:
		ready.Status, ready.Reason = metav1.ConditionTrue, storagev1alpha1.ReasonAllStoresUp
		ready.Message = fmt.Sprintf("all %d Stores are up", desired)
	}
	meta.SetStatusCondition(&st.Conditions, ready)

	degraded := metav1.Condition{Type: storagev1alpha1.ConditionDegraded, ObservedGeneration: gen, LastTransitionTime: at,
		Status: metav1.ConditionFalse, Reason: storagev1alpha1.ReasonAsExpected, Message: "no desired Store is down"}
	if len(down) > 0 {
		degraded.Status, degraded.Reason = metav1.ConditionTrue, storagev1alpha1.ReasonStoresDown
		degraded.Message = fmt.Sprintf("%d of %d Stores are down: %s", len(down), desired, nameList(down))
	}
	meta.SetStatusCondition(&st.Conditions, degraded)

	progressing := metav1.Condition{Type: storagev1alpha1.ConditionProgressing, ObservedGeneration: gen, LastTransitionTime: at}
	switch {
	case obs.Deleting && len(obs.BlockingVolumes) > 0:
		progressing.Status, progressing.Reason = metav1.ConditionTrue, storagev1alpha1.ReasonDeletionBlocked
		progressing.Message = deletionBlockedMessage(obs.BlockingVolumes)
	case obs.Deleting && obs.StoppingDaemons > 0:
		progressing.Status, progressing.Reason = metav1.ConditionTrue, storagev1alpha1.ReasonDeleting
		progressing.Message = fmt.Sprintf("stopping the node daemons: %d pod(s) left; the Stores are removed once they are gone", obs.StoppingDaemons)
	case obs.Deleting:
		progressing.Status, progressing.Reason = metav1.ConditionTrue, storagev1alpha1.ReasonDeleting
		progressing.Message = "removing the cluster's Stores and node daemon"
	default:
		if reason, msg, rolling := rolloutStatus(obs.Rollout); rolling {
			progressing.Status, progressing.Reason, progressing.Message = metav1.ConditionTrue, reason, msg
		} else if msg, rolling := daemonSetRollout(obs.DaemonSet); rolling {
			progressing.Status, progressing.Reason, progressing.Message = metav1.ConditionTrue, storagev1alpha1.ReasonRollingOut, msg
		} else {
			progressing.Status, progressing.Reason, progressing.Message = metav1.ConditionFalse, storagev1alpha1.ReasonRolledOut, msg
		}
	}
	meta.SetStatusCondition(&st.Conditions, progressing)
}

// daemonSetRollout says whether ds is still rolling out, and how far it got.
func daemonSetRollout(ds *appsv1.DaemonSet) (string, bool) {
	if ds == nil {
		return "the node daemon's DaemonSet does not exist yet", true
	}
	s := ds.Status
	switch {
	case s.ObservedGeneration < ds.Generation:
		return "the DaemonSet controller has not seen the latest node daemon spec yet", true
	case s.UpdatedNumberScheduled < s.DesiredNumberScheduled:
		return fmt.Sprintf("%d of %d nodes run the latest node daemon", s.UpdatedNumberScheduled, s.DesiredNumberScheduled), true
	case s.NumberAvailable < s.DesiredNumberScheduled:
		return fmt.Sprintf("%d of %d node daemons are available", s.NumberAvailable, s.DesiredNumberScheduled), true
	}
	return fmt.Sprintf("the node daemon runs on all %d selected nodes", s.DesiredNumberScheduled), false
}

func deletionBlockedMessage(volumes []string) string {
	return fmt.Sprintf("deletion waits for %d Volume(s) placed on this cluster's Stores: %s; delete them first, their data would otherwise be lost",
		len(volumes), nameList(volumes))
}

// nameList joins sorted names, listing at most maxNamesInMessage.
func nameList(names []string) string {
	sorted := append([]string(nil), names...)
	sort.Strings(sorted)
	if len(sorted) > maxNamesInMessage {
		return strings.Join(sorted[:maxNamesInMessage], ", ") + fmt.Sprintf(" and %d more", len(sorted)-maxNamesInMessage)
	}
	return strings.Join(sorted, ", ")
}
