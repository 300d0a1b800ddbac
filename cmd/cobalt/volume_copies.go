package main

import (
	"fmt"
	"strings"

	storagev1alpha1 "github.com/cobaltstore/cobalt/api/v1alpha1"
)

// volumeCopies are the copies of a Volume as its status reports them: status.replicas for a
// replicated Volume (every copy, whatever its state), else status.placement (a single-copy
// Volume counts once its node created it); none while the Volume is not placed. Each is a
// store and the node hosting it.
func volumeCopies(v *storagev1alpha1.Volume) []storagev1alpha1.VolumePlacement {
	if v.Spec.Replicas > 1 && len(v.Status.Replicas) > 0 {
		copies := make([]storagev1alpha1.VolumePlacement, 0, len(v.Status.Replicas))
		for _, r := range v.Status.Replicas {
			copies = append(copies, storagev1alpha1.VolumePlacement{Store: r.Store, Node: r.Node})
		}
		return copies
	}
	if p := v.Status.Placement; p != nil {
		return []storagev1alpha1.VolumePlacement{*p}
	}
	return nil
}

// copyColumns are the STORE and NODE cells of a volume row: every copy's store and node, comma
// separated, the first copy first; "-" when not placed (or a copy's node is not known).
func copyColumns(v *storagev1alpha1.Volume) (store, node string) {
	copies := volumeCopies(v)
	if len(copies) == 0 {
		return "-", "-"
	}
	stores, nodes := make([]string, len(copies)), make([]string, len(copies))
	for i, c := range copies {
		stores[i], nodes[i] = c.Store, c.Node
		if c.Node == "" {
			nodes[i] = "-"
		}
	}
	return strings.Join(stores, ","), strings.Join(nodes, ",")
}

// replicasColumn is the REPLICAS cell: "1" for a single-copy Volume, "<in sync>/<replicas>" for
// a replicated one (status.inSyncReplicas of spec.replicas).
func replicasColumn(v *storagev1alpha1.Volume) string {
	if v.Spec.Replicas <= 1 {
		return "1"
	}
	return fmt.Sprintf("%d/%d", v.Status.InSyncReplicas, v.Spec.Replicas)
}
