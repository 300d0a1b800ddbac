package controllers

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/cobaltstore/cobalt/api/v1alpha1"
)

// rolloutRecheck is how often a node daemon rollout in progress looks again (the reconciler
// does not watch Pods).
const rolloutRecheck = 5 * time.Second

// rolloutObservation is what reconcileRollout saw and did.
type rolloutObservation struct {
	// Outdated lists the nodes whose node daemon runs an older pod template.
	Outdated []string
	// Restarting names the node whose daemon is restarting (deleted by this reconcile, or not
	// Ready yet after an earlier one); the rollout waits for it.
	Restarting string
	// Blocked says why no outdated daemon may restart now: each would take down the last
	// in-sync copy of some replicated Volume.
	Blocked []string
}

// reconcileRollout restarts the node daemons that run an older pod template than their
// DaemonSet (whose update strategy is OnDelete), one node at a time: only once every daemon of
// the cluster is Ready, and only on a node whose restart leaves every replicated Volume with a
// copy there an in-sync copy on a Ready Store of another node (restartBlocker). A Volume whose
// copies all live on that one node (allowSameNode) cannot be spared and does not block it; a
// single-copy Volume neither. Pods are read from the API server, not from a cache of every Pod.
func (r *StorageClusterReconciler) reconcileRollout(ctx context.Context, cluster *v1alpha1.StorageCluster, obs *clusterObservation) error {
	ds := obs.DaemonSet
	if ds == nil {
		return nil
	}
	want := ds.Spec.Template.Annotations[templateHashAnnotation]
	var pods corev1.PodList
	if err := r.APIReader.List(ctx, &pods, client.InNamespace(cluster.Namespace), client.MatchingLabels(nodeDaemonLabels(cluster))); err != nil {
		return fmt.Errorf("list node daemon pods of storage cluster %s: %w", client.ObjectKeyFromObject(cluster), err)
	}
	var outdated, down []corev1.Pod
	for i := range pods.Items {
		p := &pods.Items[i]
		if !metav1.IsControlledBy(p, ds) {
			continue
		}
		old := p.Annotations[templateHashAnnotation] != want
		if old {
			outdated = append(outdated, *p)
			obs.Rollout.Outdated = append(obs.Rollout.Outdated, p.Spec.NodeName)
		}
		switch {
		case p.DeletionTimestamp != nil:
			obs.Rollout.Restarting = p.Spec.NodeName
		case !podIsReady(p) && old:
			// Down already: restarting it takes nothing down.
			down = append(down, *p)
		case !podIsReady(p):
			obs.Rollout.Restarting = p.Spec.NodeName
		}
	}
	sort.Strings(obs.Rollout.Outdated)
	if len(outdated) == 0 || obs.Rollout.Restarting != "" {
		return nil
	}
	if len(down) > 0 {
		return r.restartDaemon(ctx, cluster, &down[0], len(outdated)-1, obs)
	}
	var vols v1alpha1.VolumeList
	if err := r.List(ctx, &vols); err != nil {
		return fmt.Errorf("list volumes: %w", err)
	}
	ready := map[string]bool{}
	for i := range obs.Stores {
		ready[obs.Stores[i].Name] = evaluateStoreHealth(&obs.Stores[i], obs.Now, obs.HeartbeatTimeout).Ready
	}
	sort.Slice(outdated, func(i, j int) bool { return outdated[i].Spec.NodeName < outdated[j].Spec.NodeName })
	for i := range outdated {
		p := &outdated[i]
		if why := restartBlockers(p.Spec.NodeName, vols.Items, ready); len(why) > 0 {
			obs.Rollout.Blocked = append(obs.Rollout.Blocked, why...)
			continue
		}
		return r.restartDaemon(ctx, cluster, p, len(outdated)-1, obs)
	}
	return nil
}

// restartDaemon deletes node daemon pod p (its DaemonSet makes a new one from the current
// template) and records that, with left more nodes to go.
func (r *StorageClusterReconciler) restartDaemon(ctx context.Context, cluster *v1alpha1.StorageCluster, p *corev1.Pod, left int, obs *clusterObservation) error {
	if err := r.Delete(ctx, p, client.Preconditions{UID: &p.UID}); client.IgnoreNotFound(err) != nil {
		return fmt.Errorf("restart node daemon %s on node %s: %w", p.Name, p.Spec.NodeName, err)
	}
	obs.Rollout.Restarting = p.Spec.NodeName
	r.Recorder.Eventf(cluster, nil, corev1.EventTypeNormal, v1alpha1.ReasonRollingOut, "RestartNodeDaemon",
		"restarting the node daemon on node %s (pod %s) to run the current spec; %d more node(s) to go", p.Spec.NodeName, p.Name, left)
	return nil
}

// restartBlockers says, for each replicated Volume with a copy on node, why restarting that
// node's daemon would take down its last in-sync copy: it has copies on other nodes but none of
// them is InSync on a Ready Store (ready, by Store name). Nil when the restart is safe.
func restartBlockers(node string, vols []v1alpha1.Volume, ready map[string]bool) []string {
	var out []string
	for i := range vols {
		v := &vols[i]
		if v.Spec.Replicas <= 1 || !v.DeletionTimestamp.IsZero() {
			continue
		}
		var here, elsewhere bool
		var spare bool
		var copies []string
		for _, c := range v.Status.Replicas {
			if c.State == v1alpha1.ReplicaPending {
				continue
			}
			copies = append(copies, fmt.Sprintf("%s on %s %s", c.Store, c.Node, c.State))
			if c.Node == node {
				here = true
				continue
			}
			elsewhere = true
			spare = spare || c.State == v1alpha1.ReplicaInSync && ready[c.Store]
		}
		if here && elsewhere && !spare {
			out = append(out, fmt.Sprintf("node %s: Volume %s/%s would have no in-sync copy (copies: %s)", node, v.Namespace, v.Name, strings.Join(copies, ", ")))
		}
	}
	return out
}

// podIsReady is true when the pod's Ready condition is True.
func podIsReady(p *corev1.Pod) bool {
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

// rolloutStatus is the Progressing condition's status, reason and message while a rollout
// of the node daemons is under way, and false when there is none.
func rolloutStatus(ro rolloutObservation) (reason, msg string, rolling bool) {
	switch {
	case len(ro.Outdated) == 0:
		return "", "", false
	case ro.Restarting != "":
		return v1alpha1.ReasonRollingOut, fmt.Sprintf("restarting the node daemon on node %s; %d node(s) run an older spec: %s",
			ro.Restarting, len(ro.Outdated), nameList(ro.Outdated)), true
	case len(ro.Blocked) > 0:
		return v1alpha1.ReasonRolloutBlocked, fmt.Sprintf("%d node(s) run an older node daemon spec, and restarting any of them now would take down the last in-sync copy of a replicated Volume; the rollout waits for the other copies to catch up: %s",
			len(ro.Outdated), strings.Join(ro.Blocked, "; ")), true
	}
	return v1alpha1.ReasonRollingOut, fmt.Sprintf("%d node(s) run an older node daemon spec: %s", len(ro.Outdated), nameList(ro.Outdated)), true
}
