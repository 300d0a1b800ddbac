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

// topologyNodes is the nodes a volume may be placed on for accessibility requirements: those of
// the requisite segments, or of the preferred ones when there are no requisite ones; nil means
// any node. With WaitForFirstConsumer and the external-provisioner's --strict-topology, requisite
// is exactly the node the scheduler picked for the Pod. A segment without the node key
// (driver.TopologyKeyNode), the only key this driver reports, is an InvalidArgument status.
func topologyNodes(req *csi.TopologyRequirement) ([]string, error) {
	segments := req.GetRequisite()
	if len(segments) == 0 {
		segments = req.GetPreferred()
	}
	var nodes []string
	for _, t := range segments {
		node, ok := t.GetSegments()[driver.TopologyKeyNode]
		if !ok || node == "" {
			return nil, status.Errorf(codes.InvalidArgument,
				"accessibility_requirements: topology segment %v has no %s key, the only topology key of %s",
				t.GetSegments(), driver.TopologyKeyNode, driver.Name)
		}
		nodes = append(nodes, node)
	}
	slices.Sort(nodes)
	return slices.Compact(nodes), nil
}

// storeSelector is the Volume storeSelector restricting placement to Stores of deviceClass (any
// when empty) on nodes (any when empty), through the labels every Store carries; nil when it
// restricts nothing.
func storeSelector(deviceClass v1alpha1.DeviceClass, nodes []string) *metav1.LabelSelector {
	if deviceClass == "" && len(nodes) == 0 {
		return nil
	}
	sel := &metav1.LabelSelector{}
	if deviceClass != "" {
		sel.MatchLabels = map[string]string{v1alpha1.LabelDeviceClass: string(deviceClass)}
	}
	if len(nodes) > 0 {
		sel.MatchExpressions = []metav1.LabelSelectorRequirement{{
			Key: v1alpha1.LabelNodeName, Operator: metav1.LabelSelectorOpIn, Values: slices.Clone(nodes),
		}}
	}
	return sel
}
