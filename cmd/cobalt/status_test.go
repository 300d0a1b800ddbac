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
			Status: storagev1alpha1.StoreStatus{Conditions: ready, Capacity: q("100Gi"), Used: q("25Gi"), LastHeartbeat: &hb,
				Metadata: &storagev1alpha1.StoreMetadata{Placement: storagev1alpha1.MetadataOnDevice, Location: "device region [65536, +6710886400)"}}},
		{ObjectMeta: metav1.ObjectMeta{Name: "node-c-sdb"}, Spec: storagev1alpha1.StoreSpec{NodeName: "node-c", DevicePath: "/dev/sdb", DeviceClass: "ssd", AdminState: "in"},
			Status: storagev1alpha1.StoreStatus{Conditions: ready, Capacity: q("10Gi"), Used: q("0"), LastHeartbeat: &hb,
				Metadata: &storagev1alpha1.StoreMetadata{Placement: storagev1alpha1.MetadataInStateDirectory, Location: "directory /var/lib/cobalt/stores/x/db"}}},
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
		"DEGRADED: stores ready 2/3, engines in trouble 0, volumes ready 2/2, capacity 110.0GiB, used 25.0GiB"} {
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
	rows := map[string][]string{}
	for _, l := range lines {
		if f := strings.Fields(l); len(f) > 0 {
			rows[f[0]] = f
		}
	}
	// The METADATA column follows ENGINE: where each store keeps its metadata.
	for name, want := range map[string]string{"STORE": "METADATA", "node-a-sdb": "device", "node-c-sdb": "state-dir", "node-b-sdc": "-"} {
		if got := rows[name]; len(got) < 8 || got[7] != want {
			t.Errorf("%s row = %q, want %q in the METADATA column", name, got, want)
		}
	}
	// Each volume row names the claim it backs ("-" for none) and the node it lives on.
	if got := rows["cobalt-system/pvc-42"]; len(got) < 6 || got[1] != "shop/data-db-0" || got[5] != "node-a" {
		t.Errorf("CSI volume row = %q, want claim shop/data-db-0 and node node-a", got)
	}
	if got := rows["apps/db"]; len(got) < 6 || got[1] != "-" || got[5] != "node-a" {
		t.Errorf("hand-made volume row = %q, want claim - and node node-a", got)
	}
}

// TestPrintStatusShowsEngineTrouble: a Ready store whose engine reports trouble shows it in its
// row and on a line with the engine's message, and makes the summary DEGRADED.
func TestPrintStatusShowsEngineTrouble(t *testing.T) {
	now := time.Date(2026, 12, 5, 8, 0, 0, 0, time.UTC)
	hb := metav1.NewTime(now.Add(-time.Second))
	ready := []metav1.Condition{{Type: storagev1alpha1.ConditionReady, Status: metav1.ConditionTrue, Reason: storagev1alpha1.ReasonHeartbeatFresh}}
	store := func(name string, h storagev1alpha1.EngineHealth, msg string) storagev1alpha1.Store {
		return storagev1alpha1.Store{ObjectMeta: metav1.ObjectMeta{Name: name}, Spec: storagev1alpha1.StoreSpec{NodeName: "node-a", DevicePath: "/dev/" + name, DeviceClass: "ssd", AdminState: "in"},
			Status: storagev1alpha1.StoreStatus{Conditions: ready, LastHeartbeat: &hb, EngineHealth: h, EngineMessage: msg}}
	}
	tests := []struct {
		name    string
		stores  []storagev1alpha1.Store
		want    []string
		notWant []string
	}{
		{"all OK", []storagev1alpha1.Store{store("a", storagev1alpha1.EngineHealthOK, "")},
			[]string{"HEALTHY: stores ready 1/1, engines in trouble 0"}, []string{"engine OK"}},
		{"degraded engine", []storagev1alpha1.Store{store("a", storagev1alpha1.EngineHealthOK, ""), store("b", storagev1alpha1.EngineHealthDegraded, "3 metadata background errors")},
			[]string{"store b: engine Degraded: 3 metadata background errors", "DEGRADED: stores ready 2/2, engines in trouble 1"}, []string{"store a:"}},
		{"failed engine", []storagev1alpha1.Store{store("a", storagev1alpha1.EngineHealthFailed, "writes are refused")},
			[]string{"store a: engine Failed: writes are refused", "DEGRADED: stores ready 1/1, engines in trouble 1"}, nil},
		{"not reported", []storagev1alpha1.Store{store("a", "", "")},
			[]string{"HEALTHY: stores ready 1/1, engines in trouble 0"}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out bytes.Buffer
			if err := printStatus(&out, tt.stores, nil, now); err != nil {
				t.Fatal(err)
			}
			for _, w := range tt.want {
				if !strings.Contains(out.String(), w) {
					t.Errorf("output lacks %q:\n%s", w, out.String())
				}
			}
			for _, w := range tt.notWant {
				if strings.Contains(out.String(), w) {
					t.Errorf("output has %q:\n%s", w, out.String())
				}
			}
			// The ENGINE column follows READY.
			header := strings.Fields(strings.Split(out.String(), "\n")[0])
			row := strings.Fields(strings.Split(out.String(), "\n")[1])
			want := string(tt.stores[0].Status.EngineHealth)
			if want == "" {
				want = "-"
			}
			if len(header) < 7 || header[6] != "ENGINE" || len(row) < 7 || row[6] != want {
				t.Errorf("engine column: header %q row %q, want %q", header, row, want)
			}
		})
	}
}
