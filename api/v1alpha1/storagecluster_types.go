package v1alpha1

import (
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// StorageClusterSpec is the desired state of a StorageCluster: where storage lives and how its
// engine is tuned.
type StorageClusterSpec struct {
	// nodeSelector picks the nodes that run the node daemon and host Stores. Empty selects every
	// node the daemon tolerates.
	// +optional
	NodeSelector map[string]string `json:"nodeSelector,omitempty"`

	// tolerations let the node daemon run on tainted storage nodes.
	// +optional
	// +listType=atomic
	// +kubebuilder:validation:MaxItems=32
	Tolerations []corev1.Toleration `json:"tolerations,omitempty"`

	// devices says which devices of each selected node become Stores.
	// +required
	Devices DeviceSelection `json:"devices"`

	// engine tunes the storage engine of every Store in this cluster.
	// +optional
	// +kubebuilder:default={}
	Engine EngineSettings `json:"engine,omitempty"`

	// nodeDaemon configures the per-node daemon that prepares devices and serves Stores.
	// +optional
	// +kubebuilder:default={}
	NodeDaemon NodeDaemonSpec `json:"nodeDaemon,omitempty"`
}

// DeviceSelection chooses devices in exactly one way: explicit paths, a name filter, or a
// file-backed device for development. allowWipe goes only with explicit paths.
// +kubebuilder:validation:XValidation:rule="(has(self.paths) ? 1 : 0) + (has(self.nameFilter) ? 1 : 0) + (has(self.file) ? 1 : 0) == 1",message="devices must set exactly one of paths, nameFilter or file"
// +kubebuilder:validation:XValidation:rule="!has(self.allowWipe) || !self.allowWipe || has(self.paths)",message="allowWipe requires explicit paths: with nameFilter or file it could wipe devices nobody named"
// +kubebuilder:validation:XValidation:rule="!has(self.metadataDevices) || (has(self.paths) && self.metadataDevices.all(m, m.path in self.paths))",message="metadataDevices names devices listed in paths"
// +kubebuilder:validation:XValidation:rule="!has(self.metadataDevices) || !has(self.paths) || self.metadataDevices.all(m, !(m.device in self.paths))",message="a metadata device cannot also be a device in paths"
type DeviceSelection struct {
	// paths lists the device paths to use on every selected node, such as /dev/nvme0n1.
	// +optional
	// +listType=set
	// +kubebuilder:validation:MinItems=1
	// +kubebuilder:validation:MaxItems=64
	// +kubebuilder:validation:items:MaxLength=256
	// +kubebuilder:validation:XValidation:rule="self.all(p, p.startsWith('/dev/') && !p.contains('..'))",message="device paths must be absolute paths under /dev/"
	Paths []string `json:"paths,omitempty"`

	// nameFilter is an RE2 regular expression matched against device names under /dev (for
	// example "^nvme[0-9]+n1$"). Every matching device that carries no filesystem becomes a Store;
	// the others get a Store whose status says why they were skipped.
	// +optional
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=256
	NameFilter string `json:"nameFilter,omitempty"`

	// file asks for one file-backed device per node, kept in the node daemon's state directory.
	// It is meant for development and tests: no real disk is touched.
	// +optional
	File *FileDevice `json:"file,omitempty"`

	// metadataDevices gives some of the listed paths a separate device for the metadata of the
	// Store made on it, as BlueStore's block.db: a faster device (an NVMe or SSD, or a partition
	// of one, such as /dev/nvme0n1p1) for a slower one. A metadata device serves one device and
	// is not itself in paths. Both devices are labeled with the Store's UUID, and the Store mounts only
	// with both (the node daemon looks for its metadata device among the node's metadataDevices,
	// so the pair may move to another node): losing the metadata device loses the Store.
	// The metadata does not grow into the data device: a full metadata device refuses writes.
	// Only a new Store is made this way; an existing Store keeps its metadata where it is.
	// A metadata device that carries anything is refused like a device in paths (allowWipe
	// applies to it too), and this cluster's metadata devices are never wiped.
	// +optional
	// +listType=map
	// +listMapKey=path
	// +kubebuilder:validation:MaxItems=64
	// +kubebuilder:validation:XValidation:rule="self.all(a, self.exists_one(b, b.device == a.device))",message="two devices cannot share a metadata device"
	MetadataDevices []MetadataDevice `json:"metadataDevices,omitempty"`

	// allowWipe lets the node daemon format listed devices that carry a filesystem, another
	// storage layer, a Cobalt store of another cluster (its label names another StorageCluster's
	// UID) or one whose metadata is in another node's state directory. DANGEROUS: whatever was on
	// such a device is destroyed when the node daemon next starts. Only allowed together with
	// paths, so that every device that may be wiped is named. Unset or false, such devices are
	// skipped and their Store says why. A store of this cluster is mounted, never wiped, on
	// whichever of the cluster's nodes its device turns up. Devices that are mounted, partitioned,
	// read-only or too small are never used, whatever this says.
	// +optional
	AllowWipe bool `json:"allowWipe,omitempty"`
}

// MetadataDevice pairs a device of spec.devices.paths with its separate metadata device.
type MetadataDevice struct {
	// path is the device, as listed in paths.
	// +required
	// +kubebuilder:validation:MaxLength=256
	Path string `json:"path"`
	// device is the metadata device, such as /dev/nvme0n1p1.
	// +required
	// +kubebuilder:validation:MaxLength=256
	// +kubebuilder:validation:XValidation:rule="self.startsWith('/dev/') && !self.contains('..')",message="metadata devices must be absolute paths under /dev/"
	Device string `json:"device"`
}

// FileDevice is a file-backed device of a fixed size.
type FileDevice struct {
	// size of the file on each node, for example "10Gi".
	// +required
	// +kubebuilder:validation:XValidation:rule="quantity(string(self)).compareTo(quantity('64Mi')) >= 0",message="file size must be at least 64Mi"
	Size resource.Quantity `json:"size"`
}

// StorageClusterStatus is the observed state of a StorageCluster, aggregated from its Stores and
// its node daemon.
type StorageClusterStatus struct {
	// conditions: Ready (every desired Store is up), Progressing (the node daemon is rolling out
	// or the cluster is being deleted; the message says what deletion waits for) and Degraded
	// (some Stores are down).
	// +optional
	// +listType=map
	// +listMapKey=type
	Conditions []metav1.Condition `json:"conditions,omitempty"`

	// observedGeneration is the generation of the spec this status was computed from.
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`

	// storesDesired counts the Stores that should be serving: admin state "in" and a device
	// that the node daemon took into use.
	// +optional
	StoresDesired int32 `json:"storesDesired"`

	// storesUp counts the desired Stores that are Ready.
	// +optional
	StoresUp int32 `json:"storesUp"`

	// capacity sums the capacity of the Ready Stores.
	// +optional
	Capacity *CapacityStatus `json:"capacity,omitempty"`

	// nodeDaemon is the name of the node daemon's DaemonSet in the cluster's namespace.
	// +optional
	NodeDaemon string `json:"nodeDaemon,omitempty"`
}

// CapacityStatus is a capacity summary.
type CapacityStatus struct {
	// total is the raw capacity.
	Total resource.Quantity `json:"total"`
	// used is the space in use.
	Used resource.Quantity `json:"used"`
	// available is total minus used.
	Available resource.Quantity `json:"available"`
}

// StorageCluster is a set of storage nodes and their devices, served by one node daemon per node.
//
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:categories=cobalt
// +kubebuilder:printcolumn:name="Ready",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].status`
// +kubebuilder:printcolumn:name="Up",type=integer,JSONPath=`.status.storesUp`
// +kubebuilder:printcolumn:name="Desired",type=integer,JSONPath=`.status.storesDesired`
// +kubebuilder:printcolumn:name="Capacity",type=string,JSONPath=`.status.capacity.total`
// +kubebuilder:printcolumn:name="Available",type=string,JSONPath=`.status.capacity.available`
// +kubebuilder:printcolumn:name="Reason",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].reason`,priority=1
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
type StorageCluster struct {
	metav1.TypeMeta `json:",inline"`
	// +optional
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// spec is the desired state.
	// +required
	Spec StorageClusterSpec `json:"spec"`

	// status is the observed state.
	// +optional
	Status StorageClusterStatus `json:"status,omitempty"`
}

// StorageClusterList is a list of StorageClusters.
//
// +kubebuilder:object:root=true
type StorageClusterList struct {
	metav1.TypeMeta `json:",inline"`
	// +optional
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []StorageCluster `json:"items"`
}

func init() {
	SchemeBuilder.Register(&StorageCluster{}, &StorageClusterList{})
}
