package controller

import (
	"testing"

	"github.com/container-storage-interface/spec/lib/go/csi"
	. "github.com/onsi/gomega"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

func TestGetSnapshot(t *testing.T) {
	g := NewWithT(t)
	s, _ := newTestServer(t)
	vol, _, _ := newSourceVolume(t, s, "snapget", 4*mi)

	created, err := s.CreateSnapshot(t.Context(), snapshotRequest("snapshot-get-0", vol))
	g.Expect(err).NotTo(HaveOccurred())
	got, err := s.GetSnapshot(t.Context(), &csi.GetSnapshotRequest{SnapshotId: "snapshot-get-0"})
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(got.GetSnapshot().GetSnapshotId()).To(Equal("snapshot-get-0"))
	g.Expect(got.GetSnapshot().GetSourceVolumeId()).To(Equal(vol))
	g.Expect(got.GetSnapshot().GetSizeBytes()).To(Equal(4 * mi))
	g.Expect(got.GetSnapshot().GetReadyToUse()).To(BeTrue())
	g.Expect(got.GetSnapshot().GetCreationTime().AsTime()).To(BeTemporally("==", created.GetSnapshot().GetCreationTime().AsTime()))

	// A snapshot not taken yet is not found, and says why.
	snapshots.Hold("snapshot-get-1", true)
	defer snapshots.Hold("snapshot-get-1", false)
	g.Expect(testClient.Create(t.Context(), snapshotObject(s, "snapshot-get-1", vol))).To(Succeed())
	_, err = s.GetSnapshot(t.Context(), &csi.GetSnapshotRequest{SnapshotId: "snapshot-get-1"})
	g.Expect(status.Code(err)).To(Equal(codes.NotFound))
	g.Expect(status.Convert(err).Message()).To(ContainSubstring("snapshot-get-1 is not taken yet"))

	for _, tc := range []struct {
		id   string
		code codes.Code
		msg  string
	}{
		{"", codes.InvalidArgument, "snapshot_id is required"},
		{"snapshot-missing", codes.NotFound, "snapshot snapshot-missing does not exist"},
		{"Not An ID", codes.NotFound, "does not exist"},
	} {
		_, err := s.GetSnapshot(t.Context(), &csi.GetSnapshotRequest{SnapshotId: tc.id})
		g.Expect(status.Code(err)).To(Equal(tc.code), "id %q", tc.id)
		g.Expect(status.Convert(err).Message()).To(ContainSubstring(tc.msg), "id %q", tc.id)
	}

	_, err = s.DeleteSnapshot(t.Context(), &csi.DeleteSnapshotRequest{SnapshotId: "snapshot-get-0"})
	g.Expect(err).NotTo(HaveOccurred())
	_, err = s.GetSnapshot(t.Context(), &csi.GetSnapshotRequest{SnapshotId: "snapshot-get-0"})
	g.Expect(status.Code(err)).To(Equal(codes.NotFound), "a deleted snapshot")
}
