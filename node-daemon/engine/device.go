package engine

import (
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/cobaltstore/cobalt/storage-engine/blockdev"
)

// watchedDevice is the device under a mounted store: it remembers the first error of a read, a
// write or a flush that reached the device (EIO from a failing disk, ENOSPC or a short read from
// one that shrank under the daemon, ...). The engine fails only the transaction or the read that
// met such an error and keeps its health OK (its metadata may never have been written since), so
// without this the Store would look healthy, and stay schedulable, over a dead device. Errors the
// device returns before doing any I/O (misaligned, out of range, closed, read-only) are the
// caller's and are not recorded. Once recorded, the failure stays until the store is mounted
// again: a device that lost a write cannot be trusted with the next one (Ceph's BlueStore stops
// the OSD at the first EIO for the same reason).
type watchedDevice struct {
	blockdev.Device
	failure atomic.Pointer[deviceFailure]
	now     func() time.Time
}

// deviceFailure is the first I/O error of a watched device and when it happened.
type deviceFailure struct {
	err error
	at  time.Time
}

func watch(dev blockdev.Device) *watchedDevice {
	return &watchedDevice{Device: dev, now: time.Now}
}

// ReadAt implements blockdev.Device.
func (d *watchedDevice) ReadAt(p []byte, off int64) (int, error) {
	n, err := d.Device.ReadAt(p, off)
	d.observe(err)
	return n, err
}

// WriteAt implements blockdev.Device.
func (d *watchedDevice) WriteAt(p []byte, off int64) (int, error) {
	n, err := d.Device.WriteAt(p, off)
	d.observe(err)
	return n, err
}

// Flush implements blockdev.Device.
func (d *watchedDevice) Flush() error {
	err := d.Device.Flush()
	d.observe(err)
	return err
}

// observe records err as the device's failure unless it is nil, the caller's mistake, or a
// failure is recorded already.
func (d *watchedDevice) observe(err error) {
	if err == nil || errors.Is(err, blockdev.ErrMisaligned) || errors.Is(err, blockdev.ErrOutOfRange) ||
		errors.Is(err, blockdev.ErrClosed) || errors.Is(err, blockdev.ErrReadOnly) {
		return
	}
	d.failure.CompareAndSwap(nil, &deviceFailure{err: err, at: d.now()})
}

// failed returns the device's first I/O error, described with its time, or nil.
func (d *watchedDevice) failed() error {
	f := d.failure.Load()
	if f == nil {
		return nil
	}
	return fmt.Errorf("the device failed at %s: %w", f.at.UTC().Format(time.RFC3339), f.err)
}
