package frontend

import "errors"

// ErrNotExposed is returned (wrapped) by Resize for a volume that is not exposed.
var ErrNotExposed = errors.New("volume is not exposed")

// ErrDeviceBusy is returned (wrapped) by Remove and Close when a volume's device is still open
// by someone else (a mounted file system, a process holding it open): the device stays bound and
// served, and the kernel detaches it when its last user closes it. Unmount and retry Remove.
var ErrDeviceBusy = errors.New("device is still in use")
