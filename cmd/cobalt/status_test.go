package main

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	storagev1alpha1 "github.com/cobaltstore/cobalt/api/v1alpha1"
)

func TestPrintStatus(t *testing.T) {
	now := time.Date(2026, 11, 23, 1, 0, 0, 0, time.UTC)
	q := func(s string) *resource.Quantity { v := resource.MustParse(s); return &v }
	hb := metav1.NewTime(now.Add(-4 * time.Second))
	ready := []metav1.Condition{{Type: storagev1alpha1.ConditionReady, Status: metav1.ConditionTrue, Reason: storagev1alpha1.ReasonHeartbeatFresh}}
	stores := []storagev1alpha1.Store{
		{ObjectMeta: metav1.ObjectMeta{Name: "node-b-sdc"}, Spec: storagev1alpha1.StoreSpec{NodeName: "node-b", DevicePath: "/dev/sdc", DeviceClass: "hdd", AdminState: "in"},
			Status: storagev1alpha1.StoreStatus{NotUsedReason: "carries xfs", LastHeartbeat: &hb}},
		{ObjectMeta: metav1.ObjectMeta{Name: "node-a-sdb"}, Spec: storagev1alpha1.StoreSpec{NodeName: "node-a", DevicePath: "/dev/sdb", DeviceClass: "ssd", AdminState: "in"},
			Status: storagev1alpha1.StoreStatus{Conditions: ready, Capacity: q("100Gi"), Used: q("25Gi"), LastHeartbeat: &hb}},
	}
	vol := storagev1alpha1.Volume{ObjectMeta: metav1.ObjectMeta{Namespace: "apps", Name: "db"},
		Spec:   storagev1alpha1.VolumeSpec{Size: resource.MustParse("10Gi"), VolumeMode: "Block"},
		Status: storagev1alpha1.VolumeStatus{Conditions: ready, Placement: &storagev1alpha1.VolumePlacement{Store: "node-a-sdb", Node: "node-a"}}}
	csiVol := storagev1alpha1.Volume{ObjectMeta: metav1.ObjectMeta{Namespace: "cobalt-system", Name: "pvc-42",
		Annotations: map[string]string{storagev1alpha1.KeyPVCNamespace: "shop", storagev1alpha1.KeyPVCName: "data-db-0"}},
		Spec:   storagev1alpha1.VolumeSpec{Size: resource.MustParse("1Gi"), VolumeMode: "Filesystem"},
		Status: storagev1alpha1.VolumeStatus{Conditions: ready, Placement: &storagev1alpha1.VolumePlacement{Store: "node-a-sdb", Node: "node-a"}}}
	var out bytes.Buffer
	if err := printStatus(&out, stores, []storagev1alpha1.Volume{vol, csiVol}, now); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(out.String(), "\n")
	for _, want := range []string{"node-a-sdb", "100.0GiB", "25.0GiB", "25.0%", "4s ago", "carries xfs", "apps/db", "10.0GiB",
		"DEGRADED: stores ready 1/2, volumes ready 2/2, capacity 100.0GiB, used 25.0GiB"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("status output lacks %q:\n%s", want, out.String())
		}
	}
	if !strings.HasPrefix(lines[1], "node-a-sdb") {
		t.Errorf("stores are not sorted by name:\n%s", out.String())
	}
	if !strings.Contains(lines[1], "  2  ") {
		t.Errorf("store row does not count its volume: %q", lines[1])
	}
	// Each volume row names the claim it backs ("-" for none) and the node it lives on.
	rows := map[string][]string{}
	for _, l := range lines {
		if f := strings.Fields(l); len(f) > 0 {
			rows[f[0]] = f
		}
	}
	if got := rows["cobalt-system/pvc-42"]; len(got) < 6 || got[1] != "shop/data-db-0" || got[5] != "node-a" {
		t.Errorf("CSI volume row = %q, want claim shop/data-db-0 and node node-a", got)
	}
	if got := rows["apps/db"]; len(got) < 6 || got[1] != "-" || got[5] != "node-a" {
		t.Errorf("hand-made volume row = %q, want claim - and node node-a", got)
	}
}
