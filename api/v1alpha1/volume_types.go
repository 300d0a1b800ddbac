package v1alpha1

import (
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// VolumeMode is how a Volume is presented to its consumer.
// +kubebuilder:validation:Enum=Block;Filesystem
type VolumeMode string

const (
	// VolumeModeBlock presents a raw block device.
	VolumeModeBlock VolumeMode = "Block"
	// VolumeModeFilesystem presents a formatted filesystem.
	VolumeModeFilesystem VolumeMode = "Filesystem"
)

// VolumeSpec is the desired state of a Volume.
// +kubebuilder:validation:XValidation:rule="!has(oldSelf.storeName) || (has(self.storeName) && self.storeName == oldSelf.storeName)",message="storeName cannot change once the volume is placed",fieldPath=".storeName"
type VolumeSpec struct {
	// size is the requested capacity, for example "10Gi". It can grow (the node expands the
	// volume) but never shrink.
	// +required
	// +kubebuilder:validation:XValidation:rule="quantity(string(self)).isGreaterThan(quantity('0'))",message="size must be greater than zero"
	// +kubebuilder:validation:XValidation:rule="quantity(string(self)).compareTo(quantity(string(oldSelf))) >= 0",message="size cannot be decreased: shrinking a volume is not supported"
	Size resource.Quantity `json:"size"`

	// volumeMode is "Filesystem" (the default) or "Block". It cannot change.
	// +optional
	// +kubebuilder:default=Filesystem
	// +kubebuilder:validation:XValidation:rule="self == oldSelf",message="volumeMode is immutable"
	VolumeMode VolumeMode `json:"volumeMode,omitempty"`

	// replicas is the number of copies. Only 1 is accepted for now.
	// +optional
	// +kubebuilder:default=1
	// +kubebuilder:validation:XValidation:rule="self == 1",message="replicas must be 1: replication is not yet available"
	Replicas int32 `json:"replicas,omitempty"`

	// storeSelector restricts placement to Stores whose labels match (for example
	// storage.cobalt.io/device-class: ssd).
	// +optional
	StoreSelector *metav1.LabelSelector `json:"storeSelector,omitempty"`

	// nodeSelector restricts placement to Stores on nodes whose labels match.
	// +optional
	NodeSelector map[string]string `json:"nodeSelector,omitempty"`

	// storeName is the Store that holds the volume. The operator sets it when it places the
	// volume; a user may set it up front to pin the volume. Once set it cannot change.
	// +optional
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	StoreName string `json:"storeName,omitempty"`

	// source, when set, makes the volume start with another's content: a Snapshot's (a
	// restore) or a live Volume's (a clone), both in the Volume's namespace. The new volume
	// shares the source's data on the source's Store, so it is placed there, and it must be at
	// least as large as the source. It cannot change.
	// +optional
	// +kubebuilder:validation:XValidation:rule="self == oldSelf",message="source is immutable"
	Source *VolumeSource `json:"source,omitempty"`
}

// VolumeSource names what a Volume is created from: exactly one of snapshotName and volumeName.
// +kubebuilder:validation:XValidation:rule="has(self.snapshotName) != has(self.volumeName)",message="source needs exactly one of snapshotName and volumeName"
type VolumeSource struct {
	// snapshotName is a Snapshot to restore.
	// +optional
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	SnapshotName string `json:"snapshotName,omitempty"`

	// volumeName is a Volume to clone.
	// +optional
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	VolumeName string `json:"volumeName,omitempty"`
}

// VolumePlacement says where a Volume lives.
type VolumePlacement struct {
	// store is the Store holding the volume.
	Store string `json:"store"`
	// node is the node hosting that Store.
	Node string `json:"node"`
}

// VolumeStatus is the observed state of a Volume.
type VolumeStatus struct {
	// conditions: Ready (created on its Store at the allocated size) and Resizing (the requested
	// size is larger than the allocated one; the reason says why it has not grown yet).
	// +optional
	// +listType=map
	// +listMapKey=type
	Conditions []metav1.Condition `json:"conditions,omitempty"`

	// observedGeneration is the generation of the spec this status was computed from.
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`

	// placement is where the volume was created.
	// +optional
	Placement *VolumePlacement `json:"placement,omitempty"`

	// allocatedSize is the size the Store has allocated for the volume.
	// +optional
	AllocatedSize *resource.Quantity `json:"allocatedSize,omitempty"`
}

// Volume is a piece of capacity placed on one Store.
//
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:categories=cobalt
// +kubebuilder:printcolumn:name="Size",type=string,JSONPath=`.spec.size`
// +kubebuilder:printcolumn:name="Allocated",type=string,JSONPath=`.status.allocatedSize`
// +kubebuilder:printcolumn:name="Mode",type=string,JSONPath=`.spec.volumeMode`
// +kubebuilder:printcolumn:name="Store",type=string,JSONPath=`.spec.storeName`
// +kubebuilder:printcolumn:name="Ready",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].status`
// +kubebuilder:printcolumn:name="Reason",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].reason`
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
type Volume struct {
	metav1.TypeMeta `json:",inline"`
	// +optional
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// spec is the desired state.
	// +required
	Spec VolumeSpec `json:"spec"`

	// status is the observed state.
	// +optional
	Status VolumeStatus `json:"status,omitempty"`
}

// VolumeList is a list of Volumes.
//
// +kubebuilder:object:root=true
type VolumeList struct {
	metav1.TypeMeta `json:",inline"`
	// +optional
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []Volume `json:"items"`
}

func init() {
	SchemeBuilder.Register(&Volume{}, &VolumeList{})
}
