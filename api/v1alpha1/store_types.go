package v1alpha1

import (
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// DeviceClass is the kind of media behind a Store.
// +kubebuilder:validation:Enum=ssd;hdd
type DeviceClass string

const (
	// DeviceClassSSD is non-rotational media.
	DeviceClassSSD DeviceClass = "ssd"
	// DeviceClassHDD is rotational media.
	DeviceClassHDD DeviceClass = "hdd"
)

// AdminState is an administrator's decision about a Store.
// +kubebuilder:validation:Enum=in;out
type AdminState string

const (
	// AdminStateIn lets a Store receive new Volumes.
	AdminStateIn AdminState = "in"
	// AdminStateOut drains a Store: it keeps serving its Volumes but receives no new ones.
	AdminStateOut AdminState = "out"
)

// Labels the node daemon puts on every Store so that clusters and selectors find them.
const (
	// LabelClusterName is the name of the StorageCluster a Store belongs to.
	LabelClusterName = "storage.cobalt.io/cluster"
	// LabelClusterNamespace is the namespace of the StorageCluster a Store belongs to.
	LabelClusterNamespace = "storage.cobalt.io/cluster-namespace"
	// LabelNodeName is the node that hosts a Store.
	LabelNodeName = "storage.cobalt.io/node"
	// LabelDeviceClass is the Store's device class (ssd or hdd).
	LabelDeviceClass = "storage.cobalt.io/device-class"
)

// AnnotationNodeEndpoint is the Store annotation in which the node daemon serving the Store
// publishes its gRPC address (host:port) once its API serves. A Store without it is not Ready:
// nothing could reach its node daemon.
const AnnotationNodeEndpoint = "storage.cobalt.io/node-endpoint"

// ClusterReference names a StorageCluster.
type ClusterReference struct {
	// namespace of the StorageCluster.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=63
	Namespace string `json:"namespace"`
	// name of the StorageCluster.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	Name string `json:"name"`
}

// StoreSpec identifies one device of one node. The node daemon creates it; an administrator
// changes only adminState.
// +kubebuilder:validation:XValidation:rule="self.cluster == oldSelf.cluster",message="cluster is immutable",fieldPath=".cluster"
type StoreSpec struct {
	// cluster is the StorageCluster this Store belongs to.
	// +required
	Cluster ClusterReference `json:"cluster"`

	// nodeName is the node that hosts the device. It cannot change.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:XValidation:rule="self == oldSelf",message="nodeName is immutable: a Store cannot move to another node"
	NodeName string `json:"nodeName"`

	// devicePath is the device (or, for a file-backed device, the file) on that node. It cannot
	// change: the Store's data lives on it.
	// +required
	// +kubebuilder:validation:MinLength=2
	// +kubebuilder:validation:MaxLength=256
	// +kubebuilder:validation:XValidation:rule="self.startsWith('/')",message="devicePath must be an absolute path"
	// +kubebuilder:validation:XValidation:rule="self == oldSelf",message="devicePath is immutable: the Store's data lives on that device"
	DevicePath string `json:"devicePath"`

	// deviceClass is "ssd" or "hdd", as the node daemon detected it.
	// +required
	DeviceClass DeviceClass `json:"deviceClass"`

	// adminState is "in" (accepts new Volumes) or "out" (drained: keeps its Volumes, takes no new
	// ones).
	// +optional
	// +kubebuilder:default=in
	AdminState AdminState `json:"adminState,omitempty"`
}

// EngineHealth is the storage engine's own verdict on a Store, as its node daemon reports it.
// +kubebuilder:validation:Enum=OK;Degraded;Failed
type EngineHealth string

const (
	// EngineHealthOK: nothing went wrong lately.
	EngineHealthOK EngineHealth = "OK"
	// EngineHealthDegraded: the Store serves, but its metadata database recently had background
	// errors or a slow disk, or its writes are stalled.
	EngineHealthDegraded EngineHealth = "Degraded"
	// EngineHealthFailed: the Store refuses writes (a metadata commit failed) or its metadata is
	// corrupt; it needs an administrator.
	EngineHealthFailed EngineHealth = "Failed"
)

// MetadataPlacement is where a Store keeps its metadata database.
// +kubebuilder:validation:Enum=Device;MetadataDevice;StateDirectory
type MetadataPlacement string

const (
	// MetadataOnDevice: in a region of the Store's own device, which its label names. The Store
	// mounts from the device alone, on whichever node the device is.
	MetadataOnDevice MetadataPlacement = "Device"
	// MetadataOnSeparateDevice: in a region of a separate metadata device (a faster one, named in
	// the StorageCluster's spec.devices.metadataDevices), whose label names the Store. The Store
	// mounts from its two devices alone, on whichever node both are.
	MetadataOnSeparateDevice MetadataPlacement = "MetadataDevice"
	// MetadataInStateDirectory: in the node daemon's state directory on the node, as for Stores made
	// before metadata moved onto devices. The Store mounts only where that directory is.
	MetadataInStateDirectory MetadataPlacement = "StateDirectory"
)

// StoreMetadata says where a Store keeps its metadata database.
type StoreMetadata struct {
	// placement is Device, MetadataDevice or StateDirectory.
	// +required
	Placement MetadataPlacement `json:"placement"`
	// location is the region of the device ("device region [offset, +length)", in bytes), the
	// region of the metadata device and its path ("metadata device region [offset, +length) on
	// PATH") or the directory on the node ("directory PATH").
	// +optional
	// +kubebuilder:validation:MaxLength=1024
	Location string `json:"location,omitempty"`
}

// CacheSummary summarizes a Store's cache as last reported by its node daemon.
type CacheSummary struct {
	// type is the cache policy in use.
	// +optional
	Type CacheType `json:"type,omitempty"`
	// shards is the number of cache shards in use.
	// +optional
	Shards int32 `json:"shards,omitempty"`
	// hits counts cache hits since the Store was opened.
	// +optional
	Hits int64 `json:"hits,omitempty"`
	// misses counts cache misses since the Store was opened.
	// +optional
	Misses int64 `json:"misses,omitempty"`
	// bytes is the memory the cache holds.
	// +optional
	Bytes *resource.Quantity `json:"bytes,omitempty"`
}

// StoreStatus is written by two parties: the node daemon reports uuid, capacity, used, cache,
// metadata, engineHealth, engineMessage, lastHeartbeat and notUsedReason; the operator computes
// conditions from them.
type StoreStatus struct {
	// conditions: Ready (the node daemon heartbeats in time and serves the device), Degraded (the
	// Store is nearly full, or its engine reports trouble) and Schedulable (Ready, admin state "in"
	// and engineHealth not Failed).
	// +optional
	// +listType=map
	// +listMapKey=type
	Conditions []metav1.Condition `json:"conditions,omitempty"`

	// observedGeneration is the generation of the spec the conditions were computed from.
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`

	// uuid is the store's on-disk identity, written at mkfs.
	// +optional
	// +kubebuilder:validation:MaxLength=64
	UUID string `json:"uuid,omitempty"`

	// capacity is the usable size of the device.
	// +optional
	Capacity *resource.Quantity `json:"capacity,omitempty"`

	// used is the space in use on the device.
	// +optional
	Used *resource.Quantity `json:"used,omitempty"`

	// cache summarizes the Store's cache.
	// +optional
	Cache *CacheSummary `json:"cache,omitempty"`

	// metadata says where the Store keeps its metadata database. Empty for a device that is not
	// used.
	// +optional
	Metadata *StoreMetadata `json:"metadata,omitempty"`

	// engineHealth is the storage engine's verdict: OK, Degraded (recent metadata background
	// errors, a slow disk, stalled writes) or Failed (writes refused, metadata corrupt). Empty
	// for a device that is not used.
	// +optional
	EngineHealth EngineHealth `json:"engineHealth,omitempty"`

	// engineMessage says what the engine saw when engineHealth is not OK.
	// +optional
	// +kubebuilder:validation:MaxLength=1024
	EngineMessage string `json:"engineMessage,omitempty"`

	// lastHeartbeat is when the node daemon last reported this Store alive.
	// +optional
	LastHeartbeat *metav1.Time `json:"lastHeartbeat,omitempty"`

	// notUsedReason says why the node daemon did not take the device into use (for example
	// "device has an ext4 filesystem"). Empty for a device in use.
	// +optional
	// +kubebuilder:validation:MaxLength=1024
	NotUsedReason string `json:"notUsedReason,omitempty"`
}

// Store is one device of one node, prepared by the node daemon and served by it (like a Ceph OSD).
//
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:scope=Cluster,categories=cobalt
// +kubebuilder:printcolumn:name="Node",type=string,JSONPath=`.spec.nodeName`
// +kubebuilder:printcolumn:name="Device",type=string,JSONPath=`.spec.devicePath`
// +kubebuilder:printcolumn:name="Class",type=string,JSONPath=`.spec.deviceClass`
// +kubebuilder:printcolumn:name="Admin",type=string,JSONPath=`.spec.adminState`
// +kubebuilder:printcolumn:name="Ready",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].status`
// +kubebuilder:printcolumn:name="Capacity",type=string,JSONPath=`.status.capacity`
// +kubebuilder:printcolumn:name="Used",type=string,JSONPath=`.status.used`
// +kubebuilder:printcolumn:name="Engine",type=string,JSONPath=`.status.engineHealth`
// +kubebuilder:printcolumn:name="Metadata",type=string,JSONPath=`.status.metadata.placement`,priority=1
// +kubebuilder:printcolumn:name="Reason",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].reason`,priority=1
// +kubebuilder:printcolumn:name="Heartbeat",type=date,JSONPath=`.status.lastHeartbeat`
type Store struct {
	metav1.TypeMeta `json:",inline"`
	// +optional
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// spec is the desired state.
	// +required
	Spec StoreSpec `json:"spec"`

	// status is the observed state.
	// +optional
	Status StoreStatus `json:"status,omitempty"`
}

// StoreList is a list of Stores.
//
// +kubebuilder:object:root=true
type StoreList struct {
	metav1.TypeMeta `json:",inline"`
	// +optional
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []Store `json:"items"`
}

func init() {
	SchemeBuilder.Register(&Store{}, &StoreList{})
}
