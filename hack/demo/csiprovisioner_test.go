package main

import (
	"maps"
	"testing"

	"github.com/container-storage-interface/spec/lib/go/csi"
)

func TestProvisionerRequestForTheCobaltStorageClass(t *testing.T) {
	node := &csi.Topology{Segments: map[string]string{"topology.cobalt.io/node": "demo-node-1"}}
	c := claim{name: "data", namespace: "cobalt-demo", pvName: "pvc-demo-1", sizeBytes: 128 << 20, node: node}
	sc := map[string]string{
		"csi.storage.k8s.io/fstype":                       "ext4",
		"csi.storage.k8s.io/provisioner-secret-name":      "s",
		"csi.storage.k8s.io/provisioner-secret-namespace": "ns",
		"deviceClass": "ssd",
	}
	req, err := provisionerRequest(c, sc)
	if err != nil {
		t.Fatal(err)
	}
	if req.GetName() != "pvc-demo-1" || req.GetCapacityRange().GetRequiredBytes() != 128<<20 {
		t.Errorf("name %q, required bytes %d", req.GetName(), req.GetCapacityRange().GetRequiredBytes())
	}
	wantParams := map[string]string{
		"deviceClass":                      "ssd",
		"csi.storage.k8s.io/pvc/name":      "data",
		"csi.storage.k8s.io/pvc/namespace": "cobalt-demo",
		"csi.storage.k8s.io/pv/name":       "pvc-demo-1",
	}
	if !maps.Equal(req.GetParameters(), wantParams) {
		t.Errorf("parameters = %v, want %v (fstype and secrets are the provisioner's)", req.GetParameters(), wantParams)
	}
	caps := req.GetVolumeCapabilities()
	if len(caps) != 1 || caps[0].GetMount().GetFsType() != "ext4" || caps[0].GetAccessMode().GetMode() != csi.VolumeCapability_AccessMode_SINGLE_NODE_WRITER {
		t.Errorf("capabilities = %v, want one ext4 mount, SINGLE_NODE_WRITER", caps)
	}
	ar := req.GetAccessibilityRequirements()
	if len(ar.GetRequisite()) != 1 || ar.GetRequisite()[0].GetSegments()["topology.cobalt.io/node"] != "demo-node-1" || len(ar.GetPreferred()) != 1 {
		t.Errorf("accessibility requirements = %v, want the node as requisite and preferred", ar)
	}
	if _, ok := sc["csi.storage.k8s.io/fstype"]; !ok {
		t.Error("provisionerRequest modified the StorageClass parameters")
	}
}

func TestProvisionerRequestRefuses(t *testing.T) {
	node := &csi.Topology{Segments: map[string]string{"topology.cobalt.io/node": "n"}}
	if _, err := provisionerRequest(claim{pvName: "pvc-1", node: node}, map[string]string{"csi.storage.k8s.io/unknown": "x"}); err == nil {
		t.Error("an unknown csi.storage.k8s.io/ parameter was accepted")
	}
	if _, err := provisionerRequest(claim{pvName: "pvc-1"}, nil); err == nil {
		t.Error("a claim without node topology was accepted")
	}
}
