package controller

import (
	"strings"
	"testing"

	"github.com/container-storage-interface/spec/lib/go/csi"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/cobaltstore/cobalt/api/v1alpha1"
)

func TestRequestedSource(t *testing.T) {
	for _, tc := range []struct {
		name string
		cs   *csi.VolumeContentSource
		want *v1alpha1.VolumeSource
		msg  string // of an InvalidArgument error
	}{
		{name: "none"},
		{name: "snapshot", cs: &csi.VolumeContentSource{Type: &csi.VolumeContentSource_Snapshot{
			Snapshot: &csi.VolumeContentSource_SnapshotSource{SnapshotId: "snapshot-1"}}},
			want: &v1alpha1.VolumeSource{SnapshotName: "snapshot-1"}},
		{name: "volume", cs: &csi.VolumeContentSource{Type: &csi.VolumeContentSource_Volume{
			Volume: &csi.VolumeContentSource_VolumeSource{VolumeId: "pvc-1"}}},
			want: &v1alpha1.VolumeSource{VolumeName: "pvc-1"}},
		{name: "empty snapshot ID", cs: &csi.VolumeContentSource{Type: &csi.VolumeContentSource_Snapshot{
			Snapshot: &csi.VolumeContentSource_SnapshotSource{}}}, msg: "snapshot_id is required"},
		{name: "empty volume ID", cs: &csi.VolumeContentSource{Type: &csi.VolumeContentSource_Volume{
			Volume: &csi.VolumeContentSource_VolumeSource{}}}, msg: "volume_id is required"},
		{name: "no type", cs: &csi.VolumeContentSource{}, msg: "neither a snapshot nor a volume"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := requestedSource(tc.cs)
			if tc.msg != "" {
				if status.Code(err) != codes.InvalidArgument || !strings.Contains(status.Convert(err).Message(), tc.msg) {
					t.Fatalf("requestedSource = %v, want InvalidArgument containing %q", err, tc.msg)
				}
				return
			}
			if err != nil || (got == nil) != (tc.want == nil) || (got != nil && *got != *tc.want) {
				t.Fatalf("requestedSource = %v, %v; want %v", got, err, tc.want)
			}
			if tc.want != nil {
				// The source round-trips to the CO.
				back := csiContentSource(&v1alpha1.Volume{Spec: v1alpha1.VolumeSpec{Source: got}})
				if back.GetSnapshot().GetSnapshotId() != tc.cs.GetSnapshot().GetSnapshotId() || back.GetVolume().GetVolumeId() != tc.cs.GetVolume().GetVolumeId() {
					t.Errorf("csiContentSource = %v, want %v", back, tc.cs)
				}
			}
		})
	}
}

func TestSourcedSize(t *testing.T) {
	snap := &v1alpha1.VolumeSource{SnapshotName: "snapshot-1"}
	info := sourceInfo{Size: 16 * mi, Store: "n1-vdb", Node: "n1"}
	for _, tc := range []struct {
		name   string
		r      *csi.CapacityRange
		want   int64
		code   codes.Code
		msgHas []string
	}{
		{name: "no range: the source's size", want: 16 * mi},
		{name: "required equal", r: &csi.CapacityRange{RequiredBytes: 16 * mi}, want: 16 * mi},
		{name: "required larger, rounded up", r: &csi.CapacityRange{RequiredBytes: 20*mi + 1}, want: 21 * mi},
		{name: "limit only, above the source", r: &csi.CapacityRange{LimitBytes: 32 * mi}, want: 16 * mi},
		{name: "required smaller", r: &csi.CapacityRange{RequiredBytes: 8 * mi}, code: codes.OutOfRange,
			msgHas: []string{"required 8Mi", `snapshot "snapshot-1"`, "needs 16Mi"}},
		{name: "limit smaller", r: &csi.CapacityRange{LimitBytes: 10 * mi}, code: codes.OutOfRange,
			msgHas: []string{"limit 10Mi", "needs 16Mi"}},
		{name: "negative", r: &csi.CapacityRange{RequiredBytes: -1}, code: codes.InvalidArgument, msgHas: []string{"negative"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := sourcedSize(tc.r, snap, info)
			if tc.code != codes.OK {
				if status.Code(err) != tc.code {
					t.Fatalf("sourcedSize = %d, %v; want %v", got, err, tc.code)
				}
				for _, s := range tc.msgHas {
					if !strings.Contains(status.Convert(err).Message(), s) {
						t.Errorf("message %q lacks %q", status.Convert(err).Message(), s)
					}
				}
				return
			}
			if err != nil || got != tc.want {
				t.Fatalf("sourcedSize = %d, %v; want %d", got, err, tc.want)
			}
		})
	}
}

func TestCheckSourceTopology(t *testing.T) {
	src := &v1alpha1.VolumeSource{VolumeName: "pvc-1"}
	info := sourceInfo{Size: mi, Store: "n1-vdb", Node: "n1"}
	for _, tc := range []struct {
		name string
		req  *csi.TopologyRequirement
		code codes.Code
	}{
		{name: "none"},
		{name: "requisite with the source's node", req: &csi.TopologyRequirement{Requisite: []*csi.Topology{seg("n2"), seg("n1")}}},
		{name: "preferred elsewhere is only a preference", req: &csi.TopologyRequirement{Preferred: []*csi.Topology{seg("n2")}}},
		{name: "requisite elsewhere", req: &csi.TopologyRequirement{Requisite: []*csi.Topology{seg("n2")}}, code: codes.ResourceExhausted},
		{name: "requisite without the node key", req: &csi.TopologyRequirement{Requisite: []*csi.Topology{{Segments: map[string]string{"zone": "a"}}}},
			code: codes.InvalidArgument},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := checkSourceTopology(tc.req, src, info)
			if status.Code(err) != tc.code {
				t.Fatalf("checkSourceTopology = %v, want %v", err, tc.code)
			}
			if tc.code == codes.ResourceExhausted && !strings.Contains(err.Error(), "on node n1") {
				t.Errorf("message lacks the source's node: %v", err)
			}
		})
	}
}
