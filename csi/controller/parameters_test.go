package controller

import (
	"maps"
	"strings"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/cobaltstore/cobalt/api/v1alpha1"
)

func TestParseParameters(t *testing.T) {
	longName := strings.Repeat("c", 100)
	for _, tc := range []struct {
		name   string
		params map[string]string
		want   volumeParameters
		msgHas []string // for an InvalidArgument error
	}{
		{name: "none", want: volumeParameters{Replicas: 1, Labels: map[string]string{}, Annotations: map[string]string{}}},
		{name: "device class and replicas", params: map[string]string{"deviceClass": "hdd", "replicas": "1"},
			want: volumeParameters{DeviceClass: v1alpha1.DeviceClassHDD, Replicas: 1, Labels: map[string]string{}, Annotations: map[string]string{}}},
		{name: "provisioner metadata recorded", params: map[string]string{
			"csi.storage.k8s.io/pvc/name": "db", "csi.storage.k8s.io/pvc/namespace": "apps", "csi.storage.k8s.io/pv/name": "pvc-1",
			"csi.storage.k8s.io/something-else": "x"},
			want: volumeParameters{Replicas: 1,
				Labels:      map[string]string{v1alpha1.KeyPVCName: "db", v1alpha1.KeyPVCNamespace: "apps", v1alpha1.KeyPVName: "pvc-1"},
				Annotations: map[string]string{v1alpha1.KeyPVCName: "db", v1alpha1.KeyPVCNamespace: "apps", v1alpha1.KeyPVName: "pvc-1"},
			}},
		{name: "claim name too long for a label: annotation only", params: map[string]string{"csi.storage.k8s.io/pvc/name": longName},
			want: volumeParameters{Replicas: 1, Labels: map[string]string{}, Annotations: map[string]string{v1alpha1.KeyPVCName: longName}}},
		{name: "unknown parameter", params: map[string]string{"fsType": "ext4", "deviceClass": "ssd"},
			msgHas: []string{`unsupported StorageClass parameter "fsType"`, "deviceClass", "replicas", "allowSameNode", "csi.storage.k8s.io/"}},
		{name: "unknown parameters sorted", params: map[string]string{"zeta": "1", "alpha": "2"},
			msgHas: []string{`parameters "alpha", "zeta"`}},
		{name: "bad device class", params: map[string]string{"deviceClass": "nvme"}, msgHas: []string{`deviceClass is "nvme"`, `"ssd" or "hdd"`}},
		{name: "replicas 3 on one node", params: map[string]string{"replicas": "3", "allowSameNode": "true"},
			want: volumeParameters{Replicas: 3, AllowSameNode: true, Labels: map[string]string{}, Annotations: map[string]string{}}},
		{name: "replicas 2 on distinct nodes", params: map[string]string{"replicas": "2", "allowSameNode": "false"},
			want: volumeParameters{Replicas: 2, Labels: map[string]string{}, Annotations: map[string]string{}}},
		{name: "replicas 4", params: map[string]string{"replicas": "4"}, msgHas: []string{`replicas is "4"`, `"1", "2" or "3"`}},
		{name: "replicas 0", params: map[string]string{"replicas": "0"}, msgHas: []string{`replicas is "0"`}},
		{name: "replicas not a number", params: map[string]string{"replicas": "two"}, msgHas: []string{`replicas is "two"`}},
		{name: "replicas with a sign", params: map[string]string{"replicas": "+2"}, msgHas: []string{`replicas is "+2"`}},
		{name: "allowSameNode not a bool", params: map[string]string{"allowSameNode": "yes"}, msgHas: []string{`allowSameNode is "yes"`, `"true" or "false"`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := parseParameters(tc.params)
			if len(tc.msgHas) > 0 {
				if status.Code(err) != codes.InvalidArgument {
					t.Fatalf("parseParameters = %v, want InvalidArgument", err)
				}
				for _, s := range tc.msgHas {
					if !strings.Contains(status.Convert(err).Message(), s) {
						t.Errorf("message %q lacks %q", status.Convert(err).Message(), s)
					}
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got.DeviceClass != tc.want.DeviceClass || got.Replicas != tc.want.Replicas || got.AllowSameNode != tc.want.AllowSameNode || !maps.Equal(got.Labels, tc.want.Labels) || !maps.Equal(got.Annotations, tc.want.Annotations) {
				t.Errorf("parseParameters = %+v, want %+v", got, tc.want)
			}
		})
	}
}

func TestParseSnapshotParameters(t *testing.T) {
	longName := strings.Repeat("s", 100)
	for _, tc := range []struct {
		name   string
		params map[string]string
		want   snapshotParameters
		msgHas []string // for an InvalidArgument error
	}{
		{name: "none", want: snapshotParameters{Labels: map[string]string{}, Annotations: map[string]string{}}},
		{name: "snapshotter metadata recorded", params: map[string]string{
			"csi.storage.k8s.io/volumesnapshot/name": "nightly", "csi.storage.k8s.io/volumesnapshot/namespace": "apps",
			"csi.storage.k8s.io/volumesnapshotcontent/name": "snapcontent-1", "csi.storage.k8s.io/other": "x"},
			want: snapshotParameters{
				Labels: map[string]string{v1alpha1.KeyVolumeSnapshotName: "nightly", v1alpha1.KeyVolumeSnapshotNamespace: "apps",
					v1alpha1.KeyVolumeSnapshotContentName: "snapcontent-1"},
				Annotations: map[string]string{v1alpha1.KeyVolumeSnapshotName: "nightly", v1alpha1.KeyVolumeSnapshotNamespace: "apps",
					v1alpha1.KeyVolumeSnapshotContentName: "snapcontent-1"},
			}},
		{name: "name too long for a label: annotation only", params: map[string]string{"csi.storage.k8s.io/volumesnapshot/name": longName},
			want: snapshotParameters{Labels: map[string]string{}, Annotations: map[string]string{v1alpha1.KeyVolumeSnapshotName: longName}}},
		{name: "a StorageClass parameter is not a snapshot's", params: map[string]string{"deviceClass": "ssd"},
			msgHas: []string{`unsupported VolumeSnapshotClass parameter "deviceClass"`, "take no parameters"}},
		{name: "unknown parameters sorted", params: map[string]string{"zeta": "1", "alpha": "2"},
			msgHas: []string{`parameters "alpha", "zeta"`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := parseSnapshotParameters(tc.params)
			if len(tc.msgHas) > 0 {
				if status.Code(err) != codes.InvalidArgument {
					t.Fatalf("parseSnapshotParameters = %v, want InvalidArgument", err)
				}
				for _, s := range tc.msgHas {
					if !strings.Contains(status.Convert(err).Message(), s) {
						t.Errorf("message %q lacks %q", status.Convert(err).Message(), s)
					}
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !maps.Equal(got.Labels, tc.want.Labels) || !maps.Equal(got.Annotations, tc.want.Annotations) {
				t.Errorf("parseSnapshotParameters = %+v, want %+v", got, tc.want)
			}
		})
	}
}
