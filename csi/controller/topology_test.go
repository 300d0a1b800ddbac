package controller

import (
	"slices"
	"testing"

	"github.com/container-storage-interface/spec/lib/go/csi"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"

	"github.com/cobaltstore/cobalt/api/v1alpha1"
	"github.com/cobaltstore/cobalt/csi/driver"
)

func seg(node string) *csi.Topology {
	return &csi.Topology{Segments: map[string]string{driver.TopologyKeyNode: node}}
}

func TestTopologyNodes(t *testing.T) {
	for _, tc := range []struct {
		name string
		req  *csi.TopologyRequirement
		want []string
		code codes.Code
	}{
		{name: "none: anywhere", req: nil, want: nil},
		{name: "requisite wins over preferred", req: &csi.TopologyRequirement{
			Requisite: []*csi.Topology{seg("n2"), seg("n1"), seg("n2")}, Preferred: []*csi.Topology{seg("n3")}}, want: []string{"n1", "n2"}},
		{name: "preferred when no requisite", req: &csi.TopologyRequirement{Preferred: []*csi.Topology{seg("n3")}}, want: []string{"n3"}},
		{name: "foreign key", req: &csi.TopologyRequirement{Requisite: []*csi.Topology{{Segments: map[string]string{"zone": "a"}}}},
			code: codes.InvalidArgument},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := topologyNodes(tc.req)
			if status.Code(err) != tc.code || !slices.Equal(got, tc.want) {
				t.Fatalf("topologyNodes = %v, %v; want %v, %v", got, err, tc.want, tc.code)
			}
		})
	}
}

// TestStoreSelector checks the selector against Store labels, as placement applies it.
func TestStoreSelector(t *testing.T) {
	store := func(node, class string) labels.Set {
		return labels.Set{v1alpha1.LabelNodeName: node, v1alpha1.LabelDeviceClass: class}
	}
	if sel := storeSelector("", nil); sel != nil {
		t.Fatalf("storeSelector with no restriction = %v, want nil", sel)
	}
	for _, tc := range []struct {
		name    string
		class   v1alpha1.DeviceClass
		nodes   []string
		matches []labels.Set
		misses  []labels.Set
	}{
		{name: "class", class: "ssd", matches: []labels.Set{store("a", "ssd")}, misses: []labels.Set{store("a", "hdd")}},
		{name: "nodes", nodes: []string{"a", "b"}, matches: []labels.Set{store("a", "hdd"), store("b", "ssd")}, misses: []labels.Set{store("c", "ssd")}},
		{name: "both", class: "hdd", nodes: []string{"a"}, matches: []labels.Set{store("a", "hdd")},
			misses: []labels.Set{store("a", "ssd"), store("b", "hdd")}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sel, err := metav1.LabelSelectorAsSelector(storeSelector(tc.class, tc.nodes))
			if err != nil {
				t.Fatal(err)
			}
			for _, l := range tc.matches {
				if !sel.Matches(l) {
					t.Errorf("%v does not match %v", sel, l)
				}
			}
			for _, l := range tc.misses {
				if sel.Matches(l) {
					t.Errorf("%v matches %v", sel, l)
				}
			}
		})
	}
}
