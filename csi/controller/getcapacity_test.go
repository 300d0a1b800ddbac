package controller

import (
	"testing"

	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/cobaltstore/cobalt/api/v1alpha1"
)

func TestFreeCapacity(t *testing.T) {
	const mi = int64(1 << 20)
	q := func(n int64) *resource.Quantity { return resource.NewQuantity(n, resource.BinarySI) }
	store := func(name, node, class string, schedulable bool, capacity, used int64) v1alpha1.Store {
		st := metav1.ConditionTrue
		if !schedulable {
			st = metav1.ConditionFalse
		}
		return v1alpha1.Store{
			ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{v1alpha1.LabelNodeName: node, v1alpha1.LabelDeviceClass: class}},
			Spec:       v1alpha1.StoreSpec{NodeName: node},
			Status: v1alpha1.StoreStatus{Capacity: q(capacity), Used: q(used),
				Conditions: []metav1.Condition{{Type: v1alpha1.ConditionSchedulable, Status: st}}},
		}
	}
	vol := func(store string, size, allocated int64) v1alpha1.Volume {
		v := v1alpha1.Volume{Spec: v1alpha1.VolumeSpec{Size: *q(size), StoreName: store}}
		if allocated > 0 {
			v.Status.AllocatedSize = q(allocated)
		}
		return v
	}
	stores := []v1alpha1.Store{
		store("a-ssd", "a", "ssd", true, 100*mi, 10*mi), // reserved 30 > used 10: 70 free
		store("a-hdd", "a", "hdd", true, 50*mi, 20*mi),  // used 20 > reserved 5: 30 free
		store("a-out", "a", "ssd", false, 500*mi, 0),    // not schedulable: not counted
		store("b-ssd", "b", "ssd", true, 40*mi+5, 0),    // 40 MiB + 5 bytes free
		store("c-full", "c", "ssd", true, 10*mi, 0),     // overcommitted: 0, never negative
		store("d-1", "d", "hdd", true, 10*mi, 0),        // a copy: 6 free
		store("d-2", "d", "hdd", true, 10*mi, 0),        // another copy on the same node: 6 free
		store("e-1", "e", "hdd", true, 10*mi, 0),        // another copy: 6 free
	}
	vols := []v1alpha1.Volume{
		vol("a-ssd", 20*mi, 0), vol("a-ssd", 5*mi, 10*mi), // allocated beyond the request counts
		vol("a-hdd", 5*mi, 0),
		vol("c-full", 12*mi, 0),
		vol("", 1000*mi, 0), // unplaced: reserves nothing
		// A replicated Volume reserves its size on every copy's Store.
		{Spec: v1alpha1.VolumeSpec{Size: *q(4 * mi), Replicas: 3, StoreName: "d-1", ReplicaStoreNames: []string{"e-1", "d-2"}}},
	}
	for _, tc := range []struct {
		name  string
		node  string
		class v1alpha1.DeviceClass
		want  capacity
	}{
		{name: "everything", want: capacity{Available: 158*mi + 5, MaxVolume: 70 * mi}},
		{name: "node d: both copies counted", node: "d", want: capacity{Available: 12 * mi, MaxVolume: 6 * mi}},
		{name: "node e: the third copy counted", node: "e", want: capacity{Available: 6 * mi, MaxVolume: 6 * mi}},
		{name: "node a", node: "a", want: capacity{Available: 100 * mi, MaxVolume: 70 * mi}},
		{name: "node a hdd", node: "a", class: "hdd", want: capacity{Available: 30 * mi, MaxVolume: 30 * mi}},
		{name: "ssd anywhere", class: "ssd", want: capacity{Available: 110*mi + 5, MaxVolume: 70 * mi}},
		{name: "node b: max volume in whole MiB", node: "b", want: capacity{Available: 40*mi + 5, MaxVolume: 40 * mi}},
		{name: "unknown node", node: "z", want: capacity{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := freeCapacity(stores, vols, tc.node, tc.class); got != tc.want {
				t.Errorf("freeCapacity = %+v, want %+v", got, tc.want)
			}
		})
	}
}
