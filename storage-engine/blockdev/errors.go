package blockdev

import "errors"

// Sentinel errors returned (wrapped, with the device and offset) by every Device in this package.
// Test them with errors.Is.
var (
	// ErrMisaligned reports an offset, length or buffer address that is not a multiple of the
	// device's block size.
	ErrMisaligned = errors.New("blockdev: misaligned I/O")
	// ErrOutOfRange reports I/O that would extend past the end of the device.
	ErrOutOfRange = errors.New("blockdev: I/O beyond end of device")
	// ErrClosed reports use of a device after Close.
	ErrClosed = errors.New("blockdev: device closed")
	// ErrReadOnly reports a write on a device opened read-only.
	ErrReadOnly = errors.New("blockdev: device is read-only")
)
