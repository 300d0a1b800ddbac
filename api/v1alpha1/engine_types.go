package v1alpha1

import (
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/apimachinery/pkg/util/intstr"
)

// CacheType is the replacement policy of the engine's onode and buffer caches.
// +kubebuilder:validation:Enum="2q";lru
type CacheType string

const (
	// CacheType2Q is the 2Q policy: scan-resistant, the default.
	CacheType2Q CacheType = "2q"
	// CacheTypeLRU is plain least-recently-used.
	CacheTypeLRU CacheType = "lru"
)

// ChecksumType is the data checksum algorithm of a Store. The engine offers CRC-32C only: it
// verifies every read, and a store without checksums would return rotted data silently.
// +kubebuilder:validation:Enum=crc32c
type ChecksumType string

const (
	// ChecksumCRC32C checksums every checksum block with CRC-32C (Castagnoli), the default.
	ChecksumCRC32C ChecksumType = "crc32c"
)

// CacheShardsAuto lets the engine pick the shard count: 8 on SSDs, 5 on HDDs.
const CacheShardsAuto = "auto"

// EngineSettings tunes the storage engine of every Store of a StorageCluster. Every field has a
// default, so an empty object is a complete configuration.
type EngineSettings struct {
	// cacheType selects the cache replacement policy for onodes and data buffers: "2q" or "lru".
	// +optional
	// +kubebuilder:default="2q"
	CacheType CacheType `json:"cacheType,omitempty"`

	// cacheShards is the number of cache shards, from 1 to 64, or "auto" (8 on SSDs, 5 on HDDs).
	// +optional
	// +kubebuilder:default="auto"
	// +kubebuilder:validation:XIntOrString
	// +kubebuilder:validation:XValidation:rule="type(self) == string ? self == 'auto' : (self >= 1 && self <= 64)",message="cacheShards must be 'auto' or a number from 1 to 64"
	CacheShards intstr.IntOrString `json:"cacheShards,omitzero"`

	// memoryTarget is the memory each Store aims to use for its caches, for example "2Gi".
	// +optional
	// +kubebuilder:default="1Gi"
	// +kubebuilder:validation:XValidation:rule="quantity(string(self)).compareTo(quantity('64Mi')) >= 0",message="memoryTarget must be at least 64Mi"
	MemoryTarget resource.Quantity `json:"memoryTarget,omitzero"`

	// minAllocSize is the allocation unit in bytes: a power of two from 4096 to 65536.
	// +optional
	// +kubebuilder:default=4096
	// +kubebuilder:validation:XValidation:rule="self in [4096, 8192, 16384, 32768, 65536]",message="minAllocSize must be a power of two from 4096 to 65536"
	MinAllocSize int64 `json:"minAllocSize,omitempty"`

	// deferredWriteThreshold is the size in bytes below which overwrites go through the metadata
	// log first (deferred writes) instead of straight to a new place on the device. 0 disables
	// deferred writes.
	// +optional
	// +kubebuilder:default=65536
	// +kubebuilder:validation:Minimum=0
	// +kubebuilder:validation:Maximum=1048576
	DeferredWriteThreshold *int64 `json:"deferredWriteThreshold,omitempty"`

	// checksumType is the data checksum: "crc32c" (the only one offered; every read is verified).
	// +optional
	// +kubebuilder:default=crc32c
	ChecksumType ChecksumType `json:"checksumType,omitempty"`
}

// NodeDaemonSpec configures the node daemon's pods.
type NodeDaemonSpec struct {
	// image of the node daemon. Empty means the image the operator was started with
	// (its --node-daemon-image flag).
	// +optional
	// +kubebuilder:validation:MaxLength=512
	Image string `json:"image,omitempty"`

	// imagePullPolicy of the node daemon container.
	// +optional
	// +kubebuilder:validation:Enum=Always;IfNotPresent;Never
	ImagePullPolicy corev1.PullPolicy `json:"imagePullPolicy,omitempty"`

	// resources of the node daemon container.
	// +optional
	Resources corev1.ResourceRequirements `json:"resources,omitempty"`

	// stateDir is the host directory that holds each Store's metadata and file-backed devices.
	// It cannot change: existing Stores keep their metadata there.
	// +optional
	// +kubebuilder:default="/var/lib/cobalt"
	// +kubebuilder:validation:MaxLength=256
	// +kubebuilder:validation:XValidation:rule="self.startsWith('/') && self != '/' && !self.contains('..')",message="stateDir must be an absolute path other than /"
	// +kubebuilder:validation:XValidation:rule="self == oldSelf",message="stateDir cannot change: existing Stores keep their metadata there"
	StateDir string `json:"stateDir,omitempty"`
}
