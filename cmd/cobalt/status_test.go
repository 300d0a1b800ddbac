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

// TestPrintStatusReplicatedVolume: a replicated Volume counts on the store of every copy, its
// row lists every copy's store and node and its copies in sync of those wanted, and a copy out
// of sync makes the summary DEGRADED.
func TestPrintStatusReplicatedVolume(t *testing.T) {
	now := time.Date(2026, 11, 23, 1, 0, 0, 0, time.UTC)
	q := func(s string) *resource.Quantity { v := resource.MustParse(s); return &v }
	hb := metav1.NewTime(now.Add(-time.Second))
	ready := []metav1.Condition{{Type: storagev1alpha1.ConditionReady, Status: metav1.ConditionTrue, Reason: storagev1alpha1.ReasonHeartbeatFresh}}
	store := func(name, node string) storagev1alpha1.Store {
		return storagev1alpha1.Store{ObjectMeta: metav1.ObjectMeta{Name: name}, Spec: storagev1alpha1.StoreSpec{NodeName: node, DevicePath: "/dev/sdb", DeviceClass: "ssd", AdminState: "in"},
			Status: storagev1alpha1.StoreStatus{Conditions: ready, Capacity: q("10Gi"), Used: q("0"), LastHeartbeat: &hb}}
	}
	stores := []storagev1alpha1.Store{store("a-sdb", "a"), store("b-sdb", "b"), store("c-sdb", "c")}
	replicated := func(name string, inSync int32, states ...storagev1alpha1.ReplicaState) storagev1alpha1.Volume {
		v := storagev1alpha1.Volume{ObjectMeta: metav1.ObjectMeta{Namespace: "apps", Name: name},
			Spec: storagev1alpha1.VolumeSpec{Size: resource.MustParse("1Gi"), VolumeMode: "Filesystem", Replicas: int32(len(states)),
				StoreName: "a-sdb", ReplicaStoreNames: []string{"b-sdb", "c-sdb"}[:len(states)-1]},
			Status: storagev1alpha1.VolumeStatus{Conditions: ready, InSyncReplicas: inSync,
				Placement: &storagev1alpha1.VolumePlacement{Store: "a-sdb", Node: "a"}}}
		for i, st := range states {
			r := storagev1alpha1.VolumeReplica{Store: stores[i].Name, Node: stores[i].Spec.NodeName, State: st}
			v.Status.Replicas = append(v.Status.Replicas, r)
		}
		return v
	}
	single := storagev1alpha1.Volume{ObjectMeta: metav1.ObjectMeta{Namespace: "apps", Name: "single"},
		Spec: storagev1alpha1.VolumeSpec{Size: resource.MustParse("1Gi"), VolumeMode: "Block", Replicas: 1, StoreName: "a-sdb"},
		Status: storagev1alpha1.VolumeStatus{Conditions: ready, InSyncReplicas: 1,
			Placement: &storagev1alpha1.VolumePlacement{Store: "a-sdb", Node: "a"},
			Replicas:  []storagev1alpha1.VolumeReplica{{Store: "a-sdb", Node: "a", State: storagev1alpha1.ReplicaInSync}}}}
	for _, tc := range []struct {
		name       string
		vols       []storagev1alpha1.Volume
		perStore   map[string]string // store → VOLUMES column
		rows       map[string][3]string
		wantHealth string
	}{
		{name: "every copy in sync",
			vols:       []storagev1alpha1.Volume{replicated("three", 3, "InSync", "InSync", "InSync"), single},
			perStore:   map[string]string{"a-sdb": "2", "b-sdb": "1", "c-sdb": "1"},
			rows:       map[string][3]string{"apps/three": {"a-sdb,b-sdb,c-sdb", "a,b,c", "3/3"}, "apps/single": {"a-sdb", "a", "1"}},
			wantHealth: "HEALTHY"},
		{name: "a copy catching up",
			vols:       []storagev1alpha1.Volume{replicated("two", 1, "InSync", "CatchingUp")},
			perStore:   map[string]string{"a-sdb": "1", "b-sdb": "1", "c-sdb": "0"},
			rows:       map[string][3]string{"apps/two": {"a-sdb,b-sdb", "a,b", "1/2"}},
			wantHealth: "DEGRADED"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var out bytes.Buffer
			if err := printStatus(&out, stores, tc.vols, now); err != nil {
				t.Fatal(err)
			}
			rows := map[string][]string{}
			for _, l := range strings.Split(out.String(), "\n") {
				if f := strings.Fields(l); len(f) > 0 {
					rows[f[0]] = f
				}
			}
			// VOLUMES is the 12th column of a store row.
			for name, want := range tc.perStore {
				if got := rows[name]; len(got) < 12 || got[11] != want {
					t.Errorf("store row %q, want %s volumes", got, want)
				}
			}
			// STORE, NODE and REPLICAS are the 5th to 7th columns of a volume row.
			if got := rows["VOLUME"]; len(got) < 7 || got[6] != "REPLICAS" {
				t.Errorf("volume header %q lacks REPLICAS after NODE", got)
			}
			for name, want := range tc.rows {
				if got := rows[name]; len(got) < 7 || [3]string{got[4], got[5], got[6]} != want {
					t.Errorf("volume row %q, want store, node, replicas %q", got, want)
				}
			}
			if !strings.Contains(out.String(), "\n"+tc.wantHealth+":") {
				t.Errorf("summary is not %s:\n%s", tc.wantHealth, out.String())
			}
		})
	}
}

func TestMetadataPlacement(t *testing.T) {
	for _, c := range []struct {
		m    *storagev1alpha1.StoreMetadata
		want string
	}{
		{nil, "-"},
		{&storagev1alpha1.StoreMetadata{Placement: storagev1alpha1.MetadataOnDevice}, "device"},
		{&storagev1alpha1.StoreMetadata{Placement: storagev1alpha1.MetadataOnSeparateDevice}, "metadata-device"},
		{&storagev1alpha1.StoreMetadata{Placement: storagev1alpha1.MetadataInStateDirectory}, "state-dir"},
	} {
		if got := metadataPlacement(c.m); got != c.want {
			t.Errorf("metadataPlacement(%+v) = %q, want %q", c.m, got, c.want)
		}
	}
}
