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
// +kubebuilder:validation:XValidation:rule="!has(oldSelf.storeName) || (has(self.storeName) && (self.storeName == oldSelf.storeName || (has(oldSelf.replicaStoreNames) && has(self.replicaStoreNames) && self.replicaStoreNames == oldSelf.replicaStoreNames)))",message="storeName cannot change once the volume is placed, except that the first copy of a replicated volume may move to another Store while the other copies stay",fieldPath=".storeName"
// +kubebuilder:validation:XValidation:rule="!has(oldSelf.replicaStoreNames) || (has(self.replicaStoreNames) && (self.replicaStoreNames == oldSelf.replicaStoreNames || (has(self.storeName) && has(oldSelf.storeName) && self.storeName == oldSelf.storeName && size(self.replicaStoreNames) == size(oldSelf.replicaStoreNames) && self.replicaStoreNames.filter(n, !(n in oldSelf.replicaStoreNames)).size() == 1)))",message="replicaStoreNames cannot change once the copies are placed, except that one copy moves to another Store per update (storeName unchanged)",fieldPath=".replicaStoreNames"
// +kubebuilder:validation:XValidation:rule="!has(self.replicaStoreNames) || size(self.replicaStoreNames) == (has(self.replicas) ? self.replicas : 1) - 1",message="replicaStoreNames names exactly replicas - 1 Stores (storeName holds the first copy)",fieldPath=".replicaStoreNames"
// +kubebuilder:validation:XValidation:rule="!has(self.replicaStoreNames) || has(self.storeName)",message="replicaStoreNames needs storeName, the Store of the first copy",fieldPath=".replicaStoreNames"
// +kubebuilder:validation:XValidation:rule="!has(self.replicaStoreNames) || !has(self.storeName) || !(self.storeName in self.replicaStoreNames)",message="two copies can never share a Store: replicaStoreNames must not repeat storeName",fieldPath=".replicaStoreNames"
// +kubebuilder:validation:XValidation:rule="!has(self.source) || !has(self.replicas) || self.replicas == 1",message="a restore or clone has one copy for now: it shares its source's data on the source's Store",fieldPath=".replicas"
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

	// replicas is the number of copies, 1 to 3, each on its own Store: on distinct nodes, spread
	// over as many zones (topology.kubernetes.io/zone of the Stores' nodes) as there are, and on
	// distinct Stores of one node only when replicaPlacement.allowSameNode says so. It cannot
	// change once set (the operator does not add or remove copies of a live volume; it only
	// replaces a lost copy and moves copies off Stores set out).
	//
	// A Volume with more than one replica is placed and created only by an operator started with
	// --enable-replication (chart value operator.replication.enabled): replication is opt-in while
	// it is new. Without it the operator leaves such a Volume unplaced, with Ready False and
	// reason ReplicationUnavailable.
	// +optional
	// +kubebuilder:default=1
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=3
	// +kubebuilder:validation:XValidation:rule="self == oldSelf",message="replicas is immutable"
	Replicas int32 `json:"replicas,omitempty"`

	// replicaPlacement tunes where the copies of a replicated volume go.
	// +optional
	ReplicaPlacement *ReplicaPlacement `json:"replicaPlacement,omitempty"`

	// storeSelector restricts placement to Stores whose labels match (for example
	// storage.cobalt.io/device-class: ssd).
	// +optional
	StoreSelector *metav1.LabelSelector `json:"storeSelector,omitempty"`

	// nodeSelector restricts placement to Stores on nodes whose labels match.
	// +optional
	NodeSelector map[string]string `json:"nodeSelector,omitempty"`

	// storeName is the Store that holds the volume (of a replicated volume, its first copy). The
	// operator sets it when it places the volume; a user may set it up front to pin the volume.
	// Once set it changes only when the operator moves the first copy of a replicated volume to
	// another Store (replacing a lost copy, or draining a Store set out), and then
	// replicaStoreNames stays as it was: one copy moves per update.
	// +optional
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	StoreName string `json:"storeName,omitempty"`

	// replicaStoreNames are the Stores of the copies other than the first (which is on
	// storeName): exactly replicas - 1 of them, or none while the copies are not placed. The
	// operator sets them (with storeName, unless that was pinned) when it places the volume; a
	// user may set them up front, with storeName, to pin every copy. Once set they change only
	// when the operator moves one copy to another Store (replacing a lost copy, or draining a
	// Store set out): one name is replaced per update, storeName unchanged. No Store appears
	// twice.
	// +optional
	// +listType=set
	// +kubebuilder:validation:MaxItems=2
	// +kubebuilder:validation:items:MinLength=1
	// +kubebuilder:validation:items:MaxLength=253
	ReplicaStoreNames []string `json:"replicaStoreNames,omitempty"`

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

// ReplicaPlacement tunes the placement of a replicated Volume's copies.
type ReplicaPlacement struct {
	// allowSameNode lets copies go to distinct Stores of one node when there are not enough
	// nodes with room: for single-node labs and end-to-end tests. Such copies survive the loss
	// of a device, not of the node. Copies still go to distinct nodes whenever there are enough.
	// Two copies never share a Store.
	// +optional
	AllowSameNode bool `json:"allowSameNode,omitempty"`
}

// ReplicaState is how one copy of a Volume stands.
// +kubebuilder:validation:Enum=InSync;CatchingUp;Lost;Pending
type ReplicaState string

const (
	// ReplicaInSync: the copy holds every acknowledged write.
	ReplicaInSync ReplicaState = "InSync"
	// ReplicaCatchingUp: the copy exists but misses writes; it is being resynced or rebuilt.
	ReplicaCatchingUp ReplicaState = "CatchingUp"
	// ReplicaLost: the copy cannot be reached (its Store is gone or not Ready).
	ReplicaLost ReplicaState = "Lost"
	// ReplicaPending: the copy is not created yet.
	ReplicaPending ReplicaState = "Pending"
)

// VolumeReplica is one copy of a Volume as the operator last saw it.
//
// Who moves a replicated Volume's copy between states: the operator makes a copy Pending until
// created, InSync when first created with the others, CatchingUp when it is created later (a
// replacement or a move: it starts empty and is rebuilt), Lost while its Store is missing or not
// Ready, and CatchingUp when such a Store is back. The node serving the volume's I/O (the
// attached node) makes an InSync copy CatchingUp when the copy fails a write (before the write is
// acknowledged without it), and a CatchingUp copy InSync once it resynced or rebuilt it and the
// copies compared equal. The operator never makes a copy InSync again.
//
// A copy Lost for longer than the operator's replacement delay is replaced by a new copy on
// another Store, and a copy on a Store set out is moved to another Store: spec names the new
// Store instead of the old one. A copy whose Store is no longer in spec stays listed while it is
// InSync and the copies in spec are not all InSync yet (the serving node keeps writing it), and
// is then retired: removed from replicas and listed in retiredReplicas until its node deleted it.
type VolumeReplica struct {
	// store is the Store holding the copy.
	Store string `json:"store"`
	// node is the node hosting that Store.
	// +optional
	Node string `json:"node,omitempty"`
	// state is InSync, CatchingUp, Lost or Pending.
	State ReplicaState `json:"state"`
	// allocatedSize is what the copy's Store allocated for it; absent while it is Pending.
	// +optional
	AllocatedSize *resource.Quantity `json:"allocatedSize,omitempty"`
	// message says why the copy is not InSync.
	// +optional
	Message string `json:"message,omitempty"`
	// lostSince is when the operator first saw the copy Lost; absent unless it is Lost. The
	// copy is replaced by a new one on another Store once it has been Lost for longer than the
	// operator's replacement delay (--replica-replacement-delay).
	// +optional
	LostSince *metav1.Time `json:"lostSince,omitempty"`
}

// RetiredReplica is a copy of a Volume that no longer counts (it was replaced or moved away) and
// that its node has not deleted yet, because its Store could not be reached.
type RetiredReplica struct {
	// store is the Store holding the leftover copy.
	Store string `json:"store"`
	// node is the node hosting that Store.
	// +optional
	Node string `json:"node,omitempty"`
	// retiredAt is when the operator retired the copy.
	RetiredAt metav1.Time `json:"retiredAt"`
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
	// conditions: Ready (created on its Store, every copy of a replicated volume on its Store, at
	// the allocated size), Resizing (the requested size is larger than the allocated one; the
	// reason says why it has not grown yet) and, on a replicated volume once created, Degraded
	// (fewer copies in sync than replicas: reason Rebuilding while a copy is CatchingUp, else
	// ReplicasNotInSync; False with reason Moving while a copy moves off a Store set out).
	// +optional
	// +listType=map
	// +listMapKey=type
	Conditions []metav1.Condition `json:"conditions,omitempty"`

	// observedGeneration is the generation of the spec this status was computed from.
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`

	// placement is where the volume was created: for a replicated volume, its first copy (the
	// one on spec.storeName). Consumers that need one Store (CSI topology, the cobalt CLI) use
	// it; replicas lists every copy.
	// +optional
	Placement *VolumePlacement `json:"placement,omitempty"`

	// allocatedSize is the size the Store has allocated for the volume; for a replicated volume,
	// the smallest allocation among its copies (what every copy can hold).
	// +optional
	AllocatedSize *resource.Quantity `json:"allocatedSize,omitempty"`

	// replicas lists every copy of the volume, the first (spec.storeName) first, once it is
	// placed; while a copy moves to another Store (a Store set out is drained), the copy it
	// replaces is listed after them until the new one is InSync, so it may hold replicas + 1
	// entries.
	// +optional
	// +listType=map
	// +listMapKey=store
	// +kubebuilder:validation:MaxItems=4
	Replicas []VolumeReplica `json:"replicas,omitempty"`

	// retiredReplicas are copies replaced or moved away that are still to be deleted on their
	// node: the operator deletes each once its Store is reachable again (or drops it when the
	// Store no longer exists), and before the Volume itself goes.
	// +optional
	// +listType=map
	// +listMapKey=store
	// +kubebuilder:validation:MaxItems=16
	RetiredReplicas []RetiredReplica `json:"retiredReplicas,omitempty"`

	// inSyncReplicas counts the copies in replicas whose state is InSync.
	// +optional
	InSyncReplicas int32 `json:"inSyncReplicas,omitempty"`

	// attachment is the node the volume is attached to and the attachment's generation, written
	// by Cobalt's CSI controller plugin when Kubernetes attaches (ControllerPublishVolume) and
	// detaches (ControllerUnpublishVolume) the volume.
	// +optional
	Attachment *VolumeAttachmentStatus `json:"attachment,omitempty"`
}

// VolumeAttachmentStatus is where a Volume is attached, and since which generation.
type VolumeAttachmentStatus struct {
	// node is the node the volume is attached to; empty once it is detached.
	// +optional
	Node string `json:"node,omitempty"`
	// generation grows by one every time the volume is attached to a node it was not attached
	// to, and is kept when it is detached. The node serving a replicated volume's I/O sends it
	// with every request, and every copy refuses requests of an older generation than the
	// newest it saw (fencing): a node that lost the attachment can no longer write.
	// +kubebuilder:validation:Minimum=1
	Generation int64 `json:"generation"`
}

// Volume is a piece of capacity placed on one Store, or with spec.replicas > 1 on several
// Stores (one copy on each).
//
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:categories=cobalt
// +kubebuilder:printcolumn:name="Size",type=string,JSONPath=`.spec.size`
// +kubebuilder:printcolumn:name="Allocated",type=string,JSONPath=`.status.allocatedSize`
// +kubebuilder:printcolumn:name="Mode",type=string,JSONPath=`.spec.volumeMode`
// +kubebuilder:printcolumn:name="Store",type=string,JSONPath=`.spec.storeName`
// +kubebuilder:printcolumn:name="Replicas",type=integer,JSONPath=`.spec.replicas`
// +kubebuilder:printcolumn:name="In-Sync",type=integer,JSONPath=`.status.inSyncReplicas`
// +kubebuilder:printcolumn:name="Degraded",type=string,JSONPath=`.status.conditions[?(@.type=="Degraded")].status`
// +kubebuilder:printcolumn:name="Sync",type=string,JSONPath=`.status.conditions[?(@.type=="Degraded")].reason`
// +kubebuilder:printcolumn:name="Ready",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].status`
// +kubebuilder:printcolumn:name="Reason",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].reason`
// +kubebuilder:printcolumn:name="Attached",type=string,JSONPath=`.status.attachment.node`,priority=1
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
