package controller

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/container-storage-interface/spec/lib/go/csi"
	. "github.com/onsi/gomega"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/cobaltstore/cobalt/api/v1alpha1"
	"github.com/cobaltstore/cobalt/csi/driver"
)

func TestVolumeForRequestReplicas(t *testing.T) {
	for _, tc := range []struct {
		name          string
		params        map[string]string
		wantReplicas  int32
		wantSameNode  bool
		wantPlacement bool
	}{
		{name: "default: one copy", wantReplicas: 1},
		{name: "two copies on distinct nodes", params: map[string]string{ParamReplicas: "2", ParamAllowSameNode: "false"}, wantReplicas: 2},
		{name: "three copies, one node allowed", params: map[string]string{ParamReplicas: "3", ParamAllowSameNode: "true"},
			wantReplicas: 3, wantSameNode: true, wantPlacement: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			vol, err := volumeForRequest(createRequest(pvName(), "n1", mi, tc.params), "ns")
			if err != nil {
				t.Fatal(err)
			}
			if vol.Spec.Replicas != tc.wantReplicas {
				t.Errorf("spec.replicas = %d, want %d", vol.Spec.Replicas, tc.wantReplicas)
			}
			if got := vol.Spec.ReplicaPlacement != nil; got != tc.wantPlacement {
				t.Errorf("spec.replicaPlacement set = %v, want %v", got, tc.wantPlacement)
			}
			if got := vol.Spec.ReplicaPlacement != nil && vol.Spec.ReplicaPlacement.AllowSameNode; got != tc.wantSameNode {
				t.Errorf("allowSameNode = %v, want %v", got, tc.wantSameNode)
			}
		})
	}
}

func TestRefuseReplicatedSource(t *testing.T) {
	source := &csi.VolumeContentSource{Type: &csi.VolumeContentSource_Snapshot{
		Snapshot: &csi.VolumeContentSource_SnapshotSource{SnapshotId: "snap"}}}
	for _, tc := range []struct {
		name   string
		params map[string]string
		source *csi.VolumeContentSource
		refuse bool
	}{
		{name: "replicated, no source", params: map[string]string{ParamReplicas: "2"}},
		{name: "single-copy restore", params: map[string]string{ParamReplicas: "1"}, source: source},
		{name: "restore without replicas", source: source},
		{name: "replicated restore", params: map[string]string{ParamReplicas: "3"}, source: source, refuse: true},
		{name: "bad parameters are left to parseParameters", params: map[string]string{ParamReplicas: "9"}, source: source},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req := createRequest(pvName(), "", mi, tc.params)
			req.VolumeContentSource = tc.source
			err := refuseReplicatedSource(req)
			if !tc.refuse {
				if err != nil {
					t.Fatalf("refuseReplicatedSource = %v, want nil", err)
				}
				return
			}
			if status.Code(err) != codes.InvalidArgument || !strings.Contains(status.Convert(err).Message(), `replicas is "3"`) ||
				!strings.Contains(status.Convert(err).Message(), "one copy") {
				t.Fatalf("refuseReplicatedSource = %v, want InvalidArgument naming replicas and one copy", err)
			}
		})
	}
}

func TestCheckExistingReplicas(t *testing.T) {
	vol := func(replicas int32) *v1alpha1.Volume {
		return &v1alpha1.Volume{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "v"}, Spec: v1alpha1.VolumeSpec{Replicas: replicas}}
	}
	for _, tc := range []struct {
		name     string
		have     int32
		params   map[string]string
		conflict bool
	}{
		{name: "same count", have: 2, params: map[string]string{ParamReplicas: "2"}},
		{name: "unset means one", have: 0},
		{name: "more asked", have: 1, params: map[string]string{ParamReplicas: "3"}, conflict: true},
		{name: "fewer asked", have: 2, conflict: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := checkExistingReplicas(vol(tc.have), createRequest("v", "", mi, tc.params))
			if got := status.Code(err) == codes.AlreadyExists; got != tc.conflict || (!tc.conflict && err != nil) {
				t.Fatalf("checkExistingReplicas = %v, want conflict %v", err, tc.conflict)
			}
		})
	}
}

func TestAccessibleTopology(t *testing.T) {
	placed := func(node string, replicas ...v1alpha1.VolumeReplica) *v1alpha1.Volume {
		v := &v1alpha1.Volume{Status: v1alpha1.VolumeStatus{Replicas: replicas}}
		if node != "" {
			v.Status.Placement = &v1alpha1.VolumePlacement{Store: node + "-vdb", Node: node}
		}
		return v
	}
	for _, tc := range []struct {
		name string
		vol  *v1alpha1.Volume
		want []string
	}{
		{name: "unplaced", vol: placed(""), want: nil},
		{name: "one copy", vol: placed("n1"), want: []string{"n1"}},
		{name: "every copy's node, the first first", vol: placed("n2",
			v1alpha1.VolumeReplica{Store: "n2-vdb", Node: "n2"}, v1alpha1.VolumeReplica{Store: "n1-vdb", Node: "n1"},
			v1alpha1.VolumeReplica{Store: "n3-vdb", Node: "n3"}), want: []string{"n2", "n1", "n3"}},
		{name: "copies on one node: listed once", vol: placed("n1",
			v1alpha1.VolumeReplica{Store: "n1-vdb", Node: "n1"}, v1alpha1.VolumeReplica{Store: "n1-vdc", Node: "n1"}), want: []string{"n1"}},
		{name: "a copy whose node is not known yet is left out", vol: placed("n1",
			v1alpha1.VolumeReplica{Store: "n1-vdb", Node: "n1"}, v1alpha1.VolumeReplica{Store: "gone"}), want: []string{"n1"}},
		{name: "a copy moving away (not in the spec) is left out", vol: func() *v1alpha1.Volume {
			v := placed("n1", v1alpha1.VolumeReplica{Store: "n1-vdb", Node: "n1"}, v1alpha1.VolumeReplica{Store: "n2-vdb", Node: "n2"},
				v1alpha1.VolumeReplica{Store: "n3-vdb", Node: "n3"})
			v.Spec.StoreName, v.Spec.ReplicaStoreNames = "n1-vdb", []string{"n3-vdb"}
			return v
		}(), want: []string{"n1", "n3"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var got []string
			for _, topo := range accessibleTopology(tc.vol) {
				if len(topo.GetSegments()) != 1 {
					t.Fatalf("segments %v, want only %s", topo.GetSegments(), driver.TopologyKeyNode)
				}
				got = append(got, topo.GetSegments()[driver.TopologyKeyNode])
			}
			if !slices.Equal(got, tc.want) {
				t.Errorf("accessibleTopology nodes = %v, want %v", got, tc.want)
			}
		})
	}
}

// TestCreateVolumeReplicationUnavailable: the suite's operator runs without replication, so a
// replicated Volume is left unplaced with ReplicationUnavailable; CreateVolume answers at once
// with FailedPrecondition and the operator's message, and leaves no Volume behind.
func TestCreateVolumeReplicationUnavailable(t *testing.T) {
	g := NewWithT(t)
	s, ns := newTestServer(t)
	node := uniqueNode("repl")
	createStore(t, node+"-vdb", node, v1alpha1.DeviceClassSSD, "1Gi", "0")
	createStore(t, node+"-vdc", node, v1alpha1.DeviceClassSSD, "1Gi", "0")

	name := pvName()
	start := time.Now()
	_, err := s.CreateVolume(t.Context(), createRequest(name, node, 8*mi,
		map[string]string{ParamReplicas: "2", ParamAllowSameNode: "true"}))
	g.Expect(status.Code(err)).To(Equal(codes.FailedPrecondition), "%v", err)
	g.Expect(time.Since(start)).To(BeNumerically("<", 10*time.Second), "answered before MaxWait (20s)")
	msg := status.Convert(err).Message()
	g.Expect(msg).To(ContainSubstring("spec.replicas is 2"), "the operator's ReplicationUnavailable message")
	g.Expect(msg).To(ContainSubstring("--enable-replication"))
	_, err = getVolume(t, ns, name)
	g.Expect(apierrors.IsNotFound(err)).To(BeTrue(), "the unplaced Volume was deleted: %v", err)

	// A single-copy volume under the same name is created as usual.
	resp, err := s.CreateVolume(t.Context(), createRequest(name, node, 8*mi, map[string]string{ParamReplicas: "1"}))
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(resp.GetVolume().GetAccessibleTopology()).To(HaveLen(1))
	deleteVolume(t, s, name)
}
