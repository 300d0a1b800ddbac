package controller

import (
	"slices"

	"github.com/container-storage-interface/spec/lib/go/csi"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/cobaltstore/cobalt/api/v1alpha1"
	"github.com/cobaltstore/cobalt/csi/driver"
)

// Replicated volumes (StorageClass parameters replicas and allowSameNode) through CSI:
//   - The parameters become the Volume's spec.replicas and spec.replicaPlacement.allowSameNode;
//     a retried CreateVolume whose existing Volume has another replica count is AlreadyExists.
//   - A restore or clone (volume content source) stays single-copy: the API refuses a source
//     with replicas > 1, so such a request is InvalidArgument before anything is created.
//   - While the operator runs without --enable-replication it leaves a replicated Volume
//     unplaced with Ready False, reason ReplicationUnavailable. CreateVolume then answers at once
//     with FailedPrecondition and the Volume's message instead of waiting for its deadline, and
//     deletes the Volume first, as it does an Unschedulable one: it holds no data, and
//     FailedPrecondition is a final error to the external-provisioner (it does not track the
//     volume as possibly in progress), so a Volume left behind would never be deleted if the
//     claim went away. The provisioner retries the claim with backoff; once the operator
//     serves replication, a retry succeeds.
//   - The accessible topology of a replicated volume is every copy's node: the data path may
//     serve the volume wherever a copy lives.
//   - Limitation: the request's topology (storeSelector, topology.go) applies to every copy. A
//     WaitForFirstConsumer claim under --strict-topology names only the Pod's node, so all its
//     copies must fit on that node: replicas > 1 then needs allowSameNode. Copies on distinct
//     nodes need Immediate binding (no topology: the Pod follows the copies) until the API can
//     ask for the first copy on the Pod's node and the others anywhere.

// maxReplicas is the largest spec.replicas the API accepts.
const maxReplicas = 3

// parseReplicas validates the replicas parameter: "1" to "3".
func parseReplicas(v string) (int32, error) {
	if len(v) == 1 && v[0] >= '1' && v[0] <= '0'+maxReplicas {
		return int32(v[0] - '0'), nil
	}
	return 0, status.Errorf(codes.InvalidArgument,
		"StorageClass parameter %s is %q: it must be \"1\", \"2\" or \"3\" (the number of copies, each on its own Store)", ParamReplicas, v)
}

// parseAllowSameNode validates the allowSameNode parameter: "true" or "false".
func parseAllowSameNode(v string) (bool, error) {
	switch v {
	case "true":
		return true, nil
	case "false":
		return false, nil
	}
	return false, status.Errorf(codes.InvalidArgument,
		"StorageClass parameter %s is %q: it must be \"true\" or \"false\"", ParamAllowSameNode, v)
}

// applyReplicas sets the Volume's replica count and placement from the parameters.
func applyReplicas(spec *v1alpha1.VolumeSpec, p volumeParameters) {
	spec.Replicas = max(p.Replicas, 1)
	if p.AllowSameNode {
		spec.ReplicaPlacement = &v1alpha1.ReplicaPlacement{AllowSameNode: true}
	}
}

// refuseReplicatedSource refuses a restore or clone of more than one copy. Bad parameters are
// left to parseParameters to report.
func refuseReplicatedSource(req *csi.CreateVolumeRequest) error {
	if req.GetVolumeContentSource() == nil {
		return nil
	}
	p, err := parseParameters(req.GetParameters())
	if err != nil || p.Replicas <= 1 {
		return nil
	}
	return status.Errorf(codes.InvalidArgument,
		"StorageClass parameter %s is %q, but a volume restored from a snapshot or cloned from a volume has one copy: use a StorageClass with replicas \"1\" for restores and clones",
		ParamReplicas, req.GetParameters()[ParamReplicas])
}

// checkExistingReplicas refuses an existing Volume whose replica count differs from the
// request's (replicas is immutable, so it cannot be made to fit).
func checkExistingReplicas(vol *v1alpha1.Volume, req *csi.CreateVolumeRequest) error {
	p, err := parseParameters(req.GetParameters())
	if err != nil {
		return err
	}
	if have := max(vol.Spec.Replicas, 1); have != p.Replicas {
		return status.Errorf(codes.AlreadyExists, "Volume %s/%s exists with %d replicas, the request asks for %d",
			vol.Namespace, vol.Name, have, p.Replicas)
	}
	return nil
}

// isReplicationUnavailable reports whether the operator left vol unplaced because it runs
// without replication.
func isReplicationUnavailable(vol *v1alpha1.Volume) bool {
	c := readyCondition(vol)
	return c != nil && c.Status == metav1.ConditionFalse && c.Reason == v1alpha1.ReasonReplicationUnavailable && vol.Spec.StoreName == ""
}

// accessibleTopology is the nodes vol can be used from: its placement's node, then the node of
// every other copy in status.replicas that the spec places (not a copy moving away), each once
// (copies may share a node with allowSameNode). Empty while the Volume is not placed.
func accessibleTopology(vol *v1alpha1.Volume) []*csi.Topology {
	var nodes []string
	if p := vol.Status.Placement; p != nil && p.Node != "" {
		nodes = append(nodes, p.Node)
	}
	placed := vol.PlacedStores()
	for _, r := range vol.Status.Replicas {
		if len(placed) > 0 && !slices.Contains(placed, r.Store) {
			continue // moving away: its copy is deleted once the new one is in sync
		}
		nodes = append(nodes, r.Node)
	}
	var topo []*csi.Topology
	seen := map[string]bool{}
	for _, n := range nodes {
		if n == "" || seen[n] {
			continue
		}
		seen[n] = true
		topo = append(topo, &csi.Topology{Segments: map[string]string{driver.TopologyKeyNode: n}})
	}
	return topo
}
