package controller

import (
	"context"

	"github.com/container-storage-interface/spec/lib/go/csi"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/wrapperspb"
	"k8s.io/apimachinery/pkg/api/meta"

	"github.com/cobaltstore/cobalt/api/v1alpha1"
	"github.com/cobaltstore/cobalt/controllers"
	"github.com/cobaltstore/cobalt/csi/driver"
)

// GetCapacity reports the free space of the Stores that would take a new volume (Schedulable:
// Ready, admin state "in", engine not Failed) on the node of the topology segment (every node
// without one), of the StorageClass's deviceClass (any without one). maximum_volume_size is the
// largest one Store can still hold: a volume lives on one Store.
func (s *Server) GetCapacity(ctx context.Context, req *csi.GetCapacityRequest) (*csi.GetCapacityResponse, error) {
	for _, c := range req.GetVolumeCapabilities() {
		if unsupportedCapability(c) != "" {
			return &csi.GetCapacityResponse{}, nil
		}
	}
	params, err := parseParameters(req.GetParameters())
	if err != nil {
		return nil, err
	}
	node := ""
	if seg := req.GetAccessibleTopology().GetSegments(); len(seg) > 0 {
		n, ok := seg[driver.TopologyKeyNode]
		if !ok || n == "" || len(seg) > 1 {
			return nil, status.Errorf(codes.InvalidArgument, "accessible_topology %v: the only topology key of %s is %s", seg, driver.Name, driver.TopologyKeyNode)
		}
		node = n
	}
	var stores v1alpha1.StoreList
	if err := s.reader.List(ctx, &stores); err != nil {
		return nil, internal(err, "list Stores")
	}
	var vols v1alpha1.VolumeList
	if err := s.reader.List(ctx, &vols); err != nil {
		return nil, internal(err, "list Volumes")
	}
	c := freeCapacity(stores.Items, vols.Items, node, params.DeviceClass)
	return &csi.GetCapacityResponse{
		AvailableCapacity: c.Available,
		MaximumVolumeSize: wrapperspb.Int64(c.MaxVolume),
		MinimumVolumeSize: wrapperspb.Int64(SizeGranularity),
	}, nil
}

// capacity is what GetCapacity reports.
type capacity struct {
	// Available is the sum of the free space of the Stores counted.
	Available int64
	// MaxVolume is the largest volume one of them can hold, in whole MiB.
	MaxVolume int64
}

// freeCapacity counts the free space of the Schedulable Stores on node (any when "") of
// deviceClass (any when ""), with vols (of every namespace) reserving space on every Store they
// have a copy on (PlacedStores): free = capacity − max(used, reserved), as placement counts it.
func freeCapacity(stores []v1alpha1.Store, vols []v1alpha1.Volume, node string, deviceClass v1alpha1.DeviceClass) capacity {
	reserved := map[string]int64{}
	for i := range vols {
		// Every copy of a replicated Volume holds as much on its Store as the first.
		for _, name := range vols[i].PlacedStores() {
			reserved[name] += controllers.ReservedBytes(&vols[i])
		}
	}
	var c capacity
	for i := range stores {
		st := &stores[i]
		switch {
		case !meta.IsStatusConditionTrue(st.Status.Conditions, v1alpha1.ConditionSchedulable),
			node != "" && st.Spec.NodeName != node,
			deviceClass != "" && st.Labels[v1alpha1.LabelDeviceClass] != string(deviceClass):
			continue
		}
		free := max(controllers.StoreFreeBytes(st, reserved[st.Name]), 0)
		c.Available += free
		c.MaxVolume = max(c.MaxVolume, free/SizeGranularity*SizeGranularity)
	}
	return c
}
