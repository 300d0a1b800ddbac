package frontend

import "context"

// Backend is the volume a frontend serves: the node daemon adapts a volume of one of its stores
// (package volume) to it. Implementations are safe for concurrent use.
type Backend interface {
	// ReadAt fills p with the volume's bytes at off; bytes never written read as zeros.
	ReadAt(ctx context.Context, p []byte, off int64) error
	// WriteAt writes p at off. When it returns nil the Backend has the data (it may or may not
	// be durable yet: only Flush promises that).
	WriteAt(ctx context.Context, p []byte, off int64) error
	// Flush returns once every write that returned before Flush was called is durable.
	Flush(ctx context.Context) error
	// Trim discards [off, off+length): it reads as zeros afterwards and its space is freed.
	Trim(ctx context.Context, off, length int64) error
}

// Device is a block device a Frontend exposes for one volume.
type Device struct {
	// VolumeID is the volume's identity on the node (its Volume object's UID).
	VolumeID string
	// Path is the device node, for example /dev/loop7.
	Path string
	// Size is the device's size in bytes.
	Size int64
}

// Frontend exposes volumes as block devices. Implementations are safe for concurrent use.
type Frontend interface {
	// Expose makes a block device of size bytes that reads and writes b, and returns it. Exposing
	// an already exposed volume returns its device (and b replaces the previous backend).
	Expose(ctx context.Context, volumeID string, size int64, b Backend) (Device, error)
	// Resize grows an exposed volume's device to size bytes, online. A volume that is not
	// exposed is an error wrapping ErrNotExposed; shrinking is an error.
	Resize(ctx context.Context, volumeID string, size int64) (Device, error)
	// Remove flushes the volume's device, detaches it and stops serving the volume. A volume
	// that is not exposed is not an error. A device still open elsewhere (mounted) stays
	// exposed and Remove returns an error wrapping ErrDeviceBusy: unmount, then Remove again.
	Remove(ctx context.Context, volumeID string) error
	// Device returns the exposed device of a volume, and false when the volume is not exposed.
	Device(volumeID string) (Device, bool)
	// Close stops serving every volume and releases the frontend's resources (Remove for each).
	Close(ctx context.Context) error
}
