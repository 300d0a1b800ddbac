package main

import (
	"fmt"
	"maps"
	"strings"

	"github.com/container-storage-interface/spec/lib/go/csi"
)

// Keys of StorageClass parameters and CreateVolume parameters that belong to the
// external-provisioner rather than to the driver.
const (
	provisionerPrefix = "csi.storage.k8s.io/"
	paramFsType       = provisionerPrefix + "fstype"
	paramPVCName      = provisionerPrefix + "pvc/name"
	paramPVCNamespace = provisionerPrefix + "pvc/namespace"
	paramPVName       = provisionerPrefix + "pv/name"
)

// claim is the PersistentVolumeClaim the demo provisions for, as csi-provisioner would see it
// once the scheduler has picked the node (WaitForFirstConsumer).
type claim struct {
	name, namespace string
	pvName          string // the PersistentVolume's name, also the CreateVolume request name
	sizeBytes       int64
	node            *csi.Topology // the picked node's topology, from the node plugin's NodeGetInfo
}

// provisionerRequest builds the CreateVolume request csi-provisioner (with
// --extra-create-metadata and --strict-topology) sends for c in a StorageClass with parameters
// scParams: its own csi.storage.k8s.io/ keys are taken out (fstype goes into the volume
// capability), the claim's and PV's names are added, the access mode of a ReadWriteOnce claim is
// SINGLE_NODE_WRITER, and the volume must be reachable from the picked node.
func provisionerRequest(c claim, scParams map[string]string) (*csi.CreateVolumeRequest, error) {
	params := map[string]string{}
	fsType := ""
	for k, v := range scParams {
		switch {
		case k == paramFsType:
			fsType = v
		case strings.HasPrefix(k, provisionerPrefix) && (strings.HasSuffix(k, "-secret-name") || strings.HasSuffix(k, "-secret-namespace")):
			// Secrets are passed in the request's secrets field, which Cobalt does not use.
		case strings.HasPrefix(k, provisionerPrefix):
			return nil, fmt.Errorf("StorageClass parameter %q: csi-provisioner refuses unknown %s keys", k, provisionerPrefix)
		default:
			params[k] = v
		}
	}
	maps.Copy(params, map[string]string{paramPVCName: c.name, paramPVCNamespace: c.namespace, paramPVName: c.pvName})
	if c.node == nil {
		return nil, fmt.Errorf("claim %s/%s: no node topology to provision for", c.namespace, c.name)
	}
	return &csi.CreateVolumeRequest{
		Name:                      c.pvName,
		CapacityRange:             &csi.CapacityRange{RequiredBytes: c.sizeBytes},
		VolumeCapabilities:        []*csi.VolumeCapability{mountCapability(fsType)},
		Parameters:                params,
		AccessibilityRequirements: &csi.TopologyRequirement{Requisite: []*csi.Topology{c.node}, Preferred: []*csi.Topology{c.node}},
	}, nil
}

// mountCapability is a ReadWriteOnce file-system volume's capability.
func mountCapability(fsType string) *csi.VolumeCapability {
	return &csi.VolumeCapability{
		AccessType: &csi.VolumeCapability_Mount{Mount: &csi.VolumeCapability_MountVolume{FsType: fsType}},
		AccessMode: &csi.VolumeCapability_AccessMode{Mode: csi.VolumeCapability_AccessMode_SINGLE_NODE_WRITER},
	}
}
