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

// tokenPrefix starts every next_token: a page token is "after/<last volume ID of the page>". The
// slash cannot occur in a volume ID, so a token ListVolumes did not hand out is recognized.
const tokenPrefix = "after/"

// ListVolumes lists the Volumes created through CSI in name order, max_entries at a time (all
// when zero). A page starts after the volume its starting_token names, so volumes deleted or
// created between pages never make a page repeat an entry.
func (s *Server) ListVolumes(ctx context.Context, req *csi.ListVolumesRequest) (*csi.ListVolumesResponse, error) {
	if req.GetMaxEntries() < 0 {
		return nil, status.Errorf(codes.InvalidArgument, "max_entries is %d; it cannot be negative", req.GetMaxEntries())
	}
	after, err := parseToken(req.GetStartingToken())
	if err != nil {
		return nil, err
	}
	var list v1alpha1.VolumeList
	if err := s.reader.List(ctx, &list, client.InNamespace(s.namespace), client.MatchingLabels{v1alpha1.LabelCSIDriver: driver.Name}); err != nil {
		return nil, internal(err, "list Volumes")
	}
	page, next := listPage(list.Items, after, int(req.GetMaxEntries()))
	resp := &csi.ListVolumesResponse{NextToken: next}
	for i := range page {
		resp.Entries = append(resp.Entries, &csi.ListVolumesResponse_Entry{Volume: s.csiVolume(&page[i], nil)})
	}
	return resp, nil
}

// parseToken returns the volume ID a starting_token names ("" for none), or Aborted for a token
// ListVolumes did not hand out.
func parseToken(token string) (string, error) {
	if token == "" {
		return "", nil
	}
	after, ok := strings.CutPrefix(token, tokenPrefix)
	if !ok || !validVolumeID(after) {
		return "", status.Errorf(codes.Aborted, "starting_token %q was not returned by ListVolumes; list again from the start", token)
	}
	return after, nil
}

// listPage sorts vols by name and returns the at most limit (all when 0) that follow after, and the
// token of the next page ("" when this is the last).
func listPage(vols []v1alpha1.Volume, after string, limit int) ([]v1alpha1.Volume, string) {
	slices.SortFunc(vols, func(a, b v1alpha1.Volume) int { return strings.Compare(a.Name, b.Name) })
	start, _ := slices.BinarySearchFunc(vols, after, func(v v1alpha1.Volume, name string) int {
		if v.Name <= name {
			return -1
		}
		return 1
	})
	vols = vols[start:]
	if limit == 0 || len(vols) <= limit {
		return vols, ""
	}
	return vols[:limit], tokenPrefix + vols[limit-1].Name
}
