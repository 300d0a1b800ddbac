package controller

import (
	"testing"

	"github.com/container-storage-interface/spec/lib/go/csi"
	. "github.com/onsi/gomega"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/cobaltstore/cobalt/api/v1alpha1"
	"github.com/cobaltstore/cobalt/csi/driver"
)

// snapshotObject is the Snapshot CreateSnapshot would create for request name of volume.
func snapshotObject(s *Server, name, volume string) *v1alpha1.Snapshot {
	return &v1alpha1.Snapshot{
		ObjectMeta: metav1.ObjectMeta{Namespace: s.namespace, Name: SnapshotName(name),
			Labels:      map[string]string{v1alpha1.LabelCSIDriver: driver.Name},
			Annotations: map[string]string{v1alpha1.AnnotationCSIName: name}},
		Spec: v1alpha1.SnapshotSpec{VolumeName: volume},
	}
}

// fromSnapshot and fromVolume set a request's content source.
func fromSnapshot(req *csi.CreateVolumeRequest, id string) *csi.CreateVolumeRequest {
	req.VolumeContentSource = &csi.VolumeContentSource{Type: &csi.VolumeContentSource_Snapshot{
		Snapshot: &csi.VolumeContentSource_SnapshotSource{SnapshotId: id}}}
	return req
}

func fromVolume(req *csi.CreateVolumeRequest, id string) *csi.CreateVolumeRequest {
	req.VolumeContentSource = &csi.VolumeContentSource{Type: &csi.VolumeContentSource_Volume{
		Volume: &csi.VolumeContentSource_VolumeSource{VolumeId: id}}}
	return req
}

// pendingVolume creates by hand a Volume made from src that no Store matches, so it stays
// uncreated: a restore or clone in progress.
func pendingVolume(t *testing.T, ns string, src v1alpha1.VolumeSource) string {
	t.Helper()
	name := pvName()
	vol := &v1alpha1.Volume{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec: v1alpha1.VolumeSpec{Size: resource.MustParse("64Mi"), Source: &src,
			StoreSelector: storeSelector("", []string{"nowhere"})},
	}
	if err := testClient.Create(t.Context(), vol); err != nil {
		t.Fatal(err)
	}
	return name
}

func expectCode(g Gomega, err error, code codes.Code, msgHas ...string) {
	g.ExpectWithOffset(1, status.Code(err)).To(Equal(code), "%v", err)
	for _, m := range msgHas {
		g.ExpectWithOffset(1, status.Convert(err).Message()).To(ContainSubstring(m))
	}
}

func TestCreateVolumeFromSnapshot(t *testing.T) {
	g := NewWithT(t)
	s, ns := newTestServer(t)
	srcVol, srcNode, srcStore := newSourceVolume(t, s, "restore", 16*mi)
	other := uniqueNode("restore-other")
	createStore(t, other+"-vdb", other, v1alpha1.DeviceClassSSD, "4Gi", "0")
	snap := snapName()
	_, err := s.CreateSnapshot(t.Context(), snapshotRequest(snap, srcVol))
	g.Expect(err).NotTo(HaveOccurred())

	// No size: the snapshot's restore size; no topology: the source's node.
	name := pvName()
	req := fromSnapshot(createRequest(name, "", 0, nil), snap)
	req.CapacityRange = nil
	resp, err := s.CreateVolume(t.Context(), req)
	g.Expect(err).NotTo(HaveOccurred())
	v := resp.GetVolume()
	g.Expect(v.GetCapacityBytes()).To(Equal(16 * mi))
	g.Expect(v.GetContentSource().GetSnapshot().GetSnapshotId()).To(Equal(snap))
	g.Expect(v.GetAccessibleTopology()).To(HaveLen(1))
	g.Expect(v.GetAccessibleTopology()[0].GetSegments()).To(Equal(map[string]string{driver.TopologyKeyNode: srcNode}))
	g.Expect(v.GetVolumeContext()).To(HaveKeyWithValue(driver.ContextStoreUUID, srcStore.Status.UUID))
	vol, err := getVolume(t, ns, name)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(vol.Spec.Source).To(Equal(&v1alpha1.VolumeSource{SnapshotName: snap}))
	g.Expect(vol.Spec.StoreName).To(Equal(srcStore.Name), "placed on the snapshot's Store")

	again, err := s.CreateVolume(t.Context(), req)
	g.Expect(err).NotTo(HaveOccurred(), "a retry with the same name and source succeeds")
	g.Expect(again.GetVolume()).To(Equal(v))
	_, err = s.CreateVolume(t.Context(), fromVolume(createRequest(name, "", 0, nil), srcVol))
	expectCode(g, err, codes.AlreadyExists, `made from snapshot "`+snap+`", the request asks for made from volume "`+srcVol+`"`)
	_, err = s.CreateVolume(t.Context(), createRequest(name, "", 0, nil))
	expectCode(g, err, codes.AlreadyExists, "the request asks for empty")

	held := snapName()
	snapshots.Hold(held, true)
	defer snapshots.Hold(held, false)
	g.Expect(testClient.Create(t.Context(), snapshotObject(s, held, srcVol))).To(Succeed())

	for _, tc := range []struct {
		name   string
		req    *csi.CreateVolumeRequest
		code   codes.Code
		msgHas []string
	}{
		{name: "requisite topology without the source's node", req: fromSnapshot(createRequest(pvName(), other, 16*mi, nil), snap),
			code: codes.ResourceExhausted, msgHas: []string{"on node " + srcNode, other}},
		{name: "smaller than the snapshot", req: fromSnapshot(createRequest(pvName(), "", 8*mi, nil), snap),
			code: codes.OutOfRange, msgHas: []string{"required 8Mi", "needs 16Mi"}},
		{name: "missing snapshot", req: fromSnapshot(createRequest(pvName(), "", 16*mi, nil), "snapshot-missing"),
			code: codes.NotFound, msgHas: []string{`snapshot "snapshot-missing" does not exist`}},
		{name: "snapshot not taken yet", req: fromSnapshot(createRequest(pvName(), "", 16*mi, nil), held),
			code: codes.FailedPrecondition, msgHas: []string{"not ready to use yet"}},
		{name: "another device class", req: fromSnapshot(createRequest(pvName(), "", 16*mi, map[string]string{ParamDeviceClass: "hdd"}), snap),
			code: codes.InvalidArgument, msgHas: []string{"device class hdd", "of class ssd"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			g := NewWithT(t)
			_, err := s.CreateVolume(t.Context(), tc.req)
			expectCode(g, err, tc.code, tc.msgHas...)
			_, err = getVolume(t, ns, tc.req.GetName())
			g.Expect(apierrors.IsNotFound(err)).To(BeTrue(), "a refused restore left its Volume: %v", err)
		})
	}

	// A snapshot a restore still needs is not deleted.
	pending := pendingVolume(t, ns, v1alpha1.VolumeSource{SnapshotName: snap})
	_, err = s.DeleteSnapshot(t.Context(), &csi.DeleteSnapshotRequest{SnapshotId: snap})
	expectCode(g, err, codes.FailedPrecondition, "Volume "+ns+"/"+pending, "snapshot "+snap)
	deleteVolume(t, s, pending)

	deleteSnapshot(t, s, snap)
	snapshots.Hold(held, false)
	deleteSnapshot(t, s, held)
	deleteVolume(t, s, name)
	deleteVolume(t, s, srcVol)
}

func TestCloneVolume(t *testing.T) {
	g := NewWithT(t)
	s, ns := newTestServer(t)
	srcVol, srcNode, srcStore := newSourceVolume(t, s, "clone", 16*mi)
	other := uniqueNode("clone-other")
	createStore(t, other+"-vdb", other, v1alpha1.DeviceClassSSD, "4Gi", "0")

	// The Pod may run on either node: the clone goes where its source is.
	name := pvName()
	req := fromVolume(createRequest(name, "", 20*mi, nil), srcVol)
	req.AccessibilityRequirements = &csi.TopologyRequirement{Requisite: []*csi.Topology{seg(other), seg(srcNode)},
		Preferred: []*csi.Topology{seg(other)}}
	resp, err := s.CreateVolume(t.Context(), req)
	g.Expect(err).NotTo(HaveOccurred())
	v := resp.GetVolume()
	g.Expect(v.GetCapacityBytes()).To(Equal(20 * mi))
	g.Expect(v.GetContentSource().GetVolume().GetVolumeId()).To(Equal(srcVol))
	g.Expect(v.GetAccessibleTopology()[0].GetSegments()).To(Equal(map[string]string{driver.TopologyKeyNode: srcNode}))
	vol, err := getVolume(t, ns, name)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(vol.Spec.Source).To(Equal(&v1alpha1.VolumeSource{VolumeName: srcVol}))
	g.Expect(vol.Spec.StoreName).To(Equal(srcStore.Name))
	g.Expect(vol.Spec.StoreSelector.MatchExpressions).To(ConsistOf(metav1.LabelSelectorRequirement{
		Key: v1alpha1.LabelNodeName, Operator: metav1.LabelSelectorOpIn, Values: []string{srcNode}}))

	again, err := s.CreateVolume(t.Context(), req)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(again.GetVolume()).To(Equal(v))

	limited := fromVolume(createRequest(pvName(), "", 0, nil), srcVol)
	limited.CapacityRange = &csi.CapacityRange{LimitBytes: 8 * mi}
	_, err = s.CreateVolume(t.Context(), limited)
	expectCode(g, err, codes.OutOfRange, "limit 8Mi", `volume "`+srcVol+`"`, "needs 16Mi")
	_, err = s.CreateVolume(t.Context(), fromVolume(createRequest(pvName(), "", 16*mi, nil), "pvc-missing"))
	expectCode(g, err, codes.NotFound, `volume "pvc-missing" does not exist`)

	// A volume a clone still needs is not deleted; the clone made already does not hold it up.
	pending := pendingVolume(t, ns, v1alpha1.VolumeSource{VolumeName: srcVol})
	_, err = s.DeleteVolume(t.Context(), &csi.DeleteVolumeRequest{VolumeId: srcVol})
	expectCode(g, err, codes.FailedPrecondition, "Volume "+ns+"/"+pending, "volume "+srcVol)
	deleteVolume(t, s, pending)
	deleteVolume(t, s, srcVol)
	_, err = getVolume(t, ns, srcVol)
	g.Expect(apierrors.IsNotFound(err)).To(BeTrue())
	deleteVolume(t, s, name)
}
