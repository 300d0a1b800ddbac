package controller

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/container-storage-interface/spec/lib/go/csi"
	. "github.com/onsi/gomega"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/uuid"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/cobaltstore/cobalt/api/v1alpha1"
	"github.com/cobaltstore/cobalt/csi/driver"
)

// snapshotRequest is what the external-snapshotter sends with --extra-create-metadata.
func snapshotRequest(name, volumeID string) *csi.CreateSnapshotRequest {
	return &csi.CreateSnapshotRequest{
		Name: name, SourceVolumeId: volumeID,
		Parameters: map[string]string{
			"csi.storage.k8s.io/volumesnapshot/name":        "backup-" + name,
			"csi.storage.k8s.io/volumesnapshot/namespace":   "apps",
			"csi.storage.k8s.io/volumesnapshotcontent/name": "snapcontent-" + name,
		},
	}
}

func snapName() string { return "snapshot-" + string(uuid.NewUUID()) }

func getSnapshot(t *testing.T, ns, name string) (*v1alpha1.Snapshot, error) {
	snap := &v1alpha1.Snapshot{}
	return snap, testClient.Get(t.Context(), client.ObjectKey{Namespace: ns, Name: name}, snap)
}

func deleteSnapshot(t *testing.T, s *Server, id string) {
	t.Helper()
	if _, err := s.DeleteSnapshot(t.Context(), &csi.DeleteSnapshotRequest{SnapshotId: id}); err != nil {
		t.Fatalf("DeleteSnapshot(%s): %v", id, err)
	}
}

// newSourceVolume creates a Store on a new node and a volume of size bytes on it through s.
func newSourceVolume(t *testing.T, s *Server, prefix string, size int64) (volumeID, node string, store *v1alpha1.Store) {
	t.Helper()
	node = uniqueNode(prefix)
	store = createStore(t, node+"-vdb", node, v1alpha1.DeviceClassSSD, "1Gi", "0")
	volumeID = pvName()
	if _, err := s.CreateVolume(t.Context(), createRequest(volumeID, node, size, nil)); err != nil {
		t.Fatalf("CreateVolume(%s): %v", volumeID, err)
	}
	return volumeID, node, store
}

func TestCreateSnapshotIsTakenAndIdempotent(t *testing.T) {
	g := NewWithT(t)
	s, ns := newTestServer(t)
	volID, node, store := newSourceVolume(t, s, "snap", 16*mi)

	name := snapName()
	start := time.Now().Truncate(time.Second)
	resp, err := s.CreateSnapshot(t.Context(), snapshotRequest(name, volID))
	g.Expect(err).NotTo(HaveOccurred())
	got := resp.GetSnapshot()
	g.Expect(got.GetSnapshotId()).To(Equal(name), "a snapshot-<uid> name is the Snapshot's name as is")
	g.Expect(got.GetSourceVolumeId()).To(Equal(volID))
	g.Expect(got.GetSizeBytes()).To(Equal(16*mi), "the restore size: the source's size")
	g.Expect(got.GetReadyToUse()).To(BeTrue(), "CreateSnapshot returns once the snapshot is taken")
	g.Expect(got.GetCreationTime().AsTime()).To(BeTemporally(">=", start))

	snap, err := getSnapshot(t, ns, name)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(snap.Spec.VolumeName).To(Equal(volID))
	g.Expect(snap.Status.Placement).To(Equal(&v1alpha1.VolumePlacement{Store: store.Name, Node: node}))
	g.Expect(snap.Labels).To(HaveKeyWithValue(v1alpha1.LabelCSIDriver, driver.Name))
	g.Expect(snap.Labels).To(HaveKeyWithValue(v1alpha1.KeyVolumeSnapshotName, "backup-"+name))
	g.Expect(snap.Labels).To(HaveKeyWithValue(v1alpha1.KeyVolumeSnapshotNamespace, "apps"))
	g.Expect(snap.Labels).To(HaveKeyWithValue(v1alpha1.KeyVolumeSnapshotContentName, "snapcontent-"+name))
	g.Expect(snap.Annotations).To(HaveKeyWithValue(v1alpha1.KeyVolumeSnapshotContentName, "snapcontent-"+name))
	g.Expect(snap.Annotations).To(HaveKeyWithValue(v1alpha1.AnnotationCSIName, name))

	again, err := s.CreateSnapshot(t.Context(), snapshotRequest(name, volID))
	g.Expect(err).NotTo(HaveOccurred(), "a retry with the same name and source succeeds")
	g.Expect(again.GetSnapshot()).To(Equal(got), "and returns the same snapshot")

	otherVol := pvName()
	_, err = s.CreateVolume(t.Context(), createRequest(otherVol, node, 4*mi, nil))
	g.Expect(err).NotTo(HaveOccurred())
	_, err = s.CreateSnapshot(t.Context(), snapshotRequest(name, otherVol))
	g.Expect(status.Code(err)).To(Equal(codes.AlreadyExists), "same name, other source: %v", err)
	g.Expect(status.Convert(err).Message()).To(ContainSubstring(`of volume "` + volID + `"; the request asks for one of volume "` + otherVol + `"`))

	// A long request name is hashed into a valid object name, and kept in the annotation.
	long := "CreateSnapshot-snapshot-maxlen-" + strings.Repeat("x", 97)
	resp, err = s.CreateSnapshot(t.Context(), snapshotRequest(long, volID))
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(resp.GetSnapshot().GetSnapshotId()).To(Equal(SnapshotName(long)))
	g.Expect(len(resp.GetSnapshot().GetSnapshotId())).To(BeNumerically("<=", 63))

	// A Snapshot that is not this request's (here: made by hand) is never handed out.
	odd := "Odd_Snap"
	g.Expect(testClient.Create(t.Context(), &v1alpha1.Snapshot{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: SnapshotName(odd)},
		Spec:       v1alpha1.SnapshotSpec{VolumeName: volID},
	})).To(Succeed())
	_, err = s.CreateSnapshot(t.Context(), snapshotRequest(odd, volID))
	g.Expect(status.Code(err)).To(Equal(codes.AlreadyExists), "%v", err)
	g.Expect(err.Error()).To(ContainSubstring("was not created through CSI"))

	// The snapshot outlives its source: a retry after the source is deleted still succeeds.
	deleteVolume(t, s, volID)
	again, err = s.CreateSnapshot(t.Context(), snapshotRequest(name, volID))
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(again.GetSnapshot()).To(Equal(got))

	for _, id := range []string{name, SnapshotName(long), SnapshotName(odd)} {
		deleteSnapshot(t, s, id)
	}
	deleteVolume(t, s, otherVol)
}

func TestCreateSnapshotRefusesBadRequests(t *testing.T) {
	s, ns := newTestServer(t)
	volID, _, _ := newSourceVolume(t, s, "snapbad", 4*mi)
	unknownParam := snapshotRequest(snapName(), volID)
	unknownParam.Parameters["compress"] = "true"
	for _, tc := range []struct {
		name string
		req  *csi.CreateSnapshotRequest
		code codes.Code
		msg  string
	}{
		{name: "no name", req: &csi.CreateSnapshotRequest{SourceVolumeId: volID}, code: codes.InvalidArgument, msg: "name is required"},
		{name: "no source", req: &csi.CreateSnapshotRequest{Name: snapName()}, code: codes.InvalidArgument, msg: "source_volume_id is required"},
		{name: "unknown parameter", req: unknownParam, code: codes.InvalidArgument, msg: `unsupported VolumeSnapshotClass parameter "compress"`},
		{name: "missing source", req: snapshotRequest(snapName(), "pvc-missing"), code: codes.NotFound,
			msg: `source volume "pvc-missing" does not exist in namespace ` + ns},
		{name: "source ID that names no object", req: snapshotRequest(snapName(), "Not A Volume"), code: codes.NotFound,
			msg: `source volume "Not A Volume" does not exist`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := s.CreateSnapshot(t.Context(), tc.req)
			if status.Code(err) != tc.code || !strings.Contains(status.Convert(err).Message(), tc.msg) {
				t.Fatalf("CreateSnapshot = %v, want %v containing %q", err, tc.code, tc.msg)
			}
			var list v1alpha1.SnapshotList
			if err := testClient.List(t.Context(), &list, client.InNamespace(ns)); err != nil || len(list.Items) != 0 {
				t.Fatalf("a refused request left Snapshots: %d, %v", len(list.Items), err)
			}
		})
	}
	deleteVolume(t, s, volID)
}

// TestCreateSnapshotFailure: a snapshot the node fails to take is answered with the node's
// message and a code that says what failed, and leaves no Snapshot; the retry after the node
// heals takes it.
func TestCreateSnapshotFailure(t *testing.T) {
	g := NewWithT(t)
	s, ns := newTestServer(t)
	volID, _, _ := newSourceVolume(t, s, "snapfail", 4*mi)
	name := snapName()

	for _, tc := range []struct {
		message string
		code    codes.Code
	}{
		{message: "take snapshot on store x: insufficient capacity on store: rpc error: code = ResourceExhausted desc = store full", code: codes.ResourceExhausted},
		{message: "take snapshot on store x: connection refused", code: codes.Internal},
	} {
		snapshots.Fail(volID, tc.message)
		_, err := s.CreateSnapshot(t.Context(), snapshotRequest(name, volID))
		g.Expect(status.Code(err)).To(Equal(tc.code), "%v", err)
		g.Expect(status.Convert(err).Message()).To(ContainSubstring(tc.message))
		_, err = getSnapshot(t, ns, name)
		g.Expect(apierrors.IsNotFound(err)).To(BeTrue(), "the failed Snapshot was deleted: %v", err)
	}

	snapshots.Fail(volID, "")
	resp, err := s.CreateSnapshot(t.Context(), snapshotRequest(name, volID))
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(resp.GetSnapshot().GetReadyToUse()).To(BeTrue())
	deleteSnapshot(t, s, name)
	deleteVolume(t, s, volID)
}

// TestCreateSnapshotRetryAfterTimeout: a snapshot not taken by the call's deadline is
// DeadlineExceeded saying what the operator reports; the Snapshot stays, and the retry returns it.
func TestCreateSnapshotRetryAfterTimeout(t *testing.T) {
	g := NewWithT(t)
	s, ns := newTestServer(t)
	volID, _, _ := newSourceVolume(t, s, "snapslow", 4*mi)
	name := snapName()
	snapshots.Hold(name, true)

	ctx, cancel := context.WithTimeout(t.Context(), time.Second)
	defer cancel()
	_, err := s.CreateSnapshot(ctx, snapshotRequest(name, volID))
	g.Expect(status.Code(err)).To(Equal(codes.DeadlineExceeded), "%v", err)
	g.Expect(status.Convert(err).Message()).To(ContainSubstring("the operator has not reported on it yet"))
	first, err := getSnapshot(t, ns, name)
	g.Expect(err).NotTo(HaveOccurred(), "the Snapshot is kept for the retry")

	snapshots.Hold(name, false)
	_, err = s.CreateSnapshot(t.Context(), snapshotRequest(name, volID))
	g.Expect(err).NotTo(HaveOccurred())
	again, err := getSnapshot(t, ns, name)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(again.UID).To(Equal(first.UID), "the retry took the first attempt's Snapshot")
	deleteSnapshot(t, s, name)
	deleteVolume(t, s, volID)
}

// TestDeleteSnapshotWaitsUntilFreed: DeleteSnapshot returns only once the Snapshot is gone; while
// its finalizer holds it, it times out, and the retry succeeds. Unknown IDs are deleted already.
func TestDeleteSnapshotWaitsUntilFreed(t *testing.T) {
	g := NewWithT(t)
	s, ns := newTestServer(t)
	volID, _, _ := newSourceVolume(t, s, "snapdel", 4*mi)
	name := snapName()
	_, err := s.CreateSnapshot(t.Context(), snapshotRequest(name, volID))
	g.Expect(err).NotTo(HaveOccurred())

	snapshots.Hold(name, true)
	ctx, cancel := context.WithTimeout(t.Context(), time.Second)
	defer cancel()
	_, err = s.DeleteSnapshot(ctx, &csi.DeleteSnapshotRequest{SnapshotId: name})
	g.Expect(status.Code(err)).To(Equal(codes.DeadlineExceeded), "%v", err)
	g.Expect(status.Convert(err).Message()).To(ContainSubstring("Ready=True, " + v1alpha1.ReasonTaken))
	_, err = getSnapshot(t, ns, name)
	g.Expect(err).NotTo(HaveOccurred(), "held by its finalizer")

	snapshots.Hold(name, false)
	deleteSnapshot(t, s, name)
	_, err = getSnapshot(t, ns, name)
	g.Expect(apierrors.IsNotFound(err)).To(BeTrue(), "DeleteSnapshot returned before the Snapshot was gone: %v", err)

	deleteSnapshot(t, s, name) // a missing snapshot is deleted already
	deleteSnapshot(t, s, "Not A Snapshot ID")
	_, err = s.DeleteSnapshot(t.Context(), &csi.DeleteSnapshotRequest{})
	g.Expect(status.Code(err)).To(Equal(codes.InvalidArgument))
	deleteVolume(t, s, volID)
}

// TestConcurrentSnapshotCallsAreAborted: a second call for a snapshot with one in flight is
// Aborted; a volume of the same name is another object and is not held up.
func TestConcurrentSnapshotCallsAreAborted(t *testing.T) {
	s, _ := newTestServer(t)
	done, err := s.beginSnapshot("snap-x")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.DeleteSnapshot(t.Context(), &csi.DeleteSnapshotRequest{SnapshotId: "snap-x"}); status.Code(err) != codes.Aborted {
		t.Fatalf("DeleteSnapshot during another call = %v, want Aborted", err)
	}
	if _, err := s.DeleteVolume(t.Context(), &csi.DeleteVolumeRequest{VolumeId: "snap-x"}); err != nil {
		t.Fatalf("DeleteVolume of a volume named like a busy snapshot = %v", err)
	}
	done()
	if _, err := s.DeleteSnapshot(t.Context(), &csi.DeleteSnapshotRequest{SnapshotId: "snap-x"}); err != nil {
		t.Fatalf("DeleteSnapshot after the other call = %v", err)
	}
}
