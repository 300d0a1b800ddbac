package controller

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/container-storage-interface/spec/lib/go/csi"
	. "github.com/onsi/gomega"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/uuid"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/cobaltstore/cobalt/api/v1alpha1"
	"github.com/cobaltstore/cobalt/csi/driver"
)

const mi = int64(1 << 20)

// createRequest is what the external-provisioner sends for a claim with --extra-create-metadata
// and, when node is set, --strict-topology under WaitForFirstConsumer (requisite = the Pod's node).
func createRequest(name, node string, required int64, params map[string]string) *csi.CreateVolumeRequest {
	p := map[string]string{
		"csi.storage.k8s.io/pvc/name": "data-" + name, "csi.storage.k8s.io/pvc/namespace": "apps",
		"csi.storage.k8s.io/pv/name": name,
	}
	for k, v := range params {
		p[k] = v
	}
	req := &csi.CreateVolumeRequest{
		Name:               name,
		CapacityRange:      &csi.CapacityRange{RequiredBytes: required},
		VolumeCapabilities: []*csi.VolumeCapability{mountCap(csi.VolumeCapability_AccessMode_SINGLE_NODE_WRITER)},
		Parameters:         p,
	}
	if node != "" {
		req.AccessibilityRequirements = &csi.TopologyRequirement{Requisite: []*csi.Topology{seg(node)}, Preferred: []*csi.Topology{seg(node)}}
	}
	return req
}

// uniqueNode names a node no other test uses.
func uniqueNode(prefix string) string { return prefix + "-" + string(uuid.NewUUID())[:8] }

func pvName() string { return "pvc-" + string(uuid.NewUUID()) }

func getVolume(t *testing.T, ns, name string) (*v1alpha1.Volume, error) {
	vol := &v1alpha1.Volume{}
	return vol, testClient.Get(t.Context(), client.ObjectKey{Namespace: ns, Name: name}, vol)
}

func deleteVolume(t *testing.T, s *Server, id string) {
	t.Helper()
	if _, err := s.DeleteVolume(t.Context(), &csi.DeleteVolumeRequest{VolumeId: id}); err != nil {
		t.Fatalf("DeleteVolume(%s): %v", id, err)
	}
}

func TestCreateVolumeIsReadyAndIdempotent(t *testing.T) {
	g := NewWithT(t)
	s, ns := newTestServer(t)
	node := uniqueNode("create")
	store := createStore(t, node+"-vdb", node, v1alpha1.DeviceClassSSD, "1Gi", "0")

	name := pvName()
	req := createRequest(name, node, 10*mi+1, map[string]string{ParamDeviceClass: "ssd", ParamReplicas: "1"})
	resp, err := s.CreateVolume(t.Context(), req)
	g.Expect(err).NotTo(HaveOccurred())
	v := resp.GetVolume()
	g.Expect(v.GetVolumeId()).To(Equal(name), "a pvc-<uid> name is the Volume's name as is")
	g.Expect(v.GetCapacityBytes()).To(Equal(11*mi), "rounded up to a whole MiB")
	vol, err := getVolume(t, ns, name)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(v.GetVolumeContext()).To(Equal(map[string]string{
		driver.ContextStoreUUID: store.Status.UUID, driver.ContextVolumeUID: string(vol.UID), driver.ContextVolume: ns + "/" + name,
	}))
	g.Expect(v.GetAccessibleTopology()).To(HaveLen(1))
	g.Expect(v.GetAccessibleTopology()[0].GetSegments()).To(Equal(map[string]string{driver.TopologyKeyNode: node}))

	g.Expect(vol.Spec.StoreName).To(Equal(store.Name))
	g.Expect(vol.Spec.VolumeMode).To(Equal(v1alpha1.VolumeModeFilesystem))
	g.Expect(vol.Labels).To(HaveKeyWithValue(v1alpha1.KeyPVCName, "data-"+name))
	g.Expect(vol.Labels).To(HaveKeyWithValue(v1alpha1.KeyPVCNamespace, "apps"))
	g.Expect(vol.Labels).To(HaveKeyWithValue(v1alpha1.KeyPVName, name))
	g.Expect(vol.Labels).To(HaveKeyWithValue(v1alpha1.LabelCSIDriver, driver.Name))
	g.Expect(vol.Annotations).To(HaveKeyWithValue(v1alpha1.AnnotationCSIName, name))
	g.Expect(vol.Annotations).To(HaveKeyWithValue(v1alpha1.KeyPVCName, "data-"+name))
	alloc, ok := nodes.Allocated(store.Name, string(vol.UID))
	g.Expect(ok).To(BeTrue(), "the node created the volume")
	g.Expect(alloc).To(Equal(11 * mi))

	again, err := s.CreateVolume(t.Context(), req)
	g.Expect(err).NotTo(HaveOccurred(), "a retry with the same name succeeds")
	g.Expect(again.GetVolume()).To(Equal(v), "and returns the same volume")

	bigger := createRequest(name, node, 100*mi, nil)
	bigger.CapacityRange.LimitBytes = 100 * mi
	_, err = s.CreateVolume(t.Context(), bigger)
	g.Expect(status.Code(err)).To(Equal(codes.AlreadyExists), "same name, incompatible size: %v", err)
	block := createRequest(name, node, 10*mi, nil)
	block.VolumeCapabilities = []*csi.VolumeCapability{blockCap(csi.VolumeCapability_AccessMode_SINGLE_NODE_WRITER)}
	_, err = s.CreateVolume(t.Context(), block)
	g.Expect(status.Code(err)).To(Equal(codes.AlreadyExists), "same name, other mode: %v", err)

	// A Volume that is not this request's (here: made by hand) is never handed out.
	odd := "Odd_Name"
	g.Expect(testClient.Create(t.Context(), &v1alpha1.Volume{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: VolumeName(odd)},
		Spec:       v1alpha1.VolumeSpec{Size: resource.MustParse("1Mi")},
	})).To(Succeed())
	_, err = s.CreateVolume(t.Context(), createRequest(odd, node, mi, nil))
	g.Expect(status.Code(err)).To(Equal(codes.AlreadyExists), "%v", err)
	g.Expect(err.Error()).To(ContainSubstring("was not created through CSI"))

	deleteVolume(t, s, VolumeName(odd))
	deleteVolume(t, s, name)
}

// TestCreateVolumeWaitForFirstConsumer: with a requisite topology of one node (the Pod's), the
// volume lands on that node's Store, although another node's Store has more room.
func TestCreateVolumeWaitForFirstConsumer(t *testing.T) {
	g := NewWithT(t)
	s, ns := newTestServer(t)
	podNode, other := uniqueNode("wffc-pod"), uniqueNode("wffc-other")
	want := createStore(t, podNode+"-vdb", podNode, v1alpha1.DeviceClassHDD, "256Mi", "0")
	createStore(t, other+"-vdb", other, v1alpha1.DeviceClassHDD, "4Gi", "0")

	name := pvName()
	resp, err := s.CreateVolume(t.Context(), createRequest(name, podNode, 32*mi, nil))
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(resp.GetVolume().GetAccessibleTopology()[0].GetSegments()).To(HaveKeyWithValue(driver.TopologyKeyNode, podNode))
	g.Expect(resp.GetVolume().GetVolumeContext()).To(HaveKeyWithValue(driver.ContextStoreUUID, want.Status.UUID))
	vol, err := getVolume(t, ns, name)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(vol.Spec.StoreName).To(Equal(want.Name))
	g.Expect(vol.Spec.StoreSelector.MatchExpressions).To(ConsistOf(metav1.LabelSelectorRequirement{
		Key: v1alpha1.LabelNodeName, Operator: metav1.LabelSelectorOpIn, Values: []string{podNode}}))
	deleteVolume(t, s, name)
}

// TestCreateVolumeTooLarge: no Store can hold the volume, so CreateVolume answers
// ResourceExhausted with the operator's reason and leaves no Volume behind.
func TestCreateVolumeTooLarge(t *testing.T) {
	g := NewWithT(t)
	s, ns := newTestServer(t)
	node := uniqueNode("small")
	createStore(t, node+"-vdb", node, v1alpha1.DeviceClassSSD, "64Mi", "0")

	name := pvName()
	_, err := s.CreateVolume(t.Context(), createRequest(name, node, 1<<30, nil))
	g.Expect(status.Code(err)).To(Equal(codes.ResourceExhausted), "%v", err)
	msg := status.Convert(err).Message()
	g.Expect(msg).To(ContainSubstring("no Store can hold 1Gi"), "the operator's Unschedulable message")
	g.Expect(msg).To(ContainSubstring("1 too full (largest free space 64Mi)"))
	_, err = getVolume(t, ns, name)
	g.Expect(apierrors.IsNotFound(err)).To(BeTrue(), "the unplaced Volume was deleted: %v", err)

	// The next attempt, with room, succeeds under the same name.
	_, err = s.CreateVolume(t.Context(), createRequest(name, node, 16*mi, nil))
	g.Expect(err).NotTo(HaveOccurred())
	deleteVolume(t, s, name)
}

func TestCreateVolumeRefusesBadRequests(t *testing.T) {
	s, ns := newTestServer(t)
	node := uniqueNode("bad")
	withSource := createRequest(pvName(), node, mi, nil)
	withSource.VolumeContentSource = &csi.VolumeContentSource{Type: &csi.VolumeContentSource_Snapshot{
		Snapshot: &csi.VolumeContentSource_SnapshotSource{SnapshotId: "snap"}}}
	emptySource := createRequest(pvName(), node, mi, nil)
	emptySource.VolumeContentSource = &csi.VolumeContentSource{}
	multi := createRequest(pvName(), node, mi, nil)
	multi.VolumeCapabilities = []*csi.VolumeCapability{mountCap(csi.VolumeCapability_AccessMode_MULTI_NODE_MULTI_WRITER)}
	limited := createRequest(pvName(), node, mi+1, nil)
	limited.CapacityRange.LimitBytes = mi + 1
	for _, tc := range []struct {
		name string
		req  *csi.CreateVolumeRequest
		code codes.Code
		msg  string
	}{
		{name: "unknown parameter", req: createRequest(pvName(), node, mi, map[string]string{"encrypted": "true"}),
			code: codes.InvalidArgument, msg: `unsupported StorageClass parameter "encrypted"`},
		{name: "no name", req: createRequest("", node, mi, nil), code: codes.InvalidArgument, msg: "name is required"},
		{name: "missing snapshot source", req: withSource, code: codes.NotFound, msg: `source snapshot "snap" does not exist in namespace ` + ns},
		{name: "content source of no type", req: emptySource, code: codes.InvalidArgument, msg: "neither a snapshot nor a volume"},
		{name: "multi-node", req: multi, code: codes.InvalidArgument, msg: "a Cobalt volume lives on one node"},
		{name: "limit under a whole MiB", req: limited, code: codes.OutOfRange, msg: "whole MiB"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := s.CreateVolume(t.Context(), tc.req)
			if status.Code(err) != tc.code || !strings.Contains(status.Convert(err).Message(), tc.msg) {
				t.Fatalf("CreateVolume = %v, want %v containing %q", err, tc.code, tc.msg)
			}
			var list v1alpha1.VolumeList
			if err := testClient.List(t.Context(), &list, client.InNamespace(ns)); err != nil || len(list.Items) != 0 {
				t.Fatalf("a refused request left Volumes: %d, %v", len(list.Items), err)
			}
		})
	}
}

// TestCreateVolumeRetryAfterTimeout: the node fails to create the volume until the call's
// deadline; the Volume stays, and the retry after the node heals returns that same Volume.
func TestCreateVolumeRetryAfterTimeout(t *testing.T) {
	g := NewWithT(t)
	s, ns := newTestServer(t)
	node := uniqueNode("flaky")
	store := createStore(t, node+"-vdb", node, v1alpha1.DeviceClassSSD, "1Gi", "0")
	nodes.Fail(store.Name, errors.New("connection refused"))

	name := pvName()
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Second)
	defer cancel()
	_, err := s.CreateVolume(ctx, createRequest(name, node, 8*mi, nil))
	g.Expect(status.Code(err)).To(Equal(codes.DeadlineExceeded), "%v", err)
	g.Expect(status.Convert(err).Message()).To(ContainSubstring(v1alpha1.ReasonProvisioningFailed))
	first, err := getVolume(t, ns, name)
	g.Expect(err).NotTo(HaveOccurred(), "the placed Volume is kept for the retry")

	nodes.Fail(store.Name, nil)
	resp, err := s.CreateVolume(t.Context(), createRequest(name, node, 8*mi, nil))
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(resp.GetVolume().GetVolumeContext()).To(HaveKeyWithValue(driver.ContextVolumeUID, string(first.UID)))
	deleteVolume(t, s, name)
}

func TestExpandVolume(t *testing.T) {
	g := NewWithT(t)
	s, ns := newTestServer(t)
	node := uniqueNode("expand")
	store := createStore(t, node+"-vdb", node, v1alpha1.DeviceClassSSD, "1Gi", "0")
	name := pvName()
	_, err := s.CreateVolume(t.Context(), createRequest(name, node, 10*mi, nil))
	g.Expect(err).NotTo(HaveOccurred())

	resp, err := s.ControllerExpandVolume(t.Context(), &csi.ControllerExpandVolumeRequest{
		VolumeId: name, CapacityRange: &csi.CapacityRange{RequiredBytes: 20*mi + 1}})
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(resp.GetCapacityBytes()).To(Equal(21 * mi))
	g.Expect(resp.GetNodeExpansionRequired()).To(BeTrue())
	vol, err := getVolume(t, ns, name)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(vol.Spec.Size.Value()).To(Equal(21 * mi))
	alloc, _ := nodes.Allocated(store.Name, string(vol.UID))
	g.Expect(alloc).To(Equal(21*mi), "the node grew the volume")

	resp, err = s.ControllerExpandVolume(t.Context(), &csi.ControllerExpandVolumeRequest{
		VolumeId: name, CapacityRange: &csi.CapacityRange{RequiredBytes: 5 * mi}})
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(resp.GetCapacityBytes()).To(Equal(21*mi), "a smaller request never shrinks the volume")

	_, err = s.ControllerExpandVolume(t.Context(), &csi.ControllerExpandVolumeRequest{
		VolumeId: "pvc-missing", CapacityRange: &csi.CapacityRange{RequiredBytes: mi}})
	g.Expect(status.Code(err)).To(Equal(codes.NotFound))
	deleteVolume(t, s, name)
}

// TestDeleteVolumeWaitsUntilFreed: DeleteVolume returns only once the node freed the volume;
// while the node fails, it times out with the operator's reason, and the retry succeeds.
func TestDeleteVolumeWaitsUntilFreed(t *testing.T) {
	g := NewWithT(t)
	s, ns := newTestServer(t)
	node := uniqueNode("delete")
	store := createStore(t, node+"-vdb", node, v1alpha1.DeviceClassSSD, "1Gi", "0")
	name := pvName()
	_, err := s.CreateVolume(t.Context(), createRequest(name, node, 4*mi, nil))
	g.Expect(err).NotTo(HaveOccurred())
	vol, err := getVolume(t, ns, name)
	g.Expect(err).NotTo(HaveOccurred())

	nodes.Fail(store.Name, errors.New("node unreachable"))
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Second)
	defer cancel()
	_, err = s.DeleteVolume(ctx, &csi.DeleteVolumeRequest{VolumeId: name})
	g.Expect(status.Code(err)).To(Equal(codes.DeadlineExceeded), "%v", err)
	g.Expect(status.Convert(err).Message()).To(ContainSubstring(v1alpha1.ReasonDeleteFailed))
	_, held := nodes.Allocated(store.Name, string(vol.UID))
	g.Expect(held).To(BeTrue())

	nodes.Fail(store.Name, nil)
	deleteVolume(t, s, name)
	_, err = getVolume(t, ns, name)
	g.Expect(apierrors.IsNotFound(err)).To(BeTrue(), "DeleteVolume returned before the Volume was gone: %v", err)
	_, held = nodes.Allocated(store.Name, string(vol.UID))
	g.Expect(held).To(BeFalse(), "the node freed the volume")

	deleteVolume(t, s, name) // a missing volume is deleted already
	deleteVolume(t, s, "Not A Volume ID")
}

func TestGetCapacityPerNode(t *testing.T) {
	g := NewWithT(t)
	s, _ := newTestServer(t)
	a, b := uniqueNode("cap-a"), uniqueNode("cap-b")
	createStore(t, a+"-vdb", a, v1alpha1.DeviceClassSSD, "100Mi", "10Mi")
	createStore(t, a+"-vdc", a, v1alpha1.DeviceClassHDD, "50Mi", "0")
	createStore(t, b+"-vdb", b, v1alpha1.DeviceClassSSD, "30Mi", "0")
	name := pvName()
	_, err := s.CreateVolume(t.Context(), createRequest(name, a, 20*mi, map[string]string{ParamDeviceClass: "ssd"}))
	g.Expect(err).NotTo(HaveOccurred())

	capacityOf := func(node, class string) (int64, int64) {
		req := &csi.GetCapacityRequest{Parameters: map[string]string{}}
		if node != "" {
			req.AccessibleTopology = seg(node)
		}
		if class != "" {
			req.Parameters[ParamDeviceClass] = class
		}
		resp, err := s.GetCapacity(t.Context(), req)
		g.Expect(err).NotTo(HaveOccurred())
		return resp.GetAvailableCapacity(), resp.GetMaximumVolumeSize().GetValue()
	}
	avail, largest := capacityOf(a, "")
	g.Expect(avail).To(Equal(80*mi+50*mi), "node a: 100Mi − max(10Mi used, 20Mi reserved) on the ssd, 50Mi on the hdd")
	g.Expect(largest).To(Equal(80 * mi))
	avail, _ = capacityOf(a, "hdd")
	g.Expect(avail).To(Equal(50 * mi))
	avail, largest = capacityOf(b, "")
	g.Expect(avail).To(Equal(30 * mi))
	g.Expect(largest).To(Equal(30 * mi))

	_, err = s.GetCapacity(t.Context(), &csi.GetCapacityRequest{Parameters: map[string]string{"iops": "1000"}})
	g.Expect(status.Code(err)).To(Equal(codes.InvalidArgument))
	deleteVolume(t, s, name)
}

func TestListAndValidateVolumes(t *testing.T) {
	g := NewWithT(t)
	s, _ := newTestServer(t)
	node := uniqueNode("list")
	createStore(t, node+"-vdb", node, v1alpha1.DeviceClassSSD, "1Gi", "0")
	var names []string
	for i := range 3 {
		name := fmt.Sprintf("pvc-list-%d", i)
		_, err := s.CreateVolume(t.Context(), createRequest(name, node, mi, nil))
		g.Expect(err).NotTo(HaveOccurred())
		names = append(names, name)
	}
	createNode(t, node)
	publish(t, s, names[2], node)
	page, err := s.ListVolumes(t.Context(), &csi.ListVolumesRequest{MaxEntries: 2})
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(page.GetEntries()).To(HaveLen(2))
	g.Expect(page.GetNextToken()).To(Equal("after/pvc-list-1"))
	for _, e := range page.GetEntries() {
		g.Expect(e.GetStatus().GetPublishedNodeIds()).To(BeEmpty(), "volume %s was never published", e.GetVolume().GetVolumeId())
	}
	rest, err := s.ListVolumes(t.Context(), &csi.ListVolumesRequest{StartingToken: page.GetNextToken()})
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(rest.GetEntries()).To(HaveLen(1))
	g.Expect(rest.GetEntries()[0].GetVolume().GetVolumeId()).To(Equal("pvc-list-2"))
	g.Expect(rest.GetEntries()[0].GetStatus().GetPublishedNodeIds()).To(Equal([]string{node}))
	unpublish(t, s, names[2], node)
	rest, err = s.ListVolumes(t.Context(), &csi.ListVolumesRequest{StartingToken: page.GetNextToken()})
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(rest.GetEntries()[0].GetStatus().GetPublishedNodeIds()).To(BeEmpty(), "unpublished")
	g.Expect(rest.GetEntries()[0].GetVolume().GetAccessibleTopology()[0].GetSegments()).To(HaveKeyWithValue(driver.TopologyKeyNode, node))
	_, err = s.ListVolumes(t.Context(), &csi.ListVolumesRequest{StartingToken: "bogus"})
	g.Expect(status.Code(err)).To(Equal(codes.Aborted))

	v, err := s.ValidateVolumeCapabilities(t.Context(), &csi.ValidateVolumeCapabilitiesRequest{VolumeId: names[0],
		VolumeCapabilities: []*csi.VolumeCapability{mountCap(csi.VolumeCapability_AccessMode_SINGLE_NODE_WRITER)}})
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(v.GetConfirmed()).NotTo(BeNil())
	v, err = s.ValidateVolumeCapabilities(t.Context(), &csi.ValidateVolumeCapabilitiesRequest{VolumeId: names[0],
		VolumeCapabilities: []*csi.VolumeCapability{blockCap(csi.VolumeCapability_AccessMode_SINGLE_NODE_WRITER)}})
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(v.GetConfirmed()).To(BeNil(), "a Filesystem volume is not offered as a block device")
	g.Expect(v.GetMessage()).To(ContainSubstring("Filesystem"))
	_, err = s.ValidateVolumeCapabilities(t.Context(), &csi.ValidateVolumeCapabilitiesRequest{VolumeId: "pvc-missing",
		VolumeCapabilities: []*csi.VolumeCapability{mountCap(csi.VolumeCapability_AccessMode_SINGLE_NODE_WRITER)}})
	g.Expect(status.Code(err)).To(Equal(codes.NotFound))

	g.Expect(s.Ready(t.Context())).To(Succeed())
	for _, n := range names {
		deleteVolume(t, s, n)
	}
}

// TestConcurrentCallsAreAborted: a second call for a volume with one in flight is Aborted.
func TestConcurrentCallsAreAborted(t *testing.T) {
	s, _ := newTestServer(t)
	done, err := s.begin("pvc-x")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.DeleteVolume(t.Context(), &csi.DeleteVolumeRequest{VolumeId: "pvc-x"}); status.Code(err) != codes.Aborted {
		t.Fatalf("DeleteVolume during another call = %v, want Aborted", err)
	}
	done()
	if _, err := s.DeleteVolume(t.Context(), &csi.DeleteVolumeRequest{VolumeId: "pvc-x"}); err != nil {
		t.Fatalf("DeleteVolume after the other call = %v", err)
	}
}
