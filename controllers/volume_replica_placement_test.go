package controllers

import (
	"slices"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"

	"github.com/cobaltstore/cobalt/api/v1alpha1"
)

// onNode is a candidate Store named name with capacity free bytes on node, in zone (no zone
// label when empty).
func onNode(name, node, zone, capacity string) storeLoad {
	l := load(name, capacity, "0", "", 0)
	l.Store.Spec.NodeName = node
	l.NodeLabels = labels.Set{}
	if zone != "" {
		l.NodeLabels[corev1.LabelTopologyZone] = zone
	}
	return l
}

func TestChooseReplicaPlacement(t *testing.T) {
	vol := func(replicas int32, size string, f func(*v1alpha1.Volume)) *v1alpha1.Volume {
		v := &v1alpha1.Volume{Spec: v1alpha1.VolumeSpec{Size: resource.MustParse(size), Replicas: replicas}}
		if f != nil {
			f(v)
		}
		return v
	}
	sameNode := func(v *v1alpha1.Volume) { v.Spec.ReplicaPlacement = &v1alpha1.ReplicaPlacement{AllowSameNode: true} }
	tests := []struct {
		name    string
		vol     *v1alpha1.Volume
		loads   []storeLoad
		primary string
		others  []string
		message string
	}{
		{"three copies on three nodes, most free space first", vol(3, "10Gi", nil),
			[]storeLoad{onNode("a", "n1", "", "50Gi"), onNode("b", "n2", "", "80Gi"), onNode("c", "n3", "", "60Gi"), onNode("d", "n4", "", "20Gi")},
			"b", []string{"c", "a"}, ""},
		{"never two copies on one node without the opt-in, even when its Stores have the most room", vol(2, "10Gi", nil),
			[]storeLoad{onNode("a1", "n1", "", "100Gi"), onNode("a2", "n1", "", "90Gi"), onNode("b", "n2", "", "20Gi")},
			"a1", []string{"b"}, ""},
		{"distinct zones are preferred over free space", vol(3, "10Gi", nil),
			[]storeLoad{onNode("a1", "n1", "za", "100Gi"), onNode("a2", "n2", "za", "90Gi"), onNode("b", "n3", "zb", "20Gi"),
				onNode("c", "n4", "zc", "10Gi")},
			"a1", []string{"b", "c"}, ""},
		{"with fewer zones than copies the zones are spread first, then any node", vol(3, "10Gi", nil),
			[]storeLoad{onNode("a1", "n1", "za", "100Gi"), onNode("a2", "n2", "za", "90Gi"), onNode("b", "n3", "zb", "20Gi")},
			"a1", []string{"b", "a2"}, ""},
		{"nodes without a zone label do not block each other", vol(2, "1Gi", nil),
			[]storeLoad{onNode("a", "n1", "", "10Gi"), onNode("b", "n2", "", "10Gi")},
			"a", []string{"b"}, ""},
		{"fewer nodes than copies: unschedulable, and the opt-in is suggested", vol(2, "10Gi", nil),
			[]storeLoad{onNode("a1", "n1", "", "100Gi"), onNode("a2", "n1", "", "100Gi")},
			"", nil, "2 replicas need 2 nodes: 1 node has a Store that can hold 10Gi; set spec.replicaPlacement.allowSameNode to place copies on distinct Stores of one node"},
		{"the opt-in places copies on distinct Stores of one node", vol(2, "10Gi", sameNode),
			[]storeLoad{onNode("a1", "n1", "", "100Gi"), onNode("a2", "n1", "", "50Gi")},
			"a1", []string{"a2"}, ""},
		{"the opt-in still prefers another node", vol(2, "10Gi", sameNode),
			[]storeLoad{onNode("a1", "n1", "", "100Gi"), onNode("a2", "n1", "", "90Gi"), onNode("b", "n2", "", "20Gi")},
			"a1", []string{"b"}, ""},
		{"the opt-in never puts two copies on one Store", vol(3, "10Gi", sameNode),
			[]storeLoad{onNode("a1", "n1", "", "100Gi"), onNode("a2", "n1", "", "100Gi")},
			"", nil, "3 replicas need 3 Stores: 2 Stores can hold 10Gi"},
		{"Stores passed over are counted, and the opt-in is not suggested when it would not help", vol(3, "10Gi", nil),
			[]storeLoad{onNode("a", "n1", "", "100Gi"), onNode("b", "n2", "", "5Gi"),
				withStore(onNode("c", "n3", "", "100Gi"), func(l *storeLoad) { l.Store.Spec.AdminState = v1alpha1.AdminStateOut })},
			"", nil, "3 replicas need 3 nodes: 1 node has a Store that can hold 10Gi (3 Stores considered: 1 admin out, 1 too full (largest free space 5Gi))"},
		{"no Stores at all", vol(2, "1Gi", nil), nil, "", nil, "2 replicas need 2 nodes: 0 nodes have a Store that can hold 1Gi"},
		{"a pinned first copy stays and the others avoid its node and zone", vol(3, "10Gi", func(v *v1alpha1.Volume) { v.Spec.StoreName = "small" }),
			[]storeLoad{onNode("small", "n1", "za", "20Gi"), onNode("big", "n2", "za", "100Gi"), onNode("b", "n3", "zb", "30Gi"),
				onNode("same", "n1", "za", "100Gi"), onNode("c", "n4", "zc", "25Gi")},
			"", []string{"b", "c"}, ""},
		{"a pinned first copy on a missing Store", vol(2, "1Gi", func(v *v1alpha1.Volume) { v.Spec.StoreName = "gone" }),
			[]storeLoad{onNode("a", "n1", "", "10Gi")}, "", nil, "store gone (spec.storeName, the first copy) does not exist"},
		{"a pinned first copy counts as a node", vol(3, "1Gi", func(v *v1alpha1.Volume) { v.Spec.StoreName = "p" }),
			[]storeLoad{onNode("p", "n1", "", "10Gi"), onNode("a", "n2", "", "10Gi"), onNode("same", "n1", "", "10Gi")},
			"", nil, "3 replicas need 3 nodes: 2 nodes have a Store that can hold 1Gi, counting store p (spec.storeName); set spec.replicaPlacement.allowSameNode to place copies on distinct Stores of one node"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := chooseReplicaPlacement(tt.vol, tt.loads, unitNow, time.Minute)
			if err != nil {
				t.Fatal(err)
			}
			if got.Primary != tt.primary || !slices.Equal(got.Others, tt.others) || got.Message != tt.message {
				t.Errorf("got primary %q, others %v, message %q;\nwant primary %q, others %v, message %q",
					got.Primary, got.Others, got.Message, tt.primary, tt.others, tt.message)
			}
			if got.Message == "" {
				stores := append([]string{got.Primary}, got.Others...)
				if got.Primary == "" {
					stores[0] = tt.vol.Spec.StoreName
				}
				if len(stores) != int(tt.vol.Spec.Replicas) || len(slices.Compact(slices.Sorted(slices.Values(stores)))) != len(stores) {
					t.Errorf("stores %v: want %d distinct Stores", stores, tt.vol.Spec.Replicas)
				}
			}
		})
	}
}

func TestAssumedPlacementsOfEveryCopy(t *testing.T) {
	var a assumedPlacements
	a.assume(types.UID("v1"), 10, "s1", "s3")
	loads := []storeLoad{load("s1", "100", "0", "", 0), load("s2", "100", "0", "", 0), load("s3", "100", "0", "", 0)}
	a.addUnseen(loads, nil)
	if loads[0].Reserved != 10 || loads[1].Reserved != 0 || loads[2].Reserved != 10 || loads[2].Volumes != 1 {
		t.Fatalf("reserved s1 %d, s2 %d, s3 %d (%d vols); want 10, 0, 10 (1): each copy reserves the size on its Store",
			loads[0].Reserved, loads[1].Reserved, loads[2].Reserved, loads[2].Volumes)
	}
}
