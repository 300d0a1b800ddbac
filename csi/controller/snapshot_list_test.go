package controller

import (
	"testing"

	"github.com/container-storage-interface/spec/lib/go/csi"
	. "github.com/onsi/gomega"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

func TestListSnapshots(t *testing.T) {
	g := NewWithT(t)
	s, _ := newTestServer(t)
	volA, node, _ := newSourceVolume(t, s, "snaplist", 4*mi)
	volB := pvName()
	_, err := s.CreateVolume(t.Context(), createRequest(volB, node, 8*mi, nil))
	g.Expect(err).NotTo(HaveOccurred())

	for _, sn := range []struct{ name, vol string }{
		{"snapshot-list-2", volA}, {"snapshot-list-0", volA}, {"snapshot-list-1", volB},
	} {
		_, err := s.CreateSnapshot(t.Context(), snapshotRequest(sn.name, sn.vol))
		g.Expect(err).NotTo(HaveOccurred())
	}
	// A snapshot not taken yet is not listed.
	snapshots.Hold("snapshot-list-3", true)
	defer snapshots.Hold("snapshot-list-3", false)
	g.Expect(testClient.Create(t.Context(), snapshotObject(s, "snapshot-list-3", volA))).To(Succeed())

	ids := func(resp *csi.ListSnapshotsResponse) []string {
		var out []string
		for _, e := range resp.GetEntries() {
			out = append(out, e.GetSnapshot().GetSnapshotId())
		}
		return out
	}
	page, err := s.ListSnapshots(t.Context(), &csi.ListSnapshotsRequest{MaxEntries: 2})
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(ids(page)).To(Equal([]string{"snapshot-list-0", "snapshot-list-1"}), "name order")
	g.Expect(page.GetNextToken()).To(Equal("after/snapshot-list-1"))
	first := page.GetEntries()[0].GetSnapshot()
	g.Expect(first.GetSourceVolumeId()).To(Equal(volA))
	g.Expect(first.GetSizeBytes()).To(Equal(4 * mi))
	g.Expect(first.GetReadyToUse()).To(BeTrue())
	g.Expect(first.GetCreationTime()).NotTo(BeNil())

	rest, err := s.ListSnapshots(t.Context(), &csi.ListSnapshotsRequest{StartingToken: page.GetNextToken()})
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(ids(rest)).To(Equal([]string{"snapshot-list-2"}))
	g.Expect(rest.GetNextToken()).To(BeEmpty())

	byID, err := s.ListSnapshots(t.Context(), &csi.ListSnapshotsRequest{SnapshotId: "snapshot-list-1"})
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(ids(byID)).To(Equal([]string{"snapshot-list-1"}))
	g.Expect(byID.GetEntries()[0].GetSnapshot().GetSourceVolumeId()).To(Equal(volB))

	bySource, err := s.ListSnapshots(t.Context(), &csi.ListSnapshotsRequest{SourceVolumeId: volA, MaxEntries: 1})
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(ids(bySource)).To(Equal([]string{"snapshot-list-0"}))
	bySource, err = s.ListSnapshots(t.Context(), &csi.ListSnapshotsRequest{SourceVolumeId: volA, StartingToken: bySource.GetNextToken()})
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(ids(bySource)).To(Equal([]string{"snapshot-list-2"}), "the held snapshot of volume A is not listed")

	for _, req := range []*csi.ListSnapshotsRequest{
		{SnapshotId: "snapshot-missing"}, {SnapshotId: "Not An ID"}, {SourceVolumeId: "pvc-missing"},
		{SnapshotId: "snapshot-list-1", SourceVolumeId: volA}, {SnapshotId: "snapshot-list-3"},
	} {
		resp, err := s.ListSnapshots(t.Context(), req)
		g.Expect(err).NotTo(HaveOccurred())
		g.Expect(resp.GetEntries()).To(BeEmpty(), "%v names no taken snapshot", req)
	}

	_, err = s.ListSnapshots(t.Context(), &csi.ListSnapshotsRequest{StartingToken: "bogus"})
	g.Expect(status.Code(err)).To(Equal(codes.Aborted))
	g.Expect(status.Convert(err).Message()).To(ContainSubstring("was not returned by ListSnapshots"))
	_, err = s.ListSnapshots(t.Context(), &csi.ListSnapshotsRequest{MaxEntries: -1})
	g.Expect(status.Code(err)).To(Equal(codes.InvalidArgument))

	for _, id := range []string{"snapshot-list-0", "snapshot-list-1", "snapshot-list-2"} {
		deleteSnapshot(t, s, id)
	}
	snapshots.Hold("snapshot-list-3", false)
	deleteSnapshot(t, s, "snapshot-list-3")
	deleteVolume(t, s, volA)
	deleteVolume(t, s, volB)
}
