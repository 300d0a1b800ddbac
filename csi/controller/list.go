package controller

import (
	"context"
	"slices"
	"strings"

	"github.com/container-storage-interface/spec/lib/go/csi"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/cobaltstore/cobalt/api/v1alpha1"
	"github.com/cobaltstore/cobalt/csi/driver"
)

// tokenPrefix starts every next_token: a page token is "after/<last volume (snapshot) ID of the
// page>". The slash cannot occur in an ID, so a token ListVolumes (ListSnapshots) did not hand
// out is recognized.
const tokenPrefix = "after/"

// ListVolumes lists the Volumes created through CSI in name order, max_entries at a time (all
// when zero), each with the node it is published to (status.attachment; none when detached), so
// the external-attacher can reconcile its VolumeAttachments with what Cobalt recorded. A page
// starts after the volume its starting_token names, so volumes deleted or created between pages
// never make a page repeat an entry.
func (s *Server) ListVolumes(ctx context.Context, req *csi.ListVolumesRequest) (*csi.ListVolumesResponse, error) {
	if req.GetMaxEntries() < 0 {
		return nil, status.Errorf(codes.InvalidArgument, "max_entries is %d; it cannot be negative", req.GetMaxEntries())
	}
	after, err := parseToken(req.GetStartingToken(), "ListVolumes")
	if err != nil {
		return nil, err
	}
	var list v1alpha1.VolumeList
	if err := s.reader.List(ctx, &list, client.InNamespace(s.namespace), client.MatchingLabels{v1alpha1.LabelCSIDriver: driver.Name}); err != nil {
		return nil, internal(err, "list Volumes")
	}
	page, next := listPage(list.Items, volumeObjectName, after, int(req.GetMaxEntries()))
	resp := &csi.ListVolumesResponse{NextToken: next}
	for i := range page {
		resp.Entries = append(resp.Entries, &csi.ListVolumesResponse_Entry{Volume: s.csiVolume(&page[i], nil), Status: publishedStatus(&page[i])})
	}
	return resp, nil
}

// publishedStatus is the ListVolumes status of vol: the node it is attached to, if any.
func publishedStatus(vol *v1alpha1.Volume) *csi.ListVolumesResponse_VolumeStatus {
	st := &csi.ListVolumesResponse_VolumeStatus{}
	if att := vol.Status.Attachment; att != nil && att.Node != "" {
		st.PublishedNodeIds = []string{att.Node}
	}
	return st
}

// volumeObjectName is a Volume's name, the key listPage sorts and pages by.
func volumeObjectName(v *v1alpha1.Volume) string { return v.Name }

// parseToken returns the ID a starting_token names ("" for none), or Aborted for a token rpc
// did not hand out.
func parseToken(token, rpc string) (string, error) {
	if token == "" {
		return "", nil
	}
	after, ok := strings.CutPrefix(token, tokenPrefix)
	if !ok || !validVolumeID(after) {
		return "", status.Errorf(codes.Aborted, "starting_token %q was not returned by %s; list again from the start", token, rpc)
	}
	return after, nil
}

// listPage sorts items by name (nameOf) and returns the at most limit (all when 0) that follow
// after, and the token of the next page ("" when this is the last).
func listPage[T any](items []T, nameOf func(*T) string, after string, limit int) ([]T, string) {
	slices.SortFunc(items, func(a, b T) int { return strings.Compare(nameOf(&a), nameOf(&b)) })
	start, _ := slices.BinarySearchFunc(items, after, func(it T, name string) int {
		if nameOf(&it) <= name {
			return -1
		}
		return 1
	})
	items = items[start:]
	if limit == 0 || len(items) <= limit {
		return items, ""
	}
	return items[:limit], tokenPrefix + nameOf(&items[limit-1])
}
