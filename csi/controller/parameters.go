package controller

import (
	"fmt"
	"sort"
	"strings"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"k8s.io/apimachinery/pkg/util/validation"

	"github.com/cobaltstore/cobalt/api/v1alpha1"
)

// StorageClass parameters the plugin understands.
const (
	// ParamDeviceClass restricts a volume to Stores of one device class: "ssd" or "hdd".
	ParamDeviceClass = "deviceClass"
	// ParamReplicas is the number of copies, "1" to "3" (spec.replicas of the Volume).
	ParamReplicas = "replicas"
	// ParamAllowSameNode, "true" or "false", lets a replicated volume's copies share a node
	// (spec.replicaPlacement.allowSameNode of the Volume).
	ParamAllowSameNode = "allowSameNode"

	// provisionerPrefix starts the keys the external-provisioner adds itself (with
	// --extra-create-metadata: the claim's and PV's names). They are accepted whatever they are.
	provisionerPrefix = "csi.storage.k8s.io/"
	paramPVCName      = provisionerPrefix + "pvc/name"
	paramPVCNamespace = provisionerPrefix + "pvc/namespace"
	paramPVName       = provisionerPrefix + "pv/name"
	// The keys the external-snapshotter adds with --extra-create-metadata.
	paramVolumeSnapshotName        = provisionerPrefix + "volumesnapshot/name"
	paramVolumeSnapshotNamespace   = provisionerPrefix + "volumesnapshot/namespace"
	paramVolumeSnapshotContentName = provisionerPrefix + "volumesnapshotcontent/name"
)

// supportedParameters is the list an InvalidArgument error about parameters ends with.
const supportedParameters = `supported parameters: deviceClass ("ssd" or "hdd"), replicas ("1" to "3"), allowSameNode ("true" or "false"), and the csi.storage.k8s.io/ keys the external-provisioner adds`

// volumeParameters is what a StorageClass's parameters ask of a volume.
type volumeParameters struct {
	// DeviceClass restricts placement to Stores of that class; empty: any class.
	DeviceClass v1alpha1.DeviceClass
	// Replicas is the number of copies, 1 to 3.
	Replicas int32
	// AllowSameNode lets copies share a node (replicaPlacement.allowSameNode).
	AllowSameNode bool
	// Labels and Annotations record the claim and PV the volume is for (v1alpha1.KeyPVCName...).
	Labels      map[string]string
	Annotations map[string]string
}

// parseParameters validates a request's parameters. Unknown keys and bad values are an
// InvalidArgument status naming them and listing the supported parameters.
func parseParameters(params map[string]string) (volumeParameters, error) {
	p := volumeParameters{Replicas: 1, Labels: map[string]string{}, Annotations: map[string]string{}}
	var unknown []string
	for k, v := range params {
		switch {
		case k == ParamDeviceClass:
			switch dc := v1alpha1.DeviceClass(v); dc {
			case v1alpha1.DeviceClassSSD, v1alpha1.DeviceClassHDD:
				p.DeviceClass = dc
			default:
				return volumeParameters{}, status.Errorf(codes.InvalidArgument,
					"StorageClass parameter %s is %q: it must be %q or %q", ParamDeviceClass, v, v1alpha1.DeviceClassSSD, v1alpha1.DeviceClassHDD)
			}
		case k == ParamReplicas:
			n, err := parseReplicas(v)
			if err != nil {
				return volumeParameters{}, err
			}
			p.Replicas = n
		case k == ParamAllowSameNode:
			b, err := parseAllowSameNode(v)
			if err != nil {
				return volumeParameters{}, err
			}
			p.AllowSameNode = b
		case strings.HasPrefix(k, provisionerPrefix):
			recordMetadata(p.Labels, p.Annotations, k, v)
		default:
			unknown = append(unknown, fmt.Sprintf("%q", k))
		}
	}
	if len(unknown) > 0 {
		return volumeParameters{}, status.Errorf(codes.InvalidArgument, "unsupported StorageClass %s; %s",
			listUnknown(unknown), supportedParameters)
	}
	return p, nil
}

// snapshotParameters is what a CreateSnapshot request's parameters say: only the labels and
// annotations recording the VolumeSnapshot and VolumeSnapshotContent it is for
// (v1alpha1.KeyVolumeSnapshotName...). A VolumeSnapshotClass has no parameters of its own.
type snapshotParameters struct {
	Labels      map[string]string
	Annotations map[string]string
}

// parseSnapshotParameters validates a CreateSnapshot request's parameters: the
// csi.storage.k8s.io/ keys the external-snapshotter adds are accepted, any other is an
// InvalidArgument status naming it.
func parseSnapshotParameters(params map[string]string) (snapshotParameters, error) {
	p := snapshotParameters{Labels: map[string]string{}, Annotations: map[string]string{}}
	var unknown []string
	for k, v := range params {
		if strings.HasPrefix(k, provisionerPrefix) {
			recordMetadata(p.Labels, p.Annotations, k, v)
			continue
		}
		unknown = append(unknown, fmt.Sprintf("%q", k))
	}
	if len(unknown) > 0 {
		return snapshotParameters{}, status.Errorf(codes.InvalidArgument,
			"unsupported VolumeSnapshotClass %s; Cobalt snapshots take no parameters, only the csi.storage.k8s.io/ keys the external-snapshotter adds",
			listUnknown(unknown))
	}
	return p, nil
}

// recordMetadata records a sidecar's metadata parameter k=v as an annotation, and as a label too
// when v fits a label value; keys that are not recorded are ignored.
func recordMetadata(labels, annotations map[string]string, k, v string) {
	key := metadataKey(k)
	if key == "" {
		return
	}
	annotations[key] = v
	if len(validation.IsValidLabelValue(v)) == 0 {
		labels[key] = v
	}
}

// listUnknown renders quoted unknown parameter names, sorted, after "parameter" or "parameters".
func listUnknown(unknown []string) string {
	sort.Strings(unknown)
	noun := "parameter"
	if len(unknown) > 1 {
		noun = "parameters"
	}
	return noun + " " + strings.Join(unknown, ", ")
}

// metadataKey is the label and annotation key recording an external-provisioner or
// external-snapshotter metadata parameter, or "" for a key that is not recorded.
func metadataKey(param string) string {
	switch param {
	case paramPVCName:
		return v1alpha1.KeyPVCName
	case paramPVCNamespace:
		return v1alpha1.KeyPVCNamespace
	case paramPVName:
		return v1alpha1.KeyPVName
	case paramVolumeSnapshotName:
		return v1alpha1.KeyVolumeSnapshotName
	case paramVolumeSnapshotNamespace:
		return v1alpha1.KeyVolumeSnapshotNamespace
	case paramVolumeSnapshotContentName:
		return v1alpha1.KeyVolumeSnapshotContentName
	}
	return ""
}
