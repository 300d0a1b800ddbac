package controller

import (
	"context"

	"github.com/container-storage-interface/spec/lib/go/csi"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/cobaltstore/cobalt/api/v1alpha1"
	"github.com/cobaltstore/cobalt/csi/driver"
)

// ListSnapshots lists the snapshots created through CSI that are taken, in name order,
// max_entries at a time (all when zero), as ListVolumes pages. A snapshot not taken yet is not
// listed: CreateSnapshot has not returned it, and it has no creation time to report. snapshot_id
// and source_volume_id narrow the list; one that names nothing gives an empty list, not an error.
func (s *Server) ListSnapshots(ctx context.Context, req *csi.ListSnapshotsRequest) (*csi.ListSnapshotsResponse, error) {
	if req.GetMaxEntries() < 0 {
		return nil, status.Errorf(codes.InvalidArgument, "max_entries is %d; it cannot be negative", req.GetMaxEntries())
	}
	after, err := parseToken(req.GetStartingToken(), "ListSnapshots")
	if err != nil {
		return nil, err
	}
	var list v1alpha1.SnapshotList
	if err := s.reader.List(ctx, &list, client.InNamespace(s.namespace), client.MatchingLabels{v1alpha1.LabelCSIDriver: driver.Name}); err != nil {
		return nil, internal(err, "list Snapshots")
	}
	matching := list.Items[:0]
	for _, snap := range list.Items {
		if listedSnapshot(&snap, req) {
			matching = append(matching, snap)
		}
	}
	page, next := listPage(matching, snapshotObjectName, after, int(req.GetMaxEntries()))
	resp := &csi.ListSnapshotsResponse{NextToken: next}
	for i := range page {
		resp.Entries = append(resp.Entries, &csi.ListSnapshotsResponse_Entry{Snapshot: csiSnapshot(&page[i])})
	}
	return resp, nil
}

// listedSnapshot reports whether ListSnapshots lists snap for req: taken, and of the
// snapshot_id and source_volume_id the request names, if any.
func listedSnapshot(snap *v1alpha1.Snapshot, req *csi.ListSnapshotsRequest) bool {
	switch {
	case !isTaken(snap):
		return false
	case req.GetSnapshotId() != "" && snap.Name != req.GetSnapshotId():
		return false
	case req.GetSourceVolumeId() != "" && snap.Spec.VolumeName != req.GetSourceVolumeId():
		return false
	}
	return true
}

// snapshotObjectName is a Snapshot's name, the key listPage sorts and pages by.
func snapshotObjectName(s *v1alpha1.Snapshot) string { return s.Name }
