package controller

import (
	"strings"
	"testing"

	"github.com/container-storage-interface/spec/lib/go/csi"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/cobaltstore/cobalt/api/v1alpha1"
)

func mountCap(m csi.VolumeCapability_AccessMode_Mode) *csi.VolumeCapability {
	return &csi.VolumeCapability{AccessType: &csi.VolumeCapability_Mount{Mount: &csi.VolumeCapability_MountVolume{}},
		AccessMode: &csi.VolumeCapability_AccessMode{Mode: m}}
}

func blockCap(m csi.VolumeCapability_AccessMode_Mode) *csi.VolumeCapability {
	return &csi.VolumeCapability{AccessType: &csi.VolumeCapability_Block{Block: &csi.VolumeCapability_BlockVolume{}},
		AccessMode: &csi.VolumeCapability_AccessMode{Mode: m}}
}

func TestVolumeModeFor(t *testing.T) {
	const (
		rwo  = csi.VolumeCapability_AccessMode_SINGLE_NODE_WRITER
		rwop = csi.VolumeCapability_AccessMode_SINGLE_NODE_SINGLE_WRITER
		rwx  = csi.VolumeCapability_AccessMode_MULTI_NODE_MULTI_WRITER
	)
	for _, tc := range []struct {
		name string
		caps []*csi.VolumeCapability
		want v1alpha1.VolumeMode
		msg  string // of the InvalidArgument error
	}{
		{name: "mount", caps: []*csi.VolumeCapability{mountCap(rwo)}, want: v1alpha1.VolumeModeFilesystem},
		{name: "block", caps: []*csi.VolumeCapability{blockCap(rwop)}, want: v1alpha1.VolumeModeBlock},
		{name: "two mount modes", caps: []*csi.VolumeCapability{mountCap(rwo), mountCap(csi.VolumeCapability_AccessMode_SINGLE_NODE_READER_ONLY)},
			want: v1alpha1.VolumeModeFilesystem},
		{name: "none", msg: "volume_capabilities are required"},
		{name: "mount and block", caps: []*csi.VolumeCapability{mountCap(rwo), blockCap(rwo)}, msg: "both mount and block"},
		{name: "multi-node", caps: []*csi.VolumeCapability{mountCap(rwx)}, msg: "a Cobalt volume lives on one node"},
		{name: "no access type", caps: []*csi.VolumeCapability{{AccessMode: &csi.VolumeCapability_AccessMode{Mode: rwo}}}, msg: "no access type"},
		{name: "no access mode", caps: []*csi.VolumeCapability{{AccessType: &csi.VolumeCapability_Block{Block: &csi.VolumeCapability_BlockVolume{}}}},
			msg: "no access mode"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := volumeModeFor(tc.caps)
			if tc.msg != "" {
				if status.Code(err) != codes.InvalidArgument || !strings.Contains(status.Convert(err).Message(), tc.msg) {
					t.Fatalf("volumeModeFor = %v, want InvalidArgument containing %q", err, tc.msg)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Fatalf("volumeModeFor = %q, %v; want %q", got, err, tc.want)
			}
		})
	}
}

func TestControllerGetCapabilities(t *testing.T) {
	resp, err := (&Server{}).ControllerGetCapabilities(t.Context(), &csi.ControllerGetCapabilitiesRequest{})
	if err != nil {
		t.Fatal(err)
	}
	got := map[csi.ControllerServiceCapability_RPC_Type]bool{}
	for _, c := range resp.GetCapabilities() {
		got[c.GetRpc().GetType()] = true
	}
	for _, want := range []csi.ControllerServiceCapability_RPC_Type{
		csi.ControllerServiceCapability_RPC_CREATE_DELETE_VOLUME,
		csi.ControllerServiceCapability_RPC_CREATE_DELETE_SNAPSHOT,
		csi.ControllerServiceCapability_RPC_LIST_SNAPSHOTS,
		csi.ControllerServiceCapability_RPC_GET_SNAPSHOT,
		csi.ControllerServiceCapability_RPC_CLONE_VOLUME,
		csi.ControllerServiceCapability_RPC_PUBLISH_UNPUBLISH_VOLUME,
		csi.ControllerServiceCapability_RPC_LIST_VOLUMES,
		csi.ControllerServiceCapability_RPC_LIST_VOLUMES_PUBLISHED_NODES,
	} {
		if !got[want] {
			t.Errorf("ControllerGetCapabilities lacks %s", want)
		}
	}
	if got[csi.ControllerServiceCapability_RPC_PUBLISH_READONLY] {
		t.Error("PUBLISH_READONLY is offered, but ControllerPublishVolume ignores readonly")
	}
}
