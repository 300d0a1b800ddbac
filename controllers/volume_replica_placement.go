package controllers

import (
	"fmt"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"

	storagev1alpha1 "github.com/cobaltstore/cobalt/api/v1alpha1"
)

// replicaPlacementDecision is the outcome of chooseReplicaPlacement: the Stores of the copies
// not placed yet, or why they cannot be placed.
type replicaPlacementDecision struct {
	// Primary is the Store of the first copy, when spec.storeName was not set yet.
	Primary string
	// Others are the Stores of the other copies (spec.replicaStoreNames).
	Others []string
	// Message says why the copies cannot be placed; empty when they can.
	Message string
}

// chooseReplicaPlacement picks a Store for every copy of a replicated vol (spec.replicas > 1)
// that has none yet. A Store pinned by spec.storeName keeps the first copy and the others are
// placed around it.
//
// Candidates are the Stores choosePlacement would take (eligibleStores), in its order of
// preference (most free space first). The copies go one at a time to the best candidate, with
// these rules:
//   - never two copies on one Store;
//   - a node that holds no copy yet is preferred, and among those one in a zone
//     (corev1.LabelTopologyZone on the Store's node) that holds no copy yet: choosing greedily
//     this way reaches as many distinct zones as there are;
//   - a node that already holds a copy is taken only with spec.replicaPlacement.allowSameNode,
//     and only when no other node has a candidate left.
//
// When the copies do not fit, Message says how many nodes (or Stores) they need, how many there
// are, why the other Stores were passed over and, when it would help, that allowSameNode places
// copies on distinct Stores of one node.
func chooseReplicaPlacement(vol *storagev1alpha1.Volume, loads []storeLoad, now time.Time, timeout time.Duration) (replicaPlacementDecision, error) {
	fits, rejected, largestFree, err := eligibleStores(vol, loads, now, timeout)
	if err != nil {
		return replicaPlacementDecision{}, err
	}
	sortByPreference(fits)
	want := int(vol.Spec.Replicas)
	sameNode := vol.Spec.ReplicaPlacement != nil && vol.Spec.ReplicaPlacement.AllowSameNode

	// chosen holds the copies placed so far, the pinned first copy first.
	var chosen []storeLoad
	if vol.Spec.StoreName != "" {
		pinned, ok := findLoad(loads, vol.Spec.StoreName)
		if !ok {
			return replicaPlacementDecision{Message: fmt.Sprintf("store %s (spec.storeName, the first copy) does not exist", vol.Spec.StoreName)}, nil
		}
		chosen = append(chosen, pinned)
	}
	for len(chosen) < want {
		next, ok := bestSpreadCandidate(fits, chosen, sameNode)
		if !ok {
			return replicaPlacementDecision{Message: replicaShortageMessage(vol, len(loads), fits, chosen, rejected, largestFree)}, nil
		}
		chosen = append(chosen, next)
	}

	var d replicaPlacementDecision
	for i, l := range chosen {
		switch {
		case i == 0 && vol.Spec.StoreName != "":
		case i == 0:
			d.Primary = l.Store.Name
		default:
			d.Others = append(d.Others, l.Store.Name)
		}
	}
	return d, nil
}

// bestSpreadCandidate returns the first of fits (sorted best first) that holds no copy of
// chosen and is on the best-spread tier: a new node in a new zone, else a new node, else (with
// sameNode) a new Store of a node that holds a copy.
func bestSpreadCandidate(fits, chosen []storeLoad, sameNode bool) (storeLoad, bool) {
	best, bestTier := storeLoad{}, -1
	for _, c := range fits {
		tier, ok := spreadTier(c, chosen, sameNode)
		if ok && (bestTier < 0 || tier < bestTier) {
			best, bestTier = c, tier
		}
	}
	return best, bestTier >= 0
}

// spreadTier ranks candidate c against the copies in chosen: 0 for a node and zone that hold no
// copy, 1 for a node that holds none in a zone that does, 2 for a node that holds one (only
// with sameNode); ok is false when c cannot take a copy at all.
func spreadTier(c storeLoad, chosen []storeLoad, sameNode bool) (tier int, ok bool) {
	zone := c.NodeLabels[corev1.LabelTopologyZone]
	var nodeUsed, zoneUsed bool
	for _, p := range chosen {
		if p.Store.Name == c.Store.Name {
			return 0, false
		}
		if p.Store.Spec.NodeName == c.Store.Spec.NodeName {
			nodeUsed = true
		}
		if zone != "" && p.NodeLabels[corev1.LabelTopologyZone] == zone {
			zoneUsed = true
		}
	}
	switch {
	case nodeUsed && !sameNode:
		return 0, false
	case nodeUsed:
		return 2, true
	case zoneUsed:
		return 1, true
	}
	return 0, true
}

// findLoad returns the load of the Store named name.
func findLoad(loads []storeLoad, name string) (storeLoad, bool) {
	for _, l := range loads {
		if l.Store.Name == name {
			return l, true
		}
	}
	return storeLoad{}, false
}

// replicaShortageMessage explains why vol's copies do not fit: fits are the candidates, chosen
// the copies already placed when it ran out.
func replicaShortageMessage(vol *storagev1alpha1.Volume, considered int, fits, chosen []storeLoad, rejected map[string]int, largestFree int64) string {
	want := int(vol.Spec.Replicas)
	stores, nodes := map[string]bool{}, map[string]bool{}
	for _, l := range append(append([]storeLoad(nil), chosen...), fits...) {
		stores[l.Store.Name] = true
		nodes[l.Store.Spec.NodeName] = true
	}
	size := vol.Spec.Size.String()
	sameNode := vol.Spec.ReplicaPlacement != nil && vol.Spec.ReplicaPlacement.AllowSameNode
	var b strings.Builder
	if sameNode {
		fmt.Fprintf(&b, "%d replicas need %d Stores: %s", want, want, countNoun(len(stores), "Store can", "Stores can"))
		fmt.Fprintf(&b, " hold %s", size)
	} else {
		fmt.Fprintf(&b, "%d replicas need %d nodes: %s", want, want, countNoun(len(nodes), "node has", "nodes have"))
		fmt.Fprintf(&b, " a Store that can hold %s", size)
	}
	if vol.Spec.StoreName != "" {
		fmt.Fprintf(&b, ", counting store %s (spec.storeName)", vol.Spec.StoreName)
	}
	if parts := rejectionParts(rejected, largestFree); len(parts) > 0 {
		fmt.Fprintf(&b, " (%d Stores considered: %s)", considered, strings.Join(parts, ", "))
	}
	if !sameNode && len(stores) >= want {
		b.WriteString("; set spec.replicaPlacement.allowSameNode to place copies on distinct Stores of one node")
	}
	return b.String()
}

// countNoun is "1 node has" or "3 nodes have".
func countNoun(n int, one, many string) string {
	if n == 1 {
		return "1 " + one
	}
	return fmt.Sprintf("%d %s", n, many)
}
