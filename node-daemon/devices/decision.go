package devices

// Action is what the daemon does with a device.
type Action string

const (
	// Skip leaves the device alone; Decision.Reason says why.
	Skip Action = "Skip"
	// Mkfs formats the device as a new store (idempotent: a device that already carries this
	// node's store is mounted instead).
	Mkfs Action = "Mkfs"
	// Mount opens the existing store on the device.
	Mount Action = "Mount"
)

// Decision is the outcome of inspecting one device.
type Decision struct {
	// Path is the device path as selected (not resolved through symlinks).
	Path   string
	Action Action
	// Reason explains a Skip, or what a forced Mkfs overwrites.
	Reason string
	// StoreUUID is the existing store's UUID for Mount.
	StoreUUID string
	// MetaOnDevice is set for Mount when the store keeps its metadata on the device (label version
	// 2 and later): it mounts from the device alone, whatever this node's state directory holds.
	MetaOnDevice bool
	// MetaOnSeparateDevice is set for Mount when the store keeps its metadata on a separate
	// metadata device (label version 4; MetaOnDevice is set too): it mounts only with that device.
	MetaOnSeparateDevice bool
	// StoreCluster is the cluster ID the device's label names ("" when it names none): this
	// cluster's for Mount, another cluster's for a Skip (or a forced Mkfs) of a foreign store.
	StoreCluster string
	// Adopt is set for Mount of a store whose label names no cluster (label version 2): mounting
	// it records this cluster in its label first.
	Adopt bool
	// MetadataDevice is the separate metadata device to make the store with (Mkfs) or to mount it
	// with (Mount of a store whose metadata is on a separate device), "" for none.
	MetadataDevice string
	// MetadataDeviceOf is set for a Skip of a device that is the metadata device of a store of
	// this cluster (or of no cluster): that store's UUID.
	MetadataDeviceOf string
	// Force asks mkfs to overwrite an existing signature (only with AllowWipe).
	Force bool
	// Size is the device size in bytes, Rotational its media type (when it could be read).
	Size       int64
	Rotational bool
}
