package v1alpha1

import (
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// SnapshotSpec is the desired state of a Snapshot.
type SnapshotSpec struct {
	// volumeName is the Volume (in the Snapshot's namespace) to take the snapshot of. The
	// snapshot is taken once, on the Store that holds the Volume, and holds every write the
	// Volume had flushed when it was taken. It cannot change.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:XValidation:rule="self == oldSelf",message="volumeName is immutable: a snapshot is of one volume"
	VolumeName string `json:"volumeName"`
}

// SnapshotStatus is the observed state of a Snapshot.
type SnapshotStatus struct {
	// conditions: Ready (taken on the source's Store; the reason says what it waits for, or
	// why it failed).
	// +optional
	// +listType=map
	// +listMapKey=type
	Conditions []metav1.Condition `json:"conditions,omitempty"`

	// observedGeneration is the generation of the spec this status was computed from.
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`

	// readyToUse is true once the snapshot is taken: a Volume can be restored from it.
	// +optional
	ReadyToUse bool `json:"readyToUse,omitempty"`

	// placement is the Store (and its node) that holds the snapshot: the source Volume's.
	// Restores from it are placed there.
	// +optional
	Placement *VolumePlacement `json:"placement,omitempty"`

	// sourceVolumeID is the source Volume's identity on its node (Volume.NodeVolumeID). It
	// stays when the source Volume is deleted: the snapshot keeps the shared data alive.
	// +optional
	SourceVolumeID string `json:"sourceVolumeID,omitempty"`

	// creationTime is when the node took the snapshot.
	// +optional
	CreationTime *metav1.Time `json:"creationTime,omitempty"`

	// restoreSize is the source Volume's size when the snapshot was taken: the smallest Volume
	// that can be restored from it.
	// +optional
	RestoreSize *resource.Quantity `json:"restoreSize,omitempty"`

	// referencedSize is the space the snapshot's data occupies on the Store, shared or not.
	// +optional
	ReferencedSize *resource.Quantity `json:"referencedSize,omitempty"`

	// exclusiveSize is the space only this snapshot references: what deleting it frees. It
	// grows as the source Volume (or a clone) overwrites data the snapshot shares.
	// +optional
	ExclusiveSize *resource.Quantity `json:"exclusiveSize,omitempty"`
}

// Snapshot is a point-in-time, read-only copy of a Volume, sharing its data on the Volume's
// Store until either is overwritten. A Volume restored from it (VolumeSpec.Source) starts with
// its content.
//
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:categories=cobalt,shortName=csnap
// +kubebuilder:printcolumn:name="Volume",type=string,JSONPath=`.spec.volumeName`
// +kubebuilder:printcolumn:name="RestoreSize",type=string,JSONPath=`.status.restoreSize`
// +kubebuilder:printcolumn:name="Exclusive",type=string,JSONPath=`.status.exclusiveSize`
// +kubebuilder:printcolumn:name="Store",type=string,JSONPath=`.status.placement.store`
// +kubebuilder:printcolumn:name="ReadyToUse",type=boolean,JSONPath=`.status.readyToUse`
// +kubebuilder:printcolumn:name="Reason",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].reason`
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
type Snapshot struct {
	metav1.TypeMeta `json:",inline"`
	// +optional
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// spec is the desired state.
	// +required
	Spec SnapshotSpec `json:"spec"`

	// status is the observed state.
	// +optional
	Status SnapshotStatus `json:"status,omitempty"`
}

// SnapshotList is a list of Snapshots.
//
// +kubebuilder:object:root=true
type SnapshotList struct {
	metav1.TypeMeta `json:",inline"`
	// +optional
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []Snapshot `json:"items"`
}

// NodeSnapshotID is the snapshot's identity on the node that holds it: the Snapshot object's
// UID, never its name (as NodeVolumeID).
func (s *Snapshot) NodeSnapshotID() string { return string(s.UID) }

func init() {
	SchemeBuilder.Register(&Snapshot{}, &SnapshotList{})
}
